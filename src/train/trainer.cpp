#include "hg/train/trainer.h"

#include "hg/cli/cli.h"
#include "hg/data/readers.h"
#include "hg/engine/engine.h"
#include "hg/eval/evaluate.h"
#include "hg/io/checkpoint.h"
#include "hg/io/progress.h"
#include "hg/io/torch_file.h"

#include <ATen/autocast_mode.h>
#include <malloc.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

namespace hg::train {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// Runs its scope's operations under autocast to bfloat16 on `device`'s type, when `on`.
class AutocastScope {
 public:
  AutocastScope(bool on, const at::Device& device) : on_(on), type_(device.type()) {
    if (on_) set(true);
  }
  ~AutocastScope() {
    if (!on_) return;
    set(false);
    at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  void set(bool enabled) const {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(type_, at::kBFloat16);
    at::autocast::set_autocast_enabled(type_, enabled);
#else
    if (type_ == at::kCPU) {
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(enabled);
    } else {
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(enabled);
    }
#endif
  }

  bool on_;
  at::DeviceType type_;
};

/// Training allocates and frees the same large activation and gradient tensors every step. glibc
/// serves blocks above 32 MB (its largest mmap threshold) with fresh mmaps, so every step paid
/// page faults on gigabytes of new zero pages: 3× slower for 2 stacks at 256 px (measured).
/// Keeping freed memory in the heap makes the steps reuse it.
void keep_freed_memory() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

// ---- signals: finish the step, checkpoint, exit cleanly -------------------------------------
std::atomic<bool> g_stop_requested{false};
extern "C" void request_stop(int) {
  g_stop_requested = true;
}

class SignalGuard {
 public:
  SignalGuard() {
    g_stop_requested = false;
    old_int_ = std::signal(SIGINT, request_stop);
    old_term_ = std::signal(SIGTERM, request_stop);
  }
  ~SignalGuard() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

// ---- the first N people of a dataset (validation subsets) ----------------------------------
class FirstN : public data::Dataset {
 public:
  FirstN(std::shared_ptr<const data::Dataset> inner, size_t n) : inner_(std::move(inner)), n_(n) {}
  size_t size() const override { return n_; }
  const data::JointSet& joints() const override { return inner_->joints(); }
  data::Annotation annotation(size_t i) const override { return inner_->annotation(i); }
  cv::Mat image(size_t i) const override { return inner_->image(i); }
  data::Annotation load(size_t i, cv::Mat& image, int reduce, int* applied) const override {
    return inner_->load(i, image, reduce, applied);
  }
  std::string describe() const override {
    return inner_->describe() + " (first " + std::to_string(n_) + ")";
  }

 private:
  std::shared_ptr<const data::Dataset> inner_;
  size_t n_;
};

// ---- optimizer -----------------------------------------------------------------------------
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& c,
                                                        const std::vector<at::Tensor>& params) {
  if (c.optimizer == "adam")
    return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(c.lr).eps(c.eps));
  return std::make_unique<torch::optim::RMSprop>(
      params, torch::optim::RMSpropOptions(c.lr).alpha(c.rmsprop_alpha).eps(c.eps));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

at::Tensor bytes_tensor(const std::string& bytes) {
  auto t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

at::Tensor optimizer_state(torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive archive;
  opt.save(archive);
  std::ostringstream os;
  archive.save_to(os);
  return bytes_tensor(os.str());
}

void load_optimizer_state(torch::optim::Optimizer& opt, const at::Tensor& bytes,
                          const std::string& path) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(static_cast<const char*>(bytes.data_ptr()), bytes.numel());
    opt.load(archive);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot resume from ", path, ": its optimizer state does not fit (",
                e.what_without_backtrace(), ")");
  }
}

// ---- run folder ----------------------------------------------------------------------------
void check_run_dir(const fs::path& dir, uintmax_t bytes_needed) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  TORCH_CHECK(!ec, "cannot create run folder ", dir.string(), ": ", ec.message());
  const fs::path probe = dir / ".write-test";
  {
    std::ofstream out(probe);
    out << "ok";
    TORCH_CHECK(out.good(), "run folder ", dir.string(),
                " is not writable: choose another with --run-dir");
  }
  fs::remove(probe, ec);
  const auto space = fs::space(dir, ec);
  TORCH_CHECK(ec || space.available >= bytes_needed, "run folder ", dir.string(), " has ",
              space.available / (1 << 20), " MiB free, but checkpoints need about ",
              bytes_needed / (1 << 20), " MiB: free some space or choose another --run-dir");
}

