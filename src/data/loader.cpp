#include "hg/data/loader.h"

#include <torch/torch.h>
#include <opencv2/core.hpp>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <numeric>

namespace hg::data {

Loader::Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  TORCH_CHECK(dataset_ != nullptr, "Loader needs a dataset");
  TORCH_CHECK(options_.batch_size > 0, "batch size must be > 0, got ", options_.batch_size);
  TORCH_CHECK(options_.threads > 0, "loader threads must be > 0, got ", options_.threads);
  TORCH_CHECK(options_.prefetch > 0, "prefetch must be > 0, got ", options_.prefetch);
  TORCH_CHECK(options_.shards > 0 && options_.shard >= 0 && options_.shard < options_.shards &&
                  options_.batch_size % options_.shards == 0,
              "loader shard ", options_.shard, " of ", options_.shards,
              " does not divide batch size ", options_.batch_size);
  TORCH_CHECK(options_.sample.res > 0 && options_.sample.heatmap_side() > 0, "input resolution ",
              options_.sample.res, " gives no heatmap (need res >= 4)");
  // The workers are the parallelism; OpenCV's own pool would only oversubscribe the cores.
  cv::setNumThreads(1);
}

Loader::~Loader() {
  stop();
}

std::vector<size_t> Loader::epoch_order(int64_t epoch) const {
  std::vector<size_t> order(dataset_->size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (options_.shuffle) {
    // An explicit Fisher–Yates: std::shuffle's algorithm is implementation-defined, this order
    // must not be.
    auto rng = sample_rng(options_.seed, static_cast<uint64_t>(epoch), ~uint64_t{0});
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  }
  return order;
}

int64_t Loader::batches_per_epoch() const {
  const auto n = static_cast<int64_t>(dataset_->size());
  const int64_t b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

int64_t Loader::skipped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return skipped_;
}

void Loader::report_bad_image(const std::string& path, const std::string& what) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++skipped_;
  if (reported_.insert(path).second)
    std::cerr << "hourglass: warning: skipping a sample: " << what << "\n";
}

Batch Loader::build_batch(int64_t epoch, int64_t number) {
  // The workers read order_ (written only by start_epoch while no worker runs); any other epoch
  // is computed here.
  std::vector<size_t> other;
  if (epoch != epoch_) other = epoch_order(epoch);
  const std::vector<size_t>& order = epoch != epoch_ ? other : order_;
  const size_t part = static_cast<size_t>(options_.batch_size / options_.shards);
  const size_t begin = std::min(
      order.size(), static_cast<size_t>(number) * options_.batch_size + options_.shard * part);
  const size_t end = std::min(order.size(), begin + part);
  std::vector<Sample> samples;
  for (size_t k = begin; k < end; ++k) {
    auto rng = sample_rng(options_.seed, static_cast<uint64_t>(epoch), order[k]);
    const AugmentParams aug = sample_augment(options_.sample.augment, rng);
    try {
      samples.push_back(make_sample(*dataset_, order[k], options_.sample, aug));
    } catch (const ImageError& e) {
      report_bad_image(e.path(), e.what());
    }
  }
  const int64_t n = static_cast<int64_t>(samples.size());
  const int64_t r = options_.sample.res, h = options_.sample.heatmap_side();
  const int64_t j = dataset_->joints().size();
  Batch b;
  b.number = number;
  b.input = torch::empty({n, 3, r, r});
  b.target = torch::empty({n, j, h, h});
  b.weight = torch::empty({n, j});
  for (int64_t i = 0; i < n; ++i) {
    Sample& s = samples[static_cast<size_t>(i)];
    float* in = b.input[i].data_ptr<float>();
    std::vector<cv::Mat> planes;  // HWC → CHW by splitting straight into the tensor's planes
    for (int c = 0; c < 3; ++c) planes.emplace_back(int(r), int(r), CV_32F, in + c * r * r);
    cv::split(s.input, planes);
    float* t = b.target[i].data_ptr<float>();
    for (int64_t k = 0; k < j; ++k)
      std::memcpy(t + k * h * h, s.heatmaps[static_cast<size_t>(k)].ptr<float>(),
                  sizeof(float) * h * h);
    std::memcpy(b.weight[i].data_ptr<float>(), s.weight.data(), sizeof(float) * j);
    b.meta.push_back(std::move(s.meta));
  }
  return b;
}

void Loader::work() {
  for (;;) {
    int64_t number, epoch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      consumed_.wait(lock, [&] {
        return stopping_ || next_claim_ >= batches_per_epoch() ||
               next_claim_ < next_out_ + options_.prefetch;
      });
      if (stopping_ || next_claim_ >= batches_per_epoch()) return;
      number = next_claim_++;
      epoch = epoch_;
    }
    try {
      Batch b = build_batch(epoch, number);
      std::lock_guard<std::mutex> lock(mutex_);
      ready_[number] = std::move(b);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    produced_.notify_all();
  }
}

void Loader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  consumed_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  TORCH_CHECK(first_batch >= 0 && first_batch <= batches_per_epoch(), "first batch ", first_batch,
              " is outside the epoch's ", batches_per_epoch(), " batches");
  stop();
  std::lock_guard<std::mutex> lock(mutex_);
  stopping_ = false;
  error_ = nullptr;
  ready_.clear();
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  next_claim_ = next_out_ = first_batch;
  for (int i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { work(); });
}

bool Loader::next(Batch& batch) {
  TORCH_CHECK(epoch_ >= 0, "Loader::next called before start_epoch");
  for (;;) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (next_out_ >= batches_per_epoch()) return false;
    produced_.wait(lock, [&] { return error_ || ready_.count(next_out_) > 0; });
    if (error_) std::rethrow_exception(error_);
    auto node = ready_.extract(next_out_++);
    lock.unlock();
    consumed_.notify_all();
    if (node.mapped().meta.empty()) continue;  // every sample of it was skipped
    batch = std::move(node.mapped());
    return true;
  }
}

}  // namespace hg::data
