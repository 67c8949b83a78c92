#pragma once
/// What a deployment of a model needs besides its weights to pre- and post-process: the joints
/// its heatmaps stand for, the input side and the pixel grid of its crops. Exports write it as
/// metadata (ONNX metadata_props, safetensors `__metadata__`).

#include "hg/data/dataset.h"
#include "hg/data/transform.h"

#include <nlohmann/json.hpp>

#include <cstdint>

namespace hg::io {

struct DeploymentInfo {
  data::JointSet joints;
  /// Side of the square network input in pixels.
  int64_t input_size = 256;
  data::PixelGrid grid = data::PixelGrid::kExact;
  /// The checkpoint's whole meta (infer::deployment_meta), written as metadata "meta" so that an
  /// export carries every field the native checkpoint has; null: not written.
  nlohmann::json meta;
};

}  // namespace hg::io
