#pragma once
/// COCO keypoint evaluation: average precision and recall over object keypoint similarity (OKS),
/// computed as the official evaluation (cocoapi's `COCOeval` with iouType "keypoints") computes
/// it, and the COCO keypoint results format (`[{"image_id", "category_id", "keypoints",
/// "score"}, ...]`) that it scores.
///
/// The official rules, all kept here:
/// - OKS(d, g) = mean over g's labelled joints (v > 0) of exp(-d²/(2·area·(2σ)²)), d the
///   distance of the detection's joint to the truth's, `area` the truth's "area" field, σ the
///   joint's sigma. A truth with no labelled joint is compared instead by each detected joint's
///   distance outside the box [x - w, x + 2w] × [y - h, y + 2h] (its box doubled around itself),
///   averaged over all joints.
/// - Truths that are crowds (`iscrowd`) or have `num_keypoints` == 0 are ignored: matching one
///   neither counts as a true nor as a false positive. A crowd may be matched several times.
/// - Per image and category, detections in order of score (ties in file order) take the
///   unmatched, not ignored truth of highest OKS ≥ the threshold (on equal OKS the later truth),
///   else an ignored one; at most `max_detections` (20) per image count, the best-scored.
/// - Precision is interpolated at the 101 recalls 0:0.01:1 (the precision envelope at the first
///   detection reaching that recall, 0 beyond the last), averaged over the thresholds
///   0.50:0.05:0.95; recall is the final recall. Both are averaged over categories with truth.
/// - Area ranges (the truth's "area"; an unmatched detection's area is its joints' bounding box
///   and it is ignored outside the range): all [0, 1e10], medium [32², 96²], large [96², 1e10].
/// One quirk is kept too: a detection matched to a truth whose "id" is 0 counts as unmatched.

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hg::eval {

/// COCO's 17 per-joint OKS sigmas (nose, eyes, ears, shoulders, elbows, wrists, hips, knees,
/// ankles), as in cocoeval.
std::vector<double> coco_keypoint_sigmas();

/// One annotated person of a COCO keypoints file.
struct CocoTruthPerson {
  int64_t id = 0;
  int64_t image_id = 0;
  int64_t category_id = 0;
  std::vector<double> keypoints;  ///< K×(x, y, v) flattened, image pixels
  std::array<double, 4> bbox{};   ///< x, y, w, h in image pixels
  double area = 0;                ///< "area" (pixels²): the OKS scale and the area range key
  bool crowd = false;             ///< "iscrowd"
  int64_t num_keypoints = 0;      ///< "num_keypoints" (the count of v > 0 when absent)
};

/// The ground truth the evaluation needs from a COCO keypoints file.
struct CocoTruth {
  std::vector<int64_t> image_ids;        ///< ids of ".images", sorted, unique
  std::vector<std::string> image_files;  ///< their "file_name" ("" where absent)
  std::vector<int64_t> category_ids;     ///< ids of ".categories", sorted, unique
  std::vector<CocoTruthPerson> people;   ///< annotations of listed images, in file order
  std::vector<double> sigmas;            ///< per-joint OKS sigmas
  /// The keypoint category: the one named "person", else the first; what predictions are.
  int64_t person_category = 1;
};

/// Reads `.images`, `.categories` and `.annotations` of a COCO keypoints JSON file. Sigmas are a
/// category's "sigmas" list when one gives it (an extension for custom joint sets), else COCO's
/// when the annotations have 17 joints. Annotations of images not in `.images` are left out (as
/// cocoeval does). Throws naming the file and field at fault.
CocoTruth read_coco_truth(const std::string& json_path);

/// One person in the COCO keypoint results format.
struct CocoDetection {
  int64_t image_id = 0;
  int64_t category_id = 1;
  std::vector<double> keypoints;  ///< K×(x, y, score) flattened, image pixels
  double score = 0;               ///< the person's confidence (orders the detections)
  /// The person's box x, y, w, h in image pixels, where the model gives one (written as "bbox";
  /// empty: not written).
  std::vector<double> bbox;
};

/// Reads a results file (a JSON list of {"image_id", "category_id", "keypoints", "score"}).
/// Throws naming the file and the entry at fault.
std::vector<CocoDetection> read_coco_detections(const std::string& json_path);

/// Writes detections in the results format (a JSON list, one object per detection).
void write_coco_detections(const std::string& json_path,
                           const std::vector<CocoDetection>& detections);

/// OKS of `detection` (K×3 flattened; its third column is not used) against `truth`, with
/// per-joint `sigmas` (K), exactly as cocoeval's computeOks.
double object_keypoint_similarity(const std::vector<double>& detection,
                                  const CocoTruthPerson& truth, const std::vector<double>& sigmas);

/// The ten figures of cocoeval's keypoint summary (fractions in [0, 1]; -1 where no truth
/// counts, as cocoeval prints). All at maxDets = 20.
struct CocoKeypointScores {
  double ap = -1, ap50 = -1, ap75 = -1, ap_medium = -1, ap_large = -1;
  double ar = -1, ar50 = -1, ar75 = -1, ar_medium = -1, ar_large = -1;
  /// ("AP", ap), ("AP50", ap50), ... ("ARl", ar_large) in cocoeval's order.
  std::vector<std::pair<std::string, double>> named() const;
};

/// Evaluation settings (cocoeval's keypoint defaults).
struct CocoEvalOptions {
  int max_detections = 20;  ///< per image and category, the best-scored
};

/// Scores `detections` against `truth` as cocoeval (evaluate, accumulate, summarize) does.
/// Detections of categories not in the truth are left out; every detection must name an image
/// of the truth and have as many joints as truth.sigmas (else throws naming the entry).
CocoKeypointScores evaluate_coco_keypoints(const CocoTruth& truth,
                                           const std::vector<CocoDetection>& detections,
                                           const CocoEvalOptions& options = {});

/// OKS-based non-maximum suppression between the people of one image (as HRNet's and MMPose's
/// oks_nms): in order of score, a person is dropped when its OKS with a kept, better-scored one
/// exceeds `threshold`. The OKS of two detections uses all joints, the mean of their `areas`
/// (pixels², e.g. the crop boxes' w·h) as the scale, and `sigmas`. Returns the indices kept,
/// best score first.
std::vector<size_t> oks_nms(const std::vector<CocoDetection>& people,
                            const std::vector<double>& areas, const std::vector<double>& sigmas,
                            double threshold);

/// A person's score from its box score and its joints' confidences (the heatmap maxima): box ×
/// the mean of the confidences above `threshold` (0 when none is), HRNet's and MMPose's rule.
double person_score(double box_score, const std::vector<double>& joint_scores,
                    double threshold = 0.2);

}  // namespace hg::eval
