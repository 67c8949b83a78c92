#pragma once
/// Running a network over a dataset and scoring every stack's predictions.

#include "hg/data/loader.h"

#include <ATen/Tensor.h>

#include <functional>
#include <vector>

namespace hg::eval {

/// A network: N×3×R×R input → N×S×J×(R/4)×(R/4) heatmaps (LibTorch model, engine, ...).
using Network = std::function<at::Tensor(const at::Tensor&)>;

/// Predictions of every stack for every sample the loader produced.
struct StackPredictions {
  /// One per stack: N×J×3 (x, y in image pixels, score), in the loader's sample order.
  std::vector<at::Tensor> joints;
  /// N×J×2 ground truth in image pixels, N×J present, N normalize (float64).
  at::Tensor truth, present, normalize;
  /// Dataset position of each row.
  std::vector<size_t> samples;
};

/// Runs `network` over one epoch of `loader` (which should not augment), decodes every stack's
/// heatmaps (flip-test averaged when `flip_perm` is not empty) and maps them back to the image.
/// `progress` (optional) is called with (done, total) after each batch.
StackPredictions predict_stacks(const Network& network, data::Loader& loader,
                                const std::vector<int>& flip_perm,
                                const std::function<void(int64_t, int64_t)>& progress = {});

/// normalized_errors of each stack's predictions (N×J each, NaN where absent).
std::vector<at::Tensor> stack_errors(const StackPredictions& predictions);

}  // namespace hg::eval
