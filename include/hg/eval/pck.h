#pragma once
/// PCK metrics: the fraction of joints whose prediction lies within a threshold of the truth,
/// the threshold being relative to a per-person unit (`normalize`: MPII's 0.6 × head-box
/// diagonal for PCKh, FLIC's torso length). Conventions of the official MPII evaluation: the test
/// is strict (error / normalize < threshold), and every annotated (present) joint counts,
/// whatever its visibility.

#include "hg/data/dataset.h"

#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace hg::eval {

/// error / normalize for every joint: N×J float64, NaN where the joint is not present.
/// pred, truth: N×J×2 (x, y) in image pixels; present: N×J bool; normalize: N (pixels, > 0).
at::Tensor normalized_errors(const at::Tensor& pred, const at::Tensor& truth,
                             const at::Tensor& present, const at::Tensor& normalize);

/// Ground truth of a dataset as tensors: truth N×J×2, present N×J, normalize N (float64).
struct Truth {
  at::Tensor joints, present, normalize;
};
/// The truth of every annotation. `normalize` is the annotation's (MPII: 0.6 × head-box
/// diagonal, FLIC: torso length); where it has none (0: COCO), the person box's longer side,
/// recovered from the crop as 200·scale / 1.25 (the COCO and custom readers' box → scale), so
/// that COCO gets PCK relative to the box size.
Truth truth_of(const data::Dataset& dataset);

/// PCK of each joint, in percent, at `threshold`: 100·#(err < threshold) / #present. NaN for a
/// joint that is never present. errors: N×J from normalized_errors.
std::vector<double> pck_per_joint(const at::Tensor& errors, double threshold);

/// How many times each joint is present (the weights of the count-weighted mean).
std::vector<int64_t> present_counts(const at::Tensor& errors);

/// The table of the papers: joint groups with left and right averaged, and the means.
struct PckTable {
  double threshold = 0.5;
  std::vector<std::string> group_names;  ///< e.g. head, shoulder, elbow, wrist, hip, knee, ankle
  std::vector<double> groups;            ///< percent, one per group name
  std::vector<double> per_joint;         ///< percent, dataset joint order
  double mean = 0;           ///< unweighted mean over the joints (MPII: all but pelvis, thorax)
  double mean_weighted = 0;  ///< the same joints weighted by their present counts
};

/// The thresholds of the PCK curve: 0, 0.01, …, 0.5 (51 values, as the official MPII plots).
std::vector<double> curve_thresholds();

/// Builds the table for a joint set at `threshold`. Groups are found by name: "head" is the
/// head top where the set has one (MPII), else the mean of nose, eyes and ears; the others are
/// the l-/r- pairs (shoulder, elbow, wrist, hip, knee, ankle) present in the set.
PckTable pck_table(const at::Tensor& errors, const data::JointSet& joints, double threshold);

/// The table as JSON: {group name: percent, …, "mean": …, "mean_weighted": …}; NaN → null.
nlohmann::json table_to_json(const PckTable& table);

/// The metric a dataset is scored with: "pckh" (head-normalised, MPII and synthetic) at 0.5 and
/// 0.1, else "pck" (FLIC: torso; COCO: box size; custom: its normalize) at 0.2.
struct Metric {
  std::string name;                ///< "pckh" or "pck"
  std::vector<double> thresholds;  ///< the tables reported, main one first
};
Metric metric_for(const data::JointSet& joints);
/// The metric at a threshold as JSON keys name it ("pckh@0.5"): eval's output and training's
/// log ("val_pckh@0.5").
std::string metric_key(const Metric& metric, double threshold);
/// The same for people ("PCKh@0.5").
std::string metric_label(const Metric& metric, double threshold);

}  // namespace hg::eval
