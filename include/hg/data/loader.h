#pragma once
/// A multi-threaded, prefetching batch loader: decode, crop, augment, draw targets, batch.
///
///     auto data = std::make_shared<hg::data::SyntheticDataset>(10000, /*seed=*/1);
///     hg::data::LoaderOptions o;
///     o.batch_size = 16;
///     o.sample.augment = hg::data::AugmentOptions::original();
///     hg::data::Loader loader(data, o);
///     for (int64_t epoch = 0; epoch < 10; ++epoch) {
///       loader.start_epoch(epoch);
///       hg::data::Batch b;
///       while (loader.next(b)) { /* b.input, b.target, b.weight, b.meta */ }
///     }
///
/// Determinism: the order of an epoch is a permutation drawn from (seed, epoch) and every sample's
/// augmentation from (seed, epoch, sample index), so batches are identical whatever the thread
/// count or timing. A sample whose image is missing or corrupt is reported once per path on
/// stderr, counted in skipped() and left out of its batch (which is then smaller).

#include "hg/data/dataset.h"
#include "hg/data/sample.h"

#include <ATen/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace hg::data {

/// Loader settings.
struct LoaderOptions {
  int batch_size = 16;
  int threads = 2;         ///< worker threads (each builds whole batches)
  int prefetch = 4;        ///< batches prepared ahead of the consumer
  bool shuffle = true;     ///< permute each epoch (else dataset order)
  bool drop_last = false;  ///< drop the final short batch
  uint64_t seed = 0;
  /// Data parallelism: yield only part `shard` of `shards` equal parts of every batch (its rows
  /// [shard·B/shards, (shard+1)·B/shards) for batch_size B), so that `shards` loaders together
  /// see exactly the batches of one. batch_size must be divisible by shards.
  int shards = 1;
  int shard = 0;
  SampleOptions sample;
};

/// One batch. N ≤ batch_size (smaller for the last batch or when samples were skipped).
struct Batch {
  at::Tensor input;              ///< N×3×R×R float32, RGB in [0, 1]
  at::Tensor target;             ///< N×J×H×H float32 heatmaps (H = heatmap side)
  at::Tensor weight;             ///< N×J float32, 1 = joint present and inside the crop
  std::vector<SampleMeta> meta;  ///< N, one per row
  int64_t number = 0;            ///< batch number within the epoch
};

/// See the file comment. Not copyable; one consumer thread.
class Loader {
 public:
  /// Sets OpenCV to one thread per call (the workers are the parallelism).
  Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// Starts producing the batches of `epoch` from batch `first_batch` on (stopping any epoch in
  /// progress); a resumed training run starts mid-epoch with the same batches it would have had.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  /// The next batch of the current epoch in order; false when the epoch is done. Rethrows any
  /// error other than a bad image.
  bool next(Batch& batch);
  /// Batches per epoch (before skips).
  int64_t batches_per_epoch() const;
  /// Samples skipped so far because of bad images (all epochs).
  int64_t skipped() const;
  /// The dataset read.
  const Dataset& dataset() const { return *dataset_; }
  /// The options given.
  const LoaderOptions& options() const { return options_; }

  /// Builds batch `number` of `epoch` on the calling thread (what the workers run). Skipped
  /// samples are reported through report_bad_image.
  Batch build_batch(int64_t epoch, int64_t number);
  /// The dataset positions of `epoch` in order.
  std::vector<size_t> epoch_order(int64_t epoch) const;

 private:
  void stop();
  void work();
  void report_bad_image(const std::string& path, const std::string& what);

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable produced_, consumed_;
  std::vector<std::thread> workers_;
  std::map<int64_t, Batch> ready_;
  std::vector<size_t> order_;
  int64_t epoch_ = -1, next_claim_ = 0, next_out_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
  std::set<std::string> reported_;
  int64_t skipped_ = 0;
};

}  // namespace hg::data
