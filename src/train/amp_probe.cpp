#include "hg/train/amp_probe.h"

#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace hg::train {
namespace fs = std::filesystem;

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

namespace {

nlohmann::json read_cache(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json::object();
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : nlohmann::json::object();
}

}  // namespace

std::optional<AmpChoice> cached_amp(const std::string& path, const std::string& key) {
  if (path.empty()) return std::nullopt;
  const auto j = read_cache(path);
  if (!j.contains(key)) return std::nullopt;
  try {
    return AmpChoice::from_json(j.at(key));
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // an entry of another version: probe again and replace it
  }
}

void store_amp(const std::string& path, const std::string& key, const AmpChoice& choice) {
  if (path.empty()) return;
  auto j = read_cache(path);
  j[key] = choice.to_json();
  j[key].erase("source");
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(2) << "\n";
    if (!out.good()) {
      std::cerr << "hourglass: warning: cannot write the amp cache " << path
                << " (set amp_cache=off to skip it)\n";
      return;
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) std::cerr << "hourglass: warning: cannot write the amp cache " << path << "\n";
}

std::string default_amp_cache() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return (fs::path(x) / "hourglass" / "amp.json").string();
  if (const char* h = std::getenv("HOME"); h && *h)
    return (fs::path(h) / ".cache" / "hourglass" / "amp.json").string();
  return "";
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) break;
    auto name = line.substr(colon + 1);
    name.erase(0, name.find_first_not_of(' '));
    return name;
  }
  return "unknown cpu";
}

std::string amp_cache_key(const std::string& shape) {
  return cpu_model_name() + " | libtorch " + TORCH_VERSION + " | " + shape;
}

}  // namespace hg::train
