// repq-make-mobileone SHARED_MOBILEONE_DIR OUT.onnx [--batch N|dynamic] [--no-verify]
// Builds Apple's MobileOne-S0 (deploy form) as an ONNX model from the raw weight files of the
// shared model folder (layers.tsv + weights/*.bin). A test and benchmark helper.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <charconv>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "build_model.h"
#include "layer_table.h"
#include "repq/error.h"
#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"
#include "weights_digest.h"

namespace {

constexpr const char* kUsage =
    "usage: repq-make-mobileone SHARED_MOBILEONE_DIR OUT.onnx [--batch N|dynamic] [--no-verify]";

struct Args {
  std::string dir, out;
  int64_t batch = 0;  // 0: symbolic
  bool verify = true;
};

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--batch") {
      if (i + 1 >= argc) throw repq::InputError("--batch needs a value (N or 'dynamic')");
      const std::string v = argv[++i];
      if (v != "dynamic") {
        const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), a.batch);
        if (ec != std::errc() || p != v.data() + v.size() || a.batch <= 0)
          throw repq::InputError("--batch: expected a positive integer or 'dynamic', got '" + v + "'");
      }
    } else if (s == "--no-verify") {
      a.verify = false;
    } else if (s == "-h" || s == "--help") {
      std::puts(kUsage);
      std::exit(0);
    } else if (s.rfind("--", 0) == 0) {
      throw repq::InputError("unknown option '" + s + "'");
    } else {
      positional.push_back(s);
    }
  }
  if (positional.size() != 2) throw repq::InputError("expected 2 arguments, got " +
                                                     std::to_string(positional.size()));
  a.dir = positional[0];
  a.out = positional[1];
  return a;
}

// ONNX's own checker on the serialized model, before anything is written.
void check_with_onnx(const repq::Model& model) {
  onnx::ModelProto proto;
  if (!proto.ParseFromString(repq::serialize_model(model)))
    throw repq::InternalError("the serialized model does not parse");
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    throw repq::InternalError(std::string("onnx checker rejects the model: ") + e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  try {
    args = parse_args(argc, argv);
  } catch (const repq::InputError& e) {
    std::fprintf(stderr, "repq-make-mobileone: error: %s\n%s\n", e.what(), kUsage);
    return 2;
  }
  try {
    auto layers = repq::mobileone::parse_layer_table(args.dir);
    repq::mobileone::load_weights(args.dir, layers);
    std::string skipped;
    if (args.verify && !repq::mobileone::verify_weights_digest(args.dir, &skipped))
      std::fprintf(stderr, "repq-make-mobileone: note: weight sha256 not checked: %s\n", skipped.c_str());
    repq::Model model = repq::mobileone::build_model(layers, args.batch);
    repq::validate_graph(model.graph);
    check_with_onnx(model);
    repq::SaveOptions so;
    so.external_data = false;
    repq::save_model(model, args.out, so);
    return 0;
  } catch (const repq::InputError& e) {
    std::fprintf(stderr, "repq-make-mobileone: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "repq-make-mobileone: internal error: %s\n", e.what());
    return 1;
  }
}