// ---- progress ------------------------------------------------------------------------------
class Progress {
 public:
  void update(int64_t epoch, int64_t epochs, int64_t done, int64_t total, double loss, double sps,
              double eta_s, bool force = false) {
    const int width = 24;
    const int filled = total > 0 ? static_cast<int>(width * done / total) : 0;
    char line[256];
    std::snprintf(line, sizeof line,
                  "epoch %ld/%ld [%s%s] %ld/%ld loss %.3e  %.1f samples/s  ETA %02ld:%02ld",
                  long(epoch + 1), long(epochs), std::string(filled, '#').c_str(),
                  std::string(width - filled, '.').c_str(), long(done), long(total), loss, sps,
                  long(eta_s) / 60, long(eta_s) % 60);
    line_.update(line, force);
  }
  void end_line() { line_.finish(); }

 private:
  io::ProgressLine line_;
};

// State that travels in a checkpoint's meta.
struct RunState {
  int64_t epoch = 0;  // epoch in progress
  int64_t batch = 0;  // next batch of that epoch
  int64_t step = 0;
  double best = -1;
  int64_t plateau_wait = 0;
  double drop_scale = 1;      // product of the plateau and lr_drop_fraction drops so far
  bool time_dropped = false;  // whether the lr_drop_fraction drop happened
  bool finished = false;
};

nlohmann::json to_json(const RunState& s) {
  return {{"epoch", s.epoch},
          {"batch", s.batch},
          {"step", s.step},
          {"best", s.best},
          {"plateau_wait", s.plateau_wait},
          {"drop_scale", s.drop_scale},
          {"time_dropped", s.time_dropped},
          {"finished", s.finished}};
}

RunState run_state_from(const nlohmann::json& j, const std::string& path) {
  try {
    RunState s;
    s.epoch = j.at("epoch");
    s.batch = j.at("batch");
    s.step = j.at("step");
    s.best = j.at("best");
    s.plateau_wait = j.at("plateau_wait");
    // Named plateau_scale before the time-based drop shared it.
    s.drop_scale = j.contains("drop_scale") ? j.at("drop_scale") : j.at("plateau_scale");
    s.time_dropped = j.value("time_dropped", false);  // absent before lr_drop_fraction existed
    s.finished = j.at("finished");
    return s;
  } catch (const nlohmann::json::exception& e) {
    TORCH_CHECK(false, "cannot resume from ", path, ": its training state is incomplete (",
                e.what(), ")");
  }
}

double learning_rate(const TrainConfig& c, int64_t epoch, double drop_scale) {
  double lr = c.lr * drop_scale;
  for (auto drop : c.lr_drops)
    if (epoch >= drop) lr *= c.lr_factor;
  return lr;
}

nlohmann::json table_json(const eval::PckTable& t) {
  nlohmann::json j;
  for (size_t g = 0; g < t.group_names.size(); ++g) j[t.group_names[g]] = t.groups[g];
  j["mean"] = t.mean;
  j["mean_weighted"] = t.mean_weighted;
  return j;
}

}  // namespace

at::Tensor stack_losses(const at::Tensor& heatmaps, const at::Tensor& target,
                        const at::Tensor& weight) {
  TORCH_CHECK(heatmaps.dim() == 5 && target.dim() == 4 &&
                  heatmaps.sizes().slice(2) == target.sizes().slice(1) &&
                  heatmaps.size(0) == target.size(0),
              "heatmaps N×S×J×h×w ", heatmaps.sizes(), " do not match targets N×J×h×w ",
              target.sizes());
  auto sq = (heatmaps.to(torch::kFloat) - target.unsqueeze(1)).pow(2);
  if (weight.defined()) sq = sq * weight.unsqueeze(1).unsqueeze(-1).unsqueeze(-1);
  return sq.mean({0, 2, 3, 4});
}

Trainer::Trainer(TrainConfig config, std::string run_dir)
    : Trainer(std::move(config), std::move(run_dir), false) {}

