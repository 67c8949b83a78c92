#include "hg/io/import_centernet.h"

#include "state_keys.h"

#include <torch/torch.h>

namespace hg::io {
namespace {

using State = std::map<std::string, at::Tensor>;

const at::Tensor& need(const State& state, const std::string& key, const std::string& source) {
  const auto it = state.find(key);
  TORCH_CHECK(it != state.end(), "cannot import ", source, ": the checkpoint lacks '", key,
              "'; is the file complete?");
  return it->second;
}

// Heads are the top-level names with `NAME.0.1.weight` (CenterNet's style: the 1×1 conv of stack
// 0 after its 3×3) or `NAME.0.weight` (MMPose's: the 1×1 conv alone).
std::pair<std::vector<model::HeadSpec>, model::HeadStyle> heads_of(const State& state,
                                                                   const std::string& source) {
  static const std::set<std::string> kBody = {"pre",     "kps",   "cnvs",    "inters",
                                              "inters_", "cnvs_", "tl_cnvs", "br_cnvs"};
  std::vector<model::HeadSpec> centernet, mmpose;
  for (const auto& [key, t] : state) {
    const auto parts = split(key);
    // The size first: a key of the file may be empty, and split("") has no parts.
    if (parts.size() < 3 || kBody.count(parts[0]) || parts[1] != "0" || t.dim() != 4) continue;
    if (parts.size() == 4 && parts[2] == "1" && parts[3] == "weight")
      centernet.push_back({parts[0], t.size(0)});
    if (parts.size() == 3 && parts[2] == "weight") mmpose.push_back({parts[0], t.size(0)});
  }
  TORCH_CHECK(centernet.empty() || mmpose.empty(), "cannot import ", source, ": head '",
              mmpose.front().name, "' is a single 1×1 conv (MMPose's style) but head '",
              centernet.front().name,
              "' has a 3×3 conv first (CenterNet's); one file has one style");
  return {mmpose.empty() ? centernet : mmpose,
          mmpose.empty() ? model::HeadStyle::kCenterNet : model::HeadStyle::kMMPose};
}

// The project's name of an MMPose key, or "" when it has none.
std::string mmpose_name(const std::string& key) {
  static const std::vector<std::pair<std::string, std::string>> kPrefixes = {
      {"backbone.stem.1.0.", "pre.1."},
      {"backbone.stem.", "pre."},
      {"backbone.hourglass_modules.", "kps."},
      {"backbone.inters.", "inters."},
      {"backbone.out_convs.", "cnvs."},
      {"backbone.conv1x1s.", "inters_."},
      {"backbone.remap_convs.", "cnvs_."},
      {"head.multi_final_layers.", "heatmaps."},
      {"keypoint_head.multi_final_layers.", "heatmaps."}};
  for (const auto& [from, to] : kPrefixes) {
    if (key.rfind(from, 0) != 0) continue;
    auto parts = split(to + key.substr(from.size()));
    // ConvModule's conv and bn are CenterNet's Sequential of a conv ("0") and a BN ("1").
    if ((parts[0] == "inters_" || parts[0] == "cnvs_") && parts.size() == 4)
      parts[2] = parts[2] == "conv" ? "0" : parts[2] == "bn" ? "1" : parts[2];
    std::string name;
    for (const auto& p : parts)
      name += (name.empty() ? "" : ".") + (p == "downsample" ? "skip" : p);
    return name;
  }
  return "";
}

}  // namespace

bool is_centernet_state(const State& state) {
  return state.count("pre.0.conv.weight") && state.count("kps.0.up1.0.conv1.weight");
}

bool is_mmpose_hourglass_state(const State& state) {
  return state.count("backbone.stem.0.conv.weight") &&
         state.count("backbone.hourglass_modules.0.up1.0.conv1.weight");
}

State from_mmpose(const State& state, const std::string& source) {
  // MMPose's ResLayer always builds one block, so a one-stack HourglassNet holds an `inters.0`
  // that its forward never uses: only the first stacks - 1 are kept.
  const int64_t stacks = count_indexed(state, "backbone.hourglass_modules.");
  State out;
  for (const auto& [key, t] : state) {
    const auto parts = split(key);
    if (parts.size() > 2 && parts[1] == "inters" && is_index(parts[2]) && parts[2].size() <= 9 &&
        std::stoll(parts[2]) >= stacks - 1)
      continue;
    const auto name = mmpose_name(key);
    TORCH_CHECK(!name.empty(), "cannot import ", source, ": unexpected tensor '", key,
                "' for an MMPose HourglassNet (backbone.* and a CPMHead's multi_final_layers)");
    out.emplace(name, t);
  }
  return out;
}

model::LargeHourglassOptions large_hourglass_options(const State& state,
                                                     const std::string& source) {
  auto heads = heads_of(state, source);
  if (state.count("tl_cnvs.0.p1_conv1.conv.weight")) {
    // CornerNet's: its heads read the corner modules, which are kept but not run.
    TORCH_CHECK(heads.second == model::HeadStyle::kCenterNet, "cannot import ", source,
                ": a CornerNet checkpoint's heads have a 3×3 conv first, but head '",
                heads.first.front().name, "' is a single 1×1 conv");
    const auto width = need(state, "tl_cnvs.0.p1_conv1.conv.weight", source).size(0);
    TORCH_CHECK(width == model::kCornerPoolWidth, "cannot import ", source,
                ": tl_cnvs.0.p1_conv1.conv.weight has ", width,
                " maps; CornerNet's corner pooling "
                "has ",
                model::kCornerPoolWidth);
    heads.second = model::HeadStyle::kCornerNet;
  }
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
               .heads(heads.first)
               .head_style(heads.second);
  try {
    o.validate();
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot import ", source, ": inferred architecture is invalid: ", e.msg());
  }
  return o;
}

}  // namespace hg::io
