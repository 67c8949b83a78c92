#include "hg/io/export_pytorch.h"

#include "hg/io/torch_file.h"
#include "state_keys.h"

#include <torch/torch.h>

#include <algorithm>
#include <sstream>
#include <vector>

namespace hg::io {
namespace {

// The key mappings below are the inverse of import_pytorch.cpp's; both walk the native names.

std::string join(const Parts& p, size_t from) {
  std::string s;
  for (size_t i = from; i < p.size(); ++i) s += (s.empty() ? "" : ".") + p[i];
  return s;
}

[[noreturn]] void unmapped(const std::string& key, CheckpointFormat format) {
  TORCH_CHECK(false, "cannot export to ", format_name(format), ": no ", format_name(format),
              " name for the tensor '", key, "'");
}

// ---- posenet: residual bnK.X, convK.conv.X, skip_layer.conv.X ----------------------------------

std::string posenet_residual(const Parts& p, size_t i) {
  const std::string rest = join(p, i + 1);
  if (p[i] == "skip") return "skip_layer.conv." + rest;
  if (p[i].rfind("conv", 0) == 0) return p[i] + ".conv." + rest;
  return p[i] + "." + rest;
}

// Native hourglass keys from p[i] on: {up1,low1,low3}.0.R, low2.<hourglass> or low2.0.R.
std::string posenet_hourglass(const Parts& p, size_t i) {
  if (p[i] == "low2" && !is_index(p[i + 1])) return "low2." + posenet_hourglass(p, i + 1);
  return p[i] + "." + posenet_residual(p, i + 2);
}

std::string posenet_key(const std::string& key) {
  const Parts p = split(key);
  const std::string& m = p[0];
  if (m == "pre_conv" || m == "pre_bn") return "pre.0." + m.substr(4) + "." + p[1];
  if (m == "pre_res1") return "pre.1." + posenet_residual(p, 1);
  if (m == "pre_res2") return "pre.3." + posenet_residual(p, 1);
  if (m == "pre_res3") return "pre.4." + posenet_residual(p, 1);
  const std::string& s = p[1];
  if (m == "hourglasses") return "hgs." + s + ".0." + posenet_hourglass(p, 2);
  if (m == "res") return "features." + s + ".0." + posenet_residual(p, 3);
  if (m == "fc_conv" || m == "fc_bn") return "features." + s + ".1." + m.substr(3) + "." + p[2];
  if (m == "score") return "outs." + s + ".conv." + p[2];
  if (m == "merge_features" || m == "merge_preds") return m + "." + s + ".conv.conv." + p[2];
  unmapped(key, CheckpointFormat::kPoseNet);
}

// ---- bearpaw: residual bnK.X, convK.X, downsample.0.X; hourglass hg.S.hg.LEVEL.BRANCH.BLOCK ----

std::string bearpaw_residual(const Parts& p, size_t i) {
  return (p[i] == "skip" ? "downsample.0." : p[i] + ".") + join(p, i + 1);
}

std::string bearpaw_key(const std::string& key, int64_t depth) {
  const Parts p = split(key);
  const std::string& m = p[0];
  if (m == "pre_conv") return "conv1." + p[1];
  if (m == "pre_bn") return "bn1." + p[1];
  if (m.rfind("pre_res", 0) == 0) return "layer" + m.substr(7) + ".0." + bearpaw_residual(p, 1);
  const std::string& s = p[1];
  if (m == "hourglasses") {
    // Each "low2" that leads to a deeper hourglass goes one level down; level 0 is the lowest,
    // whose own residuals (branch 3) are the native lowest "low2.B".
    size_t i = 2;
    while (p[i] == "low2" && !is_index(p[i + 1])) ++i;
    const int64_t level = depth - 1 - static_cast<int64_t>(i - 2);
    const std::string branch = p[i] == "up1"    ? "0"
                               : p[i] == "low1" ? "1"
                               : p[i] == "low3" ? "2"
                                                : "3";
    return "hg." + s + ".hg." + std::to_string(level) + "." + branch + "." + p[i + 1] + "." +
           bearpaw_residual(p, i + 2);
  }
  if (m == "res") return "res." + s + "." + p[2] + "." + bearpaw_residual(p, 3);
  if (m == "fc_conv") return "fc." + s + ".0." + p[2];
  if (m == "fc_bn") return "fc." + s + ".1." + p[2];
  if (m == "score") return "score." + s + "." + p[2];
  if (m == "merge_features") return "fc_." + s + "." + p[2];
  if (m == "merge_preds") return "score_." + s + "." + p[2];
  unmapped(key, CheckpointFormat::kBearpaw);
}

void require(bool ok, CheckpointFormat format, const std::string& what, const char* option,
             int64_t value) {
  TORCH_CHECK(ok, "cannot export to ", format_name(format), ": ", what, "; this model has ", option,
              " = ", value);
}

}  // namespace

void check_exportable(const model::StackedHourglassOptions& o, CheckpointFormat format) {
  TORCH_CHECK(format == CheckpointFormat::kPoseNet || format == CheckpointFormat::kBearpaw,
              "cannot export to ", format_name(format), ": not a PyTorch implementation's format");
  const std::string impl = format == CheckpointFormat::kPoseNet ? "PoseNet" : "HourglassNet";
  require(o.depth() == 4, format, impl + " builds depth-4 hourglasses", "depth", o.depth());
  // posenet: Residual(64, 128), Residual(128, 128); bearpaw: layer1 64→128, layer2 128→256.
  const int64_t stem2 = format == CheckpointFormat::kPoseNet ? 128 : 256;
  const std::string stem = impl + "'s stem is 64-128-" + std::to_string(stem2) + "-F";
  require(o.stem1() == 128, format, stem, "stem1", o.stem1());
  require(o.stem2() == stem2, format, stem, "stem2", o.stem2());
  if (format == CheckpointFormat::kPoseNet)
    require(o.residuals() == 1, format, "PoseNet has one residual per hourglass block", "residuals",
            o.residuals());
}

std::map<std::string, at::Tensor> foreign_state_dict(model::StackedHourglassImpl& model,
                                                     CheckpointFormat format) {
  check_exportable(model.options, format);
  const bool posenet = format == CheckpointFormat::kPoseNet;
  const auto native = state_of(model);
  std::map<std::string, at::Tensor> out;
  for (const auto& [key, t] : native)
    out.emplace(posenet ? posenet_key(key) : bearpaw_key(key, model.options.depth()), t);
  if (posenet) {
    // PoseNet's Residual always has a skip_layer, used only where the widths differ.
    const std::string conv1 = "conv1.weight";
    for (const auto& [key, w1] : native) {
      if (key.size() < conv1.size() || key.compare(key.size() - conv1.size(), conv1.size(), conv1))
        continue;
      const std::string prefix = key.substr(0, key.size() - conv1.size());
      if (native.count(prefix + "skip.weight")) continue;
      const int64_t in = w1.size(1), width = native.at(prefix + "conv3.weight").size(0);
      out.emplace(posenet_key(prefix + "skip.weight"), torch::zeros({width, in, 1, 1}));
      out.emplace(posenet_key(prefix + "skip.bias"), torch::zeros({width}));
    }
  }
  return out;
}

void export_pytorch(const std::string& path, model::StackedHourglassImpl& model,
                    CheckpointFormat format) {
  write_tensor_dict(path, foreign_state_dict(model, format));
}

}  // namespace hg::io
