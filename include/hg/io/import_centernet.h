#pragma once
/// Import of the CornerNet/CenterNet hourglass family's checkpoints: CenterNet's
/// (xingyizhou/CenterNet, `large_hourglass.py`, whose names model::LargeHourglassImpl keeps),
/// CornerNet's (princeton-vl/CornerNet, `kp.py`: the same names, plus its corner modules, loaded
/// as model::HeadStyle::kCornerNet) and
/// MMPose's top-down HourglassNet with its CPMHead (open-mmlab/mmpose, `backbone.*`, `head.*` or
/// `keypoint_head.*`, renamed here). These files carry no configuration: the architecture
/// (levels, widths, residuals per block, stacks, cnv width, stem width, every head and its style)
/// is inferred from the tensors' names and shapes. Loading: io::load_large_hourglass.

#include "hg/model/large_hourglass.h"

#include <ATen/Tensor.h>

#include <map>
#include <string>

namespace hg::io {

/// Whether a state dict (prefixes `module.` removed) has CenterNet's (and CornerNet's) layout:
/// `pre.0.conv.weight` and `kps.0.up1.0.conv1.weight`.
bool is_centernet_state(const std::map<std::string, at::Tensor>& state);

/// Whether a state dict is MMPose's HourglassNet: `backbone.stem.0.conv.weight` and
/// `backbone.hourglass_modules.0.up1.0.conv1.weight`.
bool is_mmpose_hourglass_state(const std::map<std::string, at::Tensor>& state);

/// An MMPose HourglassNet state dict under this project's (CenterNet's) names: `backbone.stem` →
/// `pre`, `hourglass_modules` → `kps`, `out_convs` → `cnvs`, `conv1x1s` → `inters_`,
/// `remap_convs` → `cnvs_`, `downsample` → `skip`, and the CPMHead's `multi_final_layers` → the
/// head `heatmaps`. Throws, naming `source` and the key, for a tensor that has no place.
std::map<std::string, at::Tensor> from_mmpose(const std::map<std::string, at::Tensor>& state,
                                              const std::string& source);

/// The architecture of a state dict in this project's names (CenterNet's, or MMPose's renamed).
/// Heads are the top-level names with `NAME.0.1.weight` (CenterNet's style) or `NAME.0.weight`
/// (MMPose's); with CornerNet's corner modules (`tl_cnvs.0.p1_conv1.conv.weight`) the style is
/// HeadStyle::kCornerNet. Throws, naming `source` and the key, when a key the architecture needs
/// is missing, the heads mix both styles, or the inferred values are out of range.
model::LargeHourglassOptions large_hourglass_options(const std::map<std::string, at::Tensor>& state,
                                                     const std::string& source);

}  // namespace hg::io
