#include "hg/eval/coco_report.h"

#include "hg/data/json.h"
#include "hg/eval/coco_predict.h"
#include "hg/runtime/text.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

namespace hg::eval {
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

bool is_coco_dataset(const std::string& path) {
  const auto j = parse_json(path);
  return j.is_object() && j.contains("annotations");
}

bool is_coco_results(const std::string& path) {
  return parse_json(path).is_array();
}

CocoReport evaluate_coco(const CocoReportOptions& o) {
  TORCH_CHECK(o.predictor || !o.predictions.empty(), "nothing to evaluate: give a predictor or ",
              "a predictions file");
  const auto truth = read_coco_truth(o.dataset);
  CocoReport r;
  if (o.predictor) {
    const auto boxes =
        o.person_boxes.empty() ? truth_boxes(truth) : read_coco_boxes(o.person_boxes);
    CocoPredictOptions options;
    options.oks_nms = o.oks_nms;
    const auto dir =
        o.images.empty() ? (fs::path(o.dataset).parent_path() / "images").string() : o.images;
    r.detections = predict_coco(*o.predictor, truth, dir, boxes, options, o.progress);
    r.source = "model " + o.model + " on " +
               (o.person_boxes.empty() ? "the truth's boxes" : o.person_boxes);
  } else {
    r.detections = read_coco_detections(o.predictions);
    r.source = "predictions " + o.predictions;
  }
  r.scores = evaluate_coco_keypoints(truth, r.detections);
  return r;
}

nlohmann::json coco_scores_to_json(const CocoKeypointScores& scores) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : scores.named()) out[name] = value;
  return out;
}

std::string format_coco_report(const CocoReport& r) {
  std::string out = "COCO keypoints, OKS (" + r.source + ", " +
                    runtime::count(static_cast<int64_t>(r.detections.size()), "person", "people") +
                    "):\n";
  for (const auto& [name, value] : r.scores.named()) {
    char figure[64];
    std::snprintf(figure, sizeof figure, " %-5s %6.3f%s", name.c_str(), value,
                  name == "APl" ? "\n" : "");
    out += figure;
  }
  return out + "\n";
}

}  // namespace hg::eval
