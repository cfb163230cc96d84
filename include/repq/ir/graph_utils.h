// What passes need: producer/consumer maps, topological order, checks, clean-ups, naming.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "repq/ir/graph.h"

namespace repq {

// Index of a graph's edges; rebuild it after changing the graph.
struct GraphIndex {
  explicit GraphIndex(const Graph& g);
  // value name -> index of the node producing it (absent for inputs/initializers).
  std::map<std::string, size_t, std::less<>> producer;
  // value name -> indices of nodes consuming it (once per node, in node order).
  std::map<std::string, std::vector<size_t>, std::less<>> consumers;
  std::set<std::string, std::less<>> graph_outputs;

  // Number of uses: consuming nodes plus 1 when it is a graph output.
  size_t use_count(std::string_view value) const;
};

// Node indices in a topological order (stable: file order where free). Throws InputError
// naming a node on a cycle.
std::vector<size_t> topo_order(const Graph& g);
// Reorders g.nodes topologically.
void topo_sort(Graph& g);

// Structural checks: unique node outputs, every input produced by a node, an initializer or
// a graph input, every graph output produced and listed once, no cycles, no node consuming
// its own output, an initializer named like a graph input (its default value) agreeing with
// the input's declared type and shape. Throws InputError with the offending node/value named.
void validate_graph(const Graph& g);

// Removes nodes whose outputs reach no graph output, then unused initializers and
// value_info. Returns the number of nodes removed.
size_t remove_dead_nodes(Graph& g);

// Unique names: returns `base` if unused in the graph (values, nodes, initializers),
// otherwise base_1, base_2, ...; remembers what it handed out.
class NameGen {
 public:
  explicit NameGen(const Graph& g);
  std::string make(const std::string& base);

 private:
  std::set<std::string, std::less<>> used_;
};

// Histogram of op types ("Conv" -> 12; non-default domains as "domain:Op").
std::map<std::string, size_t> op_histogram(const Graph& g);

}  // namespace repq
