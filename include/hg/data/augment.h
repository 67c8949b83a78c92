#pragma once
/// Augmentation recipes: how a sample's crop is randomly scaled, rotated, flipped and
/// colour-jittered. A recipe is sampled into AugmentParams with a caller-provided generator so
/// that the loader is deterministic per (seed, epoch, sample).

#include "hg/runtime/names.h"

#include <cstdint>
#include <random>
#include <string>

namespace hg::data {

/// The augmentation recipes by name (the training config's `augment`).
enum class AugmentPreset { kNone, kPaper, kOriginal, kCoco };
/// "none", "paper", "original", "coco".
const runtime::NameTable<AugmentPreset>& name_table(AugmentPreset);

/// A random augmentation recipe. Scale multiplies the crop side (> 1 = person appears smaller).
struct AugmentOptions {
  /// How the scale factor is drawn.
  enum class ScaleLaw {
    kNone,        ///< always 1
    kUniform,     ///< U(scale_min, scale_max)
    kLog2Normal,  ///< 2^clamp(N(0,1)·scale_sigma, ±scale_clamp)
    kNormal,      ///< 1 + clamp(N(0,1)·scale_sigma, ±scale_clamp) (MMPose's)
  };
  /// How the rotation is drawn (degrees, counter-clockwise on screen).
  enum class RotationLaw {
    kNone,     ///< always 0
    kUniform,  ///< U(-rotation_max, rotation_max)
    kNormal,   ///< clamp(N(0,1)·rotation_sigma, ±rotation_max)
  };
  ScaleLaw scale_law = ScaleLaw::kNone;
  double scale_min = 1, scale_max = 1;      ///< kUniform bounds
  double scale_sigma = 0, scale_clamp = 0;  ///< kLog2Normal, in octaves
  RotationLaw rotation_law = RotationLaw::kNone;
  double rotation_max = 0;                ///< degrees: kUniform bound, kNormal clamp
  double rotation_sigma = 0;              ///< degrees, kNormal
  double rotation_prob = 1;               ///< probability that a sample is rotated at all
  double flip_prob = 0;                   ///< probability of a horizontal flip (joints swap sides)
  double colour_min = 1, colour_max = 1;  ///< each RGB channel × U(min, max), clamped to [0, 1]
  /// Probability of a half-body crop (MMPose's TopDownHalfBodyTransform): for a person with more
  /// than half_body_min_joints present joints, the crop becomes the box of its upper-body joints
  /// (JointSet::upper_body) or of the others, × 1.5, centred on their mean. Joint sets without
  /// upper_body are never cropped so.
  double half_body_prob = 0;
  int half_body_min_joints = 8;

  /// No augmentation (evaluation).
  static AugmentOptions none();
  /// The paper's: rotation U(±30°), scale U(0.75, 1.25), flip p = 0.5, and colour jitter, whose
  /// amount the paper does not give: we use the original code's per-channel U(0.6, 1.4).
  static AugmentOptions paper();
  /// The original code's exact recipe: scale 2^clamp(N(0,1)·0.25, ±0.5), rotation
  /// clamp(N(0,1)·30, ±60°) on 40% of samples, flip p = 0.5, each channel × U(0.6, 1.4).
  static AugmentOptions original();
  /// MMPose's top-down COCO recipe: scale 1 + clamp(N(0,1)·0.5, ±0.5), rotation
  /// clamp(N(0,1)·40, ±80°) on 60% of samples, flip p = 0.5, half-body crops p = 0.3 (more than
  /// 8 joints), no colour jitter.
  static AugmentOptions coco();
  /// One of the above.
  static AugmentOptions preset(AugmentPreset preset);
};

/// One drawn augmentation.
struct AugmentParams {
  double scale = 1;         ///< multiplies the annotation's scale
  double rotation_deg = 0;  ///< counter-clockwise on screen
  bool flip = false;
  float colour[3] = {1, 1, 1};  ///< R, G, B gains
  bool half_body = false;       ///< crop to half of the body (see AugmentOptions::half_body_prob)
  bool upper_body = true;       ///< which half, where both qualify
};

/// Draws one AugmentParams from `options`. The draws happen in a fixed order (scale, rotation,
/// rotation-gate, flip, colour R, G, B, half-body gate, half choice), so equal generators give
/// equal params. The upper half is chosen when N(0,1) < 0.5 (69%), MMPose's rule.
AugmentParams sample_augment(const AugmentOptions& options, std::mt19937_64& rng);

/// A generator seeded from (seed, epoch, sample) by SplitMix64 mixing: independent streams for
/// every sample of every epoch, independent of thread scheduling.
std::mt19937_64 sample_rng(uint64_t seed, uint64_t epoch, uint64_t sample);

}  // namespace hg::data
