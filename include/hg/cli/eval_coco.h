#pragma once
/// The COCO keypoint (OKS AP/AR) part of `hourglass eval` (src/cli/eval_coco.cpp).

#include "hg/cli/cli.h"

#include <nlohmann/json.hpp>

#include <string>

namespace hg::cli {

/// Flags of `eval` for COCO datasets.
struct CocoEvalArgs {
  std::string person_boxes;  ///< COCO detection results to crop people from (default: truth)
  std::string save_results;  ///< where to write the model's COCO keypoint results
  double oks_nms = 0.9;      ///< OKS-NMS threshold between the people of an image (1 = off)
};

/// Registers --person-boxes, --save-results and --oks-nms on `cmd`.
void add_coco_eval_options(CLI::App& cmd, CocoEvalArgs& args);

/// Whether `path` is a COCO annotation file (.json, an object with "annotations").
bool is_coco_dataset(const std::string& path);
/// Whether `path` is in the COCO keypoint results format (.json holding a list).
bool is_coco_results(const std::string& path);

/// OKS AP/AR of the predictions file (COCO results) or of the model on the dataset's (or
/// --person-boxes') boxes; prints the ten figures and returns {"AP": ..., ..., "ARl": ...}.
nlohmann::json run_coco_eval(const std::string& dataset, const std::string& images,
                             const std::string& predictions, const PredictorArgs& model,
                             const GlobalOptions& global, const CocoEvalArgs& args);

}  // namespace hg::cli
