#include "hg/train/trainer.h"
#include "hg/runtime/text.h"

#include "hg/data/json.h"

#include "hg/data/loader.h"
#include "hg/data/readers.h"
#include "hg/engine/engine.h"
#include "hg/engine/train_conv.h"
#include "hg/eval/evaluate.h"
#include "hg/infer/predictor.h"
#include "hg/io/atomic_file.h"
#include "hg/io/checkpoint.h"
#include "hg/io/folder_lock.h"
#include "hg/io/progress.h"
#include "hg/io/torch_file.h"
#include "hg/runtime/autocast.h"
#include "hg/runtime/runtime.h"
#include "hg/train/amp_probe.h"
#include "hg/train/distributed.h"
#include "hg/train/plots.h"
#include "hg/train/schedule.h"

#include <malloc.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <optional>
#include <regex>
#include <sstream>

namespace hg::train {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

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

// ---- optimizer -----------------------------------------------------------------------------
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& c,
                                                        const std::vector<at::Tensor>& params) {
  if (c.optimizer == Optimizer::kAdam)
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
void check_writable(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  TORCH_CHECK(!ec, "cannot create run folder ", dir.string(), ": ", ec.message());
  const fs::path probe = dir / ".write-test";
  {
    std::ofstream out(probe);
    out << "ok";
    out.flush();
    TORCH_CHECK(out.good(), "run folder ", dir.string(), " is not writable (", std::strerror(errno),
                "): make it writable or choose another run folder");
  }
  fs::remove(probe, ec);
}

void check_run_dir(const fs::path& dir, uintmax_t bytes_needed) {
  check_writable(dir);
  std::error_code ec;
  const auto space = fs::space(dir, ec);
  TORCH_CHECK(ec || space.available >= bytes_needed, "run folder ", dir.string(), " has ",
              space.available / (1 << 20), " MiB free, but checkpoints need about ",
              bytes_needed / (1 << 20), " MiB: free some space or choose another run folder");
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
    // A tampered state would misplace the loader and the schedule: refused, naming the key.
    const auto check = [&](const char* key, bool ok, const auto& value) {
      TORCH_CHECK(ok, "cannot resume from ", path, ": its training state '", key, "' = ", value,
                  " is impossible (the checkpoint was edited or damaged): use another checkpoint");
    };
    check("epoch", s.epoch >= 0 && s.epoch <= 1'000'000, s.epoch);
    check("batch", s.batch >= 0, s.batch);
    check("step", s.step >= 0, s.step);
    check("plateau_wait", s.plateau_wait >= 0, s.plateau_wait);
    check("drop_scale", std::isfinite(s.drop_scale) && s.drop_scale > 0, s.drop_scale);
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

// Cuts log.jsonl back to the checkpoint resumed from: a run killed after logging steps past its
// last checkpoint takes those steps again, and each must appear once. A last line without its
// newline (killed mid-write) goes too. A line that is not JSON (edited by hand, a disk error) is
// kept and reported: it says nothing about the steps, and the good lines after it stay.
void truncate_log(const fs::path& log, const RunState& s) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return;
  std::string kept, line;
  bool cut = false;
  std::vector<int64_t> bad;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (in.eof()) {  // no newline: cut short
      cut = true;
      break;
    }
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const auto field = [&](const char* key) {  // a tampered value counts as absent
      return j.contains(key) && j[key].is_number_integer() ? j[key].get<int64_t>() : 0;
    };
    const std::string type = j.is_object() && j.contains("type") && j["type"].is_string()
                                 ? j["type"].get<std::string>()
                                 : "";
    if (!j.is_object()) {
      bad.push_back(number);
    } else if ((type == "step" && field("step") > s.step) ||
               (type == "epoch" && field("epoch") > s.epoch)) {
      cut = true;  // this line and every later one come from after the checkpoint
      break;
    }
    kept += line + "\n";
  }
  in.close();
  if (!bad.empty()) {
    std::cerr << log.string() << ": " << runtime::count(int64_t(bad.size()), "line")
              << " not JSON (" << runtime::listed(bad) << "): kept as they are and skipped\n";
  }
  if (cut) io::write_file_atomic(log.string(), kept);
}

// What a run writes into its folder (besides save_every's epoch_K.hg): a new run that may
// overwrite removes these.
const char* const kRunFiles[] = {"last.hg",   "best.hg",  "config.json",
                                 "log.jsonl", "loss.png", "validation.png"};

// Up to `most` names in `dir` besides its lock, sorted; "…" when there are more.
std::vector<std::string> entries_of(const fs::path& dir, size_t most) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != io::FolderLock::kName) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  if (names.size() > most) names.resize(most), names.push_back("…");
  return names;
}

// ---- one run, step by step ---------------------------------------------------------------
// Everything a run holds while it trains, with one method per step of the run.
class Session {
 public:
  Session(const TrainConfig& config, const std::string& run_dir, bool resuming,
          ExistingRun existing)
      : c_(config),
        dir_(run_dir),
        last_path_((dir_ / "last.hg").string()),
        resuming_(resuming),
        existing_(existing),
        wall_start_(Clock::now()) {}

