#pragma once
/// Training configuration: one JSON object, every key overridable from the command line
/// (`--set key=value`), saved with each run as config.json.

#include "hg/data/augment.h"
#include "hg/data/sample.h"
#include "hg/engine/engine.h"
#include "hg/infer/predictor.h"
#include "hg/model/hourglass.h"
#include "hg/runtime/names.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace hg::train {

enum class Optimizer { kRmsprop, kAdam };
/// "rmsprop", "adam".
const runtime::NameTable<Optimizer>& name_table(Optimizer);

/// How the learning rate moves (hg/train/schedule.h).
enum class LrSchedule { kStep, kCosine };
/// "step", "cosine".
const runtime::NameTable<LrSchedule>& name_table(LrSchedule);

/// Mixed precision of the forward pass.
enum class Amp { kOff, kBf16, kAuto };
/// "off", "bf16", "auto".
const runtime::NameTable<Amp>& name_table(Amp);

/// The collective backend of data-parallel training.
enum class DistBackend { kAuto, kGloo, kNccl };
/// "auto", "gloo", "nccl".
const runtime::NameTable<DistBackend>& name_table(DistBackend);

/// Every key's value is typed; config.json and `--set` spell enums by their name tables'
/// names.
struct TrainConfig {
  // ---- model
  model::StackedHourglassOptions model = model::StackedHourglassOptions().stacks(2);

  // ---- data
  /// A dataset spec (data::open_dataset): "synthetic:N:SEED", or an annotation file (MPII/FLIC
  /// .h5, COCO or custom .json).
  std::string dataset = "synthetic:20000:1";
  /// Image folder for .h5 annotations (their `imgname`s are relative to it).
  std::string images;
  /// Validation dataset spec ("" = none). For synthetic training data, use another seed:
  /// "synthetic:500:2" is held out from "synthetic:N:1".
  std::string val_dataset;
  std::string val_images;
  int64_t val_samples = 0;   ///< validation people used (0 = all of val_dataset)
  int64_t input_size = 256;  ///< network input side, pixels
  double sigma = 1.0;        ///< target Gaussian σ, heatmap pixels
  data::AugmentPreset augment = data::AugmentPreset::kPaper;  ///< none | paper | original | coco
  bool visibility_weights = true;  ///< zero loss on joints absent or outside the crop
  /// Target Gaussian centres: "unbiased" (the joint's sub-pixel position, what DARK decoding
  /// assumes) or "rounded" (the nearest heatmap pixel, as the original code and HRNet); see
  /// data::TargetEncoding.
  data::TargetEncoding target_encoding = data::TargetEncoding::kUnbiased;

  // ---- optimisation
  Optimizer optimizer = Optimizer::kRmsprop;
  double lr = 2.5e-4;
  double rmsprop_alpha = 0.99;
  double eps = 1e-8;
  std::vector<int64_t> lr_drops;  ///< epochs at whose start lr is multiplied by lr_factor
  double lr_factor = 0.1;
  int64_t plateau_patience = 0;  ///< >0: also drop lr after this many epochs without progress
  /// In (0, 1): also multiply lr by lr_factor once, when this fraction of max_minutes has passed
  /// in this process: a schedule for time-budgeted runs that ends at a low rate whatever the
  /// machine's speed (needs max_minutes).
  double lr_drop_fraction = 0;
  /// "step" (lr_drops, plateau and lr_drop_fraction drops) or "cosine" (hg/train/schedule.h: a
  /// warm-up over warmup_fraction of the run's budget, then cosine decay to lr × lr_final_factor
  /// at its end; the budget is max_steps, max_minutes or epochs, whichever ends first).
  LrSchedule lr_schedule = LrSchedule::kStep;
  double warmup_fraction = 0;  ///< cosine: share of the budget spent warming up, in [0, 1)
  double lr_final_factor = 0;  ///< cosine: the rate at the end of the budget, as a share of lr
  int64_t epochs = 10;
  int64_t iters_per_epoch = 0;  ///< 0 = one pass over the training set
  int64_t batch_size = 8;
  int threads = 0;         ///< compute threads (0 = all cores)
  int loader_threads = 0;  ///< data threads (0 = 1 on ≤ 2 cores, else 2)
  uint64_t seed = 1;
  int64_t save_every = 0;  ///< also keep epoch_K.hg every K epochs (0 = never)
  /// Crash safety: also write last.hg (atomically) within an epoch once this many minutes have
  /// passed since the last checkpoint (0 = only at epoch ends and stops), so that a kill -9 or a
  /// power cut loses at most this much training.
  double checkpoint_every_minutes = 5;
  int64_t checkpoint_every_steps = 0;  ///< also write last.hg every this many steps (0 = no)
  int64_t max_steps = 0;       ///< stop (with a checkpoint) after this many steps in total (0 = no)
  double max_minutes = 0;      ///< stop (with a checkpoint) after this wall time (0 = no limit)
  bool val_flip = false;       ///< validation with the flip test (as `eval` without --no-flip)
  std::string device = "cpu";  ///< cpu | cuda | cuda:N
  /// Activations and weights in channels-last (NHWC) order: LibTorch's oneDNN convolutions run
  /// 1.38× faster so on CPU (measured: 8 stacks, float32); the results are the same up to rounding.
  bool channels_last = true;
  /// Mixed precision: "off" (float32 throughout); "bf16" (the forward pass under autocast to
  /// bfloat16; weights, optimizer and loss stay float32; on a CPU only worthwhile with
  /// AVX512-BF16 or AMX, where it trained the 8-stack model 2.2× faster here); "auto" (bf16
  /// on a CPU with AVX512-BF16 where a short timed probe of both on this model finds bf16 at
  /// least kAmpGain faster (hg/train/amp_probe.h), else off).
  Amp amp = Amp::kAuto;
  /// The residuals' 3×3 convolutions in float32 on the CPU: "direct" (LibTorch's), "winograd"
  /// (Winograd F(4×4, 3×3) for the forward pass and both gradients, where it applies: AVX-512,
  /// channels in multiples of 16, sides in multiples of 4; hg/engine/train_conv.h) or "auto" (per
  /// layer shape, Winograd where a timed forward pass of it is kAutoGain faster; timed once per
  /// machine, kept in the engine's choice cache).
  engine::Algorithm conv3x3 = engine::Algorithm::kAuto;
  /// amp=auto: timed forward+backward steps of each precision (after one untimed each).
  int64_t amp_probe_steps = 3;
  /// amp=auto: the JSON file caching the probe's answer per CPU model, LibTorch version and run
  /// shape ("" = $XDG_CACHE_HOME/hourglass/amp.json or ~/.cache/hourglass/amp.json; "off" = no
  /// cache: probe on every run).
  std::string amp_cache;

