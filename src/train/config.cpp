#include "hg/train/config.h"

#include "hg/data/augment.h"
#include "hg/data/json.h"
#include "hg/data/sample.h"
#include "hg/io/checkpoint.h"
#include "hg/runtime/text.h"

#include <c10/util/Exception.h>

#include <limits>

namespace hg::train {
namespace {

// One table of the keys, so that to_json, merge and the listing cannot drift apart: each key's
// name, its field and its meaning (`hourglass train --list-keys` prints them).
template <typename Fn>
void for_each_key(TrainConfig& c, Fn&& fn) {
  fn("dataset", c.dataset,
     "training dataset: synthetic:N:SEED, or an annotation file (MPII/FLIC .h5, COCO or custom "
     ".json)");
  fn("images", c.images, "image folder of an .h5 or COCO dataset (\"\" = beside the file)");
  fn("val_dataset", c.val_dataset, "validation dataset, as dataset (\"\" = none)");
  fn("val_images", c.val_images, "image folder of val_dataset");
  fn("val_samples", c.val_samples, "validation people used (0 = all of val_dataset)");
  fn("input_size", c.input_size, "network input side, pixels");
  fn("sigma", c.sigma, "target Gaussian sigma, heatmap pixels");
  fn("target_encoding", c.target_encoding,
     "target centres: unbiased (sub-pixel) or rounded (the original code's)");
  fn("augment", c.augment, "augmentation: none, paper, original or coco");
  fn("visibility_weights", c.visibility_weights, "no loss on joints absent or outside the crop");
  fn("optimizer", c.optimizer, "rmsprop or adam");
  fn("lr", c.lr, "learning rate (the peak, with lr_schedule=cosine)");
  fn("rmsprop_alpha", c.rmsprop_alpha, "RMSProp's smoothing constant");
  fn("eps", c.eps, "the optimizer's epsilon");
  fn("lr_drops", c.lr_drops, "step schedule: epochs at whose start lr is multiplied by lr_factor");
  fn("lr_factor", c.lr_factor, "step schedule: the factor of each drop");
  fn("plateau_patience", c.plateau_patience,
     "step schedule: also drop lr after this many epochs without progress (0 = never)");
  fn("epochs", c.epochs, "training epochs");
  fn("iters_per_epoch", c.iters_per_epoch, "steps per epoch (0 = one pass over the dataset)");
  fn("batch_size", c.batch_size, "samples per optimizer step, over all ranks");
  fn("threads", c.threads, "compute threads (0 = all cores)");
  fn("loader_threads", c.loader_threads, "data threads (0 = 1 on up to 2 cores, else 2)");
  fn("seed", c.seed, "seed of the sampling, augmentation and initial weights");
  fn("save_every", c.save_every, "also keep epoch_K.hg every K epochs (0 = never)");
  fn("checkpoint_every_minutes", c.checkpoint_every_minutes,
     "also write last.hg within an epoch after this many minutes (0 = off)");
  fn("checkpoint_every_steps", c.checkpoint_every_steps,
     "also write last.hg every this many steps (0 = off)");
  fn("max_steps", c.max_steps, "stop after this many steps in total (0 = no limit)");
  fn("max_minutes", c.max_minutes, "stop after this much training time (0 = no limit)");
  fn("lr_drop_fraction", c.lr_drop_fraction,
     "step schedule: also drop lr once when this share of max_minutes has passed");
  fn("lr_schedule", c.lr_schedule, "step or cosine (warm-up, then cosine decay over the budget)");
  fn("warmup_fraction", c.warmup_fraction,
     "cosine: share of the budget spent warming up, in [0, 1)");
  fn("lr_final_factor", c.lr_final_factor, "cosine: the rate at the end, as a share of lr");
  fn("val_flip", c.val_flip, "validate with the flip test");
  fn("device", c.device, "cpu, cuda or cuda:N");
  fn("channels_last", c.channels_last, "activations and weights in NHWC order");
  fn("amp", c.amp, "mixed precision: off, bf16 or auto (bf16 where a timed probe finds it faster)");
  fn("conv3x3", c.conv3x3,
     "residual 3x3 convolutions on CPU: direct, winograd or auto (timed per layer)");
  fn("amp_probe_steps", c.amp_probe_steps, "amp=auto: timed steps of each precision");
  fn("amp_cache", c.amp_cache,
     "amp=auto: file caching the probe's answer (\"\" = the user cache, off = none)");
  fn("accumulate", c.accumulate, "micro-batches per optimizer step");
  fn("dist_backend", c.dist_backend, "data-parallel backend: gloo, nccl or auto");
  fn("dist_timeout_s", c.dist_timeout_s,
     "seconds a rank waits for a lost peer before stopping the job");
  fn("dist_check_sync", c.dist_check_sync, "compare every rank's weights after each step");
}

// The model's keys (io::options_to_json), listed as model.NAME.
constexpr std::pair<const char*, const char*> kModelKeys[] = {
    {"stacks", "hourglass stacks"},
    {"features", "channels inside the hourglasses"},
    {"depth", "levels per hourglass"},
    {"residuals", "residual modules per block"},
    {"joints", "heatmaps per stack (0 = the dataset's joint count)"},
    {"stem1", "width after the stem's first residual"},
    {"stem2", "width after the stem's second residual"},
};

// Names people type for a key, from other tools' configs.
constexpr std::pair<const char*, const char*> kKeyAliases[] = {
    {"learning_rate", "lr"},        {"batch", "batch_size"},
    {"steps", "max_steps"},         {"minutes", "max_minutes"},
    {"size", "input_size"},         {"image_size", "input_size"},
    {"workers", "loader_threads"},  {"num_workers", "loader_threads"},
    {"schedule", "lr_schedule"},    {"stacks", "model.stacks"},
    {"features", "model.features"}, {"joints", "model.joints"},
};

std::string json_type(const nlohmann::json& v) {
  if (v.is_boolean()) return "bool";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_array()) return "list";
  return "text";
}

// A key's value as config.json writes it: enums by name.
template <typename T>
nlohmann::json value_json(const T& value) {
  if constexpr (std::is_enum_v<T>)
    return runtime::name_in(name_table(T{}), value);
  else
    return value;
}

template <typename T>
std::string type_name(const T& value) {
  if constexpr (std::is_enum_v<T>) {
    std::string names;
    for (const auto& name : runtime::names_in(name_table(T{})))
      names += (names.empty() ? "" : "|") + name;
    return names;
  } else {
    return json_type(value);
  }
}

std::vector<std::string> key_names() {
  std::vector<std::string> names;
  TrainConfig c;
  for_each_key(c, [&](const char* name, auto&, const char*) { names.emplace_back(name); });
  for (const auto& [name, meaning] : kModelKeys) names.push_back(std::string("model.") + name);
  return names;
}

// "unknown config key 'K'" with the key meant, if it can be guessed.
std::string unknown_key_message(const std::string& key) {
  for (const auto& [alias, name] : kKeyAliases)
    if (key == alias)
      return "unknown config key '" + key + "' (did you mean '" + name +
             "'? hourglass train --list-keys lists them all)";
  const std::string guess = runtime::did_you_mean(key, key_names());
  return "unknown config key '" + key + "'" +
         (guess.empty() ? " (hourglass train --list-keys lists them all)" : guess);
}

}  // namespace

