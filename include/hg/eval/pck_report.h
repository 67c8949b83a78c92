#pragma once
/// The PCK report of `hourglass eval`, as a library call: a model (an infer::Predictor run at the
/// annotated crops) or a predictions file scored on a dataset, every table, curve and per-joint
/// figure the command prints and writes.
///
///     hg::eval::PckReportOptions options;
///     options.dataset = "data/mpii/annot/valid.h5";
///     options.predictor = &predictor;
///     const auto report = hg::eval::evaluate_pck(options);
///     std::cout << hg::eval::format_pck_report(report);  // the tables
///     const auto json = hg::eval::pck_report_to_json(report);  // `eval --json`

#include "hg/data/dataset.h"
#include "hg/eval/pck.h"
#include "hg/infer/predictor.h"

#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hg::eval {

/// What evaluate_pck scores, and how.
struct PckReportOptions {
  std::string dataset;  ///< a dataset spec as data::open_dataset takes it
  std::string images;   ///< its image directory ("": next to the annotation file)
  /// The model, run on every sample's annotated crop (not owned; null: `predictions` instead).
  const infer::Predictor* predictor = nullptr;
  std::string model;  ///< how the report names the predictor ("model " + this; its weights file)
  /// Predictions instead of a model: HDF5 'preds' (N×J×2 or N×S×J×2, image pixels, one row per
  /// annotation in order), or the JSON of `hourglass predict` (.json: for each annotation, the
  /// person of its image, by file name, nearest to its crop centre).
  std::string predictions;
  int64_t limit = 0;       ///< only the first `limit` samples (0 = all)
  bool per_stack = false;  ///< score every stack, not only the last (the final prediction)
  /// The official MPII evaluation's truth file (gt_valid.mat, read_official_mpii_truth) to score
  /// against instead of the dataset's (same people, same order); "" = the dataset's.
  std::string official_truth;
  /// The thresholds of the PCK curves (fractions of the PCK unit), ascending.
  std::vector<double> thresholds = curve_thresholds();
  /// Called with (people done, people total) while the predictor runs.
  std::function<void(int64_t, int64_t)> progress;
};

/// The scores of one stack's predictions.
struct StackScores {
  int64_t stack = 0;             ///< 1-based; the last stack's are the final prediction
  std::vector<PckTable> tables;  ///< at each of Metric::thresholds, the main one first
  std::vector<PckTable> curve;   ///< at each of PckReport::thresholds
};

/// Everything `hourglass eval` reports of PCK.
struct PckReport {
  std::string dataset;  ///< the dataset's description (Dataset::describe)
  std::string source;   ///< "model NAME" or "predictions FILE"
  data::JointSet joints;
  Metric metric;                    ///< metric_for(joints)
  std::vector<double> thresholds;   ///< of the curves
  int64_t samples = 0;              ///< the samples scored (the first `limit`)
  int64_t evaluated = 0;            ///< of those, the ones with a prediction
  int64_t stacks = 0;               ///< stacks in the predictions
  bool per_stack = false;           ///< `scores` holds every stack (else the last only)
  std::vector<StackScores> scores;  ///< first stack scored to last
  /// samples×stacks×J×2 float64: the predictions in image pixels, 0 where a sample has none
  /// (what `eval --save-preds` writes).
  at::Tensor predictions;
  /// Samples left out (unreadable images, no match in a predictions file), in words.
  std::vector<std::string> warnings;
};

/// Scores the predictor or the predictions file of `options` on its dataset. Throws naming the
/// file at fault when predictions or truth do not fit the dataset, and when no sample has a
/// prediction.
PckReport evaluate_pck(const PckReportOptions& options);
/// The same on a dataset already opened (options.dataset and options.images are not used).
PckReport evaluate_pck(std::shared_ptr<const data::Dataset> dataset,
                       const PckReportOptions& options);

/// The report as `hourglass eval --json` writes it: "dataset", "predictions", "evaluated",
/// "samples", "metric", "thresholds", the final stack's "stack", metric tables ("pckh@0.5": see
/// table_to_json), "per_joint" (percent, null where never present) and "curve" ({group: one
/// percent per threshold}), and with per_stack a "per_stack" list of the same per stack.
nlohmann::json pck_report_to_json(const PckReport& report);

/// The tables `hourglass eval` prints (lines ending in '\n'): the header lines, then per scored
/// stack its metric tables by joint group, and for the final stack the per-joint figures and the
/// curve's mean at every fifth threshold.
std::string format_pck_report(const PckReport& report);

/// Draws the curves by joint group of the final stack and, with several stacks scored, each
/// stack's mean curve, into a PNG (see plot_curves). Throws naming `png_path` when it cannot.
void plot_pck_report(const std::string& png_path, const PckReport& report);

}  // namespace hg::eval
