#include "hg/io/import_pytorch.h"
#include "hg/io/import_centernet.h"
#include "state_keys.h"

#include <torch/torch.h>

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

namespace hg::io {
namespace {

using State = std::map<std::string, at::Tensor>;

bool one_of(const std::string& s, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return s == n; });
}

bool is_bn(const std::string& s) {
  return one_of(s, {"bn1", "bn2", "bn3"});
}
bool is_conv(const std::string& s) {
  return one_of(s, {"conv1", "conv2", "conv3"});
}

// Tail of a key from `i` on, as long as it is exactly `count` parts.
std::optional<std::string> tail(const Parts& p, size_t i, size_t count) {
  if (p.size() != i + count) return std::nullopt;
  std::string s = p[i];
  for (size_t k = i + 1; k < p.size(); ++k) s += "." + p[k];
  return s;
}

std::optional<std::string> prefixed(const std::string& prefix, std::optional<std::string> rest) {
  if (!rest) return std::nullopt;
  return prefix + *rest;
}

const at::Tensor& need(const State& state, const std::string& key, const std::string& source,
                       const char* format) {
  auto it = state.find(key);
  TORCH_CHECK(it != state.end(), "cannot import ", source, ": the ", format, " checkpoint lacks '",
              key, "'; is the file complete?");
  return it->second;
}

// ---- posenet (princeton-vl/pytorch_stacked_hourglass) -------------------------------------------
// Residual: bnK.X, convK.conv.X, skip_layer.conv.X. Conv: conv.X, bn.X.

std::optional<std::string> posenet_residual(const Parts& p, size_t i) {
  if (p.size() == i + 2 && is_bn(p[i])) return tail(p, i, 2);
  if (p.size() == i + 3 && p[i + 1] == "conv") {
    if (is_conv(p[i])) return p[i] + "." + p[i + 2];
    if (p[i] == "skip_layer") return "skip." + p[i + 2];
  }
  return std::nullopt;
}

std::optional<std::string> posenet_hourglass(const Parts& p, size_t i) {
  if (p.size() <= i + 1) return std::nullopt;
  if (one_of(p[i], {"up1", "low1", "low3"}))
    return prefixed(p[i] + ".0.", posenet_residual(p, i + 1));
  if (p[i] != "low2") return std::nullopt;
  if (one_of(p[i + 1], {"up1", "low1", "low2", "low3"}))
    return prefixed("low2.", posenet_hourglass(p, i + 1));
  return prefixed("low2.0.", posenet_residual(p, i + 1));
}

std::optional<std::string> posenet_name(const Parts& p) {
  if (p.size() < 3) return std::nullopt;
  const std::string& s = p[1];
  if (p[0] == "pre") {
    if (s == "0" && p.size() == 4 && one_of(p[2], {"conv", "bn"}))
      return "pre_" + p[2] + "." + p[3];
    if (s == "1") return prefixed("pre_res1.", posenet_residual(p, 2));
    if (s == "3") return prefixed("pre_res2.", posenet_residual(p, 2));
    if (s == "4") return prefixed("pre_res3.", posenet_residual(p, 2));
    return std::nullopt;
  }
  if (!is_index(s)) return std::nullopt;
  if (p[0] == "hgs" && p[2] == "0")
    return prefixed("hourglasses." + s + ".", posenet_hourglass(p, 3));
  if (p[0] == "features" && p[2] == "0")
    return prefixed("res." + s + ".0.", posenet_residual(p, 3));
  if (p[0] == "features" && p[2] == "1" && p.size() == 5 && one_of(p[3], {"conv", "bn"}))
    return "fc_" + p[3] + "." + s + "." + p[4];
  if (p[0] == "outs" && p.size() == 4 && p[2] == "conv") return "score." + s + "." + p[3];
  // Merge wraps a Conv, which wraps the nn.Conv2d: merge_*.S.conv.conv.X
  if (one_of(p[0], {"merge_features", "merge_preds"}) && p.size() == 5 && p[2] == "conv" &&
      p[3] == "conv")
    return p[0] + "." + s + "." + p[4];
  return std::nullopt;
}

model::StackedHourglassOptions posenet_options(const State& state, const std::string& source) {
  const char* f = "posenet";
  const auto& out = need(state, "outs.0.conv.weight", source, f);
  int64_t depth = 0;
  for (std::string k = "hgs.0.0.low2."; state.count(k + "bn1.weight") == 0 && depth < 16;
       k += "low2.")
    ++depth;
  auto o = model::StackedHourglassOptions()
               .stacks(count_indexed(state, "hgs."))
               .features(out.size(1))
               .joints(out.size(0))
               .depth(depth + 1)
               .residuals(1)
               .stem1(need(state, "pre.1.conv3.conv.weight", source, f).size(0))
               .stem2(need(state, "pre.3.conv3.conv.weight", source, f).size(0));
  TORCH_CHECK(depth < 16, "cannot import ", source,
              ": the posenet checkpoint has no lowest hourglass level (no "
              "'hgs.0.0.low2...low2.bn1.weight')");
  const auto& low1 = need(state, "hgs.0.0.low1.conv3.conv.weight", source, f);
  TORCH_CHECK(low1.size(0) == o.features(), "cannot import ", source,
              ": the hourglass widens inside (posenet 'increase' > 0), which is not supported");
  return o;
}

// ---- bearpaw (pytorch-pose HourglassNet) --------------------------------------------------------
// Bottleneck: bnK.X, convK.X, downsample.0.X. Hourglass: hg.S.hg.LEVEL.BRANCH.BLOCK.*, where
// LEVEL 0 is the lowest and BRANCH 0 up1, 1 low1, 2 low3, 3 the lowest level's residuals.

