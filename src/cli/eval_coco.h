#pragma once
/// The COCO keypoint (OKS AP/AR) flags of `hourglass eval` (src/cli/eval_coco.cpp); the work is
/// hg::eval::evaluate_coco.

#include "cli/cli.h"
#include "hg/eval/coco_report.h"

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

using eval::is_coco_dataset;
using eval::is_coco_results;

/// eval::evaluate_coco of `options` with the flags' boxes and OKS-NMS, a progress line while the
/// model runs; writes --save-results, prints the ten figures and returns them as JSON
/// ({"AP": ..., ..., "ARl": ...}).
nlohmann::json run_coco_eval(eval::CocoReportOptions options, const CocoEvalArgs& args);

}  // namespace hg::cli
