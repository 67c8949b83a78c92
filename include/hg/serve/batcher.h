#pragma once
/// One queue in front of one predictor: requests from many HTTP threads submit their crops, and
/// one worker thread (the only one touching the predictor, which is not thread-safe) runs them
/// in batches of up to `max_batch` crops gathered across requests.

#include "hg/infer/predictor.h"
#include "hg/serve/metrics.h"

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace hg::serve {

/// Batching settings.
struct BatcherOptions {
  int max_batch = 8;    ///< crops per network call
  int max_wait_ms = 5;  ///< the oldest request waits at most this long for a batch to fill
  int max_queue = 64;   ///< requests waiting; submit refuses more
};

class Batcher {
 public:
  /// Starts the worker. `metrics` (may be null) receives batch sizes and the queue depth.
  Batcher(infer::Predictor predictor, BatcherOptions options, Metrics* metrics);
  /// stop().
  ~Batcher();

  /// Queues one request: `input` N×3×R×R (Predictor::crops) of the crops `crops`, with the flip
  /// test or not. The future gives N×S×J×3 joints (Predictor::predict_crops) or the network's
  /// exception. Returns nullopt when max_queue requests are already waiting or after stop().
  std::optional<std::future<at::Tensor>> submit(at::Tensor input,
                                                std::vector<data::CropParams> crops, bool flip);

  /// Runs what is queued, then ends the worker. Later submits are refused.
  void stop();

 private:
  struct Job {
    at::Tensor input;
    std::vector<data::CropParams> crops;
    bool flip = false;
    std::promise<at::Tensor> result;
  };
  void loop();
  void run(std::vector<Job>& jobs, bool flip);

  infer::Predictor with_flip_, without_flip_;
  BatcherOptions options_;
  Metrics* metrics_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace hg::serve
