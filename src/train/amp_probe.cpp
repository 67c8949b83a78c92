#include "hg/train/amp_probe.h"

#include "hg/runtime/machine_cache.h"

#include <torch/version.h>

#include <algorithm>
#include <chrono>

namespace hg::train {

nlohmann::json AmpChoice::to_json() const {
  return {{"bf16", bf16}, {"f32_ms", f32_s * 1e3}, {"bf16_ms", bf16_s * 1e3}, {"source", source}};
}

AmpChoice AmpChoice::from_json(const nlohmann::json& j) {
  AmpChoice c;
  c.bf16 = j.at("bf16").get<bool>();
  c.f32_s = j.at("f32_ms").get<double>() / 1e3;
  c.bf16_s = j.at("bf16_ms").get<double>() / 1e3;
  c.source = "cache";
  return c;
}

bool prefer_bf16(double f32_s, double bf16_s) {
  return bf16_s > 0 && bf16_s * kAmpGain <= f32_s;
}

AmpChoice probe_amp(const std::function<void(bool)>& step, int rounds, const ProbeTimer& timer) {
  const ProbeTimer time = timer ? timer : [](bool, const std::function<void()>& run) {
    const auto start = std::chrono::steady_clock::now();
    run();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  // The first step of each allocates its buffers and oneDNN builds its kernels: not timed.
  step(false);
  step(true);
  AmpChoice c;
  c.source = "probe";
  c.f32_s = c.bf16_s = 1e30;
  for (int r = 0; r < std::max(1, rounds); ++r) {
    c.f32_s = std::min(c.f32_s, time(false, [&] { step(false); }));
    c.bf16_s = std::min(c.bf16_s, time(true, [&] { step(true); }));
  }
  c.bf16 = prefer_bf16(c.f32_s, c.bf16_s);
  return c;
}

std::optional<AmpChoice> cached_amp(const std::string& path, const std::string& key) {
  const auto entry = runtime::cached_entry(path, key);
  if (!entry) return std::nullopt;
  try {
    return AmpChoice::from_json(*entry);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // an entry of another version: probe again and replace it
  }
}

void store_amp(const std::string& path, const std::string& key, const AmpChoice& choice) {
  auto j = choice.to_json();
  j.erase("source");
  runtime::store_entry(path, key, j, "amp", "set amp_cache=off to skip it");
}

std::string default_amp_cache() {
  return runtime::default_cache_file("amp.json");
}

std::string amp_cache_key(const std::string& shape) {
  return runtime::cpu_identity() + " | libtorch " + TORCH_VERSION + " | " + shape;
}

}  // namespace hg::train
