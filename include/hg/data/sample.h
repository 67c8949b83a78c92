#pragma once
/// Turning one annotated person into a training sample: the augmented crop (network input),
/// the target heatmaps and their weights.

#include "hg/data/augment.h"
#include "hg/data/dataset.h"
#include "hg/data/transform.h"
#include "hg/runtime/names.h"

#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace hg::data {

/// Heatmap σ of the paper (1 px at heatmap resolution).
inline constexpr double kPaperSigma = 1.0;
/// Effective σ of the original code's Gaussian kernel (1.75 px at heatmap resolution).
inline constexpr double kOriginalSigma = 1.75;

/// Where a target Gaussian is centred.
enum class TargetEncoding {
  /// On the joint's exact, sub-pixel heatmap position: the unbiased encoding DARK decodes
  /// (Zhang et al. 2020). The default.
  kUnbiased,
  /// On the heatmap pixel nearest the joint (position rounded half up), as the original code,
  /// HRNet and MMPose's default encoder do: up to half a heatmap pixel of quantisation bias.
  kRounded,
};
/// "unbiased", "rounded": the training config's spelling.
const runtime::NameTable<TargetEncoding>& name_table(TargetEncoding);

/// How samples are made.
struct SampleOptions {
  int res = 256;               ///< input side in pixels
  int heatmap_res = 0;         ///< heatmap side; 0 = res / 4
  double sigma = kPaperSigma;  ///< Gaussian σ in heatmap pixels
  /// Where the Gaussians are centred.
  TargetEncoding target_encoding = TargetEncoding::kUnbiased;
  AugmentOptions augment = AugmentOptions::none();
  PixelGrid grid = PixelGrid::kExact;  ///< see transform.h
  /// Let large images be decoded at 1/2, 1/4 or 1/8 (JPEG DCT scaling) when the crop still gets
  /// at least one source pixel per output pixel: several times faster on photos, and
  /// anti-aliased. false = always decode in full (the reference).
  bool reduced_decode = true;

  /// heatmap_res, or res / 4 when it is 0.
  int heatmap_side() const { return heatmap_res > 0 ? heatmap_res : res / 4; }
};

/// What a sample was made from: enough to map predictions back and to score them.
struct SampleMeta {
  size_t sample = 0;             ///< position in the dataset
  int64_t index = -1;            ///< Annotation::index
  cv::Point2d center;            ///< annotation centre (before augmentation), image pixels
  double scale = 1;              ///< annotation scale (before augmentation)
  double normalize = 0;          ///< PCK unit, image pixels
  std::vector<Keypoint> joints;  ///< ground truth in image pixels, dataset order (not flipped)
  AugmentParams augment;         ///< what was applied
  CropParams crop;  ///< the crop actually used (centre, scale·augment.scale, rotation, flip):
                    ///< CropTransform(crop, heatmap_res).inverse() maps heatmap → image pixels
};

/// One prepared sample.
struct Sample {
  cv::Mat input;                  ///< res×res CV_32FC3, RGB in [0, 1] (HWC; the loader makes CHW)
  std::vector<cv::Mat> heatmaps;  ///< J maps, heatmap_res² CV_32F; joint j's target (flipped
                                  ///< samples: channel j holds the joint that is j after the flip)
  std::vector<float> weight;      ///< J: 1 if joint j is present and inside the heatmap, else 0
  SampleMeta meta;
};

/// The network input for `crop` of `image` (H×W CV_8UC3 RGB): the warped res×res crop as
/// CV_32FC3 RGB in [0, 1] (value / 255). Training samples and the predictor both make their
/// inputs here, so a crop is the same bytes on either path.
cv::Mat crop_input(const cv::Mat& image, const CropParams& crop, int res);

/// Adds nothing and returns false when `p` (heatmap pixels) is outside [-0.5, side - 0.5)²;
/// otherwise writes exp(-|q - p|² / 2σ²) into `map` (side×side CV_32F, zeroed by the caller) at
/// every pixel q within 3σ of p (max with what is there) and returns true. The peak value is 1 at
/// p; the largest pixel is the one nearest p.
bool draw_gaussian(cv::Mat& map, const cv::Point2d& p, double sigma);

/// Reference for draw_gaussian: evaluates the same truncated Gaussian at every pixel.
bool draw_gaussian_reference(cv::Mat& map, const cv::Point2d& p, double sigma);

/// Builds the sample of dataset item `i` with augmentation `aug` (see sample_augment): loads the
/// image (may throw ImageError; reduced per options.reduced_decode), warps it, applies the colour
/// gains and draws the targets.
Sample make_sample(const Dataset& dataset, size_t i, const SampleOptions& options,
                   const AugmentParams& aug);

/// The same from an annotation and its already loaded RGB CV_8UC3 image, decoded at
/// 1/`reduced` of the annotation's pixel size (see Dataset::load).
Sample make_sample(const Annotation& annotation, const cv::Mat& image, const JointSet& joints,
                   const SampleOptions& options, const AugmentParams& aug, int reduced = 1);

/// The largest reduction (1, 2, 4 or 8) that still leaves at least one source pixel per output
/// pixel for a crop of side `crop_side` image pixels onto `res` pixels.
int decode_reduction(double crop_side, int res);

}  // namespace hg::data
