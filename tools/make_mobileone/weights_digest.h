// Checks the weight files against the sha256 the model folder's README states for them.
#pragma once

#include <string>

namespace repq::mobileone {

// The README gives the sha256 of all weights/*.bin concatenated in byte-wise name order.
// Returns false (and a reason) when the check cannot run: no README hash or no sha256
// implementation in this build. Throws InputError when the digest differs.
bool verify_weights_digest(const std::string& dir, std::string* skipped_reason);

}  // namespace repq::mobileone