nlohmann::json TrainConfig::to_json() const {
  nlohmann::json j;
  auto& self = const_cast<TrainConfig&>(*this);
  for_each_key(self,
               [&j](const char* key, auto& value, const char*) { j[key] = value_json(value); });
  j["model"] = io::options_to_json(model);
  return j;
}

void TrainConfig::merge(const nlohmann::json& j) {
  TORCH_CHECK(j.is_object(), "a training config must be a JSON object, got ",
              runtime::json_text(j));
  // Not a structured binding: the lambda below captures both (C++17 clang refuses bindings).
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    const nlohmann::json& value = item.value();
    if (key == "model") {
      nlohmann::json m = io::options_to_json(model);
      TORCH_CHECK(value.is_object(), "config key 'model' must be an object");
      for (const auto& [k, v] : value.items()) m[k] = v;
      model = io::options_from_json(m);
      continue;
    }
    bool found = false;
    for_each_key(*this, [&](const char* name, auto& field, const char*) {
      if (key != name) return;
      found = true;
      try {
        using T = std::decay_t<decltype(field)>;
        if constexpr (std::is_same_v<T, double>) {
          TORCH_CHECK(value.is_number(), "expected a number");
        } else if constexpr (std::is_same_v<T, bool>) {
          TORCH_CHECK(value.is_boolean(), "expected true or false");
        } else if constexpr (std::is_integral_v<T>) {
          TORCH_CHECK(value.is_number_integer(), "expected an integer");
          // Checked before narrowing: 2^32 + 1 epochs must not become 1.
          const bool fits =
              value.is_number_unsigned()
                  ? value.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                  : value.get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                        value.get<int64_t>() <= int64_t(std::numeric_limits<T>::max());
          TORCH_CHECK(fits, "out of range");
        } else if constexpr (std::is_same_v<T, std::string>) {
          TORCH_CHECK(value.is_string(), "expected a string");
        }
        if constexpr (std::is_enum_v<T>) {
          TORCH_CHECK(value.is_string(), "expected ", runtime::names_listed(name_table(T{})));
          field = runtime::parse_in(name_table(T{}), value.get<std::string>(), key);
        } else {
          field = value.get<T>();
        }
      } catch (const c10::Error& e) {
        TORCH_CHECK(false, "config key '", key, "': ", runtime::json_text(value), " is invalid (",
                    e.what_without_backtrace(), ")");
      } catch (const std::exception& e) {
        TORCH_CHECK(false, "config key '", key, "': ", runtime::json_text(value), " is invalid (",
                    e.what(), ")");
      }
    });
    TORCH_CHECK(found, unknown_key_message(key));
  }
}

