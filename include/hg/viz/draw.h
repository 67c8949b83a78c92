#pragma once
/// Drawing helpers shared by the tools that render images (`hourglass data show`, `predict
/// --draw`, `show`): joint colours, labels, skeletons, colour-mapped heatmaps and tiling.
/// Every image here is 8-bit RGB (CV_8UC3); points are in the image's pixels with the centre of
/// pixel (i, j) at (i, j).

#include "hg/data/dataset.h"

#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace hg::viz {

/// The colour of a joint by its name: "r-…" red, "l-…" blue, any other green (RGB).
cv::Scalar joint_colour(const std::string& name);

/// Writes `text` in white with a black outline, its baseline starting at `at`.
void put_label(cv::Mat& image, const std::string& text, cv::Point at, double size = 0.45);

/// Draws the skeleton of `joints` on `image`: a limb for every skeleton edge whose two ends are
/// shown (coloured by its second joint), then a dot for every shown joint. `points` and `shown`
/// have one entry per joint; `thickness` is the limb width in pixels, the dots are twice as wide.
void draw_skeleton(cv::Mat& image, const std::vector<cv::Point2d>& points,
                   const std::vector<bool>& shown, const data::JointSet& joints, int thickness = 3);

/// A single-channel float map (values in [0, 1], clipped) as a JET-coloured RGB image of `size`,
/// magnified with nearest-neighbour sampling so that its pixels stay visible.
cv::Mat colour_map(const cv::Mat& map, cv::Size size);

/// `base` blended half and half with colour_map(map, base.size()).
cv::Mat overlay_map(const cv::Mat& base, const cv::Mat& map);

/// Where the centre of pixel `u` of an image lands in that image magnified `zoom`× (by any
/// resampling that maps pixel areas onto pixel areas): (u + 0.5)·zoom − 0.5. Also maps heatmap
/// pixels onto the crop they cover (zoom = crop side / heatmap side).
cv::Point2d magnify(const cv::Point2d& u, double zoom);

/// A copy of `image` with the skeleton of `points` (every joint shown) and `label` (if not empty)
/// in its top-left corner.
cv::Mat skeleton_panel(const cv::Mat& image, const std::vector<cv::Point2d>& points,
                       const data::JointSet& joints, const std::string& label = "");

/// `image` overlaid with the pixel-wise maximum of `maps` (CV_32F, one per joint, values in
/// [0, 1]), with `label` (if not empty) in its top-left corner.
cv::Mat max_panel(const cv::Mat& image, const std::vector<cv::Mat>& maps,
                  const std::string& label = "");

/// The tiles (all the size of the first) in rows of `cols`, on a dark grey background.
cv::Mat tile(const std::vector<cv::Mat>& tiles, int cols);

}  // namespace hg::viz
