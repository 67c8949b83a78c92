#include "cli/cli.h"
#include "hg/data/loader.h"
#include "hg/data/readers.h"
#include "hg/eval/evaluate.h"
#include "hg/eval/plot.h"
#include "hg/infer/decode.h"
#include "hg/infer/predictor.h"
#include "hg/io/atomic_file.h"
#include "hg/io/checkpoint.h"
#include "hg/train/plots.h"
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
    for (const auto& s : args->sets) as_usage([&] { config.set(s); });
    std::cerr << "hourglass demo: training for at most " << args->minutes << " minutes, report in "
              << out.string() << "/\n";
    const auto result = train::Trainer(config, run.string()).run();

    // Held-out evaluation of every stack on images neither trained nor validated on, as the
    // checkpoint says the model is used (its flip test and decoder).
    auto loaded = io::load_model((run / "last.hg").string());
    const int64_t parameters = loaded.model->parameter_count();
    const double gmac = loaded.model->macs(config.input_size, config.input_size) / 1e9;
    const std::string test_spec = "synthetic:" + std::to_string(args->test_samples) + ":3";
    auto test_set = data::open_dataset(test_spec);
    infer::PredictorOptions po;
    po.batch = 16;
    po.backend.engine.threads = global.threads;
    const auto predictor = infer::Predictor::from_model(std::move(loaded), po);
    const bool flip = *predictor.options().flip;
    const std::string decoder = infer::decoder_name(*predictor.options().decoder);
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
       << (flip ? " with flip test" : " without flip test (the model never saw mirrored people)")
       << " and the " << decoder << " decoder: what the checkpoint records for predict, eval, "
       << "show and serve (`hourglass info --weights " << (run / "last.hg").string()
       << "`; --flip, --no-flip and --decoder override it).\n\n"
       << "The model knows only the built-in synthetic people: on photographs of real people it "
       << "is poor. For those, convert published weights (README, \"Published weights\").\n\n"
       << "Training: " << runtime::count(result.step, "step") << " of batch " << config.batch_size
       << " (" << runtime::count(result.epoch, "epoch") << " completed"
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
    train::plot_training(run.string(), out.string());
    draw_montage(predictor, *test_set, out / "predictions.png");
    io::write_file_atomic((out / "report.md").string(), md.str());

    std::cout << "\nPCKh@0.5 on held-out synthetic people" << (flip ? " (flip test)" : "") << ":\n";
    for (size_t s = 0; s < tables.size(); ++s)
      std::cout << "  stack " << s + 1 << ": mean " << percent(tables[s].mean) << "%\n";
    std::cout << "report: " << (out / "report.md").string() << "\n";
  });
}

}  // namespace hg::cli
