#pragma once
/// Running the predictor over a dataset and scoring every stack's predictions.

#include "hg/data/dataset.h"
#include "hg/infer/predictor.h"

#include <ATen/Tensor.h>

#include <functional>
#include <memory>
#include <vector>

namespace hg::eval {

/// Predictions of every stack for every sample that could be read.
struct StackPredictions {
  /// One per stack: N×J×3 (x, y in image pixels, score), in dataset order.
  std::vector<at::Tensor> joints;
  /// N×J×2 ground truth in image pixels, N×J present, N normalize (float64).
  at::Tensor truth, present, normalize;
  /// Dataset position of each row.
  std::vector<size_t> samples;
};

/// How predict_dataset reads the dataset.
struct DatasetRunOptions {
  int64_t limit = 0;       ///< only the first `limit` samples (0 = all)
  int loader_threads = 1;  ///< threads decoding and cropping images ahead of the network
  /// Only part `shard` of `shards` contiguous, near-equal parts of the (limited) dataset: the
  /// ranks of a distributed job each score one; StackPredictions::samples stay positions in the
  /// whole dataset.
  int shards = 1;
  int shard = 0;
};

/// Runs `predictor` on every sample of `dataset` at its annotated crop (centre and scale, no
/// augmentation; images decoded in full), options().batch people per network call. Samples
/// whose image cannot be read are reported once on stderr and left out. `progress` (optional)
/// is called with (people done, people total) after each batch. Training validation, the demo
/// and `hourglass eval --weights` all score through here.
StackPredictions predict_dataset(const infer::Predictor& predictor,
                                 std::shared_ptr<const data::Dataset> dataset,
                                 const DatasetRunOptions& options = {},
                                 const std::function<void(int64_t, int64_t)>& progress = {});

/// normalized_errors of each stack's predictions (N×J each, NaN where absent).
std::vector<at::Tensor> stack_errors(const StackPredictions& predictions);

}  // namespace hg::eval
