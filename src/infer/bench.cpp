#include "hg/infer/bench.h"

#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"
#include "hg/runtime/text.h"

#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <memory>

namespace hg::infer {
namespace {

// printf into a string: the report's columns are printf's.
__attribute__((format(printf, 1, 2))) std::string printf_string(const char* format, ...) {
  va_list args, copy;
  va_start(args, format);
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  std::string out(static_cast<size_t>(std::max(n, 0)), '\0');
  std::vsnprintf(out.data(), out.size() + 1, format, args);
  va_end(args);
  return out;
}

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

void say(const BenchOptions& o, const std::string& text) {
  if (o.progress) o.progress(text);
}

struct EngineMode {
  std::string name;
  engine::EngineOptions options;  // batch 1; each measurement sets its batch
};

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

std::string mode_list() {
  std::string all;
  for (const auto& name : bench_mode_names()) all += (all.empty() ? "" : ", ") + name;
  return all;
}

// The modes of options.modes, set for its size and threads (throws on an unknown name).
std::vector<EngineMode> modes_of(const BenchOptions& o) {
  const auto known = engine_modes();
  std::vector<EngineMode> modes;
  for (const auto& name : o.modes) {
    const auto it = known.find(name);
    TORCH_CHECK(it != known.end(), "modes: '", name, "' is not an engine mode",
                runtime::did_you_mean(name, bench_mode_names()), "; the modes are ", mode_list());
    auto mode = it->second;
    mode.options.threads = o.threads;
    mode.options.height = mode.options.width = o.size;
    modes.push_back(mode);
  }
  return modes;
}

// The modes this CPU can run; the others are reported skipped.
std::vector<EngineMode> runnable(const BenchOptions& o, const std::vector<EngineMode>& modes) {
  std::vector<EngineMode> out;
  for (const auto& m : modes)
    if (m.options.precision == engine::Precision::kBf16 && !engine::bf16_supported())
      say(o, m.name + " skipped: this CPU lacks AVX512-BF16\n");
    else
      out.push_back(m);
  return out;
}

io::LoadedModel load_model(const BenchOptions& o) {
  if (!o.weights.empty()) return io::load_model(o.weights);
  io::LoadedModel loaded;
  loaded.model = model::StackedHourglass(o.architecture);
  loaded.model->eval();
  loaded.source = "random weights";
  return loaded;
}

std::string measurement_line(const BenchResult& r, const BenchMeasurement& m) {
  return printf_string("%-7s %-12s batch %-2ld %9.2f ms/image  %7.1f GFLOP/s%s\n",
                       m.backend.c_str(), m.mode.c_str(), long(m.batch), m.ms_per_image(),
                       r.gflops(m), m.note.c_str());
}

std::string plan_note(const engine::EngineSummary& s) {
  return printf_string(
      "  (%ld/%ld convs Winograd, %ld bf16; weights %.0f MB, activations %.0f MB; build %.0f ms)",
      long(s.winograd), long(s.convolutions), long(s.bf16), s.weight_bytes / 1e6,
      s.activation_bytes / 1e6, s.build_ms);
}

// What an auto-precision build chose, by the timing.
std::string choice_text(const std::string& mode, int64_t batch, const engine::EngineSummary& s) {
  const auto counts =
      printf_string("%ld f32 direct, %ld f32 Winograd, %ld bf16 of %ld convolutions",
                    long(s.convolutions - s.winograd - s.bf16), long(s.winograd), long(s.bf16),
                    long(s.convolutions));
  return mode + " batch " + std::to_string(batch) + " chose: " + counts + "; per shape:\n" +
         s.layers;
}

double step_gflops(const engine::StepProfile& p) {
  return p.gflop > 0 ? p.gflop / (p.ms / 1e3) : 0;
}

std::string profile_text(const std::string& mode, int64_t batch, int runs,
                         const std::vector<engine::StepProfile>& steps) {
  double total = 0;
  for (const auto& p : steps) total += p.ms;
  std::string out =
      printf_string("\nprofile of %s, batch %ld (mean of %d passes, %.2f ms in all):\n",
                    mode.c_str(), long(batch), runs, total);
  out += printf_string("  %8s %6s %5s %8s  %s\n", "ms", "%", "steps", "GFLOP/s", "step");
  for (const auto& p : steps)
    out += printf_string("  %8.3f %6.1f %5ld %8.0f  %s\n", p.ms, 100 * p.ms / total, long(p.count),
                         step_gflops(p), p.label.c_str());
  return out;
}

model::LargeHourglass load_large_hourglass(const BenchOptions& o) {
  if (!o.weights.empty()) return io::load_large_hourglass(o.weights).model;
  model::LargeHourglass net(model::large_hourglass_preset(o.arch, o.heads));
  net->eval();
  return net;
}

// Every backend and mode is built first, then they run in turns, one pass each per round: on a
// shared machine, load that comes and goes then slows all of them alike. `Net`: either family.
template <typename Net>
void measure_batch(const BenchOptions& o, Net net, const std::vector<EngineMode>& modes,
                   int64_t batch, BenchResult& r) {
  const auto x = torch::rand({batch, 3, o.size, o.size});
  struct Contender {
    BenchMeasurement measurement;
    std::function<void()> pass;
  };
  std::vector<Contender> contenders;
  std::vector<std::unique_ptr<engine::Engine>> engines;
  if (o.torch)
    contenders.push_back({{"torch", "eager", batch, {}, ""}, [&] {
                            torch::InferenceMode guard;
                            net->forward(x);
                          }});
  for (const auto& mode : modes) {
    auto options = mode.options;
    options.batch = batch;
    engines.push_back(std::make_unique<engine::Engine>(engine::Engine::build(*net, options)));
    auto* e = engines.back().get();
    contenders.push_back({{"engine", mode.name, batch, {}, plan_note(e->summary())},
                          [e, &x] { e->forward_all(x); }});
    if (mode.options.precision == engine::Precision::kAuto)
      say(o, choice_text(mode.name, batch, e->summary()));
  }
  for (auto& c : contenders) c.pass();  // warm-up
  for (int run = 0; run < o.runs; ++run)
    for (auto& c : contenders) c.measurement.runs_ms.push_back(elapsed_ms(c.pass));
  for (const auto& c : contenders) {
    say(o, measurement_line(r, c.measurement));
    r.measurements.push_back(c.measurement);
  }
  if (!o.profile || batch != 1) return;
  for (size_t i = 0; i < modes.size(); ++i) {
    auto steps = engines[i]->profile(x, o.runs);
    say(o, profile_text(modes[i].name, batch, o.runs, steps));
    r.profiles[modes[i].name] = std::move(steps);
  }
}

// End to end through the predictor, as `hourglass predict` runs (crop, network, decode).
BenchMeasurement measure_predictor(io::LoadedModel loaded, const BenchOptions& o) {
  PredictorOptions po;
  po.input_size = static_cast<int>(o.size);
  po.backend.engine.threads = o.threads;
  const auto name = engine::precision_name(po.backend.engine.precision) + "-" +
                    engine::algorithm_name(po.backend.engine.algorithm);
  const auto predictor = Predictor::from_model(std::move(loaded), po);
  const cv::Mat image(static_cast<int>(o.size), static_cast<int>(o.size), CV_8UC3,
                      cv::Scalar(90, 120, 150));
  const std::vector<PersonCrop> person = {
      {crop_of_image(image.size()), PersonSource::kWholeImage, {}, 0}};
  BenchMeasurement m{"predict",
                     name + (*predictor.options().flip ? " +flip" : ""),
                     1,
                     {},
                     "  (crop, network on the crop and its mirror, decode)"};
  predictor.predict(image, person);  // warm-up
  for (int run = 0; run < o.runs; ++run)
    m.runs_ms.push_back(elapsed_ms([&] { predictor.predict(image, person); }));
  return m;
}

const BenchMeasurement* torch_of(const BenchResult& r, int64_t batch) {
  const BenchMeasurement* found = nullptr;
  for (const auto& m : r.measurements)
    if (m.batch == batch && m.backend == "torch") found = &m;
  return found;
}

}  // namespace

std::vector<std::string> bench_mode_names() {
  std::vector<std::string> names;
  for (const auto& [name, mode] : engine_modes()) names.push_back(name);
  return names;
}

double BenchMeasurement::median_ms() const {
  if (runs_ms.empty()) return 0;
  auto v = runs_ms;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

double BenchResult::gflops(const BenchMeasurement& m) const {
  return 2 * gmac_per_image / (m.ms_per_image() / 1e3);
}

const BenchMeasurement* BenchResult::fastest(int64_t batch) const {
  const BenchMeasurement* best = nullptr;
  for (const auto& m : measurements)
    if (m.batch == batch && m.backend == "engine" &&
        (!best || m.ms_per_image() < best->ms_per_image()))
      best = &m;
  return best;
}

// The measurements of every batch on `net` (its architecture described by `options`, its
// multiply-adds per image `macs`) in the engine's `modes` into r.
template <typename Net, typename Options>
void measure_batches(const BenchOptions& o, const std::vector<EngineMode>& modes, Net net,
                     const Options& options, int64_t macs, nlohmann::json json, BenchResult& r) {
  r.model = options.describe();
  r.model_json = std::move(json);
  r.size = o.size;
  r.gmac_per_image = static_cast<double>(macs) / 1e9;
  r.threads = at::get_num_threads();
  r.runs = o.runs;
  r.profiled = o.profile;
  say(o, printf_string("model: %s; input %ld×%ld; %.2f GMAC/image; %d threads; median of %d runs\n",
                       r.model.c_str(), long(o.size), long(o.size), r.gmac_per_image, r.threads,
                       o.runs));
  const auto usable = runnable(o, modes);
  r.batches = {1};
  if (o.batch > 1) r.batches.push_back(o.batch);
  for (const int64_t batch : r.batches) measure_batch(o, net, usable, batch, r);
}

BenchResult run_bench(const BenchOptions& o) {
  TORCH_CHECK(o.batch >= 1, "batch must be 1 or more, got ", o.batch);
  TORCH_CHECK(o.runs >= 1, "runs must be 1 or more, got ", o.runs);
  const auto modes = modes_of(o);  // names checked before anything is loaded
  BenchResult r;
  if (o.weights.empty() ? !o.arch.empty() : io::holds_large_hourglass(o.weights)) {
    const auto net = load_large_hourglass(o);
    const auto& options = net->options;
    options.check_input_size(o.size, o.size, "size");
    measure_batches(o, modes, net, options, options.macs(o.size, o.size),
                    io::large_options_to_json(options), r);
  } else {
    auto loaded = load_model(o);
    const auto& options = loaded.model->options;
    options.check_input_size(o.size, o.size, "size");
    measure_batches(o, modes, loaded.model, options, loaded.model->macs(o.size, o.size),
                    io::options_to_json(options), r);
    // Last, since its engine takes the model's weights over.
    r.measurements.push_back(measure_predictor(std::move(loaded), o));
    say(o, measurement_line(r, r.measurements.back()));
  }
  r.peak_rss_mb = peak_rss_mb();
  return r;
}

std::string format_bench_summary(const BenchResult& r) {
  std::string out = "\nsummary (ms/image; ratio = LibTorch / engine, same batch, same run):\n";
  const engine::EngineOptions defaults;
  const std::string default_mode =
      engine::precision_name(defaults.precision) + "-" + engine::algorithm_name(defaults.algorithm);
  for (const int64_t batch : r.batches) {
    const auto* torch_result = torch_of(r, batch);
    const auto* fastest = r.fastest(batch);
    for (const auto& m : r.measurements) {
      if (m.batch != batch) continue;
      out += printf_string("  batch %-2ld %-7s %-12s %9.2f", long(batch), m.backend.c_str(),
                           m.mode.c_str(), m.ms_per_image());
      if (torch_result && m.backend == "engine")
        out += printf_string("  %5.2fx", torch_result->ms_per_image() / m.ms_per_image());
      out += &m == fastest ? "  <- fastest\n" : "\n";
    }
    for (const auto& m : r.measurements)
      if (fastest && m.batch == batch && m.backend == "engine" && m.mode == default_mode)
        out += printf_string("  batch %-2ld default %s is %+.1f%% from the fastest mode (%s)\n",
                             long(batch), default_mode.c_str(),
                             100 * (m.ms_per_image() / fastest->ms_per_image() - 1),
                             fastest->mode.c_str());
  }
  return out + printf_string("peak RSS: %.0f MB\n", r.peak_rss_mb);
}

nlohmann::json bench_to_json(const BenchResult& r) {
  nlohmann::json j;
  j["model"] = r.model_json;
  j["size"] = r.size;
  j["threads"] = r.threads;
  j["gmac_per_image"] = r.gmac_per_image;
  j["runs"] = r.runs;
  for (const int64_t batch : r.batches) {
    for (const auto& m : r.measurements)
      if (m.batch == batch)
        j["results"].push_back({{"backend", m.backend},
                                {"mode", m.mode},
                                {"batch", m.batch},
                                {"ms_per_image", m.ms_per_image()},
                                {"runs_ms", m.runs_ms},
                                {"gflops", r.gflops(m)}});
    if (const auto* fastest = r.fastest(batch))
      j["results"].push_back({{"backend", "engine"},
                              {"mode", "fastest"},
                              {"batch", batch},
                              {"fastest_of", fastest->mode},
                              {"ms_per_image", fastest->ms_per_image()},
                              {"gflops", r.gflops(*fastest)}});
  }
  if (r.profiled) {
    nlohmann::json profiles;  // null when no engine mode was measured, as before
    for (const auto& [mode, steps] : r.profiles) {
      profiles[mode] = nlohmann::json::array();
      for (const auto& p : steps)
        profiles[mode].push_back(
            {{"step", p.label}, {"count", p.count}, {"ms", p.ms}, {"gflops", step_gflops(p)}});
    }
    j["profile"] = profiles;
  }
  j["peak_rss_mb"] = r.peak_rss_mb;
  return j;
}

}  // namespace hg::infer
