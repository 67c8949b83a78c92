#include "hg/cli/cli.h"
#include "hg/engine/engine.h"
#include "hg/infer/predictor.h"
#include "hg/io/atomic_file.h"
#include "hg/io/checkpoint.h"

#include <sys/resource.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>

namespace hg::cli {
namespace {

/// One measured configuration: milliseconds per forward pass of `batch` images, every run.
struct Measurement {
  std::string backend, mode;
  int64_t batch = 1;
  std::vector<double> runs_ms;
  double median_ms() const {
    auto v = runs_ms;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  double ms_per_image() const { return median_ms() / batch; }
};

double elapsed_ms(const std::function<void()>& pass) {
  const auto start = std::chrono::steady_clock::now();
  pass();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // Linux reports KiB
}

/// Prints engine.profile's table for `mode` and returns it as JSON.
nlohmann::json print_profile(const std::string& mode, engine::Engine& engine, const at::Tensor& x,
                             int runs) {
  const auto steps = engine.profile(x, runs);
  double total = 0;
  for (const auto& p : steps) total += p.ms;
  std::printf("\nprofile of %s, batch %ld (mean of %d passes, %.2f ms in all):\n", mode.c_str(),
              long(x.size(0)), runs, total);
  std::printf("  %8s %6s %5s %8s  %s\n", "ms", "%", "steps", "GFLOP/s", "step");
  nlohmann::json j = nlohmann::json::array();
  for (const auto& p : steps) {
    const double rate = p.gflop > 0 ? p.gflop / (p.ms / 1e3) : 0;
    std::printf("  %8.3f %6.1f %5ld %8.0f  %s\n", p.ms, 100 * p.ms / total, long(p.count), rate,
                p.label.c_str());
    j.push_back({{"step", p.label}, {"count", p.count}, {"ms", p.ms}, {"gflops", rate}});
  }
  return j;
}

struct EngineMode {
  std::string name;
  engine::EngineOptions options;  // batch 1; the throughput run sets its batch
};

/// The modes --modes takes: "precision-algorithm".
std::map<std::string, EngineMode> engine_modes() {
  std::map<std::string, EngineMode> modes;
  for (auto p : {engine::Precision::kF32, engine::Precision::kBf16, engine::Precision::kAuto})
    for (auto a :
         {engine::Algorithm::kDirect, engine::Algorithm::kAuto, engine::Algorithm::kWinograd}) {
      EngineMode m;
      m.name = engine::precision_name(p) + "-" + engine::algorithm_name(a);
      m.options.precision = p;
      m.options.algorithm = a;
      modes[m.name] = m;
    }
  return modes;
}

}  // namespace

void add_bench_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string weights, json;
    int64_t size = 256, batch = 8;
    int runs = 5;
    bool no_torch = false, profile = false;
    std::vector<std::string> modes{"f32-direct", "f32-auto", "bf16-direct", "bf16-auto",
                                   "auto-auto"};
    model::StackedHourglassOptions options;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "bench",
      "forward latency (batch 1) and throughput of the engine's modes and of LibTorch, measured "
      "in turns");
  cmd->add_option("--weights,-w", args->weights, "a checkpoint (default: random weights)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--size", args->size, "input side in pixels")->capture_default_str();
  cmd->add_option("--batch", args->batch, "batch of the throughput measurement")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--runs", args->runs, "timed runs per configuration (the median is reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--no-torch", args->no_torch, "skip the LibTorch measurements");
  cmd->add_option("--modes", args->modes, "engine modes to measure (precision-algorithm)")
      ->capture_default_str()
      ->check(CLI::IsMember(engine_modes()));
  cmd->add_flag("--profile", args->profile,
                "also time every step of each engine mode at batch 1 and print the time per kind "
                "of step (slowest first)");
  cmd->add_option("--json", args->json, "also write the results to this JSON file");
  add_architecture_options(*cmd, args->options);
  cmd->callback([args, &global] {
    apply_threads(global);
    io::LoadedModel loaded;
    if (!args->weights.empty()) {
      loaded = io::load_model(args->weights);
    } else {
      loaded.model = model::StackedHourglass(args->options);
      loaded.model->eval();
      loaded.source = "random weights";
    }
    auto net = loaded.model;
    net->options.check_input_size(args->size, args->size, "--size");
    const double gmac = net->macs(args->size, args->size) / 1e9;
    const int threads = at::get_num_threads();
    std::printf("model: %s; input %ld×%ld; %.2f GMAC/image; %d threads; median of %d runs\n",
                net->options.describe().c_str(), long(args->size), long(args->size), gmac, threads,
                args->runs);

    std::vector<EngineMode> modes;
    const auto known = engine_modes();
    for (const auto& name : args->modes) {
      auto mode = known.at(name);
      mode.options.threads = global.threads;
      mode.options.height = mode.options.width = args->size;
      if (mode.options.precision == engine::Precision::kBf16 && !engine::bf16_supported())
        std::printf("%s skipped: this CPU lacks AVX512-BF16\n", name.c_str());
      else
        modes.push_back(mode);
    }
    std::vector<int64_t> batches = {1};
    if (args->batch > 1) batches.push_back(args->batch);
    std::vector<Measurement> results;
    nlohmann::json profiles;
    auto report = [&](const Measurement& r, const std::string& note) {
      std::printf("%-7s %-12s batch %-2ld %9.2f ms/image  %7.1f GFLOP/s%s\n", r.backend.c_str(),
                  r.mode.c_str(), long(r.batch), r.ms_per_image(),
                  2 * gmac / (r.ms_per_image() / 1e3), note.c_str());
      std::fflush(stdout);
      results.push_back(r);
    };
    // Per batch, every backend and mode is built first, then they run in turns, one pass each
    // per round: on a shared machine, load that comes and goes then slows all of them alike.
    for (const int64_t batch : batches) {
      const auto x = torch::rand({batch, 3, args->size, args->size});
      struct Contender {
        Measurement measurement;
        std::function<void()> pass;
        std::string note;
      };
      std::vector<Contender> contenders;
      std::vector<std::unique_ptr<engine::Engine>> engines;
      if (!args->no_torch) {
        contenders.push_back({{"torch", "eager", batch, {}},
                              [&] {
                                torch::InferenceMode guard;
                                net->forward(x);
                              },
                              ""});
      }
      for (const auto& mode : modes) {
        auto o = mode.options;
        o.batch = batch;
        engines.push_back(std::make_unique<engine::Engine>(engine::Engine::build(*net, o)));
        auto* e = engines.back().get();
        const auto& s = e->summary();
        char note[200];
        std::snprintf(note, sizeof note,
                      "  (%ld/%ld convs Winograd, %ld bf16; weights %.0f MB, activations %.0f MB; "
                      "build %.0f ms)",
                      long(s.winograd), long(s.convolutions), long(s.bf16), s.weight_bytes / 1e6,
                      s.activation_bytes / 1e6, s.build_ms);
        contenders.push_back({{"engine", mode.name, batch, {}}, [e, &x] { e->forward(x); }, note});
        if (mode.options.precision == engine::Precision::kAuto)  // what the timing chose
          std::printf(
              "%s batch %ld chose: %ld f32 direct, %ld f32 Winograd, %ld bf16 of %ld "
              "convolutions; per shape:\n%s",
              mode.name.c_str(), long(batch), long(s.convolutions - s.winograd - s.bf16),
              long(s.winograd), long(s.bf16), long(s.convolutions), s.layers.c_str());
      }
      for (auto& c : contenders) c.pass();  // warm-up
      for (int run = 0; run < args->runs; ++run)
        for (auto& c : contenders) c.measurement.runs_ms.push_back(elapsed_ms(c.pass));
      for (const auto& c : contenders) report(c.measurement, c.note);
      if (args->profile && batch == 1)
        for (size_t i = 0; i < modes.size(); ++i)
          profiles[modes[i].name] = print_profile(modes[i].name, *engines[i], x, args->runs);
    }

    // End to end through the predictor, as `hourglass predict` runs (crop, network, decode):
    // last, since its engine takes the model's weights over.
    {
      infer::PredictorOptions po;
      po.input_size = static_cast<int>(args->size);
      po.backend.engine.threads = global.threads;
      const auto name = engine::precision_name(po.backend.engine.precision) + "-" +
                        engine::algorithm_name(po.backend.engine.algorithm);
      const auto predictor = infer::Predictor::from_model(std::move(loaded), po);
      const cv::Mat image(static_cast<int>(args->size), static_cast<int>(args->size), CV_8UC3,
                          cv::Scalar(90, 120, 150));
      const std::vector<infer::PersonCrop> person = {
          {infer::crop_of_image(image.size()), infer::PersonSource::kWholeImage, {}, 0}};
      Measurement m{"predict", name + (po.flip ? " +flip" : ""), 1, {}};
      predictor.predict(image, person);  // warm-up
      for (int run = 0; run < args->runs; ++run)
        m.runs_ms.push_back(elapsed_ms([&] { predictor.predict(image, person); }));
      report(m, "  (crop, network on the crop and its mirror, decode)");
    }

    nlohmann::json j;
    j["model"] = io::options_to_json(net->options);
    j["size"] = args->size;
    j["threads"] = threads;
    j["gmac_per_image"] = gmac;
    j["runs"] = args->runs;
    std::printf("\nsummary (ms/image; ratio = LibTorch / engine, same batch, same run):\n");
    for (const int64_t batch : batches) {
      const Measurement* torch_result = nullptr;
      const Measurement* fastest = nullptr;
      for (const auto& r : results) {
        if (r.batch != batch) continue;
        if (r.backend == "torch") torch_result = &r;
        if (r.backend == "engine" && (!fastest || r.ms_per_image() < fastest->ms_per_image()))
          fastest = &r;
      }
      for (const auto& r : results) {
        if (r.batch != batch) continue;
        const bool is_fastest = &r == fastest;
        std::printf("  batch %-2ld %-7s %-12s %9.2f", long(batch), r.backend.c_str(),
                    r.mode.c_str(), r.ms_per_image());
        if (torch_result && r.backend == "engine")
          std::printf("  %5.2fx", torch_result->ms_per_image() / r.ms_per_image());
        std::printf("%s\n", is_fastest ? "  <- fastest" : "");
        j["results"].push_back({{"backend", r.backend},
                                {"mode", r.mode},
                                {"batch", r.batch},
                                {"ms_per_image", r.ms_per_image()},
                                {"runs_ms", r.runs_ms},
                                {"gflops", 2 * gmac / (r.ms_per_image() / 1e3)}});
      }
      const engine::EngineOptions defaults;
      const std::string default_mode = engine::precision_name(defaults.precision) + "-" +
                                       engine::algorithm_name(defaults.algorithm);
      for (const auto& r : results)
        if (fastest && r.batch == batch && r.backend == "engine" && r.mode == default_mode)
          std::printf("  batch %-2ld default %s is %+.1f%% from the fastest mode (%s)\n",
                      long(batch), default_mode.c_str(),
                      100 * (r.ms_per_image() / fastest->ms_per_image() - 1),
                      fastest->mode.c_str());
      if (fastest) {
        j["results"].push_back({{"backend", "engine"},
                                {"mode", "fastest"},
                                {"batch", batch},
                                {"fastest_of", fastest->mode},
                                {"ms_per_image", fastest->ms_per_image()},
                                {"gflops", 2 * gmac / (fastest->ms_per_image() / 1e3)}});
      }
    }
    if (args->profile) j["profile"] = profiles;
    j["peak_rss_mb"] = peak_rss_mb();
    std::printf("peak RSS: %.0f MB\n", peak_rss_mb());
    if (!args->json.empty()) {
      io::write_file_atomic(args->json, j.dump(2) + "\n");
    }
  });
}

}  // namespace hg::cli
