#pragma once
/// amp=auto: which precision trains this model faster here, decided by timing a few training
/// steps of each (float32, bf16 autocast) on the model itself, since how fast bf16 runs depends
/// on the core and the library's kernels for it, not on a CPU flag. The answer can be cached per
/// CPU model, LibTorch version and run shape so that a run does not pay the probe twice.

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>

namespace hg::train {

/// bf16 must be at least this much faster per step to be chosen (a close call stays float32:
/// it is the more accurate, and the same on every run).
constexpr double kAmpGain = 1.03;

/// Seconds one call of `run` takes, for the precision `bf16` says. The default times it with a
/// steady clock; tests pass a fake that decides.
using ProbeTimer = std::function<double(bool bf16, const std::function<void()>& run)>;

/// The probe's answer.
struct AmpChoice {
  bool bf16 = false;
  double f32_s = 0;    ///< best float32 step, seconds (0 when not measured)
  double bf16_s = 0;   ///< best bf16 step, seconds (0 when not measured)
  std::string source;  ///< "probe", "cache" or "unsupported" (no AVX512-BF16: no probe)
  nlohmann::json to_json() const;
  static AmpChoice from_json(const nlohmann::json& j);
};

/// Whether steps of f32_s and bf16_s seconds make bf16 the choice (bf16_s · kAmpGain ≤ f32_s).
bool prefer_bf16(double f32_s, double bf16_s);

/// Calls step(false) and step(true) once each to warm up, then `rounds` times each in turns (so
/// that a busy machine slows both alike), and chooses by the best time of each.
AmpChoice probe_amp(const std::function<void(bool bf16)>& step, int rounds,
                    const ProbeTimer& timer = {});

/// The answer cached under `key` in the JSON file `path`, if any (a missing or unreadable file
/// is no answer).
std::optional<AmpChoice> cached_amp(const std::string& path, const std::string& key);
/// Adds (or replaces) `key` in the cache file `path`, creating its folder; written atomically.
/// A cache that cannot be written is left alone with a warning on stderr.
void store_amp(const std::string& path, const std::string& key, const AmpChoice& choice);

/// $XDG_CACHE_HOME/hourglass/amp.json, else $HOME/.cache/hourglass/amp.json ("" without either).
std::string default_amp_cache();
/// The cache key: CPU model, LibTorch version, and `shape` (what else decides the speed: the
/// model, input size, batch, threads, memory layout).
std::string amp_cache_key(const std::string& shape);

}  // namespace hg::train
