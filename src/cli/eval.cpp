#include "hg/cli/cli.h"
#include "hg/cli/eval_coco.h"
#include "hg/data/readers.h"
#include "hg/eval/evaluate.h"
#include "hg/eval/official_mpii.h"
#include "hg/eval/pck.h"
#include "hg/eval/plot.h"
#include "hg/eval/predictions.h"
#include "hg/infer/results.h"
#include "hg/io/atomic_file.h"
#include "hg/io/progress.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

namespace fs = std::filesystem;

namespace hg::cli {
namespace {

struct Args {
  std::string dataset, images, predictions, json, plot, save_preds, official_truth;
  bool per_stack = false;
  int64_t limit = 0;
  PredictorArgs model;
  CocoEvalArgs coco;
};

// Predictions for the first n samples: N×S×J×2 (image pixels) and which samples have one.
struct Predictions {
  at::Tensor joints, have;
  std::string source;
};

Predictions from_model(const Args& args, const GlobalOptions& global,
                       std::shared_ptr<const data::Dataset> d, size_t n) {
  const auto predictor = make_predictor(args.model, global);
  TORCH_CHECK(predictor.joints().size() == d->joints().size(), "the model predicts ",
              predictor.joints().size(), " joints, the dataset has ", d->joints().size());
  io::ProgressLine progress;
  eval::DatasetRunOptions run;
  run.limit = static_cast<int64_t>(n);
  const auto p = eval::predict_dataset(predictor, d, run, [&](int64_t done, int64_t total) {
    if (total > 1)
      progress.update("eval: " + std::to_string(done) + "/" + std::to_string(total) + " people",
                      done == total);
  });
  progress.finish();
  const auto rows = static_cast<int64_t>(p.samples.size());
  if (static_cast<size_t>(rows) < n)
    std::cerr << "hourglass: warning: " << n - static_cast<size_t>(rows) << " of " << n
              << " samples have no readable image and are left out\n";
  const int64_t stacks = static_cast<int64_t>(p.joints.size());
  auto joints =
      torch::zeros({static_cast<int64_t>(n), stacks, d->joints().size(), 2}, torch::kDouble);
  auto have = torch::zeros({static_cast<int64_t>(n)}, torch::kBool);
  const auto index = torch::tensor(std::vector<int64_t>(p.samples.begin(), p.samples.end()));
  joints.index_copy_(0, index, torch::stack(p.joints, 1).slice(3, 0, 2).to(torch::kDouble));
  have.index_fill_(0, index, true);
  return {joints, have, "model " + args.model.weights};
}

// The JSON of `predict`: the person of an image nearest to each annotation's centre.
Predictions from_results(const std::string& path, const data::Dataset& d, size_t n) {
  const auto results = infer::read_results(path, d.joints());
  std::map<std::string, std::vector<const infer::PersonResult*>> by_image;
  int64_t stacks = 0;
  for (const auto& r : results)
    for (const auto& p : r.people) {
      by_image[fs::path(r.input).filename().string()].push_back(&p);
      stacks = std::max(stacks, p.joints.size(0));
    }
  TORCH_CHECK(stacks > 0, "cannot use ", path, ": it holds no person");
  auto joints =
      torch::zeros({static_cast<int64_t>(n), stacks, d.joints().size(), 2}, torch::kDouble);
  auto have = torch::zeros({static_cast<int64_t>(n)}, torch::kBool);
  int64_t missing = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto a = d.annotation(i);
    const auto it = by_image.find(fs::path(a.image).filename().string());
    if (it == by_image.end()) {
      ++missing;
      continue;
    }
    const infer::PersonResult* best = nullptr;
    for (const auto* p : it->second)
      if (!best || cv::norm(p->center - a.center) < cv::norm(best->center - a.center)) best = p;
    TORCH_CHECK(best->joints.size(0) == stacks, "cannot use ", path,
                ": its people have different numbers of stacks");
    joints[static_cast<int64_t>(i)] = best->joints.slice(2, 0, 2).to(torch::kDouble);
    have[static_cast<int64_t>(i)] = true;
  }
  if (missing > 0)
    std::cerr << "hourglass: warning: " << missing << " of " << n << " samples have no image in "
              << path << " and are left out\n";
  return {joints, have, "predictions " + path};
}

Predictions from_h5(const std::string& path, const data::Dataset& d, size_t n) {
  auto joints = eval::read_predictions_h5(path);
  TORCH_CHECK(
      static_cast<size_t>(joints.size(0)) == d.size() && joints.size(2) == d.joints().size(),
      "cannot use ", path, ": 'preds' is ", joints.sizes(), " but ", d.describe(), " needs ",
      d.size(), "×", d.joints().size(), "×2 (one row per annotation, in order)");
  return {joints.slice(0, 0, static_cast<int64_t>(n)),
          torch::ones({static_cast<int64_t>(n)}, torch::kBool), "predictions " + path};
}

std::string percent(double v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%6.2f", v);
  return std::isnan(v) ? "     -" : buf;
}

void write_json(const std::string& path, const nlohmann::json& out) {
  io::write_file_atomic(path, out.dump(2) + "\n");
  std::printf("\nwrote %s\n", path.c_str());
}

void print_table(const std::string& label, const eval::PckTable& t, bool header) {
  if (header) {
    std::printf("%-16s", "");
    for (const auto& g : t.group_names) std::printf(" %8s", g.c_str());
    std::printf(" %8s %8s\n", "mean", "weighted");
  }
  std::printf("%-16s", label.c_str());
  for (double g : t.groups) std::printf(" %8s", percent(g).c_str());
  std::printf(" %8s %8s\n", percent(t.mean).c_str(), percent(t.mean_weighted).c_str());
}

std::string key(const eval::Metric& m, double threshold) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s@%g", m.name.c_str(), threshold);
  return buf;
}

}  // namespace