  // ---- data parallelism (docs/distributed.md)
  /// Micro-batches per optimizer step: each takes batch_size/(ranks·accumulate) samples and the
  /// gradients are averaged, so W ranks and one process with accumulate=W take the same steps.
  int64_t accumulate = 1;
  DistBackend dist_backend = DistBackend::kAuto;  ///< auto: nccl on CUDA, else gloo
  /// A rank waiting longer than this in the rendezvous or a collective (a lost peer) stops the
  /// job with a message naming the rank lost. Must exceed rank 0's validation and checkpoint time.
  double dist_timeout_s = 300;
  /// After every step, gather a hash of each rank's parameters and buffers into log.jsonl
  /// ("param_hashes") and stop if they differ (a check; costs a pass over the weights).
  bool dist_check_sync = false;

  /// Everything as JSON (model keys under "model").
  nlohmann::json to_json() const;
  /// Reads keys present in `j` over the current values; unknown keys and wrong types are errors
  /// that name the key.
  void merge(const nlohmann::json& j);
  /// Applies "key=value" (value parsed as JSON, else taken as a string; "model.stacks=4" for
  /// model keys).
  void set(const std::string& assignment);
  /// Throws on values out of range.
  void validate() const;
};

/// One key of TrainConfig, for listings (`hourglass train --list-keys`).
struct ConfigKey {
  std::string name;           ///< as `--set` takes it ("lr", "model.stacks")
  std::string type;           ///< integer, number, bool, text or list
  std::string default_value;  ///< TrainConfig{}'s value, as JSON
  std::string meaning;
};
/// Every key, in the order config.json writes them, then the model's ("model.NAME").
std::vector<ConfigKey> config_keys();

/// The recipes preset() knows.
std::vector<std::string> recipe_names();

/// What a model trained with `config` implies for inference, saved in its checkpoints (meta
/// "inference"): the flip test only when the augmentation mirrors people, DARK decoding for
/// unbiased targets, the quarter-pixel offset for rounded ones.
infer::InferenceDefaults inference_defaults(const TrainConfig& config);

/// A named recipe: "paper" (8 stacks, 256 px, RMSProp 2.5e-4, the paper's augmentation, σ 1),
/// "original" (the original code's augmentation and σ 1.75), "cpu" (a small 2-stack model at
/// 128 px that trains in minutes on a laptop CPU), "demo" (what `hourglass demo` runs) or "coco"
/// (MMPose's hourglass-52 settings for COCO train2017 under data/coco: 1 stack, 17 joints,
/// 256 px, σ 2, Adam 5e-4, 210 epochs, batch 32, augmentation "coco" with half-body crops).
TrainConfig preset(const std::string& name);

}  // namespace hg::train
