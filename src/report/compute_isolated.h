// Every row's isolated run (compute.h: the row alone on its fake-quantized float input, with
// int8-rounded weights and int32-rounded bias) as ONE model, so that one executor runs them all
// per batch and recycles its buffers from row to row (44 separate executors would each keep
// their own, first-touched anew).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "repq/report/compute.h"

namespace repq::report {

struct IsolatedModel {
  Model model;
  std::vector<std::string> inputs;        // graph inputs: the float row inputs, fed from the float pass
  std::map<std::string, size_t> out_row;  // value holding a row's isolated output -> row index
  std::map<std::string, std::string> fq_input;  // FakeQuantizeLinear output -> the row input it reads
};

// Row r's nodes and constants are renamed under "isolated/<r>/"; they read the row input
// fake-quantized by a FakeQuantizeLinear node (one per input, the plan's scale, zero point and
// type, bit-identical to the report's fake_quant), or the float input itself when the plan has
// no parameters for it. The graph outputs are the Shapes of the row outputs, so that the row
// outputs stay intermediate values (read with an observer; their buffers are recycled). Rows
// with `skip` set, or whose nodes read a non-constant value other than the row input, are left
// out (the latter with a warning).
IsolatedModel isolated_model(const Model& fused, const std::vector<RowSpec>& rows,
                             const quant::QuantPlan& plan);

}  // namespace repq::report
