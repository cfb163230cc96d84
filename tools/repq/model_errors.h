// Errors a model raises while repq runs it (an unsupported op, a shape the executor rejects)
// name the node ("node 'y' (Erf): ..."); on the command line they also name the model file, as
// every other one-line error names its file: "<model>: node 'y' (Erf): ...".
#pragma once

#include <string>
#include <utility>

#include "repq/error.h"

namespace repq::cli {

template <class F>
decltype(auto) naming_model(const std::string& model, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const InputError& e) {
    const std::string msg = e.what();
    if (msg.rfind("node '", 0) == 0) throw InputError(model + ": " + msg);
    throw;
  }
}

}  // namespace repq::cli
