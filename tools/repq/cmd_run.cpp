// repq run: one forward pass on .npy or image inputs, outputs written as .npy.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "repq/common/atomic_file.h"
#include "repq/data/image.h"
#include "repq/data/npy.h"
#include "repq/data/preprocess.h"
#include "repq/error.h"
#include "repq/ir/onnx_io.h"
#include "repq/runtime/executor.h"

namespace repq::cli {

namespace {

// "name=file" or "file" (then the i-th runtime input).
std::pair<std::string, std::string> split_input(const std::string& arg, const Executor& ex,
                                                size_t i) {
  const auto eq = arg.find('=');
  if (eq != std::string::npos && !std::filesystem::exists(arg)) {
    const std::string name = arg.substr(0, eq);
    for (const auto& n : ex.input_names())
      if (n == name) return {name, arg.substr(eq + 1)};
    throw InputError("--input " + arg + ": the model has no input named '" + name + "'");
  }
  if (i >= ex.input_names().size())
    throw InputError("--input " + arg + ": the model has only " +
                     std::to_string(ex.input_names().size()) + " input(s)");
  return {ex.input_names()[i], arg};
}

Tensor read_input(const std::string& file, const data::Preprocess& pp, size_t model_rank) {
  if (data::is_image_path(file)) return data::load_preprocessed(file, pp);
  Tensor t = data::read_npy(file, /*to_float=*/true);
  if (model_rank > 0 && t.rank() + 1 == model_rank) {  // one sample: add the batch dim
    Shape s = t.shape();
    s.insert(s.begin(), 1);
    t = t.reshaped(s);
  }
  return t;
}

}  // namespace

int run_run(const RunOptions& o) {
  if (o.output.empty() && o.outputs_dir.empty() && !o.json)
    throw InputError("nothing to write: give -o FILE.npy, --outputs-dir DIR or --json");
  const Model model = load_model(o.model);
  ExecutorOptions eo;
  eo.threads = o.data.threads;
  const auto named = [&](const std::string& what, auto&& f) {  // "<model>: [<what>: ]<problem>"
    try {
      return f();
    } catch (const InputError& e) {
      throw InputError(o.model + ": " + (what.empty() ? "" : what + ": ") + e.what());
    }
  };
  const auto exp = named("", [&] { return std::make_unique<Executor>(model, eo); });
  Executor& ex = *exp;
  const data::Preprocess pp = data::Preprocess::from_args(o.data.preprocess_args);
  if (o.inputs.size() != ex.input_names().size())
    throw InputError(o.model + ": the model has " + std::to_string(ex.input_names().size()) +
                     " input(s) but " + std::to_string(o.inputs.size()) + " --input given");
  std::map<std::string, Tensor> feeds;
  std::string files;  // the input files, as errors of the model name them
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    auto [name, file] = split_input(o.inputs[i], ex, i);
    files += (files.empty() ? "" : ", ") + file;
    if (!o.output.empty() && same_file(file, o.output))
      throw InputError(o.output + ": -o names an input file; refused");
    const ValueInfo* vi = model.graph.find_value_info(name);
    feeds[name] = read_input(file, pp, vi && vi->has_shape ? vi->dims.size() : 0);
  }
  const auto outs = named(files, [&] { return ex.run(feeds); });
  nlohmann::ordered_json j = {{"schema", "repq.run/1"}, {"outputs", nlohmann::ordered_json::array()}};
  for (const auto& name : ex.output_names()) {
    const Tensor& t = outs.at(name);
    std::string file;
    if (!o.output.empty() && name == ex.output_names()[0]) file = o.output;
    if (!o.outputs_dir.empty()) {
      std::filesystem::create_directories(o.outputs_dir);
      std::string safe = name;
      for (auto& c : safe)
        if (c == '/' || c == '\\') c = '_';
      file = (std::filesystem::path(o.outputs_dir) / (safe + ".npy")).string();
    }
    if (!file.empty()) {
      data::write_npy(file, t.dtype() == DType::kFloat32 || t.dtype() == DType::kUInt8
                                ? t : t.cast(DType::kFloat32));
      spdlog::info("output '{}' {}{} -> {}", name, dtype_name(t.dtype()), shape_str(t.shape()), file);
    }
    j["outputs"].push_back({{"name", name},
                            {"dtype", dtype_name(t.dtype())},
                            {"shape", t.shape()},
                            {"file", file.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(file)}});
  }
  // Output names and paths need not be UTF-8: invalid bytes become U+FFFD.
  if (o.json)
    std::printf("%s\n",
                j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  return 0;
}

}  // namespace repq::cli
