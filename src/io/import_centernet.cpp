#include "hg/io/import_centernet.h"

#include "load_state.h"
#include "state_keys.h"

#include <torch/torch.h>

namespace hg::io {
namespace {

using State = std::map<std::string, at::Tensor>;

const at::Tensor& need(const State& state, const std::string& key, const std::string& source) {
  const auto it = state.find(key);
  TORCH_CHECK(it != state.end(), "cannot import ", source, ": the CenterNet checkpoint lacks '",
              key, "'; is the file complete?");
  return it->second;
}

State without_prefixes(const State& raw) {
  State state;
  for (const auto& [k, v] : raw) state.emplace(strip_prefix(k), v);
  return state;
}

// Heads are the top-level names with a `NAME.0.1.weight` (the 1×1 conv of stack 0).
std::vector<model::HeadSpec> heads_of(const State& state) {
  static const std::set<std::string> kBody = {"pre", "kps", "cnvs", "inters", "inters_", "cnvs_"};
  std::vector<model::HeadSpec> heads;
  for (const auto& [key, t] : state) {
    const auto parts = split(key);
    if (parts.size() == 4 && parts[1] == "0" && parts[2] == "1" && parts[3] == "weight" &&
        !kBody.count(parts[0]) && t.dim() == 4)
      heads.push_back({parts[0], t.size(0)});
  }
  return heads;
}

}  // namespace

bool is_centernet_state(const State& state) {
  return state.count("pre.0.conv.weight") && state.count("kps.0.up1.0.conv1.weight");
}

model::LargeHourglassOptions centernet_options(const State& state, const std::string& source) {
  TORCH_CHECK(!state.count("tl_cnvs.0.p1_conv1.conv.weight"), "cannot import ", source,
              ": a CornerNet checkpoint (corner pooling modules "
              "tl_cnvs/br_cnvs); only CenterNet's hourglass checkpoints are supported");
  std::vector<int64_t> dims, modules;
  std::string level = "kps.0.";
  while (state.count(level + "up1.0.conv1.weight") && dims.size() <= 8) {
    dims.push_back(need(state, level + "up1.0.conv1.weight", source).size(0));
    modules.push_back(count_indexed(state, level + "up1."));
    level += "low2.";
  }
  dims.push_back(need(state, level + "0.conv1.weight", source).size(0));
  modules.push_back(count_indexed(state, level));
  auto o = model::LargeHourglassOptions()
               .levels(int64_t(dims.size()) - 1)
               .dims(dims)
               .modules(modules)
               .stacks(count_indexed(state, "kps."))
               .cnv_dim(need(state, "cnvs.0.conv.weight", source).size(0))
               .stem(need(state, "pre.0.conv.weight", source).size(0))
               .heads(heads_of(state));
  try {
    o.validate();
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot import ", source, ": inferred architecture is invalid: ", e.msg());
  }
  return o;
}

bool holds_centernet(const std::string& path) {
  try {
    const auto root = read_torch_file(path, TensorData::kDeferred);
    DeferredValues values;
    return is_centernet_state(
        without_prefixes(deferred_entries(foreign_state(*root, path), values)));
  } catch (const c10::Error&) {
    return false;
  }
}

LoadedLargeHourglass load_centernet(const std::string& path) {
  const auto root = read_torch_file(path, TensorData::kDeferred);
  DeferredValues values;
  const auto state = without_prefixes(deferred_entries(foreign_state(*root, path), values));
  TORCH_CHECK(is_centernet_state(state), "cannot import ", path,
              ": not a CenterNet hourglass checkpoint (it lacks pre.0.conv.weight or "
              "kps.0.up1.0.conv1.weight)");
  const auto options = centernet_options(state, path);
  check_declared_size(options.parameter_count(), options.describe(), state, path);
  LoadedLargeHourglass loaded{model::LargeHourglass(options), path};
  load_state_with(*loaded.model, options.describe(), state, path, read_deferred(values));
  loaded.model->eval();
  return loaded;
}

}  // namespace hg::io
