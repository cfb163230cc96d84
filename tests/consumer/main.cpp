// Loads a model given on the command line with the installed library and prints its node count.
#include <cstdio>
#include <exception>

#include "repq/ir/graph_utils.h"
#include "repq/ir/onnx_io.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  try {
    const repq::Model m = repq::load_model(argv[1]);
    std::printf("nodes=%zu opset=%lld\n", m.graph.nodes.size(), static_cast<long long>(m.opset()));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
