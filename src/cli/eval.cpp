#include "cli/cli.h"
#include "cli/eval_coco.h"
#include "hg/data/readers.h"
#include "hg/eval/pck_report.h"
#include "hg/eval/predictions.h"
#include "hg/io/atomic_file.h"
#include "hg/io/progress.h"
#include "hg/runtime/text.h"

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

namespace hg::cli {
namespace {

struct Args {
  std::string dataset, images, predictions, json, plot, save_preds, official_truth;
  bool per_stack = false;
  int64_t limit = 0;
  PredictorArgs model;
  CocoEvalArgs coco;
};

void write_json(const std::string& path, const nlohmann::json& out) {
  io::write_file_atomic(path, runtime::json_text(out, 2) + "\n");
  std::printf("\nwrote %s\n", path.c_str());
}

// The PCK report of the model (`model()`, null without --weights) or of the predictions file.
eval::PckReport pck_report(const Args& args,
                           const std::function<const infer::Predictor*()>& model) {
  const auto dataset = data::open_dataset(args.dataset, args.images);
  eval::PckReportOptions options;
  options.predictor = model();
  options.model = args.model.weights;
  options.predictions = args.predictions;
  options.limit = args.limit;
  options.per_stack = args.per_stack;
  options.official_truth = args.official_truth;
  io::ProgressLine progress;
  options.progress = [&](int64_t done, int64_t total) {
    if (total > 1)
      progress.update("eval: " + std::to_string(done) + "/" + std::to_string(total) + " people",
                      done == total);
  };
  auto report = eval::evaluate_pck(dataset, options);
  progress.finish();
  for (const auto& w : report.warnings) std::cerr << "hourglass: warning: " << w << "\n";
  return report;
}

// Checks the flags, scores, prints and writes what they ask for.
void run_eval(const Args& args, const GlobalOptions& global) {
  TORCH_CHECK(!args.model.weights.empty() || !args.predictions.empty(),
              "give a model (--weights) or a predictions file (--predictions)");
  // COCO: OKS AP/AR of a model or of COCO results first; the PCK figures follow unless the
  // predictions are COCO results (.h5 and `predict` JSON have no person scores: PCK only).
  const bool results = args.model.weights.empty() && is_coco_results(args.predictions);
  const bool coco_dataset = is_coco_dataset(args.dataset);
  TORCH_CHECK((args.coco.person_boxes.empty() && args.coco.save_results.empty()) ||
                  (!args.model.weights.empty() && coco_dataset),
              "--person-boxes and --save-results need a model (--weights) and a COCO dataset");
  // Built once, when first needed: after the files that are read first proved readable.
  std::optional<infer::Predictor> predictor;
  const auto model = [&]() -> const infer::Predictor* {
    if (args.model.weights.empty()) return nullptr;
    if (!predictor) predictor = make_predictor(args.model, global);
    return &*predictor;
  };
  nlohmann::json coco;
  if ((results || !args.model.weights.empty()) && coco_dataset) {
    eval::CocoReportOptions options;
    options.dataset = args.dataset;
    options.images = args.images;
    options.predictor = model();
    options.model = args.model.weights;
    options.predictions = args.predictions;
    coco = run_coco_eval(options, args.coco);
    if (results) {
      if (!args.json.empty())
        write_json(args.json, {{"dataset", args.dataset},
                               {"predictions", args.predictions},
                               {"coco_keypoints", coco}});
      return;
    }
  }
  const auto report = pck_report(args, model);
  if (!args.save_preds.empty()) eval::write_predictions_h5(args.save_preds, report.predictions);
  std::fputs(eval::format_pck_report(report).c_str(), stdout);
  auto out = eval::pck_report_to_json(report);
  if (!coco.is_null()) out["coco_keypoints"] = coco;
  if (!args.json.empty()) write_json(args.json, out);
  if (!args.plot.empty()) {
    eval::plot_pck_report(args.plot, report);
    std::printf("wrote %s\n", args.plot.c_str());
  }
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
    run_eval(*args, global);
  });
}

}  // namespace hg::cli