  TrainResult run() {
    env_ = DistEnv::from_environment();
    lead_ = env_.rank == 0;
    if (lead_) claim_run_dir();
    runtime::apply_threads(threads());
    device_ = device();
    check_batch_split();
    open_data();  // first: the model's joint count is the dataset's
    build_model();
    if (resuming_) restore();
    place_model();
    connect();
    bf16_ = agree(bf16_);  // every rank computes alike
    if (lead_) prepare_run_dir();
    announce();
    SignalGuard signals;
    if (out_of_steps()) {  // a run resumed at its max_steps takes no further step
      if (lead_) std::cerr << "reached max_steps (" << c_.max_steps << ") already\n";
      return finish(Outcome::kStopped);
    }
    try {
      while (state_.epoch < c_.epochs) {
        if (!train_epoch())
          return finish(g_stop_requested ? Outcome::kInterrupted : Outcome::kStopped);
        end_epoch();
        if (agree(g_stop_requested)) return finish(Outcome::kInterrupted);
      }
    } catch (const LostRankError& e) {
      progress_.end_line();
      throw LostRankError(std::string(e.what()) + "; " + last_path_ +
                          " (rank 0's last checkpoint) is intact: continue with hourglass train "
                          "--resume " +
                          dir_.string() + " (with any number of ranks)");
    }
    return finish(Outcome::kFinished);
  }

 private:
  // Threads per rank: the machine's cores shared by the ranks running on it.
  int threads() const {
    if (c_.threads > 0 || !env_.distributed()) return c_.threads;
    return std::max(1, runtime::cores() / std::max(1, env_.local_world_size));
  }

