#include "hg/eval/coco_predict.h"

#include "hg/data/boxes.h"
#include "hg/data/dataset.h"
#include "hg/data/json.h"
#include "hg/runtime/text.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>

namespace hg::eval {

std::vector<CocoBox> read_coco_boxes(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path + ": no such file or not readable");
  const nlohmann::json root = data::parse_json(in, path);
  const auto bad = [&](const std::string& why) {
    return std::runtime_error("cannot read " + path + ": " + why);
  };
  if (!root.is_array())
    throw bad(
        "person boxes are a COCO detection results list of {\"image_id\", "
        "\"category_id\", \"bbox\": [x, y, w, h], \"score\"}");
  std::vector<CocoBox> out;
  for (size_t i = 0; i < root.size(); ++i) {
    const auto& r = root[i];
    const std::string w = "[" + std::to_string(i) + "]";
    if (!r.is_object() || !r.contains("image_id") || !r["image_id"].is_number_integer())
      throw bad("entry " + w + " needs an integer 'image_id'");
    if (!r.contains("bbox") || !r["bbox"].is_array() || r["bbox"].size() != 4)
      throw bad("entry " + w + " needs 'bbox': [x, y, w, h]");
    CocoBox b;
    b.image_id = r["image_id"].get<int64_t>();
    b.category_id = r.value("category_id", int64_t{1});
    std::vector<double> xywh;
    for (size_t k = 0; k < 4; ++k) {
      if (!r["bbox"][k].is_number()) throw bad("field '" + w + ".bbox' must hold numbers");
      xywh.push_back(r["bbox"][k].get<double>());
    }
    try {
      data::checked_box(xywh, "field '" + w + ".bbox'");
    } catch (const std::invalid_argument& e) {
      throw bad(e.what());
    }
    std::copy(xywh.begin(), xywh.end(), b.bbox.begin());
    if (r.contains("score") && !r["score"].is_number())
      throw bad("field '" + w + ".score' must be a number");
    b.score = r.value("score", 1.0);
    out.push_back(b);
  }
  return out;
}

std::vector<CocoBox> truth_boxes(const CocoTruth& truth) {
  std::vector<CocoBox> out;
  for (const auto& p : truth.people)
    if (!p.crowd && p.num_keypoints > 0 && p.category_id == truth.person_category)
      out.push_back({p.image_id, p.category_id, p.bbox, 1.0});
  return out;
}

namespace {
// CenterNet's _to_float: float("{:.2f}".format(x)), the decimal rounding of the binary value
// (printf's %.2f rounds it the same way).
double two_decimals(double x) {
  char text[64];
  std::snprintf(text, sizeof text, "%.2f", x);
  return std::strtod(text, nullptr);
}
}  // namespace

