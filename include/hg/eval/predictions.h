#pragma once
/// Prediction files of the original code: HDF5 with a dataset `preds`, one row per annotation in
/// annotation order, joints in image pixels.

#include <ATen/Tensor.h>

#include <string>

namespace hg::eval {

/// Reads `preds` (N×J×2, or N×S×J×2 with every stack) as N×S×J×2 float64 (S = 1 for N×J×2).
/// Throws naming the file when it is not HDF5, has no `preds` or another shape.
at::Tensor read_predictions_h5(const std::string& path);

/// Writes `preds` (N×J×2 or N×S×J×2, any floating type) as float64 to a new HDF5 file.
void write_predictions_h5(const std::string& path, const at::Tensor& preds);

}  // namespace hg::eval
