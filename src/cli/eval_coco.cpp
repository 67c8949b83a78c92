#include "cli/eval_coco.h"

#include "hg/io/progress.h"

#include <cstdio>

namespace hg::cli {

void add_coco_eval_options(CLI::App& cmd, CocoEvalArgs& a) {
  cmd.add_option("--person-boxes", a.person_boxes,
                 "COCO datasets: people boxes in the COCO detection results format (a detector's "
                 "[{\"image_id\", \"category_id\", \"bbox\", \"score\"}]) instead of the truth's")
      ->check(CLI::ExistingFile);
  cmd.add_option("--save-results", a.save_results,
                 "COCO datasets: write the model's people in the COCO keypoint results format");
  cmd.add_option("--oks-nms", a.oks_nms,
                 "COCO datasets: drop a person whose OKS with a better-scored one of the same "
                 "image exceeds this (1 = keep all)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
}

nlohmann::json run_coco_eval(eval::CocoReportOptions options, const CocoEvalArgs& args) {
  options.person_boxes = args.person_boxes;
  options.oks_nms = args.oks_nms;
  io::ProgressLine progress;
  options.progress = [&](size_t i, size_t n) {
    progress.update("eval: image " + std::to_string(i) + "/" + std::to_string(n), i == n);
  };
  const auto report = eval::evaluate_coco(options);
  progress.finish();
  if (!args.save_results.empty()) {
    eval::write_coco_detections(args.save_results, report.detections);
    std::printf(
        "wrote %s (%s)\n", args.save_results.c_str(),
        runtime::count(static_cast<int64_t>(report.detections.size()), "person", "people").c_str());
  }
  std::fputs(eval::format_coco_report(report).c_str(), stdout);
  return eval::coco_scores_to_json(report.scores);
}

}  // namespace hg::cli
