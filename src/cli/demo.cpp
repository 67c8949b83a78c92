#include "hg/cli/cli.h"
#include "hg/data/loader.h"
#include "hg/data/readers.h"
#include "hg/eval/evaluate.h"
#include "hg/eval/plot.h"
#include "hg/infer/decode.h"
#include "hg/infer/predictor.h"
#include "hg/io/atomic_file.h"
#include "hg/io/checkpoint.h"
#include "hg/train/trainer.h"
#include "hg/viz/draw.h"

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

namespace hg::cli {
namespace fs = std::filesystem;
namespace {

std::string percent(double v) {
  return runtime::fixed(v, 1);
}

// The grouped table, one row per stack (the paper's comparison of intermediate predictions).
std::string group_table(const std::vector<eval::PckTable>& stacks) {
  std::ostringstream md;
  md << "| stack |";
  for (const auto& g : stacks.front().group_names) md << " " << g << " |";
  md << " mean | mean (count-weighted) |\n|---|";
  for (size_t g = 0; g <= stacks.front().group_names.size() + 1; ++g) md << "---|";
  md << "\n";
  for (size_t s = 0; s < stacks.size(); ++s) {
    md << "| " << s + 1 << " |";
    for (double v : stacks[s].groups) md << " " << percent(v) << " |";
    md << " **" << percent(stacks[s].mean) << "** | " << percent(stacks[s].mean_weighted) << " |\n";
  }
  return md.str();
}

std::string joint_table(const std::vector<eval::PckTable>& stacks, const data::JointSet& joints) {
  std::ostringstream md;
  md << "| joint |";
  for (size_t s = 0; s < stacks.size(); ++s) md << " stack " << s + 1 << " |";
  md << "\n|---|";
  for (size_t s = 0; s < stacks.size(); ++s) md << "---|";
  md << "\n";
  for (int j = 0; j < joints.size(); ++j) {
    md << "| " << joints.names[j] << " |";
    for (const auto& t : stacks) md << " " << percent(t.per_joint[j]) << " |";
    md << "\n";
  }
  return md.str();
}

// Loss of every stack (log10, mean over each epoch's steps... per 25 steps) and validation PCK of
// every stack per epoch, from the run's log.jsonl.
void plot_training(const fs::path& run, const fs::path& out) {
  std::ifstream in(run / "log.jsonl");
  std::vector<std::vector<double>> loss;  // per stack
  std::vector<std::vector<double>> val;   // per stack
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "step") {
      const auto& stacks = j["stacks"];
      loss.resize(stacks.size());
      for (size_t s = 0; s < stacks.size(); ++s) loss[s].push_back(stacks[s].get<double>());
    } else if (j.contains("val_pck@0.5")) {
      const auto& v = j["val_pck@0.5"];
      val.resize(v.size());
      for (size_t s = 0; s < v.size(); ++s) val[s].push_back(v[s]["mean"].get<double>());
    }
  }
  if (loss.empty()) return;
  const size_t window = 25, points = loss[0].size() / window;
  if (points >= 2) {
    eval::Panel panel{"training loss per stack (mean of 25 steps)", {}, "log10 MSE", 0, 0};
    std::vector<double> x;
    panel.y_min = 1e9;
    panel.y_max = -1e9;
    for (size_t s = 0; s < loss.size(); ++s) {
      eval::Curve c{"stack " + std::to_string(s + 1), {}};
      for (size_t p = 0; p < points; ++p) {
        double sum = 0;
        for (size_t k = 0; k < window; ++k) sum += loss[s][p * window + k];
        c.values.push_back(std::log10(sum / window));
        panel.y_min = std::min(panel.y_min, std::floor(c.values.back() * 2) / 2);
        panel.y_max = std::max(panel.y_max, std::ceil(c.values.back() * 2) / 2);
      }
      panel.curves.push_back(std::move(c));
    }
    for (size_t p = 0; p < points; ++p) x.push_back(static_cast<double>((p + 1) * window));
    eval::plot_curves((out / "loss.png").string(), x, {panel}, "step", 900, 500);
  }
  if (!val.empty() && val[0].size() >= 2) {
    eval::Panel panel{"validation PCKh@0.5 (mean) per stack", {}};
    std::vector<double> x;
    for (size_t e = 0; e < val[0].size(); ++e) x.push_back(static_cast<double>(e + 1));
    for (size_t s = 0; s < val.size(); ++s)
      panel.curves.push_back({"stack " + std::to_string(s + 1), val[s]});
    eval::plot_curves((out / "validation.png").string(), x, {panel}, "epoch", 900, 500);
  }
}

