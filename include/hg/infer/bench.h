#pragma once
/// `hourglass bench` as a library call: the forward latency (batch 1) and throughput (batch B)
/// of LibTorch and of the engine's modes on one model of either family, measured in turns, each
/// mode's per-step profile, and (Newell's network) the end-to-end time of the predictor on one
/// person.
///
///     hg::infer::BenchOptions options;
///     options.modes = {"f32-direct", "auto-auto"};
///     options.progress = [](const std::string& text) { std::cout << text << std::flush; };
///     const auto result = hg::infer::run_bench(options);
///     std::cout << hg::infer::format_bench_summary(result);

#include "hg/engine/engine.h"
#include "hg/model/hourglass.h"
#include "hg/model/large_hourglass.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace hg::infer {

/// The engine modes run_bench measures, named "precision-algorithm" (f32-direct, bf16-auto,
/// auto-winograd, …), sorted by name.
std::vector<std::string> bench_mode_names();

/// What run_bench measures.
struct BenchOptions {
  /// A checkpoint of either family (io::load_model, io::load_large_hourglass); "": random
  /// weights of `arch`, else of `architecture`.
  std::string weights;
  model::StackedHourglassOptions architecture;  ///< Newell's network without weights
  /// A CornerNet/CenterNet preset ("hourglass104", "hourglass52") with random weights and the
  /// heads `heads` (model::large_hourglass_preset), instead of `architecture`.
  std::string arch;
  std::string heads;
  int64_t size = 256;  ///< input side in pixels (a multiple of the model's input_multiple())
  int64_t batch = 8;   ///< batch of the throughput measurement (1: latency only)
  int runs = 5;        ///< timed runs per configuration (the median is reported)
  /// Engine modes to measure (bench_mode_names); bf16 ones are skipped on CPUs without bf16.
  std::vector<std::string> modes{"f32-direct", "f32-auto", "bf16-direct", "bf16-auto", "auto-auto"};
  bool torch = true;     ///< also measure LibTorch (eager)
  bool profile = false;  ///< also time every step of each engine mode at batch 1
  int threads = 0;       ///< the engine's threads (EngineOptions::threads; 0 = every core)
  /// Gets each part of the report as text (whole lines) as soon as it is known: the model line,
  /// skipped modes, what auto modes chose, each batch's measurements, the profiles.
  std::function<void(const std::string&)> progress;
};

/// One measured configuration: milliseconds per forward pass of `batch` images, every run.
struct BenchMeasurement {
  std::string backend;  ///< "torch", "engine" or "predict" (end to end, one person)
  std::string mode;     ///< "eager", an engine mode, or the predictor's ("auto-auto +flip")
  int64_t batch = 1;
  std::vector<double> runs_ms;
  std::string note;  ///< what else there is to say, e.g. the engine plan's summary
  double median_ms() const;
  double ms_per_image() const { return median_ms() / static_cast<double>(batch); }
};

/// Everything run_bench measured.
struct BenchResult {
  std::string model;          ///< the architecture, as its options' describe() says
  nlohmann::json model_json;  ///< the architecture, as checkpoints record it
  int64_t size = 0;           ///< input side, pixels
  int threads = 0;            ///< LibTorch's threads during the runs
  double gmac_per_image = 0;  ///< the network's multiply-adds per image, 1e9
  int runs = 0;
  std::vector<int64_t> batches;  ///< 1, then the throughput batch when above 1
  /// In the order measured: per batch LibTorch then each mode, then the predictor.
  std::vector<BenchMeasurement> measurements;
  bool profiled = false;  ///< profiles were asked for
  /// Per engine mode: the time of each kind of step at batch 1 (Engine::profile), slowest first.
  std::map<std::string, std::vector<engine::StepProfile>> profiles;
  double peak_rss_mb = 0;  ///< the process's peak resident memory after the runs, MB

  /// GFLOP/s of a measurement (2 FLOP per multiply-add).
  double gflops(const BenchMeasurement& m) const;
  /// The engine measurement of `batch` with the least time per image; null when there is none.
  const BenchMeasurement* fastest(int64_t batch) const;
};

/// Builds the model and every backend, runs them in turns and, for Newell's network, the
/// predictor last (its engine takes the weights over). Throws naming the key (`size`, `modes`,
/// `arch`) or the file at fault.
BenchResult run_bench(const BenchOptions& options);

/// The summary `hourglass bench` prints after the measurements: per batch each configuration's
/// ms/image, the LibTorch/engine ratios, the fastest mode, how far the default mode is from it,
/// and the peak memory.
std::string format_bench_summary(const BenchResult& result);

/// The result as `hourglass bench --json` writes it: "model" (architecture), "size", "threads",
/// "gmac_per_image", "runs", "results" (per batch each measurement, then the fastest engine
/// mode), "profile" (when profiled: {mode: [{step, count, ms, gflops}]}) and "peak_rss_mb".
nlohmann::json bench_to_json(const BenchResult& result);

}  // namespace hg::infer