void add_eval_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "eval", "PCKh / PCK of a model on a dataset, or of a predictions file (.h5 or .json)");
  cmd->add_option("dataset", args->dataset,
                  "MPII/FLIC .h5, COCO or hourglass-pose .json, or synthetic:N[:SEED]")
      ->required();
  cmd->add_option("--images", args->images, "image directory (default: next to the file)");
  auto* weights = add_predictor_options(*cmd, args->model, true);
  add_max_pixels_option(*cmd);
  auto* preds = cmd->add_option(
      "--predictions,-p", args->predictions,
      "predictions instead of a model: HDF5 'preds' N×J×2 (or N×S×J×2) in image pixels in "
      "annotation order, the JSON of `hourglass predict` (people matched to annotations by "
      "image file name and nearest crop centre), or for COCO datasets the COCO keypoint results "
      "format (scored by OKS AP only)");
  preds->check(CLI::ExistingFile)->excludes(weights);
  cmd->add_option("--official-truth", args->official_truth,
                  "score against the official MPII evaluation's truth (gt_valid.mat: pos_gt_src, "
                  "jnt_missing, headboxes_src; same people and order as the dataset) instead of "
                  "the dataset's, to reproduce the official numbers exactly")
      ->check(CLI::ExistingFile);
  cmd->add_option("--limit", args->limit, "only the first N samples (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--per-stack", args->per_stack, "the table for every stack's predictions");
  cmd->add_option("--json", args->json, "write all results as JSON");
  cmd->add_option("--plot", args->plot, "write PCK-versus-threshold curves as PNG");
  cmd->add_option("--save-preds", args->save_preds,
                  "write the predictions as HDF5 'preds' (N×S×J×2, image pixels)");
  add_coco_eval_options(*cmd, args->coco);
  cmd->callback([args, &global] {
    apply_threads(global);
    TORCH_CHECK(!args->model.weights.empty() || !args->predictions.empty(),
                "give a model (--weights) or a predictions file (--predictions)");
    // COCO: OKS AP/AR of a model or of COCO results first; the PCK figures follow unless the
    // predictions are COCO results (.h5 and `predict` JSON have no person scores: PCK only).
    nlohmann::json coco;
    const bool results = args->model.weights.empty() && is_coco_results(args->predictions);
    const bool coco_dataset = is_coco_dataset(args->dataset);
    TORCH_CHECK((args->coco.person_boxes.empty() && args->coco.save_results.empty()) ||
                    (!args->model.weights.empty() && coco_dataset),
                "--person-boxes and --save-results need a model (--weights) and a COCO dataset");
    if ((results || !args->model.weights.empty()) && coco_dataset) {
      coco = run_coco_eval(args->dataset, args->images, args->predictions, args->model, global,
                           args->coco);
      if (results) {
        if (!args->json.empty())
          write_json(args->json, {{"dataset", args->dataset},
                                  {"predictions", args->predictions},
                                  {"coco_keypoints", coco}});
        return;
      }
    }
    const auto d = data::open_dataset(args->dataset, args->images);
    const size_t n =
        args->limit > 0 ? std::min(d->size(), static_cast<size_t>(args->limit)) : d->size();
    TORCH_CHECK(n > 0, d->describe(), " has no samples");
    const auto ext = fs::path(args->predictions).extension().string();
    Predictions p = !args->model.weights.empty() ? from_model(*args, global, d, n)
                    : ext == ".json"             ? from_results(args->predictions, *d, n)
                                                 : from_h5(args->predictions, *d, n);
    if (!args->save_preds.empty()) eval::write_predictions_h5(args->save_preds, p.joints);

    auto truth = eval::truth_of(*d);
    if (!args->official_truth.empty()) {
      const auto official = eval::read_official_mpii_truth(args->official_truth);
      TORCH_CHECK(official.joints.sizes() == truth.joints.sizes(), "cannot use ",
                  args->official_truth, ": it holds ", official.joints.size(0), " people × ",
                  official.joints.size(1), " joints, ", d->describe(), " ", truth.joints.size(0),
                  " × ", truth.joints.size(1));
      truth = official;
    }
    const auto rows = torch::nonzero(p.have).squeeze(1);
    const auto pick = [&](const at::Tensor& t) {
      return t.slice(0, 0, static_cast<int64_t>(n)).index_select(0, rows);
    };
    const auto metric = eval::metric_for(d->joints());
    const auto thresholds = eval::curve_thresholds();
    const int64_t stacks = p.joints.size(1);
    std::printf("dataset:     %s\n", d->describe().c_str());
    std::printf("predictions: %s (%ld stack%s)\n", p.source.c_str(), long(stacks),
                stacks > 1 ? "s" : "");
    std::printf("evaluated:   %ld of %zu people\n", long(rows.size(0)), n);
    TORCH_CHECK(rows.size(0) > 0, "no sample has a prediction");

    nlohmann::json out = {{"dataset", d->describe()},  {"predictions", p.source},
                          {"evaluated", rows.size(0)}, {"samples", n},
                          {"metric", metric.name},     {"thresholds", thresholds}};
    std::vector<eval::Panel> panels(1);
    const std::string shown = metric.name == "pckh" ? "PCKh" : "PCK";
    eval::Panel per_stack{"mean " + shown + " per stack", {}};
    const int64_t first = args->per_stack ? 0 : stacks - 1;
    for (int64_t s = first; s < stacks; ++s) {
      const auto errors = eval::normalized_errors(pick(p.joints.select(1, s)), pick(truth.joints),
                                                  pick(truth.present), pick(truth.normalize));
      nlohmann::json entry = {{"stack", s + 1}};
      const std::string label = s == stacks - 1 ? "final" : "stack " + std::to_string(s + 1);
      std::printf("\n%s:\n", label.c_str());
      for (size_t k = 0; k < metric.thresholds.size(); ++k) {
        const auto table = eval::pck_table(errors, d->joints(), metric.thresholds[k]);
        print_table(key(metric, metric.thresholds[k]), table, k == 0);
        entry[key(metric, metric.thresholds[k])] = eval::table_to_json(table);
        if (k == 0) {
          nlohmann::json per_joint = nlohmann::json::object();
          for (int j = 0; j < d->joints().size(); ++j)
            per_joint[d->joints().names[j]] = std::isnan(table.per_joint[j])
                                                  ? nlohmann::json()
                                                  : nlohmann::json(table.per_joint[j]);
          entry["per_joint"] = per_joint;
          if (s == stacks - 1) {
            std::printf("per joint:");
            for (int j = 0; j < d->joints().size(); ++j)
              std::printf("%s %s %s", j % 6 == 0 ? "\n " : "", d->joints().names[j].c_str(),
                          percent(table.per_joint[j]).c_str());
            std::printf("\n");
          }
        }
      }
      std::vector<eval::PckTable> curve;
      for (double t : thresholds) curve.push_back(eval::pck_table(errors, d->joints(), t));
      nlohmann::json curve_json = nlohmann::json::object();
      std::vector<eval::Curve> groups(curve[0].group_names.size() + 1);
      for (size_t g = 0; g < groups.size(); ++g) {
        groups[g].label = g < curve[0].group_names.size() ? curve[0].group_names[g] : "mean";
        for (const auto& c : curve)
          groups[g].values.push_back(g < c.groups.size() ? c.groups[g] : c.mean);
        curve_json[groups[g].label] = groups[g].values;
      }
      entry["curve"] = curve_json;
      per_stack.curves.push_back({label, groups.back().values});
      if (s == stacks - 1) {
        std::printf("%s over thresholds (mean):", metric.name.c_str());
        for (size_t k = 0; k < thresholds.size(); k += 5)
          std::printf(" %.2f:%s", thresholds[k], percent(groups.back().values[k]).c_str());
        std::printf("\n");
        panels[0] = {shown + " by joint group (" + label + ")", groups};
        for (const auto& [k, v] : entry.items()) out[k] = v;
      }
      if (args->per_stack) out["per_stack"].push_back(entry);
    }
    if (!coco.is_null()) out["coco_keypoints"] = coco;
    if (!args->json.empty()) write_json(args->json, out);
    if (!args->plot.empty()) {
      if (per_stack.curves.size() > 1) panels.push_back(per_stack);
      eval::plot_curves(args->plot, thresholds, panels,
                        "threshold (fraction of the " + shown + " unit)");
      std::printf("wrote %s\n", args->plot.c_str());
    }
  });
}

}  // namespace hg::cli