// Held-out crops with the last stack's skeleton, beside the max of its heatmaps.
void draw_montage(const infer::Predictor& predictor, const data::Dataset& test,
                  const fs::path& png) {
  const int res = predictor.options().input_size;
  data::LoaderOptions lo;
  lo.batch_size = 8;
  lo.threads = 1;
  lo.shuffle = false;
  lo.sample.res = res;
  data::Loader loader(std::shared_ptr<const data::Dataset>(&test, [](const data::Dataset*) {}), lo);
  loader.start_epoch(0);
  data::Batch batch;
  if (!loader.next(batch)) return;
  const auto heatmaps = predictor.heatmaps(batch.input);  // N×S×J×h×w
  const auto last = heatmaps.select(1, heatmaps.size(1) - 1).contiguous();
  const auto peaks = infer::decode_peaks(last);  // N×J×3 in heatmap pixels
  const int side = static_cast<int>(last.size(-1)), zoom = 2, big = res * zoom;
  const double f = static_cast<double>(res) / side;  // crop pixels per heatmap pixel
  std::vector<cv::Mat> tiles;
  for (int64_t i = 0; i < last.size(0); ++i) {
    auto chw = (batch.input[i] * 255).clamp(0, 255).to(torch::kU8).permute({1, 2, 0}).contiguous();
    cv::Mat crop(res, res, CV_8UC3, chw.data_ptr());
    cv::Mat big_crop;
    cv::resize(crop, big_crop, cv::Size(big, big), 0, 0, cv::INTER_NEAREST);
    std::vector<cv::Point2d> points;
    std::vector<cv::Mat> maps;
    for (int64_t j = 0; j < last.size(1); ++j) {
      const cv::Point2d p(peaks[i][j][0].item<double>(), peaks[i][j][1].item<double>());
      points.push_back(viz::magnify(viz::magnify(p, f), zoom));  // heatmap → crop → magnified
      maps.emplace_back(cv::Mat(side, side, CV_32F, last[i][j].data_ptr<float>()).clone());
    }
    tiles.push_back(viz::skeleton_panel(big_crop, points, predictor.joints()));
    tiles.push_back(viz::max_panel(big_crop, maps));
  }
  cv::Mat out = viz::tile(tiles, 4), bgr;
  cv::cvtColor(out, bgr, cv::COLOR_RGB2BGR);
  io::write_image_atomic(png.string(), bgr);
}

}  // namespace