void TrainConfig::set(const std::string& assignment) {
  const auto eq = assignment.find('=');
  TORCH_CHECK(eq != std::string::npos && eq > 0, "a setting must be key=value, got '", assignment,
              "'");
  std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  // A value that is not JSON is taken as a string (--set dataset=mpii).
  const nlohmann::json value = nlohmann::json::accept(text)
                                   ? data::parse_json(text, "config key " + key)
                                   : nlohmann::json(text);
  if (key.rfind("model.", 0) == 0) {
    merge({{"model", {{key.substr(6), value}}}});
  } else {
    merge({{key, value}});
  }
}

namespace {

// "config key 'KEY' = VALUE is outside [LO, HI]" unless lo <= value <= hi (NaN is outside);
// `below_hi`: the range is [LO, HI).
template <typename T>
void check_key(const char* key, T value, T lo, T hi, const char* note = "", bool below_hi = false) {
  TORCH_CHECK(value >= lo && (below_hi ? value < hi : value <= hi), "config key '", key,
              "' = ", value, " is outside [", lo, ", ", hi, below_hi ? ")" : "]", note);
}

}  // namespace

void TrainConfig::validate() const {
  model.validate();
  model.check_input_size(input_size, input_size, "input_size");
  constexpr double kHuge = std::numeric_limits<double>::max();  // finite, and positive
  check_key("lr", lr, 1e-12, kHuge);
  check_key("eps", eps, 1e-30, 1.0);
  check_key("lr_factor", lr_factor, 1e-12, kHuge);
  check_key("rmsprop_alpha", rmsprop_alpha, 0.0, 1.0, "", true);
  check_key<int64_t>("epochs", epochs, 1, 1'000'000);
  check_key<int64_t>("iters_per_epoch", iters_per_epoch, 0, int64_t{1} << 40, " (0: one pass)");
  check_key<int64_t>("batch_size", batch_size, 1, 4096);
  check_key<int64_t>("val_samples", val_samples, 0, int64_t{1} << 40, " (0: all)");
  check_key("threads", threads, 0, 4096, " (0: all cores)");
  check_key("loader_threads", loader_threads, 0, 256, " (0: chosen by the cores)");
  check_key<int64_t>("save_every", save_every, 0, 1'000'000, " (0: never)");
  check_key<int64_t>("max_steps", max_steps, 0, int64_t{1} << 50, " (0: no limit)");
  check_key("max_minutes", max_minutes, 0.0, 1e7, " (0: no limit)");
  check_key<int64_t>("plateau_patience", plateau_patience, 0, 1'000'000, " (0: off)");
  check_key("sigma", sigma, 1e-3, 100.0);
  TORCH_CHECK(!dataset.empty(), "a training dataset is needed (config key 'dataset')");
  check_key("lr_drop_fraction", lr_drop_fraction, 0.0, 1.0, "", true);
  TORCH_CHECK(lr_drop_fraction == 0 || max_minutes > 0,
              "lr_drop_fraction is a fraction of max_minutes: set max_minutes too");
  TORCH_CHECK(lr_schedule == LrSchedule::kStep || (lr_drops.empty() && lr_drop_fraction == 0),
              "lr_schedule cosine sets the rate of every step: unset lr_drops and "
              "lr_drop_fraction (lr_drops=[] and lr_drop_fraction=0)");
  for (const auto drop : lr_drops) check_key<int64_t>("lr_drops", drop, 0, 1'000'000);
  check_key("warmup_fraction", warmup_fraction, 0.0, 1.0, "", true);
  check_key("lr_final_factor", lr_final_factor, 0.0, 1.0);
  check_key<int64_t>("amp_probe_steps", amp_probe_steps, 1, 1000);
  check_key<int64_t>("accumulate", accumulate, 1, 4096);
  TORCH_CHECK(batch_size % accumulate == 0, "batch_size ", batch_size,
              " is not divisible by accumulate ", accumulate,
              ": the global batch splits into accumulate equal micro-batches");
  check_key("checkpoint_every_minutes", checkpoint_every_minutes, 0.0, 1e7, " (0: off)");
  check_key<int64_t>("checkpoint_every_steps", checkpoint_every_steps, 0, int64_t{1} << 50,
                     " (0: off)");
  check_key("dist_timeout_s", dist_timeout_s, 1e-3, 1e7);
}

