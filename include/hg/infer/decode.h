#pragma once
/// From heatmaps to joint coordinates, as the original method decodes them.

#include "hg/data/transform.h"
#include "hg/runtime/names.h"

#include <ATen/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace hg::infer {

/// The peak of every heatmap, moved a quarter pixel toward the higher neighbour in x and in y
/// (the original code's refinement, applied, as there, only when the peak is not on the border).
/// heatmaps: ...×h×w float (any leading dimensions, e.g. N×S×J×h×w). Returns ...×3 float32:
/// x, y in heatmap pixels (the centre of pixel (i, j) at (i, j), the convention of
/// data::CropTransform) and the peak value as the joint's confidence.
at::Tensor decode_peaks(const at::Tensor& heatmaps);

/// DARK (Zhang et al., "Distribution-Aware Coordinate Representation for Human Pose Estimation",
/// CVPR 2020, as HRNet-DARK and MMPose decode): each heatmap is smoothed by a `kernel`×`kernel`
/// Gaussian (OpenCV's default sigma for that size, the map zero-padded by kernel/2 first) and
/// rescaled to its original maximum, its log taken (floored at 1e-10), and the integer peak
/// moved by the Newton step -H⁻¹∇ of that log, with central differences (two-pixel spacing for
/// the second derivatives), where the peak is at least two pixels from the border and H is
/// invertible. Same shapes, conventions and confidence (the original map's peak) as
/// decode_peaks.
at::Tensor decode_dark(const at::Tensor& heatmaps, int kernel = 11);

/// How heatmaps become coordinates.
enum class PeakDecoder {
  kQuarterOffset,  ///< decode_peaks: the original method's (the default)
  kDark,           ///< decode_dark with an 11×11 smoothing kernel
};

/// "quarter-offset", "dark".
const runtime::NameTable<PeakDecoder>& name_table(PeakDecoder);
/// The name of `decoder` in its table.
std::string decoder_name(PeakDecoder decoder);

/// decode_peaks or decode_dark, as `decoder` says.
at::Tensor decode(const at::Tensor& heatmaps, PeakDecoder decoder);

/// Flip-test averaging. `heatmaps` are the network's output for the crops, `mirrored` its output
/// for the same crops mirrored horizontally (both ...×J×h×w). The mirrored maps are flipped back
/// and their joints swapped (`flip_perm` = data::JointSet::flip_permutation()), with `shift`
/// moved one pixel right (column x takes column x - 1, column 0 keeps its value: the original
/// code's and HRNet's `shift_heatmap`), then averaged with `heatmaps`.
at::Tensor average_with_mirror(const at::Tensor& heatmaps, const at::Tensor& mirrored,
                               const std::vector<int>& flip_perm, bool shift = false);

/// Maps decoded peaks (…×J×3 in heatmap pixels of the crop `crop` at side `heatmap_side`) to
/// image pixels through the inverse crop transform; the third column (score) is kept.
at::Tensor peaks_to_image(const at::Tensor& peaks, const data::CropParams& crop, int heatmap_side);

}  // namespace hg::infer