Trainer::Trainer(TrainConfig config, std::string run_dir, bool resuming)
    : config_(std::move(config)), run_dir_(std::move(run_dir)), resuming_(resuming) {
  config_.validate();
}

Trainer Trainer::resume(const std::string& run_dir, const std::vector<std::string>& overrides) {
  const auto last = (fs::path(run_dir) / "last.hg").string();
  TORCH_CHECK(fs::exists(last), "cannot resume: ", last,
              " does not exist (was the run started with this --run-dir?)");
  const auto ckpt = io::read_checkpoint(last);
  TORCH_CHECK(ckpt.meta.contains("config") && ckpt.meta.contains("train"), "cannot resume from ",
              last, ": it holds no training state (a converted or exported model?)");
  TrainConfig config;
  config.merge(ckpt.meta["config"]);
  for (const auto& o : overrides) config.set(o);
  return Trainer(std::move(config), run_dir, true);
}

TrainResult Trainer::run() {
  const auto wall_start = Clock::now();
  const TrainConfig& c = config_;
  cli::apply_threads(cli::GlobalOptions{c.threads});
  const auto device = cli::parse_device(c.device);
  const fs::path dir(run_dir_);
  const auto last_path = (dir / "last.hg").string();

  torch::manual_seed(c.seed);
  model::StackedHourglass net(c.model);
  auto optimizer = make_optimizer(c, net->parameters());
  RunState state;
  if (resuming_) {
    const auto ckpt = io::read_checkpoint(last_path);
    io::load_state(*net, ckpt.state, last_path);
    state = run_state_from(ckpt.meta["train"], last_path);
    TORCH_CHECK(ckpt.extra.count("optimizer"), "cannot resume from ", last_path,
                ": it lacks the optimizer state");
    load_optimizer_state(*optimizer, ckpt.extra.at("optimizer"), last_path);
    if (ckpt.extra.count("rng")) {
      auto generator = at::detail::getDefaultCPUGenerator();
      generator.set_state(ckpt.extra.at("rng"));
    }
  }
  net->to(device);
  const auto memory_format =
      c.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  for (auto& p : net->parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(memory_format));
  keep_freed_memory();
  const bool bf16 =
      c.amp == "bf16" || (c.amp == "auto" && device.is_cpu() && engine::bf16_supported());
  // Model + optimizer state, three checkpoints at a time (temporary, last, best), plus margin.
  const uintmax_t ckpt_bytes = static_cast<uintmax_t>(net->parameter_count()) * 4 * 3;
  check_run_dir(dir, 3 * ckpt_bytes + (16u << 20));
  { std::ofstream(dir / "config.json") << c.to_json().dump(2) << "\n"; }

  // Data.
  auto train_set = data::open_dataset(c.dataset, c.images);
  TORCH_CHECK(train_set->joints().size() == c.model.joints(), "the model has ", c.model.joints(),
              " joints but dataset ", train_set->describe(), " has ", train_set->joints().size(),
              ": set model.joints");
  data::LoaderOptions lo;
  lo.batch_size = static_cast<int>(c.batch_size);
  lo.threads =
      c.loader_threads > 0 ? c.loader_threads : (std::thread::hardware_concurrency() > 2 ? 2 : 1);
  lo.seed = c.seed;
  lo.drop_last = train_set->size() >= static_cast<size_t>(c.batch_size);
  lo.sample.res = static_cast<int>(c.input_size);
  lo.sample.sigma = c.sigma;
  lo.sample.augment = data::AugmentOptions::preset(c.augment);
  data::Loader loader(train_set, lo);
  std::unique_ptr<data::Loader> val_loader;
  if (!c.val_dataset.empty()) {
    std::shared_ptr<const data::Dataset> val = data::open_dataset(c.val_dataset, c.val_images);
    if (c.val_samples > 0 && static_cast<size_t>(c.val_samples) < val->size())
      val = std::make_shared<FirstN>(val, static_cast<size_t>(c.val_samples));
    data::LoaderOptions vo = lo;
    vo.shuffle = false;
    vo.drop_last = false;
    vo.sample.augment = data::AugmentOptions::none();
    val_loader = std::make_unique<data::Loader>(val, vo);
  }
  const int64_t batches = loader.batches_per_epoch();
  TORCH_CHECK(batches > 0, "dataset ", train_set->describe(), " gives no batch");
  const int64_t iters = c.iters_per_epoch > 0 ? std::min(c.iters_per_epoch, batches) : batches;

  std::ofstream log(dir / "log.jsonl", std::ios::app);
  TORCH_CHECK(log.good(), "cannot write ", (dir / "log.jsonl").string());
  std::cerr << "training " << c.model.describe() << " on " << train_set->describe() << ", " << iters
            << " steps/epoch × " << c.epochs << " epochs, batch " << c.batch_size
            << (bf16 ? ", bf16 mixed precision" : "")
            << (resuming_ ? ", resuming at epoch " + std::to_string(state.epoch + 1) + " step " +
                                std::to_string(state.step)
                          : std::string())
            << "\n";

  auto save = [&](const std::string& path) {
    io::Checkpoint ckpt;
    ckpt.options = c.model;
    ckpt.state = io::state_of(*net);
    ckpt.meta = {{"config", c.to_json()},
                 {"train", to_json(state)},
                 {"input_size", c.input_size},
                 {"dataset", train_set->describe()},
                 {"joint_set", train_set->joints().name}};
    ckpt.extra["optimizer"] = optimizer_state(*optimizer);
    ckpt.extra["rng"] = at::detail::getDefaultCPUGenerator().get_state();
    io::write_checkpoint(path, ckpt);
  };

  SignalGuard signals;
  Progress progress;
  TrainResult result;
  result.best = state.best;
  const auto net_fn = [&](const at::Tensor& x) {
    torch::NoGradGuard no_grad;
    return net->forward(x.to(device).contiguous(memory_format)).cpu();
  };
  auto finish = [&](Outcome outcome) {
    progress.end_line();
    result.outcome = outcome;
    result.epoch = state.epoch;
    result.step = state.step;
    result.best = state.best;
    result.seconds = seconds_since(wall_start);
    return result;
  };

  while (state.epoch < c.epochs) {
    double lr = learning_rate(c, state.epoch, state.drop_scale);
    set_lr(*optimizer, lr);
    net->train();
    loader.start_epoch(state.epoch, state.batch);
    const int64_t first_batch = state.batch;
    double loss_sum = 0, wait_s = 0;
    int64_t loss_n = 0, samples = 0;
    const auto epoch_start = Clock::now();
    data::Batch batch;
    for (; state.batch < iters; ++state.batch) {
      const double drop_at = 60 * c.max_minutes * c.lr_drop_fraction;  // seconds
      if (c.lr_drop_fraction > 0 && !state.time_dropped && seconds_since(wall_start) >= drop_at) {
        state.time_dropped = true;
        state.drop_scale *= c.lr_factor;
        lr = learning_rate(c, state.epoch, state.drop_scale);
        set_lr(*optimizer, lr);
        progress.end_line();
        std::cerr << "after " << drop_at / 60 << " minutes: learning rate × " << c.lr_factor
                  << " = " << lr << "\n";
      }
      const auto wait_start = Clock::now();
      if (!loader.next(batch)) break;
      wait_s += seconds_since(wait_start);
      const auto input = batch.input.to(device).contiguous(memory_format);
      const auto target = batch.target.to(device);
      const auto weight = c.visibility_weights ? batch.weight.to(device) : at::Tensor();
      at::Tensor output;
      {
        AutocastScope autocast(bf16, device);
        output = net->forward(input);
      }
      const auto losses = stack_losses(output.to(at::kFloat), target, weight);
      const auto loss = losses.sum();
      const double value = loss.item<double>();
      if (!std::isfinite(value)) {
        progress.end_line();
        throw DivergedError(c10::str(
            "the loss became ", value, " at epoch ", state.epoch + 1, ", step ", state.step + 1,
            " (lr ", lr, "); training stopped and ", last_path,
            " keeps the last good weights: lower the learning rate (--set lr=...) and resume"));
      }
      optimizer->zero_grad();
      loss.backward();
      optimizer->step();
      ++state.step;
      loss_sum += value;
      ++loss_n;
      samples += input.size(0);
      const double elapsed = seconds_since(epoch_start);
      const double sps = samples / std::max(elapsed, 1e-9);
      nlohmann::json line = {
          {"type", "step"}, {"epoch", state.epoch + 1}, {"step", state.step},   {"loss", value},
          {"lr", lr},       {"samples_per_s", sps},     {"data_wait_s", wait_s}};
      const auto per_stack = losses.detach().cpu().contiguous();
      line["stacks"] = std::vector<double>(per_stack.data_ptr<float>(),
                                           per_stack.data_ptr<float>() + per_stack.numel());
      log << line.dump() << "\n";
      const double per_step = elapsed / static_cast<double>(state.batch + 1 - first_batch);
      double eta = ((iters - state.batch - 1) + (c.epochs - state.epoch - 1) * iters) * per_step;
      if (c.max_steps > 0) eta = std::min(eta, (c.max_steps - state.step) * per_step);
      if (c.max_minutes > 0)  // a time-budgeted run ends with its budget
        eta = std::min(eta, std::max(0.0, 60 * c.max_minutes - seconds_since(wall_start)));
      progress.update(state.epoch, c.epochs, state.batch + 1, iters, loss_sum / loss_n, sps, eta);

      const bool out_of_steps = c.max_steps > 0 && state.step >= c.max_steps;
      const bool out_of_time = c.max_minutes > 0 && seconds_since(wall_start) >= 60 * c.max_minutes;
      if (g_stop_requested || out_of_steps || out_of_time) {
        ++state.batch;
        save(last_path);
        log.flush();
        std::cerr << "\n"
                  << (g_stop_requested ? "interrupted"
                      : out_of_steps   ? "reached max_steps"
                                       : "reached max_minutes")
                  << ": wrote " << last_path << "; continue with hourglass train --resume "
                  << run_dir_ << "\n";
        return finish(g_stop_requested ? Outcome::kInterrupted : Outcome::kStopped);
      }
    }
    progress.update(state.epoch, c.epochs, iters, iters, loss_n ? loss_sum / loss_n : 0,
                    samples / std::max(seconds_since(epoch_start), 1e-9), 0, true);
    progress.end_line();

    nlohmann::json epoch_line = {
        {"type", "epoch"},
        {"epoch", state.epoch + 1},
        {"train_loss", loss_n ? loss_sum / loss_n : 0},
        {"lr", lr},
        {"seconds", seconds_since(epoch_start)},
        {"data_wait_share", wait_s / std::max(seconds_since(epoch_start), 1e-9)}};
    bool improved = false;
    if (val_loader) {
      net->eval();
      const auto predictions = eval::predict_stacks(net_fn, *val_loader, {});
      const auto errors = eval::stack_errors(predictions);
      result.last_validation.clear();
      nlohmann::json val = nlohmann::json::array();
      for (const auto& e : errors) {
        result.last_validation.push_back(eval::pck_table(e, val_loader->dataset().joints(), 0.5));
        val.push_back(table_json(result.last_validation.back()));
      }
      epoch_line["val_pck@0.5"] = val;
      const double score = result.last_validation.back().mean;
      std::cerr << "validation PCK@0.5 (mean) per stack:";
      for (const auto& t : result.last_validation) std::cerr << " " << t.mean;
      std::cerr << "\n";
      improved = score > state.best;
      if (improved) {
        state.best = score;
        state.plateau_wait = 0;
      } else if (c.plateau_patience > 0 && ++state.plateau_wait >= c.plateau_patience) {
        state.drop_scale *= c.lr_factor;
        state.plateau_wait = 0;
        std::cerr << "validation plateau: learning rate × " << c.lr_factor << "\n";
      }
    }
    log << epoch_line.dump() << "\n";
    log.flush();
    // The state saved is that of the next epoch's start.
    ++state.epoch;
    state.batch = 0;
    state.finished = state.epoch >= c.epochs;
    if (improved) save((dir / "best.hg").string());
    if (c.save_every > 0 && state.epoch % c.save_every == 0)
      save((dir / ("epoch_" + std::to_string(state.epoch) + ".hg")).string());
    save(last_path);
    if (g_stop_requested) return finish(Outcome::kInterrupted);
  }
  return finish(Outcome::kFinished);
}

}  // namespace hg::train
