#include "hg/train/plots.h"

#include "hg/eval/plot.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

namespace hg::train {
namespace fs = std::filesystem;
namespace {

constexpr size_t kWindow = 25;  // steps per loss point

struct TrainingLog {
  std::vector<std::vector<double>> loss;  // per stack, per step
  std::vector<double> lr;                 // per step
  std::vector<std::vector<double>> val;   // per stack, per validation
  std::string metric;                     // "PCKh@0.5"
};

// "val_pckh@0.5" -> "PCKh@0.5"; "" for any other key.
std::string metric_of(const std::string& key) {
  if (key.rfind("val_pck", 0) != 0) return "";
  std::string name = key.substr(4);
  name[0] = 'P', name[1] = 'C', name[2] = 'K';
  return name;
}

TrainingLog read_log(const fs::path& path) {
  TrainingLog log;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;  // a line that is not JSON is skipped (see truncate_log)
    const auto number = [](const nlohmann::json& v) {  // a tampered value plots as a gap
      return v.is_number() ? v.get<double>() : std::nan("");
    };
    if (j.contains("type") && j["type"] == "step" && j.contains("stacks") &&
        j["stacks"].is_array()) {
      const auto& stacks = j["stacks"];
      log.loss.resize(stacks.size());
      for (size_t s = 0; s < stacks.size() && s < log.loss.size(); ++s)
        log.loss[s].push_back(number(stacks[s]));
      log.lr.push_back(j.contains("lr") ? number(j["lr"]) : 0.0);
      continue;
    }
    for (const auto& [key, v] : j.items()) {
      if (metric_of(key).empty() || !v.is_array()) continue;
      log.metric = metric_of(key);
      log.val.resize(v.size());
      for (size_t s = 0; s < v.size(); ++s) {
        const auto& mean = v[s].is_object() ? v[s].value("mean", nlohmann::json()) : v[s];
        log.val[s].push_back(number(mean));
      }
    }
  }
  return log;
}

void plot_loss(const TrainingLog& log, const fs::path& png) {
  const size_t points = log.loss.empty() ? 0 : log.loss[0].size() / kWindow;
  if (points < 2) return;
  eval::Panel loss{"training loss per stack (mean of 25 steps)", {}, "log10 MSE", 1e9, -1e9};
  std::vector<double> x;
  for (size_t p = 0; p < points; ++p) x.push_back(static_cast<double>((p + 1) * kWindow));
  for (size_t s = 0; s < log.loss.size(); ++s) {
    eval::Curve c{"stack " + std::to_string(s + 1), {}};
    for (size_t p = 0; p < points; ++p) {
      double sum = 0;
      for (size_t k = 0; k < kWindow; ++k) sum += log.loss[s][p * kWindow + k];
      c.values.push_back(std::log10(sum / kWindow));
      loss.y_min = std::min(loss.y_min, std::floor(c.values.back() * 2) / 2);
      loss.y_max = std::max(loss.y_max, std::ceil(c.values.back() * 2) / 2);
    }
    loss.curves.push_back(std::move(c));
  }
  // The rate in units of its own power of ten, named in the label: PLplot's exponent label
  // falls outside the panel.
  eval::Curve lr{"lr", {}};
  for (size_t p = 0; p < points; ++p) lr.values.push_back(log.lr[(p + 1) * kWindow - 1]);
  const double top = *std::max_element(lr.values.begin(), lr.values.end());
  const int exponent = top > 0 ? static_cast<int>(std::floor(std::log10(top))) : 0;
  for (double& v : lr.values) v /= std::pow(10.0, exponent);
  eval::Panel rate{"learning rate",
                   {},
                   "learning rate (x 1e" + std::to_string(exponent) + ")",
                   0,
                   top > 0 ? 1.1 * top / std::pow(10.0, exponent) : 1};
  rate.curves.push_back(std::move(lr));
  eval::plot_curves(png.string(), x, {loss, rate}, "step", 1400, 500);
}

void plot_validation(const TrainingLog& log, const fs::path& png) {
  if (log.val.empty() || log.val[0].size() < 2) return;
  eval::Panel panel{"validation " + log.metric + " (mean) per stack", {}};
  std::vector<double> x;
  for (size_t e = 0; e < log.val[0].size(); ++e) x.push_back(static_cast<double>(e + 1));
  for (size_t s = 0; s < log.val.size(); ++s) {
    eval::Curve c{"stack " + std::to_string(s + 1), {}};
    c.values = log.val[s];
    c.markers = true;  // one point per validation
    panel.curves.push_back(std::move(c));
  }
  eval::plot_curves(png.string(), x, {panel}, "epoch", 900, 500);
}

}  // namespace

void plot_training(const std::string& run_dir, const std::string& out_dir) {
  const auto log = read_log(fs::path(run_dir) / "log.jsonl");
  plot_loss(log, fs::path(out_dir) / "loss.png");
  plot_validation(log, fs::path(out_dir) / "validation.png");
}

}  // namespace hg::train
