#include "hg/serve/metrics.h"

#include <algorithm>
#include <sstream>

namespace hg::serve {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[static_cast<size_t>(at)];
  sum_ += value;
  ++count_;
}

std::string Histogram::text(const std::string& name) const {
  std::ostringstream out;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out << name << "_bucket{le=\"" << bounds_[i] << "\"} " << cumulative << "\n";
  }
  out << name << "_bucket{le=\"+Inf\"} " << count_ << "\n"
      << name << "_sum " << sum_ << "\n"
      << name << "_count " << count_ << "\n";
  return out.str();
}

Metrics::Metrics()
    : latency_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}),
      batch_({1, 2, 4, 8, 16, 32, 64}),
      network_({0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}) {}

void Metrics::count_request(const std::string& path, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{path, status}];
}

void Metrics::observe_latency(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  latency_.observe(seconds);
}

void Metrics::observe_batch(int crops, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  batch_.observe(crops);
  network_.observe(seconds);
}

void Metrics::set_queue_depth(int depth) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_depth_ = depth;
}

std::string Metrics::prometheus() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  out << "# HELP hg_requests_total HTTP requests answered, by path and status.\n"
      << "# TYPE hg_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out << "hg_requests_total{path=\"" << key.first << "\",status=\"" << key.second << "\"} " << n
        << "\n";
  out << "# HELP hg_pose_latency_seconds POST /v1/pose time from its body to its answer.\n"
      << "# TYPE hg_pose_latency_seconds histogram\n"
      << latency_.text("hg_pose_latency_seconds")
      << "# HELP hg_batch_crops Crops per network call.\n"
      << "# TYPE hg_batch_crops histogram\n"
      << batch_.text("hg_batch_crops")
      << "# HELP hg_network_seconds Seconds per network call (its crops in, their joints out).\n"
      << "# TYPE hg_network_seconds histogram\n"
      << network_.text("hg_network_seconds")
      << "# HELP hg_queue_depth Requests waiting for the network.\n"
      << "# TYPE hg_queue_depth gauge\n"
      << "hg_queue_depth " << queue_depth_ << "\n";
  return out.str();
}

}  // namespace hg::serve