  // On CUDA each rank of a machine takes its own GPU unless the config names one.
  c10::Device device() const {
    auto d = runtime::parse_device(c_.device);
    if (d.is_cuda() && !d.has_index() && env_.distributed())
      d = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env_.local_rank));
    return d;
  }

  void check_batch_split() const {
    const int64_t parts = env_.world_size * c_.accumulate;
    TORCH_CHECK(c_.batch_size % parts == 0, "batch_size ", c_.batch_size,
                " (the global batch) is not divisible by the ", env_.world_size, " ranks",
                c_.accumulate > 1 ? " × accumulate " + std::to_string(c_.accumulate) : "",
                ": use a multiple of ", parts);
  }

  // Distributed: the process group, the check that every rank starts from the same config and
  // checkpoint, rank 0's weights everywhere, and the gradient hooks.
  void connect() {
    if (!env_.distributed()) return;
    DistOptions o;
    o.backend = runtime::name_in(name_table(c_.dist_backend), c_.dist_backend);
    o.timeout_s = c_.dist_timeout_s;
    o.device = device_;
    dist_ = Distributed::connect(env_, o);
    nlohmann::json same = c_.to_json();
    for (const char* per_rank : {"threads", "loader_threads", "device"}) same.erase(per_rank);
    // The optimizer's serialized state names parameters by address, which differs between
    // processes: its position (state_) and the weights tell checkpoints apart instead.
    auto start_state = weights_and_buffers();
    start_state.push_back(
        bytes_tensor(runtime::json_text(same) + runtime::json_text(to_json(state_))));
    const auto start = dist_->all_gather(tensors_hash(start_state));
    for (int r = 1; r < env_.world_size; ++r)
      TORCH_CHECK(start[r] == start[0], "rank ", r, " starts from a different config or checkpoint",
                  " than rank 0: start every rank with the same command line, config and run ",
                  "folder (", dir_.string(), ")");
    dist_->broadcast(weights_and_buffers());
    sync_ = std::make_unique<GradientSync>(*dist_, net_->parameters());
  }

  std::vector<at::Tensor> weights_and_buffers() const {
    auto all = net_->parameters();
    for (auto& b : net_->buffers()) all.push_back(b);
    return all;
  }

  // A decision every rank takes alike: true on all when true on any.
  bool agree(bool local) { return dist_ ? dist_->any(local) : local; }

  void build_model() {
    torch::manual_seed(c_.seed);
    net_ = model::StackedHourglass(c_.model);
    optimizer_ = make_optimizer(c_, net_->parameters());
  }

  // The weights, optimizer, RNG and position of last.hg; without one (the run stopped before its
  // first checkpoint) the run starts again from step 0.
  void restore() {
    if (!fs::exists(last_path_)) {
      if (lead_)
        std::cerr << "no checkpoint in " << dir_.string()
                  << " yet (the run stopped before its first one): starting it again\n";
      return;
    }
    const auto ckpt = io::read_checkpoint(last_path_);
    io::load_state(*net_, ckpt.state, last_path_);
    state_ = run_state_from(ckpt.meta["train"], last_path_);
    TORCH_CHECK(ckpt.extra.count("optimizer"), "cannot resume from ", last_path_,
                ": it lacks the optimizer state");
    load_optimizer_state(*optimizer_, ckpt.extra.at("optimizer"), last_path_);
    if (ckpt.extra.count("rng")) {
      auto generator = at::detail::getDefaultCPUGenerator();
      try {
        generator.set_state(ckpt.extra.at("rng"));
      } catch (const c10::Error& e) {
        TORCH_CHECK(false, "cannot resume from ", last_path_,
                    ": its random generator state is damaged (", e.what_without_backtrace(), ")");
      }
    }
  }

  void place_model() {
    net_->to(device_);
    memory_format_ =
        c_.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    for (auto& p : net_->parameters())
      if (p.dim() == 4) p.set_data(p.data().contiguous(memory_format_));
    keep_freed_memory();
    if (device_.is_cpu() && engine::winograd_supported()) {
      conv3x3_ = engine::TrainConv3x3(c_.conv3x3);
      net_->set_conv3x3(*conv3x3_);
    }
    bf16_ = c_.amp == Amp::kBf16 || (c_.amp == Amp::kAuto && choose_amp());
  }

  // amp=auto: bf16 where a probe (or the cache of an earlier one) found it faster on this model.
  bool choose_amp() {
    if (!device_.is_cpu() || !engine::bf16_supported()) {
      amp_.source = "unsupported";
      return false;
    }
    const std::string cache = c_.amp_cache == "off"  ? ""
                              : c_.amp_cache.empty() ? default_amp_cache()
                                                     : c_.amp_cache;
    std::ostringstream shape;
    shape << c_.model.describe() << " | " << c_.input_size << " px | batch " << micro_batch()
          << " | " << runtime::resolve_threads(threads()) << " threads"
          << (c_.channels_last ? " | channels_last" : "") << " | conv3x3 "
          << engine::algorithm_name(c_.conv3x3);
    const std::string key = amp_cache_key(shape.str());
    if (auto hit = cached_amp(cache, key)) {
      amp_ = *hit;
    } else {
      amp_ = probe_amp([this](bool bf16) { probe_step(bf16); }, c_.amp_probe_steps);
      store_amp(cache, key, amp_);
    }
    return amp_.bf16;
  }

  int64_t micro_batch() const {
    return std::max<int64_t>(1, c_.batch_size / (env_.world_size * c_.accumulate));
  }

  // One forward and backward pass of a micro-batch of the run's shape, as train_step computes it.
  // The gradients are dropped and the batch norms' running statistics put back: the run then
  // starts as it would have without the probe.
  void probe_step(bool bf16) {
    const int64_t n = micro_batch(), side = c_.input_size / 4;
    const auto input = torch::full({n, 3, c_.input_size, c_.input_size}, 0.5,
                                   torch::TensorOptions().device(device_))
                           .contiguous(memory_format_);
    const auto target = torch::zeros({n, c_.model.joints(), side, side}, input.options());
    std::vector<at::Tensor> statistics;
    for (const auto& b : net_->buffers()) statistics.push_back(b.clone());
    at::Tensor output;
    {
      runtime::Bf16Autocast autocast(bf16, device_.type());
      output = net_->forward(input);
    }
    stack_losses(output.to(at::kFloat), target, {}).sum().backward();
    torch::NoGradGuard no_grad;
    for (auto& p : net_->parameters()) p.mutable_grad().reset();
    const auto buffers = net_->buffers();
    for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(statistics[i]);
  }

  // Before any work: the folder becomes this run's alone (its lock is held until the run ends),
  // and a new run never mixes its files with another's.
  void claim_run_dir() {
    check_writable(dir_);
    lock_.emplace(dir_.string());
    if (resuming_) return;
    const auto held = entries_of(dir_, 5);
    if (held.empty()) return;
    std::string names;
    for (const auto& n : held) names += (names.empty() ? "" : ", ") + n;
    TORCH_CHECK(existing_ == ExistingRun::kOverwrite, "run folder ", dir_.string(),
                " is not empty (it holds ", names,
                "): resume the run there, train in a new folder, or start over in it (overwrite)");
    static const std::regex kNumbered(R"(epoch_[0-9]+\.hg)");
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      const bool numbered = std::regex_match(name, kNumbered);
      if (numbered ||
          std::find(std::begin(kRunFiles), std::end(kRunFiles), name) != std::end(kRunFiles))
        fs::remove(e.path(), ec);
    }
  }

  void prepare_run_dir() {
    // Model + optimizer state, three checkpoints at a time (temporary, last, best), plus margin.
    const uintmax_t ckpt_bytes = static_cast<uintmax_t>(net_->parameter_count()) * 4 * 3;
    check_run_dir(dir_, 3 * ckpt_bytes + (16u << 20));
    for (const auto& stale : io::remove_stale_temporaries(dir_.string()))
      std::cerr << "removed " << stale << " (an interrupted write)\n";
    auto config = c_.to_json();
    if (c_.amp == Amp::kAuto) config["amp_probe"] = amp_.to_json();  // what auto chose, and why
    io::write_file_atomic((dir_ / "config.json").string(), runtime::json_text(config, 2) + "\n");
    if (resuming_) truncate_log(dir_ / "log.jsonl", state_);
    log_.open(dir_ / "log.jsonl", std::ios::app);
    TORCH_CHECK(log_.good(), "cannot write ", (dir_ / "log.jsonl").string());
    if (c_.amp == Amp::kAuto) {
      auto line = amp_.to_json();
      line["type"] = "amp_probe";
      line["chosen_bf16"] = bf16_;
      log_ << runtime::json_text(line) << "\n";
    }
  }

  void open_data() {
    train_set_ = data::open_dataset(c_.dataset, c_.images);
    adopt_joint_count();
    data::LoaderOptions lo;
    lo.batch_size = static_cast<int>(c_.batch_size);
    lo.shards = env_.world_size;
    lo.shard = env_.rank;
    lo.threads = loader_threads();
    lo.seed = c_.seed;
    lo.drop_last = train_set_->size() >= static_cast<size_t>(c_.batch_size);
    lo.sample.res = static_cast<int>(c_.input_size);
    lo.sample.sigma = c_.sigma;
    lo.sample.target_encoding = c_.target_encoding;
    lo.sample.augment = data::AugmentOptions::preset(c_.augment);
    loader_ = std::make_unique<data::Loader>(train_set_, lo);
    if (!c_.val_dataset.empty()) open_validation();
    const int64_t batches = loader_->batches_per_epoch();
    TORCH_CHECK(batches > 0, "dataset ", train_set_->describe(), " gives no batch");
    iters_ = c_.iters_per_epoch > 0 ? std::min(c_.iters_per_epoch, batches) : batches;
  }

  // The model predicts the dataset's joints: a new run takes their count from it (a COCO file
  // trains a 17-joint model without model.joints); a resumed model must already have it.
  void adopt_joint_count() {
    const int64_t joints = train_set_->joints().size();
    if (joints == c_.model.joints()) return;
    TORCH_CHECK(!resuming_, "the model of ", dir_.string(), " has ", c_.model.joints(),
                " joints but dataset ", train_set_->describe(), " has ", joints,
                ": resume with the dataset it was trained on");
    if (lead_)
      std::cerr << "model.joints: " << joints << " (the joints of " << train_set_->describe()
                << ")\n";
    c_.model.joints(joints);
  }

  // The validation set, checked before the first step: its joints must be the model's, and every
  // person needs a PCK unit (the annotation's normalize, else its box), named when it has none.
  void open_validation() {
    val_set_ = data::open_dataset(c_.val_dataset, c_.val_images);
    if (c_.val_samples > 0) val_set_ = data::first_n(val_set_, static_cast<size_t>(c_.val_samples));
    TORCH_CHECK(val_set_->joints().size() == c_.model.joints(), "the model has ", c_.model.joints(),
                " joints (those of ", train_set_->describe(), ") but validation dataset ",
                val_set_->describe(), " has ", val_set_->joints().size(),
                ": validate on a dataset of the same joint set");
    for (size_t i = 0; i < val_set_->size(); ++i) {
      const auto a = val_set_->annotation(i);
      const double unit = data::pck_unit(a);
      TORCH_CHECK(std::isfinite(unit) && unit > 0, "validation dataset ", val_set_->describe(),
                  ": sample ", i, " (", a.image, ") has no PCK unit (normalize ", a.normalize,
                  ", scale ", a.scale, "): give it a positive normalize or a box");
    }
    metric_ = eval::metric_for(val_set_->joints());
  }

  int loader_threads() const {
    return c_.loader_threads > 0 ? c_.loader_threads : (runtime::cores() > 2 ? 2 : 1);
  }

  // amp=auto: what decided, for the announcement.
  std::string amp_note() const {
    if (c_.amp != Amp::kAuto) return "";
    if (amp_.source == "unsupported") return " (amp=auto: no bf16 on this device)";
    std::ostringstream o;
    o << std::fixed << std::setprecision(1) << " (amp=auto, " << amp_.source << ": a step takes "
      << amp_.f32_s * 1e3 << " ms in float32, " << amp_.bf16_s * 1e3 << " ms in bf16)";
    return o.str();
  }

  void announce() const {
    if (!lead_) return;
    std::cerr << "training " << c_.model.describe() << " on " << train_set_->describe() << ", "
              << runtime::count(iters_, "step") << "/epoch × " << runtime::count(c_.epochs, "epoch")
              << ", batch " << c_.batch_size << (bf16_ ? ", bf16 mixed precision" : "")
              << amp_note()
              << (dist_ ? ", " + std::to_string(env_.world_size) + " ranks (" + dist_->backend() +
                              ", " + std::to_string(sync_->buckets()) + " gradient buckets)"
                        : std::string())
              << (c_.accumulate > 1 ? ", accumulate " + std::to_string(c_.accumulate)
                                    : std::string())
              << (resuming_ ? ", resuming at epoch " + std::to_string(state_.epoch + 1) + " step " +
                                  std::to_string(state_.step)
                            : std::string())
              << "\n";
  }

  // The model, the joint set it predicts (its names, flip pairs, skeleton and OKS sigmas travel
  // with it), how it sees pixels, and the training state.
  void save(const std::string& path) {
    if (!lead_) return;
    log_.flush();  // the log reaches at least the checkpoint's step
    if (path == last_path_) last_checkpoint_ = Clock::now();
    io::Checkpoint ckpt;
    ckpt.options = c_.model;
    ckpt.state = io::state_of(*net_);
    ckpt.meta = {{"config", c_.to_json()},
                 {"train", to_json(state_)},
                 {"input_size", c_.input_size},
                 {"pixel_grid", data::pixel_grid_name(data::PixelGrid::kExact)},
                 {"inference", infer::inference_defaults_to_json(inference_defaults(c_))},
                 {"dataset", train_set_->describe()},
                 {"joint_set", train_set_->joints().name},
                 {"joints", data::joint_set_to_json(train_set_->joints())}};
    ckpt.extra["optimizer"] = optimizer_state(*optimizer_);
    ckpt.extra["rng"] = at::detail::getDefaultCPUGenerator().get_state();
    io::write_checkpoint(path, ckpt);
  }

  // The steps of one epoch from state_.batch on, with last.hg written every checkpoint_every_*
  // within it; false when the run must stop now (signal, max_steps or max_minutes; last.hg is
  // then written).
  bool train_epoch() {
    lr_ = learning_rate(c_, state_.epoch, state_.drop_scale);
    set_lr(*optimizer_, lr_);
    net_->train();
    loader_->start_epoch(state_.epoch, state_.batch);
    epoch_ = EpochTally{};
    epoch_.first_batch = state_.batch;
    epoch_.start = Clock::now();
    data::Batch batch;
    while (state_.batch < iters_) {
      drop_lr_on_time();
      follow_schedule();
      const auto wait_start = Clock::now();
      if (!loader_->next(batch)) break;
      epoch_.wait_s += seconds_since(wait_start);
      train_step(batch);
      ++state_.batch;  // a checkpoint from here on resumes at the next batch
      if (agree(should_stop())) {
        save(last_path_);
        if (!lead_) return false;
        log_.flush();
        std::cerr << "\n"
                  << stop_reason() << ": wrote " << last_path_
                  << "; continue with hourglass train --resume " << dir_.string() << "\n";
        return false;
      }
      if (state_.batch < iters_ && checkpoint_due()) save(last_path_);
    }
    if (lead_)
      progress_.update(state_.epoch, c_.epochs, iters_, iters_, epoch_.mean_loss(),
                       epoch_.samples / std::max(seconds_since(epoch_.start), 1e-9), 0, true);
    progress_.end_line();
    return true;
  }

  // lr_drop_fraction: one drop once that share of max_minutes has passed in this process.
  void drop_lr_on_time() {
    const double drop_at = 60 * c_.max_minutes * c_.lr_drop_fraction;  // seconds
    if (c_.lr_drop_fraction <= 0 || state_.time_dropped ||
        !agree(seconds_since(wall_start_) >= drop_at))
      return;
    state_.time_dropped = true;
    state_.drop_scale *= c_.lr_factor;
    lr_ = learning_rate(c_, state_.epoch, state_.drop_scale);
    set_lr(*optimizer_, lr_);
    progress_.end_line();
    if (lead_)
      std::cerr << "after " << drop_at / 60 << " minutes: learning rate × " << c_.lr_factor << " = "
                << lr_ << "\n";
  }

  // lr_schedule "cosine": the rate for the share of the budget used, before every step. Every
  // rank takes rank 0's clock so that the rates, and with them the weights, stay equal.
  void follow_schedule() {
    if (c_.lr_schedule != LrSchedule::kCosine) return;
    double elapsed = seconds_since(wall_start_);
    if (dist_ && c_.max_minutes > 0) {
      auto t = torch::full({1}, elapsed, torch::dtype(torch::kDouble).device(device_));
      dist_->broadcast({t});
      elapsed = t.item<double>();
    }
    const RunPosition at{state_.step, state_.epoch + static_cast<double>(state_.batch) / iters_,
                         elapsed};
    lr_ = cosine_lr(c_, budget_progress(c_, at), state_.drop_scale);
    set_lr(*optimizer_, lr_);
  }

  // Per micro-batch (this rank's share of the batch, in `accumulate` parts): forward (under
  // autocast when bf16), loss of every stack, backward, the last one's gradients averaged over the
  // ranks while it runs. Then the optimizer step and the log. The running statistics kept are
  // those of the first micro-batch of rank 0, as DistributedDataParallel keeps rank 0's.
  void train_step(const data::Batch& batch) {
    const auto n = static_cast<size_t>(c_.accumulate);
    const auto inputs = batch.input.to(device_).contiguous(memory_format_).chunk(n);
    const auto targets = batch.target.to(device_).chunk(n);
    const auto weights = c_.visibility_weights ? batch.weight.to(device_).chunk(n)
                                               : std::vector<at::Tensor>(inputs.size());
    optimizer_->zero_grad();
    at::Tensor losses;  // per stack, mean over the micro-batches and ranks
    std::vector<at::Tensor> first_statistics;
    for (size_t k = 0; k < inputs.size(); ++k) {
      at::Tensor output;
      {
        runtime::Bf16Autocast autocast(bf16_, device_.type());
        output = net_->forward(inputs[k]);
      }
      if (k == 0 && inputs.size() > 1)
        for (const auto& b : net_->buffers()) first_statistics.push_back(b.clone());
      const auto part = stack_losses(output.to(at::kFloat), targets[k], weights[k]);
      if (sync_ && k + 1 == inputs.size()) sync_->arm(k > 0);
      part.sum().backward();
      losses = k == 0 ? part.detach() : losses + part.detach();
    }
    if (sync_) epoch_.comm_wait_s += sync_->finish();
    if (inputs.size() > 1) {
      torch::NoGradGuard no_grad;
      for (auto& p : net_->parameters())
        if (p.grad().defined()) p.mutable_grad().div_(static_cast<double>(inputs.size()));
      const auto buffers = net_->buffers();
      for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(first_statistics[i]);
      losses = losses / static_cast<double>(inputs.size());
    }
    if (dist_) {
      dist_->all_reduce_sum(losses);
      losses.div_(env_.world_size);
    }
    const double value = losses.sum().item<double>();
    if (!std::isfinite(value)) {
      progress_.end_line();
      throw DivergedError(c10::str(
          "the loss became ", value, " at epoch ", state_.epoch + 1, ", step ", state_.step + 1,
          " (lr ", lr_, "); training stopped and ", last_path_,
          " keeps the last good weights: lower the learning rate (config key lr) and resume"));
    }
    optimizer_->step();
    if (dist_) dist_->broadcast(net_->buffers());
    ++state_.step;
    epoch_.loss_sum += value;
    ++epoch_.loss_n;
    epoch_.samples += batch.input.size(0) * env_.world_size;
    log_step(value, losses);
  }

  // dist_check_sync: every rank's hash of its weights and buffers, which must all be equal.
  std::vector<int64_t> weight_hashes() {
    const int64_t mine = tensors_hash(weights_and_buffers());
    auto all = dist_ ? dist_->all_gather(mine) : std::vector<int64_t>{mine};
    for (size_t r = 1; r < all.size(); ++r)
      TORCH_CHECK(all[r] == all[0], "after step ", state_.step, " rank ", r,
                  "'s weights differ from rank 0's (dist_check_sync): the ranks run different "
                  "builds or devices, or the gradient averaging is broken");
    return all;
  }

  // What the 3×3 convolutions compute, once each new layer shape has been decided (conv3x3=auto
  // times them on their first batch): a log line, and a summary on the terminal the first time.
  void log_conv3x3() {
    if (!conv3x3_) return;
    const auto choices = conv3x3_->choices();
    if (choices.size() == conv3x3_logged_) return;
    nlohmann::json line = {{"type", "conv3x3"}, {"conv3x3", engine::algorithm_name(c_.conv3x3)}};
    int64_t winograd = 0;
    for (const auto& [layer, choice] : choices) {
      line["layers"][layer] = {{"method", engine::method_name(choice.method)}};
      if (!choice.ms.empty()) line["layers"][layer]["ms"] = choice.ms;
      winograd += choice.method == engine::ConvMethod::kF32Winograd;
    }
    log_ << runtime::json_text(line) << "\n";
    if (conv3x3_logged_ == 0)
      std::cerr << "3x3 convolutions (conv3x3=" << engine::algorithm_name(c_.conv3x3)
                << "): Winograd for " << winograd << " of " << choices.size()
                << " layer shapes, direct for the others"
                << (bf16_ ? " (for float32 passes: the bf16 autocast steps use LibTorch's)" : "")
                << "\n";
    conv3x3_logged_ = choices.size();
  }

  void log_step(double value, const at::Tensor& losses) {
    const auto hashes = c_.dist_check_sync ? weight_hashes() : std::vector<int64_t>{};
    if (!lead_) return;
    const double elapsed = seconds_since(epoch_.start);
    const double sps = epoch_.samples / std::max(elapsed, 1e-9);
    nlohmann::json line = {{"type", "step"},
                           {"epoch", state_.epoch + 1},
                           {"step", state_.step},
                           {"loss", value},
                           {"lr", lr_},
                           {"samples_per_s", sps},
                           {"data_wait_s", epoch_.wait_s}};
    if (dist_) line["comm_wait_s"] = epoch_.comm_wait_s;
    if (!hashes.empty()) line["param_hashes"] = hashes;
    const auto per_stack = losses.detach().cpu().contiguous();
    line["stacks"] = std::vector<double>(per_stack.data_ptr<float>(),
                                         per_stack.data_ptr<float>() + per_stack.numel());
    log_ << runtime::json_text(line) << "\n";
    log_conv3x3();
    log_.flush();  // a kill loses no logged step that a checkpoint covers
    const double per_step = elapsed / static_cast<double>(state_.batch + 1 - epoch_.first_batch);
    double eta = ((iters_ - state_.batch - 1) + (c_.epochs - state_.epoch - 1) * iters_) * per_step;
    if (c_.max_steps > 0) eta = std::min(eta, (c_.max_steps - state_.step) * per_step);
    if (c_.max_minutes > 0)  // a time-budgeted run ends with its budget
      eta = std::min(eta, std::max(0.0, 60 * c_.max_minutes - seconds_since(wall_start_)));
    progress_.update(state_.epoch, c_.epochs, state_.batch + 1, iters_, epoch_.mean_loss(), sps,
                     eta);
  }

  // Only rank 0 writes, so only its clock counts: no agreement between the ranks is needed.
  bool checkpoint_due() const {
    const int64_t every = c_.checkpoint_every_steps;
    return (every > 0 && state_.step % every == 0) ||
           (c_.checkpoint_every_minutes > 0 &&
            seconds_since(last_checkpoint_) >= 60 * c_.checkpoint_every_minutes);
  }

  bool out_of_steps() const { return c_.max_steps > 0 && state_.step >= c_.max_steps; }
  bool out_of_time() const {
    return c_.max_minutes > 0 && seconds_since(wall_start_) >= 60 * c_.max_minutes;
  }
  bool should_stop() const { return g_stop_requested || out_of_steps() || out_of_time(); }
  const char* stop_reason() const {
    return g_stop_requested ? "interrupted"
           : out_of_steps() ? "reached max_steps"
                            : "reached max_minutes";
  }

  // Validation of every stack through the predictor, as `hourglass eval --weights` scores the
  // saved checkpoint, at the main threshold of the dataset's metric (PCKh@0.5 for MPII and
  // synthetic people, PCK@0.2 for the others). Returns the last stack's mean.
  double validate(nlohmann::json& epoch_line) {
    infer::PredictorOptions po;
    po.input_size = static_cast<int>(c_.input_size);
    po.flip = c_.val_flip;
    po.decoder = inference_defaults(c_).decoder;  // as the checkpoint tells eval to decode
    po.batch = static_cast<int>(c_.batch_size);
    po.grid = data::PixelGrid::kExact;
    po.backend.kind = infer::BackendKind::kTorch;
    po.backend.device = device_;
    po.backend.channels_last = c_.channels_last;
    const infer::Predictor predictor(infer::torch_backend(net_, po.backend), val_set_->joints(),
                                     po);
    eval::DatasetRunOptions ro;
    ro.loader_threads = loader_threads();
    if (dist_) {
      ro.shards = env_.world_size;
      ro.shard = env_.rank;
    }
    auto predictions = eval::predict_dataset(predictor, val_set_, ro);
    if (dist_) predictions = gather(predictions);
    const auto errors = eval::stack_errors(predictions);
    result_.last_validation.clear();
    nlohmann::json val = nlohmann::json::array();
    for (const auto& e : errors) {
      result_.last_validation.push_back(
          eval::pck_table(e, val_set_->joints(), metric_.thresholds[0]));
      val.push_back(table_json(result_.last_validation.back()));
    }
    epoch_line["val_" + eval::metric_key(metric_, metric_.thresholds[0])] = val;
    if (lead_) {
      std::cerr << "validation " << eval::metric_label(metric_, metric_.thresholds[0])
                << " (mean) per stack:";
      for (const auto& t : result_.last_validation) std::cerr << " " << t.mean;
      std::cerr << "\n";
    }
    return result_.last_validation.back().mean;
  }

  // Every rank's part of the validation predictions, in dataset order, on every rank: each rank
  // writes its rows into zeros shaped as the whole set and a sum over the ranks assembles them
  // (exact: x + 0 = x). Rows that no rank could read stay out, as they do in one process.
  eval::StackPredictions gather(const eval::StackPredictions& mine) {
    const int64_t n = static_cast<int64_t>(val_set_->size()), j = val_set_->joints().size();
    const bool empty = mine.samples.empty();
    const auto rows =
        torch::tensor(std::vector<int64_t>(mine.samples.begin(), mine.samples.end()), torch::kLong);
    auto assemble = [&](const at::Tensor& part, std::vector<int64_t> shape) {
      auto whole = torch::zeros(shape, torch::kDouble);
      if (!empty) whole.index_copy_(0, rows, part.to(torch::kDouble));
      whole = whole.to(device_);
      dist_->all_reduce_sum(whole);
      return whole.cpu();
    };
    const auto part = [&](const at::Tensor& t) { return empty ? at::Tensor() : t; };
    const auto keep =
        (assemble(torch::ones({rows.size(0)}), {n}) > 0.5).nonzero().squeeze(1).contiguous();
    eval::StackPredictions all;
    for (int64_t s = 0; s < c_.model.stacks(); ++s)
      all.joints.push_back(
          assemble(empty ? at::Tensor() : mine.joints[static_cast<size_t>(s)], {n, j, 3})
              .index_select(0, keep)
              .to(torch::kFloat));
    all.truth = assemble(part(mine.truth), {n, j, 2}).index_select(0, keep);
    all.present = (assemble(part(mine.present), {n, j}) > 0.5).index_select(0, keep);
    all.normalize = assemble(part(mine.normalize), {n}).index_select(0, keep);
    const auto kept = keep.accessor<int64_t, 1>();
    for (int64_t i = 0; i < kept.size(0); ++i) all.samples.push_back(static_cast<size_t>(kept[i]));
    TORCH_CHECK(!all.samples.empty(), "no sample of ", val_set_->describe(),
                " could be evaluated (every image failed to load?)");
    return all;
  }

  // Every rank validates its part of the set; rank 0's score (equal to the others', shared to be
  // sure) then decides every rank's learning-rate plateau and best checkpoint alike.
  double validation_score(nlohmann::json& epoch_line) {
    double score = validate(epoch_line);
    if (dist_) {
      auto t = torch::full({1}, score, torch::dtype(torch::kDouble).device(device_));
      dist_->broadcast({t});
      score = t.item<double>();
    }
    return score;
  }

  // The epoch's log line, validation, the learning-rate plateau and the epoch's checkpoints.
  void end_epoch() {
    nlohmann::json epoch_line = {
        {"type", "epoch"},
        {"epoch", state_.epoch + 1},
        {"train_loss", epoch_.mean_loss()},
        {"lr", lr_},
        {"seconds", seconds_since(epoch_.start)},
        {"data_wait_share", epoch_.wait_s / std::max(seconds_since(epoch_.start), 1e-9)}};
    if (dist_)
      epoch_line["comm_wait_share"] =
          epoch_.comm_wait_s / std::max(seconds_since(epoch_.start), 1e-9);
    bool improved = false;
    if (val_set_) {
      const double score = validation_score(epoch_line);
      improved = score > state_.best;
      if (improved) {
        state_.best = score;
        state_.plateau_wait = 0;
      } else if (c_.plateau_patience > 0 && ++state_.plateau_wait >= c_.plateau_patience) {
        state_.drop_scale *= c_.lr_factor;
        state_.plateau_wait = 0;
        if (lead_) std::cerr << "validation plateau: learning rate × " << c_.lr_factor << "\n";
      }
    }
    if (lead_) {
      log_ << runtime::json_text(epoch_line) << "\n";
      log_.flush();
      draw_curves();
    }
    // The state saved is that of the next epoch's start.
    ++state_.epoch;
    state_.batch = 0;
    state_.finished = state_.epoch >= c_.epochs;
    if (improved) save((dir_ / "best.hg").string());
    if (c_.save_every > 0 && state_.epoch % c_.save_every == 0)
      save((dir_ / ("epoch_" + std::to_string(state_.epoch) + ".hg")).string());
    save(last_path_);
  }

  // loss.png and validation.png in the run folder; a plot that fails does not stop the run.
  void draw_curves() {
    try {
      plot_training(dir_.string(), dir_.string());
    } catch (const std::exception& e) {
      progress_.end_line();
      std::cerr << "warning: the training curves were not drawn: " << e.what() << "\n";
    }
  }

  TrainResult finish(Outcome outcome) {
    progress_.end_line();
    result_.outcome = outcome;
    result_.epoch = state_.epoch;
    result_.step = state_.step;
    result_.best = state_.best;
    if (val_set_) result_.metric = eval::metric_label(metric_, metric_.thresholds[0]);
    result_.seconds = seconds_since(wall_start_);
    return result_;
  }

  // Sums over the steps of the epoch in progress.
  struct EpochTally {
    int64_t first_batch = 0, loss_n = 0, samples = 0;
    double loss_sum = 0, wait_s = 0;
    double comm_wait_s = 0;  // waiting for gradients after backward (communication not hidden)
    Clock::time_point start;
    double mean_loss() const { return loss_n ? loss_sum / loss_n : 0; }
  };

  TrainConfig c_;  // a copy: model.joints follows the dataset's
  const fs::path dir_;
  const std::string last_path_;
  const bool resuming_;
  const ExistingRun existing_;
  std::optional<io::FolderLock> lock_;  // the lead's, on the run folder
  const Clock::time_point wall_start_;
  Clock::time_point last_checkpoint_ = Clock::now();  // of last.hg, for checkpoint_every_minutes
  DistEnv env_;
  std::unique_ptr<Distributed> dist_;  // null in one process
  std::unique_ptr<GradientSync> sync_;
  bool lead_ = true;  // rank 0: writes the run folder, the log and the progress line
  c10::Device device_{c10::kCPU};
  model::StackedHourglass net_{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  at::MemoryFormat memory_format_ = at::MemoryFormat::Contiguous;
  bool bf16_ = false;
  AmpChoice amp_;                                // amp=auto's decision
  std::optional<engine::TrainConv3x3> conv3x3_;  // the residuals' 3×3 convolutions (AVX-512 CPUs)
  size_t conv3x3_logged_ = 0;                    // layer shapes in log.jsonl so far
  std::shared_ptr<const data::Dataset> train_set_, val_set_;
  eval::Metric metric_;  // validation's: the one `hourglass eval` reports first
  std::unique_ptr<data::Loader> loader_;
  int64_t iters_ = 0;
  std::ofstream log_;
  RunState state_;
  EpochTally epoch_;
  double lr_ = 0;
  Progress progress_;
  TrainResult result_;
};

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

