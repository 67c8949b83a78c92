#include "hg/cli/eval_coco.h"

#include "hg/data/json.h"
#include "hg/eval/coco_eval.h"
#include "hg/eval/coco_predict.h"
#include "hg/io/progress.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace hg::cli {
namespace {

nlohmann::json parse_json(const std::string& path) {
  if (fs::path(path).extension() != ".json") return {};
  try {
    return data::read_json_file(path);
  } catch (const data::JsonError&) {
    return {};  // not JSON: the caller's reader says why
  }
}

}  // namespace

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

bool is_coco_dataset(const std::string& path) {
  const auto j = parse_json(path);
  return j.is_object() && j.contains("annotations");
}

bool is_coco_results(const std::string& path) {
  return parse_json(path).is_array();
}

nlohmann::json run_coco_eval(const std::string& dataset, const std::string& images,
                             const std::string& predictions, const PredictorArgs& model,
                             const GlobalOptions& global, const CocoEvalArgs& args) {
  const auto truth = eval::read_coco_truth(dataset);
  std::vector<eval::CocoDetection> detections;
  std::string source;
  if (!model.weights.empty()) {
    const auto predictor = make_predictor(model, global);
    const auto boxes = args.person_boxes.empty() ? eval::truth_boxes(truth)
                                                 : eval::read_coco_boxes(args.person_boxes);
    eval::CocoPredictOptions options;
    options.oks_nms = args.oks_nms;
    io::ProgressLine progress;
    const auto dir =
        images.empty() ? (fs::path(dataset).parent_path() / "images").string() : images;
    detections = eval::predict_coco(predictor, truth, dir, boxes, options, [&](size_t i, size_t n) {
      progress.update("eval: image " + std::to_string(i) + "/" + std::to_string(n), i == n);
    });
    progress.finish();
    source = "model " + model.weights + " on " +
             (args.person_boxes.empty() ? "the truth's boxes" : args.person_boxes);
    if (!args.save_results.empty()) {
      eval::write_coco_detections(args.save_results, detections);
      std::printf("wrote %s (%zu people)\n", args.save_results.c_str(), detections.size());
    }
  } else {
    detections = eval::read_coco_detections(predictions);
    source = "predictions " + predictions;
  }
  const auto scores = eval::evaluate_coco_keypoints(truth, detections);
  std::printf("COCO keypoints, OKS (%s, %zu people):\n", source.c_str(), detections.size());
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : scores.named()) {
    std::printf(" %-5s %6.3f%s", name.c_str(), value, name == "APl" ? "\n" : "");
    out[name] = value;
  }
  std::printf("\n");
  return out;
}

}  // namespace hg::cli
