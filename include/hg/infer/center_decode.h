#pragma once
/// CenterNet's decoding of its heads into detections (Zhou, Wang and Krähenbühl, "Objects as
/// Points", 2019): the heatmap's local maxima in 3×3 windows, the K highest over every class, and
/// the size, offset and keypoint heads read at those K centres. The values are those of
/// CenterNet's `ctdet_decode` and `multi_pose_decode` (src/lib/models/decode.py), which the
/// cross-check test compares against; coordinates are in output (heatmap) pixels, H/4×W/4.

#include "hg/model/large_hourglass.h"

#include <ATen/Tensor.h>

#include <cstdint>

namespace hg::infer {

/// Boxes of class-wise centre heatmaps. heat: N×C×H×W, after the sigmoid; wh: N×2×H×W (width,
/// height); reg: N×2×H×W sub-pixel offsets, or undefined (then +0.5). k ≤ H·W.
/// Returns N×k×6: x1, y1, x2, y2, score, class (as a float), highest score first.
at::Tensor ctdet_decode(const at::Tensor& heat, const at::Tensor& wh, const at::Tensor& reg,
                        int64_t k);

/// Boxes and J keypoints of people. heat, wh, reg as ctdet_decode; kps: N×2J×H×W, each joint's
/// offset from the centre; hm_hp: N×J×H×W joint heatmaps after the sigmoid, or undefined (then
/// the offsets alone); hp_offset: N×2×H×W joint sub-pixel offsets, or undefined. A regressed
/// joint snaps to the nearest heatmap peak of its joint that scores over 0.1, lies in the box and
/// within 0.3 of the box's longer side. Returns N×k×(6+2J): x1, y1, x2, y2, score, x and y of
/// each joint, class.
at::Tensor multi_pose_decode(const at::Tensor& heat, const at::Tensor& wh, const at::Tensor& kps,
                             const at::Tensor& reg, const at::Tensor& hm_hp,
                             const at::Tensor& hp_offset, int64_t k);

/// Whether decode_detections applies to a model: its heads include CenterNet's `hm` and `wh`.
bool has_detection_heads(const model::LargeHourglassOptions& options);
/// Throws, saying why, unless has_detection_heads(options): CornerNet's corner heads are not
/// decoded (corner pooling and grouping are outside this project), and other head sets lack `hm`
/// or `wh`.
void require_detection_heads(const model::LargeHourglassOptions& options);

/// The detections of a CenterNet model's last stack, as CenterNet's detectors compute them: the
/// sigmoid of `hm` (and of `hm_hp`), then multi_pose_decode when the heads include `hps`, else
/// ctdet_decode. heads: every head N×S×C×H×W (LargeHourglassImpl::forward). Throws when `hm` or
/// `wh` is missing (see require_detection_heads) or when k is not in 1..H·W.
at::Tensor decode_detections(const model::HeadOutputs& heads, int64_t k);

}  // namespace hg::infer
