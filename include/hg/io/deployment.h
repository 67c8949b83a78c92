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
};

/// "exact" or "original", as checkpoint meta's "pixel_grid".
std::string pixel_grid_name(data::PixelGrid grid);

/// {"name": ..., "names": [...], "flip_pairs": [[a, b], ...], "skeleton": [[a, b], ...]}.
nlohmann::json joint_set_to_json(const data::JointSet& joints);
/// The inverse of joint_set_to_json; throws naming `where` on a malformed or inconsistent set.
data::JointSet joint_set_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace hg::io