std::vector<CocoDetection> centernet_coco_people(
    const std::vector<infer::CenterNetDetection>& detections, int64_t image_id,
    int64_t category_id) {
  std::vector<CocoDetection> out;
  for (const auto& d : detections) {
    CocoDetection c;
    c.image_id = image_id;
    c.category_id = category_id;
    for (const double v : {d.box.x, d.box.y, d.box.width, d.box.height})
      c.bbox.push_back(two_decimals(v));
    for (const auto& j : d.joints)
      for (const double v : {j.x, j.y, 1.0}) c.keypoints.push_back(two_decimals(v));
    c.score = two_decimals(d.score);
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<CocoDetection> coco_people(const std::vector<infer::PosePrediction>& people,
                                       const std::vector<double>& box_scores, int64_t image_id,
                                       int64_t category_id, const std::vector<double>& sigmas,
                                       const CocoPredictOptions& options) {
  if (box_scores.size() != people.size())
    throw std::invalid_argument("coco_people: " + std::to_string(box_scores.size()) +
                                " box scores for " + std::to_string(people.size()) + " people");
  std::vector<CocoDetection> found;
  std::vector<double> areas;
  for (size_t p = 0; p < people.size(); ++p) {
    const auto last = people[p].joints[-1].to(at::kDouble).contiguous();
    // A person whose joints are not finite (a degenerate crop) is a miss, not a detection: COCO
    // results hold numbers only.
    if (!at::isfinite(last).all().item<bool>()) continue;
    const double* j = last.data_ptr<double>();
    CocoDetection d;
    d.image_id = image_id;
    d.category_id = category_id;
    d.keypoints.assign(j, j + last.numel());
    std::vector<double> confidences;
    for (int64_t k = 0; k < last.size(0); ++k) confidences.push_back(j[3 * k + 2]);
    d.score = person_score(box_scores[p], confidences, options.joint_threshold);
    const double side = 200 * people[p].person.crop.scale;
    areas.push_back(side * side);
    found.push_back(std::move(d));
  }
  if (options.oks_nms >= 1 || found.empty()) return found;
  const size_t joints = found[0].keypoints.size() / 3;
  if (sigmas.size() != joints)
    throw std::invalid_argument(
        "OKS-NMS needs one OKS sigma per joint: " + std::to_string(sigmas.size()) + " sigmas for " +
        std::to_string(joints) + " joints (turn it off with oks_nms 1)");
  std::vector<CocoDetection> kept;
  for (size_t k : oks_nms(found, areas, sigmas, options.oks_nms)) kept.push_back(found[k]);
  return kept;
}

std::vector<CocoDetection> predict_coco(const infer::Predictor& predictor, const CocoTruth& truth,
                                        const std::string& image_dir,
                                        const std::vector<CocoBox>& boxes,
                                        const CocoPredictOptions& options,
                                        const std::function<void(size_t, size_t)>& progress) {
  if (static_cast<size_t>(predictor.joints().size()) != truth.sigmas.size())
    throw std::invalid_argument("the model predicts " + std::to_string(predictor.joints().size()) +
                                " joints, the dataset has " + std::to_string(truth.sigmas.size()));
  std::map<int64_t, std::vector<const CocoBox*>> by_image;
  for (const auto& b : boxes)
    if (b.category_id == truth.person_category && b.score >= options.min_box_score &&
        b.bbox[2] > 0 && b.bbox[3] > 0)
      by_image[b.image_id].push_back(&b);
  std::vector<CocoDetection> out;
  size_t unreadable = 0;
  for (size_t i = 0; i < truth.image_ids.size(); ++i) {
    if (progress) progress(i, truth.image_ids.size());
    const auto it = by_image.find(truth.image_ids[i]);
    if (it == by_image.end()) continue;
    cv::Mat rgb;
    try {
      rgb =
          data::read_image_rgb((std::filesystem::path(image_dir) / truth.image_files[i]).string());
    } catch (const data::ImageError& e) {
      if (unreadable++ < 3) std::cerr << "hourglass: warning: " << e.what() << " (skipped)\n";
      continue;
    }
    std::vector<infer::PersonCrop> crops;
    for (const auto* b : it->second) {
      const cv::Rect2d box(b->bbox[0], b->bbox[1], b->bbox[2], b->bbox[3]);
      crops.push_back({infer::crop_of_box(box), infer::PersonSource::kBoxesFile, box, b->score});
    }
    std::vector<double> box_scores;
    for (const auto* b : it->second) box_scores.push_back(b->score);
    const auto found = coco_people(predictor.predict(rgb, crops), box_scores, truth.image_ids[i],
                                   truth.person_category, truth.sigmas, options);
    out.insert(out.end(), found.begin(), found.end());
  }
  if (progress) progress(truth.image_ids.size(), truth.image_ids.size());
  if (unreadable > 0)
    std::cerr << "hourglass: warning: " << runtime::count(unreadable, "image")
              << " with people boxes cannot be read and are left out\n";
  return out;
}

}  // namespace hg::eval