std::vector<ConfigKey> config_keys() {
  std::vector<ConfigKey> keys;
  TrainConfig c;
  for_each_key(c, [&](const char* name, auto& value, const char* meaning) {
    keys.push_back({name, type_name(value), runtime::json_text(value_json(value)), meaning});
  });
  const nlohmann::json model = io::options_to_json(c.model);
  for (const auto& [name, meaning] : kModelKeys)
    keys.push_back(
        {std::string("model.") + name, "integer", runtime::json_text(model.at(name)), meaning});
  return keys;
}

infer::InferenceDefaults inference_defaults(const TrainConfig& config) {
  infer::InferenceDefaults d;
  d.flip = data::AugmentOptions::preset(config.augment).flip_prob > 0;
  d.decoder = config.target_encoding == data::TargetEncoding::kUnbiased
                  ? infer::PeakDecoder::kDark
                  : infer::PeakDecoder::kQuarterOffset;
  return d;
}

const runtime::NameTable<Optimizer>& name_table(Optimizer) {
  static const runtime::NameTable<Optimizer> table = {{"rmsprop", Optimizer::kRmsprop},
                                                      {"adam", Optimizer::kAdam}};
  return table;
}

const runtime::NameTable<LrSchedule>& name_table(LrSchedule) {
  static const runtime::NameTable<LrSchedule> table = {{"step", LrSchedule::kStep},
                                                       {"cosine", LrSchedule::kCosine}};
  return table;
}

const runtime::NameTable<Amp>& name_table(Amp) {
  static const runtime::NameTable<Amp> table = {
      {"off", Amp::kOff}, {"bf16", Amp::kBf16}, {"auto", Amp::kAuto}};
  return table;
}

const runtime::NameTable<DistBackend>& name_table(DistBackend) {
  static const runtime::NameTable<DistBackend> table = {
      {"auto", DistBackend::kAuto}, {"gloo", DistBackend::kGloo}, {"nccl", DistBackend::kNccl}};
  return table;
}

std::vector<std::string> recipe_names() {
  return {"paper", "original", "cpu", "demo", "coco"};
}

