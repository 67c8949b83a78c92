#pragma once
/// Top-down pose prediction: for every person of an image (a crop centre and scale), warp the
/// crop, run the network (optionally on the crop and its mirror), decode every stack's heatmaps
/// and map the joints back to the image.
///
/// The network call is a `Backend`, a plain function object, so any engine (LibTorch on CPU or
/// CUDA, a oneDNN engine, a fake in tests) plugs in without the predictor knowing.

#include "hg/data/dataset.h"
#include "hg/data/transform.h"
#include "hg/infer/decode.h"
#include "hg/io/checkpoint.h"

#include <ATen/Tensor.h>
#include <c10/core/Device.h>
#include <opencv2/core.hpp>

#include <functional>
#include <string>
#include <vector>

namespace hg::infer {

/// The network: input N×3×R×R float32 RGB in [0, 1] on the CPU → N×S×J×(R/4)×(R/4) heatmaps
/// (any device; the predictor moves them to the CPU).
using Backend = std::function<at::Tensor(const at::Tensor&)>;

/// A backend running `model` with LibTorch on `device` (in inference mode; the model is moved
/// to the device and set to eval mode).
Backend torch_backend(model::StackedHourglass model, c10::Device device);

/// A backend running `model` on the oneDNN CPU engine (hg::engine), built for one
/// 1×3×`input_size`×`input_size` image and run once per crop: batch 1 is the engine's fastest
/// per-image mode, and one plan keeps memory low. The model's weights are handed over to the
/// engine (the model must not be used afterwards). `precision` and `algorithm` as
/// engine::parse_precision / parse_algorithm; `threads` 0 = all cores.
Backend engine_backend(model::StackedHourglass model, int input_size, const std::string& precision,
                       const std::string& algorithm, int threads);

/// How a person's crop was chosen; written to the output as it is.
enum class PersonSource {
  kCenterScale,  ///< --center/--scale given by the user
  kBox,          ///< --box given by the user
  kBoxesFile,    ///< a box from a --boxes file
  kDetector,     ///< OpenCV's HOG people detector
  kWholeImage,   ///< the image itself (--whole-image)
  kNoDetection,  ///< the image itself, because the detector found no one
  kAnnotation,   ///< a dataset annotation's centre and scale (evaluation)
};
/// "center-scale", "box", "boxes-file", "hog-detector", "whole-image",
/// "whole-image-no-detection", "annotation".
std::string source_name(PersonSource source);

/// Where one person is: the crop to estimate from and how it was found.
struct PersonCrop {
  data::CropParams crop;  ///< centre and scale (image pixels; the square side is 200·scale)
  PersonSource source = PersonSource::kCenterScale;
  cv::Rect2d box;        ///< the box it was made from (empty for centre/scale and whole-image)
  double detection = 0;  ///< the detector's score (kDetector only)
};

/// The crop of a person box [x, y, w, h] (image pixels): centre = box centre, scale =
/// 1.25 · max(w, h) / 200, the 25% margin the COCO and custom readers use, so that a tight box
/// gives the framing the network was trained on. Throws unless w, h > 0.
data::CropParams crop_of_box(const cv::Rect2d& box);

/// The crop covering a whole `size` image: centre = image centre, side = its longer side.
data::CropParams crop_of_image(cv::Size size);

/// People found by OpenCV's built-in HOG people detector (default people SVM, no download) in
/// an RGB image, best score first, at most `max_people`. The search runs on the image resized to
/// a shorter side of at least 400 and a longer side of at most 800 pixels (people below about a
/// quarter of the image height in large images are missed).
std::vector<PersonCrop> detect_people(const cv::Mat& rgb, int max_people = 10);

/// Inference settings.
struct PredictorOptions {
  int input_size = 256;  ///< network input side R (a multiple of 4·2^depth)
  bool flip = true;      ///< flip test: average with the mirrored crop's heatmaps
  int batch = 8;         ///< crops per network call (2× that with the flip test)
  data::PixelGrid grid = data::PixelGrid::kExact;  ///< the grid the weights were trained on
  PeakDecoder decoder = PeakDecoder::kQuarterOffset;  ///< heatmaps → coordinates
};

/// One person's prediction.
struct PosePrediction {
  PersonCrop person;
  /// S×J×3 float32: for every stack (the last is the final prediction), each joint's x, y in
  /// image pixels (centre of pixel (i, j) at (i, j)) and its confidence (the heatmap's peak).
  at::Tensor joints;
  /// S×J×h×w float32 heatmaps of the crop (flip-averaged when flip is on); kept only when asked.
  at::Tensor heatmaps;
};

/// Runs a backend on people crops. Thread-compatible: one predictor per thread.
class Predictor {
 public:
  /// `joints` names the backend's J outputs (its flip pairs drive the flip test).
  Predictor(Backend backend, data::JointSet joints, PredictorOptions options = {});

  /// Predicts every person of `rgb` (CV_8UC3 RGB). Heatmaps are kept when `keep_heatmaps`.
  std::vector<PosePrediction> predict(const cv::Mat& rgb, const std::vector<PersonCrop>& people,
                                      bool keep_heatmaps = false) const;

  /// The crops as the network sees them: N×3×R×R float32 RGB in [0, 1].
  at::Tensor crops(const cv::Mat& rgb, const std::vector<PersonCrop>& people) const;

  const data::JointSet& joints() const { return joints_; }
  const PredictorOptions& options() const { return options_; }

 private:
  // N crops → N×S×J×h×w heatmaps, flip-averaged when options_.flip.
  at::Tensor heatmaps(const at::Tensor& input) const;

  Backend backend_;
  data::JointSet joints_;
  std::vector<int> flip_perm_;
  PredictorOptions options_;
};

/// The joint set of a model with `count` outputs: MPII (16), FLIC (11), COCO (17), else joints
/// named "joint-0", "joint-1", … without flip pairs or skeleton.
data::JointSet joints_for_model(int64_t count);

/// Options for a loaded checkpoint: the pixel grid its trainer used (imported PyTorch weights:
/// PixelGrid::kOriginal; native: meta "pixel_grid" = "exact" | "original", default exact) and the
/// input side from meta "input_size" (default 256).
PredictorOptions options_for_model(const io::LoadedModel& model);

}  // namespace hg::infer
