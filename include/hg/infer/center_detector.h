#pragma once
/// CenterNet's test-time pipeline around a model of the CornerNet/CenterNet family with its
/// detection heads (xingyizhou/CenterNet: `detectors/base_detector.py`, `ctdet.py`,
/// `multi_pose.py`, `utils/image.py`, `utils/post_process.py`), one scale: the image letterboxed
/// (or padded) by CenterNet's affine, normalised with its COCO mean and standard deviation in
/// OpenCV's BGR order, the network's last stack, its flip test, decode_detections' decoders and
/// the affine back to image pixels. The values are CenterNet's: the cross-check test runs its own
/// code on the same image and compares.

#include "hg/data/dataset.h"
#include "hg/infer/predictor.h"
#include "hg/model/large_hourglass.h"

#include <ATen/Tensor.h>
#include <opencv2/core.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hg::engine {
class Engine;
}

namespace hg::infer {

/// CenterNet's COCO normalisation of its BGR input, per channel in B, G, R order:
/// (value / 255 − mean) / std (its `datasets/dataset/coco.py` and `coco_hp.py`; float32 there).
inline constexpr std::array<float, 3> kCenterNetMean = {0.40789654f, 0.44719302f, 0.47026115f};
inline constexpr std::array<float, 3> kCenterNetStd = {0.28863828f, 0.27408164f, 0.27809835f};

/// How CenterNetDetector runs.
struct CenterNetOptions {
  /// The network's input side: the image scaled into it, its longer side fitted and centred
  /// (CenterNet's fixed resolution; 512 by default, as its COCO models were tested). 0: CenterNet's
  /// `--keep_res`: the image at its own size, centred in the next multiple of the network's input
  /// multiple (128 for Hourglass-104).
  int64_t input_size = 512;
  /// CenterNet's `--flip_test`: the heads averaged with those of the mirrored image (the joints'
  /// offsets and heatmaps with their left and right swapped).
  bool flip = false;
  /// CenterNet's K: the detections per image, best first.
  int64_t top_k = 100;
  BackendOptions backend;
};

/// One detection in image pixels (CenterNet's post-processed coordinates).
struct CenterNetDetection {
  cv::Rect2d box;     ///< x1, y1, width, height
  double score = 0;   ///< the centre heatmap's peak (after the sigmoid)
  int64_t label = 0;  ///< the class's channel in `hm` (0: the person of a multi_pose model)
  /// A multi_pose model's joints (COCO's 17), image pixels; empty for a ctdet model.
  std::vector<cv::Point2d> joints;
};

/// CenterNet's pre_process of one BGR 8-bit image: the network input and the affine that takes
/// output-grid coordinates (1/4 of the input) back to image pixels.
struct CenterNetInput {
  at::Tensor images;     ///< 1×3×H×W float32 (2×3×H×W with flip: the mirror second)
  cv::Matx23d to_image;  ///< output grid → image pixels
};

/// The input for `bgr` at a fixed side `input_size`, or (input_size 0) padded to a multiple of
/// `multiple`. Throws unless `bgr` is a non-empty 8-bit 3-channel image.
CenterNetInput center_net_input(const cv::Mat& bgr, int64_t input_size, int64_t multiple,
                                bool flip);

/// The people of a multi_pose model's detections scoring at least `min_score`, best first, as
/// predict reports people: found by PersonSource::kBottomUp, the box and its score, the crop of
/// the box (crop_of_box; for a degenerate box, its centre), and 1×J×3 joints whose score is the
/// person's (CenterNet scores people, not joints).
std::vector<PosePrediction> people_of(const std::vector<CenterNetDetection>& detections,
                                      double min_score);

/// A CenterNet detector (ctdet) or bottom-up pose model (multi_pose) ready to run.
/// Thread-compatible: one detector per thread.
class CenterNetDetector {
 public:
  /// Takes a model with CenterNet's `hm` and `wh` heads (require_detection_heads); with `hps`,
  /// its joints are COCO's 17 (the flip test swaps them by COCO's pairs). Throws naming what
  /// does not fit.
  CenterNetDetector(model::LargeHourglass model, CenterNetOptions options);
  /// Loads a CenterNet, native or other checkpoint of the family (io::load_large_hourglass).
  static CenterNetDetector load(const std::string& weights, CenterNetOptions options);
  CenterNetDetector(CenterNetDetector&&);
  ~CenterNetDetector();

  /// The top_k detections of a BGR 8-bit image, best first.
  std::vector<CenterNetDetection> detect(const cv::Mat& bgr);
  /// Whether detections carry joints (a multi_pose model).
  bool has_joints() const { return joints_ > 0; }
  /// The joint set of a multi_pose model's joints (COCO's).
  const data::JointSet& joints() const { return joint_set_; }
  const CenterNetOptions& options() const { return options_; }
  const model::LargeHourglassOptions& architecture() const { return architecture_; }

 private:
  /// The last stack's heads on `images`, the flip test applied, hm and hm_hp after the sigmoid.
  std::map<std::string, at::Tensor> heads_of(const at::Tensor& images);

  /// Null once a fixed-size engine plan has taken its weights over.
  model::LargeHourglass model_;
  model::LargeHourglassOptions architecture_;
  CenterNetOptions options_;
  bool engine_ = false;
  int64_t joints_ = 0;
  data::JointSet joint_set_;
  /// Engine plans by input height and width: one for a fixed input size, one per size met with
  /// keep_res (built when first needed).
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<engine::Engine>> engines_;
};

}  // namespace hg::infer
