#pragma once
/// The JSON that `hourglass predict` writes, and reading it back (for `hourglass eval`).
///
///     {"format": "hourglass-predictions", "version": 1,
///      "joint_set": "mpii", "joints": ["r-ankle", ...], "flip_pairs": [[0, 5], ...],
///      "skeleton": [[0, 1], ...],
///      "model": "model.hg", "input_size": 256, "flip_test": true,
///      "results": [
///        {"input": "images/a.jpg", "width": 1280, "height": 720,   // "frame": k for videos
///         "people": [
///           {"found_by": "hog-detector",        // see infer::source_name
///            "box": [x, y, w, h], "detection_score": 1.3,          // when from a box
///            "center": [x, y], "scale": 1.9,    // the crop: side 200·scale px
///            "joints": {"r-ankle": {"x": 613.2, "y": 402.8, "score": 0.71}, ...},  // last stack
///            "stacks": [[[x, y, score], ...J], ...S]}]},          // every stack, first to last
///        {"input": "broken.jpg", "error": "cannot read image broken.jpg: ..."}]}
///
/// Coordinates are image pixels, the centre of pixel (i, j) at (i, j); scores are heatmap peaks.

#include "hg/infer/predictor.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace hg::infer {

/// The header of a predictions file (everything but "results").
nlohmann::json results_header(const data::JointSet& joints, const std::string& model,
                              const PredictorOptions& options);

/// One person as in the file comment.
nlohmann::json person_to_json(const PosePrediction& person, const data::JointSet& joints);

/// One person read back.
struct PersonResult {
  cv::Point2d center;  ///< crop centre, image pixels
  double scale = 0;
  at::Tensor joints;  ///< S×J×3 (x, y, score) for every stack
};

/// One image (or video frame) read back; `error` is set for inputs that failed.
struct ImageResult {
  std::string input;
  int64_t frame = -1;  ///< video frame, -1 for images
  std::string error;
  std::vector<PersonResult> people;
};

/// Reads a predictions file; its joints must be `joints` (same names, same order). Throws naming
/// the file and the field at fault.
std::vector<ImageResult> read_results(const std::string& path, const data::JointSet& joints);

}  // namespace hg::infer
