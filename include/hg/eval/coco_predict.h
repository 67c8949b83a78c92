#pragma once
/// Top-down COCO keypoint predictions: a model run on person boxes (the dataset's own or a
/// detector's, in the COCO detection results format), each person scored and the people of an
/// image thinned by OKS-NMS, written as COCO keypoint results (see hg/eval/coco_eval.h).

#include "hg/eval/coco_eval.h"
#include "hg/infer/center_detector.h"
#include "hg/infer/predictor.h"

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hg::eval {

/// A person box: COCO detection results format ({"image_id", "category_id", "bbox", "score"}).
struct CocoBox {
  int64_t image_id = 0;
  int64_t category_id = 1;
  std::array<double, 4> bbox{};  ///< x, y, w, h in image pixels
  double score = 1;
};

/// Reads a COCO detection results file (a JSON list of boxes). Throws naming the file and entry.
std::vector<CocoBox> read_coco_boxes(const std::string& json_path);

/// The boxes of the people the evaluation counts (not crowds, num_keypoints > 0), score 1.
std::vector<CocoBox> truth_boxes(const CocoTruth& truth);

/// How people are scored and kept.
struct CocoPredictOptions {
  /// A person's score: box score × the mean of its joints' confidences above this (person_score).
  double joint_threshold = 0.2;
  /// OKS-NMS between the people of one image: drop a person whose OKS with a better one exceeds
  /// this (the areas are the crops' (200·scale)²); 1 or more turns it off.
  double oks_nms = 0.9;
  /// Boxes of other categories than truth.person_category, or scoring below this, are skipped.
  double min_box_score = 0;
};

/// One image's people in the results format: each person's last-stack joints (x, y, confidence)
/// with the score person_score(box_scores[i], its confidences, options.joint_threshold), thinned
/// by oks_nms with `sigmas` (the crops' (200·scale)² as areas) unless options.oks_nms >= 1.
/// Best score first when thinned, else in the order of `people`. Throws when NMS is asked for and
/// `sigmas` does not have one per joint.
std::vector<CocoDetection> coco_people(const std::vector<infer::PosePrediction>& people,
                                       const std::vector<double>& box_scores, int64_t image_id,
                                       int64_t category_id, const std::vector<double>& sigmas,
                                       const CocoPredictOptions& options);

/// One image's people found by a bottom-up model (CenterNet's multi_pose), every detection, as
/// CenterNet's evaluation writes them (coco_hp.py's convert_eval_format): "bbox" x, y, w, h, the
/// joints with visibility 1, and every number, the score too, rounded to 2 decimals.
std::vector<CocoDetection> centernet_coco_people(
    const std::vector<infer::CenterNetDetection>& detections, int64_t image_id,
    int64_t category_id);

/// Runs `predictor` on every box of every image of `truth` (images are `image_dir/file_name`;
/// an image that cannot be read is skipped with a warning on stderr) and returns its people in
/// the results format: last stack's joints (x, y, confidence), category truth.person_category.
/// `progress` (optional) gets (images done, images).
std::vector<CocoDetection> predict_coco(const infer::Predictor& predictor, const CocoTruth& truth,
                                        const std::string& image_dir,
                                        const std::vector<CocoBox>& boxes,
                                        const CocoPredictOptions& options = {},
                                        const std::function<void(size_t, size_t)>& progress = {});

}  // namespace hg::eval
