#pragma once
/// A procedural synthetic-human dataset: no download, deterministic by seed.
///
/// Each sample is an image (default 256×256) of an articulated 2-D figure with the 16 MPII joints
/// in MPII order: body height, limb proportions, thickness, pose (within joint-angle limits),
/// facing (front: face drawn, person's right on image left; back: hair, right on image right),
/// clothing colours and textures all vary (the person's right limbs are drawn darker and the left
/// ones lighter: a side cue in unflipped images that a flip augmentation reverses), over a
/// cluttered background with occluders, partly out-of-image (truncated) figures and distractor
/// people. Annotations follow the MPII files: joints outside the image are missing, joints under an
/// occluder are present but not visible, scale = 1.25 · height / 200 and centre = body-box centre +
/// 15·height/200 in y (the original's adjustment), normalize = 0.6 × the head-box diagonal.

#include "hg/data/dataset.h"

#include <cstdint>
#include <vector>

namespace hg::data {

/// Generation settings.
struct SyntheticOptions {
  int image_size = 256;            ///< side of the square images
  double back_facing_prob = 0.25;  ///< probability that a figure shows its back (no face;
                                   ///< its right side on the image right)
  double occluder_prob = 0.25;     ///< probability of 1–2 occluders over the figure
  double truncation_prob = 0.1;    ///< probability that the figure is shifted partly out of frame
  int max_distractors = 2;         ///< distractor people per image: 0..max
  int clutter = 14;                ///< background shapes per image (about)
};

/// See the file comment. Sample i is a pure function of (seed, i, options).
class SyntheticDataset : public Dataset {
 public:
  /// `num_samples` people drawn from `seed`.
  SyntheticDataset(size_t num_samples, uint64_t seed, SyntheticOptions options = {});
  size_t size() const override { return num_samples_; }
  const JointSet& joints() const override { return joints_; }
  Annotation annotation(size_t i) const override;
  cv::Mat image(size_t i) const override;
  std::string describe() const override;
  /// Annotation and image from one generation (never reduced: `*applied` = 1).
  Annotation load(size_t i, cv::Mat& image, int reduce = 1, int* applied = nullptr) const override;

 private:
  size_t num_samples_;
  uint64_t seed_;
  SyntheticOptions options_;
  JointSet joints_;
};

}  // namespace hg::data
