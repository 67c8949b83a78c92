#pragma once
/// The server's counters, written as Prometheus text (GET /metrics).

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace hg::serve {

/// A Prometheus histogram: counts of observations at most each bucket's upper bound.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  /// The `name_bucket{le=...}`, `name_sum` and `name_count` lines.
  std::string text(const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  ///< per bucket, not cumulative; one more for +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

/// Everything /metrics reports. Thread-safe.
class Metrics {
 public:
  Metrics();
  /// One answered request (any path, any status).
  void count_request(const std::string& path, int status);
  /// Seconds a POST /v1/pose took, from its body's arrival to its answer.
  void observe_latency(double seconds);
  /// One network call: its crops, and the seconds it took (crops in, joints out).
  void observe_batch(int crops, double seconds);
  /// Requests waiting for the network now.
  void set_queue_depth(int depth);
  /// The Prometheus text exposition of all of it.
  std::string prometheus() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  Histogram latency_, batch_, network_;
  int queue_depth_ = 0;
};

}  // namespace hg::serve
