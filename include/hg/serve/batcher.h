#pragma once
/// One queue in front of one predictor: requests from many HTTP threads submit their crops, and
/// one thread, the one in work() (the only one touching the predictor, which is not thread-safe),
/// runs them in batches of up to `max_batch` crops gathered across requests.

#include "hg/infer/predictor.h"
#include "hg/serve/metrics.h"

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <vector>

namespace hg::serve {

/// Batching settings.
struct BatcherOptions {
  int max_batch = 8;    ///< crops per network call
  int max_wait_ms = 5;  ///< the oldest request waits at most this long for a batch to fill
  /// ...or up to this long while requests announced by arriving() have yet to be submitted (so
  /// that under load batches stay full; a lone client never waits for it).
  int max_arrival_wait_ms = 50;
  int max_queue = 64;  ///< requests waiting; submit refuses more
};

class Batcher {
 public:
  /// Checks the options; runs nothing until work(). `metrics` (may be null) receives batch sizes,
  /// network times and the queue depth.
  Batcher(infer::Predictor predictor, BatcherOptions options, Metrics* metrics);

  /// A request that will submit soon (its body is being decoded): while any is alive, a batch
  /// that is not full waits for it up to max_arrival_wait_ms. Destroy it once the request has
  /// submitted, or failed.
  class Arrival {
   public:
    Arrival(Arrival&& other) noexcept;
    Arrival& operator=(Arrival&&) = delete;
    ~Arrival();

   private:
    friend class Batcher;
    explicit Arrival(Batcher* batcher);
    Batcher* batcher_;
  };
  /// Announces a request (see Arrival).
  Arrival arriving();

  /// Queues one request: `input` N×3×R×R (Predictor::crops) of the crops `crops`, with the flip
  /// test or not. The future gives N×S×J×3 joints (Predictor::predict_crops) or the network's
  /// exception. Returns nullopt when max_queue requests are already waiting or after stop().
  std::optional<std::future<at::Tensor>> submit(at::Tensor input,
                                                std::vector<data::CropParams> crops, bool flip);

  /// Runs the queued requests' batches on the calling thread until stop(), then what is still
  /// queued, then returns. One thread at a time.
  void work();

  /// Refuses later submits and makes work() return once the queue is empty. Safe from any thread.
  void stop();

 private:
  struct Job {
    at::Tensor input;
    std::vector<data::CropParams> crops;
    bool flip = false;
    std::promise<at::Tensor> result;
  };
  void run(std::vector<Job>& jobs, bool flip);

  infer::Predictor with_flip_, without_flip_;
  BatcherOptions options_;
  Metrics* metrics_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  int arriving_ = 0;  ///< Arrivals alive
};

}  // namespace hg::serve