Trainer::Trainer(TrainConfig config, std::string run_dir, ExistingRun existing)
    : Trainer(std::move(config), std::move(run_dir), false) {
  existing_ = existing;
}

Trainer::Trainer(TrainConfig config, std::string run_dir, bool resuming)
    : config_(std::move(config)), run_dir_(std::move(run_dir)), resuming_(resuming) {
  config_.validate();
}

Trainer Trainer::resume(const std::string& run_dir, const std::vector<std::string>& overrides) {
  const auto last = (fs::path(run_dir) / "last.hg").string();
  const auto config_path = fs::path(run_dir) / "config.json";
  if (!fs::exists(last)) {
    // Stopped before its first checkpoint: its config.json restarts it from step 0.
    TORCH_CHECK(fs::exists(config_path), "cannot resume: ",
                fs::exists(run_dir) ? run_dir + " holds neither last.hg nor config.json"
                                    : run_dir + " does not exist",
                " (was the run started in this folder?)");
    TrainConfig config;
    auto saved = data::read_json_file(config_path.string());
    saved.erase("amp_probe");  // what amp=auto measured: a record of the run, not a setting
    try {
      config.merge(saved);
    } catch (const nlohmann::json::exception& e) {
      TORCH_CHECK(false, "cannot resume from ", config_path.string(), ": ", e.what());
    }
    for (const auto& o : overrides) config.set(o);
    return Trainer(std::move(config), run_dir, true);
  }
  const auto ckpt = io::read_checkpoint(last);
  TORCH_CHECK(ckpt.meta.contains("config") && ckpt.meta.contains("train"), "cannot resume from ",
              last, ": it holds no training state (a converted or exported model?)");
  TrainConfig config;
  config.merge(ckpt.meta["config"]);
  const Optimizer trained_with = config.optimizer;
  for (const auto& o : overrides) config.set(o);
  TORCH_CHECK(config.optimizer == trained_with, "cannot resume from ", last, " with optimizer ",
              runtime::name_in(name_table(Optimizer{}), config.optimizer),
              ": it holds the state of ", runtime::name_in(name_table(Optimizer{}), trained_with),
              "; resume with that optimizer, or start a new run from its weights");
  return Trainer(std::move(config), run_dir, true);
}

TrainResult Trainer::run() {
  return Session(config_, run_dir_, resuming_, existing_).run();
}

}  // namespace hg::train