TrainConfig preset(const std::string& name) {
  TrainConfig c;
  if (name == "paper") {
    c.model = model::StackedHourglassOptions().stacks(8);
    c.augment = data::AugmentPreset::kPaper;
    c.batch_size = 6;
    c.epochs = 100;
  } else if (name == "original") {
    c.model = model::StackedHourglassOptions().stacks(8);
    c.augment = data::AugmentPreset::kOriginal;
    c.sigma = 1.75;
    c.batch_size = 6;
    c.epochs = 100;
    c.plateau_patience = 5;
    c.lr_factor = 0.2;
  } else if (name == "cpu" || name == "demo") {
    // Small enough for a laptop CPU: the stem stays at 64 channels (at 128 px it would otherwise
    // cost half of the network's arithmetic), 2 stacks so that intermediate supervision shows.
    c.model = model::StackedHourglassOptions().stacks(2).features(64).stem1(64).stem2(64);
    c.input_size = 128;
    c.sigma = 1.0;
    c.optimizer = Optimizer::kAdam;
    c.lr = 1e-3;
    c.batch_size = 16;
    c.val_dataset = "synthetic:300:2";
    if (name == "demo") {
      // Fresh synthetic people rather than augmented repeats: the test images come from the
      // same unaugmented distribution. An "epoch" is 250 steps; the time budget ends the run.
      c.dataset = "synthetic:100000:1";
      c.augment = data::AugmentPreset::kNone;
      // Measured here: σ 2 and lr 2e-3 reach 62% validation PCKh in 1000 steps where σ 1 and
      // lr 1e-3 reach 20% (broader targets give the early, near-zero output phase more signal).
      c.sigma = 2.0;
      // The time budget ends the run. The rate follows the share of it used, so that a slow
      // machine gets the same curve in fewer steps: a short warm-up, then a cosine decay to 1 %
      // of the peak at the end. The peak was chosen with 1944 steps (a slow machine's 9
      // minutes): 5e-3, 1e-2, 2e-2, 4e-2 reached 79.3, 85.1, 90.6, 92.2 % held out
      // (docs/benchmarks.md, "How the recipe was chosen").
      // Batch 8, not the cpu recipe's 16: where the 9 minutes buy few samples, more and smaller
      // steps learn more from them (measured on a slow machine: docs/benchmarks.md). An epoch
      // stays 4000 samples.
      c.batch_size = 8;
      c.iters_per_epoch = 500;
      c.epochs = 40;
      c.max_minutes = 9.0;
      c.lr_schedule = LrSchedule::kCosine;
      c.lr = 4e-2;
      c.warmup_fraction = 0.05;
      c.lr_final_factor = 0.01;
    } else {
      c.dataset = "synthetic:4000:1";
      c.augment = data::AugmentPreset::kPaper;
      c.epochs = 8;
      c.lr_drops = {6};
    }
  } else if (name == "coco") {
    // MMPose's hourglass-52 on COCO (AP 72.6 at 256×256): one 256-feature stack, 17 joints,
    // σ 2, Adam 5e-4 over 210 epochs with drops at 170 and 200. People are cropped from their
    // boxes with the 1.25 margin and flipped with COCO's pairs by the COCO reader's joint set.
    c.model = model::StackedHourglassOptions().stacks(1).joints(17);
    c.dataset = "data/coco/annotations/person_keypoints_train2017.json";
    c.images = "data/coco/train2017";
    c.val_dataset = "data/coco/annotations/person_keypoints_val2017.json";
    c.val_images = "data/coco/val2017";
    c.sigma = 2.0;
    c.augment = data::AugmentPreset::kCoco;  // MMPose's scale, rotation, flip and half-body crops
    c.optimizer = Optimizer::kAdam;
    c.lr = 5e-4;
    c.batch_size = 32;
    c.epochs = 210;
    c.lr_drops = {170, 200};
    c.val_flip = true;
  } else {
    TORCH_CHECK(false, "unknown recipe '", name, "'", runtime::did_you_mean(name, recipe_names()),
                ": use paper, original, cpu, demo or coco");
  }
  return c;
}

}  // namespace hg::train