void add_demo_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string out = "demo";
    double minutes = train::preset("demo").max_minutes;
    int64_t test_samples = 500;
    std::vector<std::string> sets;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "demo",
      "train a small 2-stack model on built-in synthetic people, evaluate every stack on held-out "
      "images and write a report (no download, about 10 minutes on 2 cores)");
  cmd->add_option("--out", args->out, "report folder")->capture_default_str();
  cmd->add_option("--minutes", args->minutes, "training time budget")
      ->check(CLI::Range(0.1, 24 * 60.0))
      ->capture_default_str();
  cmd->add_option("--test-samples", args->test_samples, "held-out synthetic people to evaluate")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--set", args->sets, "override a training config key (see hourglass train)");
  cmd->callback([args, &global] {
    const auto start = std::chrono::steady_clock::now();
    const fs::path out(args->out);
    const fs::path run = out / "run";
    std::error_code ec;
    fs::remove_all(run, ec);  // a demo always starts from scratch
    auto config = train::preset("demo");
    config.max_minutes = args->minutes;
    if (global.threads > 0) config.threads = global.threads;
    for (const auto& s : args->sets) config.set(s);
    std::cerr << "hourglass demo: training for at most " << args->minutes << " minutes, report in "
              << out.string() << "/\n";
    const auto result = train::Trainer(config, run.string()).run();

    // Held-out evaluation of every stack, with flip test, on images neither trained nor validated
    // on.
    auto loaded = io::load_model((run / "last.hg").string());
    const int64_t parameters = loaded.model->parameter_count();
    const double gmac = loaded.model->macs(config.input_size, config.input_size) / 1e9;
    const std::string test_spec = "synthetic:" + std::to_string(args->test_samples) + ":3";
    auto test_set = data::open_dataset(test_spec);
    // Flip test only helps a model that has seen mirrored people: the synthetic figures shade
    // their right limbs darker, which a mirror turns into the opposite cue.
    const bool flip = data::AugmentOptions::preset(config.augment).flip_prob > 0;
    infer::PredictorOptions po;
    po.flip = flip;
    po.batch = 16;
    po.backend.engine.threads = global.threads;
    const auto predictor = infer::Predictor::from_model(std::move(loaded), po);
    const auto predictions = eval::predict_dataset(predictor, test_set);
    std::vector<eval::PckTable> tables;
    for (const auto& e : eval::stack_errors(predictions))
      tables.push_back(eval::pck_table(e, test_set->joints(), 0.5));
    const double total_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::ostringstream md;
    md << "# hourglass demo\n\n"
       << "A " << config.model.describe() << " network (" << with_commas(parameters)
       << " parameters, " << std::fixed << std::setprecision(2) << gmac << " GMAC at "
       << config.input_size << "×" << config.input_size << ") trained from scratch on the "
       << "built-in synthetic people (`" << config.dataset << "`) with intermediate supervision, "
       << "then evaluated on " << predictions.samples.size() << " held-out synthetic people (`"
       << test_spec << "`)"
       << (flip ? " with flip test" : " (no flip test: the model never saw mirrored people)")
       << ".\n\n"
       << "Training: " << result.step << " steps of batch " << config.batch_size << " ("
       << result.epoch << " epochs completed"
       << (result.outcome == train::Outcome::kFinished ? "" : ", stopped by the time budget")
       << ") in " << std::setprecision(0) << result.seconds << " s; whole demo " << total_s
       << " s.\n\n## PCKh@0.5 per stack\n\n"
       << group_table(tables) << "\n## PCKh@0.5 per joint\n\n"
       << joint_table(tables, test_set->joints())
       << "\n## Curves\n\n![training loss](loss.png)\n\n![validation](validation.png)\n\n"
       << "## Predictions of the last stack on held-out images\n\nEach pair: the crop with the "
       << "predicted skeleton (red = right, blue = left), and the maximum of the heatmaps.\n\n"
       << "![predictions](predictions.png)\n"
       << "\n## Files\n\n- `run/last.hg`: the trained model (use it with `hourglass predict`, "
       << "`eval`, `show`)\n- `run/log.jsonl`: loss of every stack per step, validation per epoch\n"
       << "- `run/config.json`: the effective training config\n\n## Reproduce\n\n```sh\nhourglass "
          "demo --out "
       << out.string() << " --minutes " << args->minutes;
    for (const auto& s : args->sets) md << " --set " << s;
    md << "\n```\n";
    fs::create_directories(out);
    plot_training(run, out);
    draw_montage(predictor, *test_set, out / "predictions.png");
    io::write_file_atomic((out / "report.md").string(), md.str());

    std::cout << "\nPCKh@0.5 on held-out synthetic people" << (flip ? " (flip test)" : "") << ":\n";
    for (size_t s = 0; s < tables.size(); ++s)
      std::cout << "  stack " << s + 1 << ": mean " << percent(tables[s].mean) << "%\n";
    std::cout << "report: " << (out / "report.md").string() << "\n";
  });
}

}  // namespace hg::cli
