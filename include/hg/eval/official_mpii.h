#pragma once
/// The ground truth of the official MPII evaluation, read from its MATLAB file
/// (`gt_valid.mat` of the official code and pytorch-pose, here `gt_valid_official.mat`):
/// `pos_gt_src` J×2×N, `jnt_missing` J×N, `headboxes_src` 2×2×N.
///
/// Why it matters: the original code's `valid.h5` holds the same people in the same order, but
/// rounds the upper neck and head top to whole pixels (the official file keeps sub-pixel values)
/// and differs on a dozen joints (the official file has some coordinates at 0, still counted as
/// present). Scoring against this file reproduces the official numbers exactly.

#include "hg/eval/pck.h"

#include <string>

namespace hg::eval {

/// Truth as the official evaluation uses it: joints = pos_gt_src, present = !jnt_missing,
/// normalize = 0.6 × ‖headbox corner 2 − corner 1‖ (its SC_BIAS). Throws naming the file and the
/// variable when it is not a MATLAB v5 file holding those arrays.
Truth read_official_mpii_truth(const std::string& mat_path);

}  // namespace hg::eval
