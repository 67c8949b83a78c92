#pragma once
/// The COCO keypoint part of `hourglass eval`, as a library call: OKS AP/AR (see coco_eval.h)
/// of a model run on the people boxes of a COCO dataset (or a detector's), or of a file in the
/// COCO keypoint results format.

#include "hg/eval/coco_eval.h"
#include "hg/infer/predictor.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace hg::eval {

/// Whether `path` is a COCO annotation file (.json, an object with "annotations").
bool is_coco_dataset(const std::string& path);
/// Whether `path` is in the COCO keypoint results format (.json holding a list).
bool is_coco_results(const std::string& path);

/// What evaluate_coco scores, and how.
struct CocoReportOptions {
  std::string dataset;  ///< a COCO keypoints annotation file (the truth)
  std::string images;   ///< its image directory ("": the folder "images" beside it)
  /// The model, run on every box (not owned; null: `predictions` instead).
  const infer::Predictor* predictor = nullptr;
  std::string model;        ///< how the report names the predictor ("model " + this)
  std::string predictions;  ///< COCO keypoint results to score instead of a model
  /// People boxes in the COCO detection results format to crop people from ("": the truth's).
  std::string person_boxes;
  /// OKS-NMS between the people of one image (see CocoPredictOptions::oks_nms; 1 = off).
  double oks_nms = 0.9;
  /// Called with (images done, images) while the predictor runs.
  std::function<void(size_t, size_t)> progress;
};

/// The people scored and their scores.
struct CocoReport {
  /// "model NAME on the truth's boxes", "model NAME on BOXES_FILE" or "predictions FILE".
  std::string source;
  std::vector<CocoDetection> detections;  ///< the people scored, in the results format
  CocoKeypointScores scores;
};

/// Reads the truth of options.dataset, predicts its people with the predictor (predict_coco) or
/// reads options.predictions, and scores them (evaluate_coco_keypoints). Throws naming the file
/// and field at fault.
CocoReport evaluate_coco(const CocoReportOptions& options);

/// The ten figures as `hourglass eval --json` writes them: {"AP": …, "AP50": …, …, "ARl": …}
/// (fractions in [0, 1]; -1 where no truth counts).
nlohmann::json coco_scores_to_json(const CocoKeypointScores& scores);

/// The lines `hourglass eval` prints: "COCO keypoints, OKS (SOURCE, N people):", then the AP
/// and the AR figures on a line each.
std::string format_coco_report(const CocoReport& report);

}  // namespace hg::eval
