#include "hg/serve/batcher.h"

#include <torch/torch.h>

#include <chrono>

namespace hg::serve {

Batcher::Batcher(infer::Predictor predictor, BatcherOptions options, Metrics* metrics)
    : with_flip_(predictor.with_flip(true)),
      without_flip_(predictor.with_flip(false)),
      options_(options),
      metrics_(metrics) {
  TORCH_CHECK(options_.max_batch >= 1, "max_batch must be >= 1, got ", options_.max_batch);
  TORCH_CHECK(options_.max_wait_ms >= 0, "max_wait_ms must be >= 0, got ", options_.max_wait_ms);
  TORCH_CHECK(options_.max_queue >= 1, "max_queue must be >= 1, got ", options_.max_queue);
  TORCH_CHECK(options_.max_arrival_wait_ms >= 0, "max_arrival_wait_ms must be >= 0, got ",
              options_.max_arrival_wait_ms);
}

Batcher::Arrival::Arrival(Batcher* batcher) : batcher_(batcher) {
  std::lock_guard<std::mutex> lock(batcher_->mutex_);
  ++batcher_->arriving_;
}

Batcher::Arrival::Arrival(Arrival&& other) noexcept : batcher_(other.batcher_) {
  other.batcher_ = nullptr;
}

Batcher::Arrival::~Arrival() {
  if (!batcher_) return;
  {
    std::lock_guard<std::mutex> lock(batcher_->mutex_);
    --batcher_->arriving_;
  }
  batcher_->wake_.notify_one();
}

Batcher::Arrival Batcher::arriving() {
  return Arrival(this);
}

std::optional<std::future<at::Tensor>> Batcher::submit(at::Tensor input,
                                                       std::vector<data::CropParams> crops,
                                                       bool flip) {
  Job job{std::move(input), std::move(crops), flip, {}};
  auto future = job.result.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || static_cast<int>(queue_.size()) >= options_.max_queue) return std::nullopt;
    queue_.push_back(std::move(job));
    if (metrics_) metrics_->set_queue_depth(static_cast<int>(queue_.size()));
  }
  wake_.notify_one();
  return future;
}

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
}

void Batcher::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to run
    // Wait from the first request's arrival for more crops, unless a batch is full already; then
    // longer for requests already being decoded. Without the second wait, a batch that left with
    // fewer crops sends its clients back together, and the short batches persist under load.
    const auto first = std::chrono::steady_clock::now();
    const auto queued_crops = [&] {
      size_t n = 0;
      for (const auto& j : queue_) n += j.crops.size();
      return n;
    };
    const auto full = [&] {
      return stopping_ || queued_crops() >= static_cast<size_t>(options_.max_batch);
    };
    wake_.wait_until(lock, first + std::chrono::milliseconds(options_.max_wait_ms), full);
    wake_.wait_until(lock, first + std::chrono::milliseconds(options_.max_arrival_wait_ms),
                     [&] { return full() || arriving_ == 0; });
    std::vector<Job> flipped, plain;
    size_t taken = 0;
    while (!queue_.empty() && (taken == 0 || taken + queue_.front().crops.size() <=
                                                 static_cast<size_t>(options_.max_batch))) {
      taken += queue_.front().crops.size();
      (queue_.front().flip ? flipped : plain).push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    if (metrics_) metrics_->set_queue_depth(static_cast<int>(queue_.size()));
    lock.unlock();
    run(flipped, true);
    run(plain, false);
    lock.lock();
  }
}

void Batcher::run(std::vector<Job>& jobs, bool flip) {
  if (jobs.empty()) return;
  std::vector<at::Tensor> inputs;
  std::vector<data::CropParams> crops;
  for (const auto& j : jobs) {
    inputs.push_back(j.input);
    crops.insert(crops.end(), j.crops.begin(), j.crops.end());
  }
  try {
    const auto start = std::chrono::steady_clock::now();
    const auto joints =
        (flip ? with_flip_ : without_flip_).predict_crops(torch::cat(inputs), crops);
    if (metrics_)
      metrics_->observe_batch(
          static_cast<int>(crops.size()),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    int64_t first = 0;
    for (auto& j : jobs) {
      const auto n = static_cast<int64_t>(j.crops.size());
      j.result.set_value(joints.slice(0, first, first + n).clone());
      first += n;
    }
  } catch (...) {
    for (auto& j : jobs) j.result.set_exception(std::current_exception());
  }
}

}  // namespace hg::serve