std::optional<std::string> bearpaw_residual(const Parts& p, size_t i) {
  if (p.size() == i + 2 && (is_bn(p[i]) || is_conv(p[i]))) return tail(p, i, 2);
  if (p.size() == i + 3 && p[i] == "downsample" && p[i + 1] == "0") return "skip." + p[i + 2];
  return std::nullopt;
}

std::optional<std::string> bearpaw_name(const Parts& p, int64_t depth) {
  if (p.size() == 2 && p[0] == "conv1") return "pre_conv." + p[1];
  if (p.size() == 2 && p[0] == "bn1") return "pre_bn." + p[1];
  if (p.size() < 3) return std::nullopt;
  const std::string& s = p[1];
  if (one_of(p[0], {"layer1", "layer2", "layer3"}) && s == "0")
    return prefixed("pre_res" + p[0].substr(5) + ".", bearpaw_residual(p, 2));
  if (!is_index(s)) return std::nullopt;
  if (p[0] == "hg" && p.size() > 6 && p[2] == "hg" && is_index(p[3]) && is_index(p[4]) &&
      is_index(p[5])) {
    const int64_t level = std::stoll(p[3]), branch = std::stoll(p[4]);
    if (level >= depth || branch > 3 || (branch == 3 && level != 0)) return std::nullopt;
    std::string path = "hourglasses." + s + ".";
    for (int64_t l = depth - 1; l > level; --l) path += "low2.";
    static const char* kBranch[] = {"up1", "low1", "low3", "low2"};
    return prefixed(path + kBranch[branch] + "." + p[5] + ".", bearpaw_residual(p, 6));
  }
  if (p[0] == "res" && is_index(p[2]))
    return prefixed("res." + s + "." + p[2] + ".", bearpaw_residual(p, 3));
  if (p[0] == "fc" && p.size() == 4 && (p[2] == "0" || p[2] == "1"))
    return (p[2] == "0" ? "fc_conv." : "fc_bn.") + s + "." + p[3];
  if (p.size() == 3 && one_of(p[0], {"score", "fc_", "score_"})) {
    const std::string name = p[0] == "score" ? "score"
                             : p[0] == "fc_" ? "merge_features"
                                             : "merge_preds";
    return name + "." + s + "." + p[2];
  }
  return std::nullopt;
}

model::StackedHourglassOptions bearpaw_options(const State& state, const std::string& source) {
  const char* f = "bearpaw";
  const auto& score = need(state, "score.0.weight", source, f);
  return model::StackedHourglassOptions()
      .stacks(count_indexed(state, "hg."))
      .features(score.size(1))
      .joints(score.size(0))
      .depth(count_indexed(state, "hg.0.hg."))
      .residuals(count_indexed(state, "hg.0.hg.0.0."))
      .stem1(need(state, "layer1.0.conv3.weight", source, f).size(0))
      .stem2(need(state, "layer2.0.conv3.weight", source, f).size(0));
}

}  // namespace

ImportedState import_state_dict(const State& raw, const std::string& source) {
  const State state = without_prefixes(raw);

  ImportedState out;
  if (state.count("outs.0.conv.weight") || state.count("hgs.0.0.up1.bn1.weight")) {
    out.format = CheckpointFormat::kPoseNet;
    out.options = posenet_options(state, source);
  } else if (state.count("score.0.weight") || state.count("hg.0.hg.0.0.0.bn1.weight")) {
    out.format = CheckpointFormat::kBearpaw;
    out.options = bearpaw_options(state, source);
  } else {
    TORCH_CHECK(!is_centernet_state(state) && !is_mmpose_hourglass_state(state), "cannot import ",
                source, ": it holds a ",
                !is_centernet_state(state)                      ? "MMPose"
                : state.count("tl_cnvs.0.p1_conv1.conv.weight") ? "CornerNet"
                                                                : "CenterNet",
                " hourglass", kLargeFamilyElsewhere);
    std::string first = state.empty() ? "(none)" : state.begin()->first;
    TORCH_CHECK(false, "cannot import ", source,
                ": not a stacked hourglass state dict of a known implementation (native, posenet "
                "or bearpaw); its first key is '",
                first, "'");
  }
  try {
    out.options.validate();
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot import ", source, ": inferred architecture is invalid: ", e.msg());
  }

  for (const auto& [key, tensor] : state) {
    const auto parts = split(key);
    const auto name = out.format == CheckpointFormat::kPoseNet
                          ? posenet_name(parts)
                          : bearpaw_name(parts, out.options.depth());
    TORCH_CHECK(name.has_value(), "cannot import ", source, ": unexpected tensor '", key,
                "' for a ", format_name(out.format), " checkpoint");
    out.state.emplace(*name, tensor);
  }
  // posenet keeps a skip conv in every residual but uses it only where the widths differ.
  for (auto it = out.state.begin(); it != out.state.end();) {
    const auto at = it->first.rfind("skip.");
    const auto conv1 = out.state.find(it->first.substr(0, at) + "conv1.weight");
    const auto conv3 = out.state.find(it->first.substr(0, at) + "conv3.weight");
    const bool unused = at != std::string::npos && conv1 != out.state.end() &&
                        conv3 != out.state.end() && conv1->second.size(1) == conv3->second.size(0);
    it = unused ? out.state.erase(it) : std::next(it);
  }
  return out;
}

}  // namespace hg::io
