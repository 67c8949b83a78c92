#pragma once
/// The crop transform of the original method: a similarity (scale, rotation, optional
/// horizontal flip) that maps the person's square `200·scale` px around `center` onto a res×res
/// crop; its inverse maps crop (or heatmap) coordinates back to the image.
///
/// Pixel convention (both images): the centre of pixel (i, j) is at (i, j), so an image of
/// width W spans [-0.5, W - 0.5]. The source square [c - h/2, c + h/2] (h = 200·scale) maps
/// exactly onto the crop's extent [-0.5, res - 0.5], i.e.
///
///     u = (res / h) · R(-rot) · (x - c) + (res - 1) / 2           (then, if flip: u_x = res-1-u_x)
///
/// where R(a) is the rotation by a in image axes (y down), so a positive `rotation_deg` turns the
/// content counter-clockwise on screen, about the crop centre. Because the whole square maps onto
/// whole pixels, the same formula at res/4 gives the heatmap transform, a heatmap pixel k covers
/// crop pixels 4k..4k+3 (its centre is crop coordinate 4k + 1.5), and flipping the crop flips the
/// heatmaps exactly (pixel i ↔ res-1-i at both resolutions).
///
/// The original code maps c to res/2 instead of (res-1)/2 (half a pixel at every resolution,
/// i.e. its heatmaps sit 0.5 heatmap px = 2 input px right/down of ours relative to the crop);
/// PixelGrid::kOriginal reproduces that for weights trained by it.

#include "hg/runtime/names.h"

#include <opencv2/core.hpp>

#include <string>

namespace hg::data {

/// Where the crop centre lands: see the file comment.
enum class PixelGrid {
  kExact,     ///< c → (res-1)/2: the square covers the crop edge to edge (default)
  kOriginal,  ///< c → res/2, as the original Lua/PyTorch code
};
/// "exact", "original": checkpoint meta's "pixel_grid".
const runtime::NameTable<PixelGrid>& name_table(PixelGrid);
/// The name of `grid` in its table.
std::string pixel_grid_name(PixelGrid grid);

/// The parameters of one crop.
struct CropParams {
  cv::Point2d center;       ///< image pixels
  double scale = 1;         ///< source square side = 200 · scale pixels
  double rotation_deg = 0;  ///< counter-clockwise on screen, about the crop centre
  bool flip = false;        ///< mirror the crop horizontally (after rotation)
  PixelGrid grid = PixelGrid::kExact;
};

/// The image → crop similarity for given CropParams at a given output resolution.
class CropTransform {
 public:
  /// Transform onto a res×res crop (res > 0).
  CropTransform(const CropParams& params, int res);

  /// The 2×3 matrix M with u = M · [x, y, 1] (image → crop).
  const cv::Matx23d& matrix() const { return forward_; }
  /// The 2×3 matrix of the inverse (crop → image).
  const cv::Matx23d& inverse_matrix() const { return inverse_; }
  /// Image point → crop point.
  cv::Point2d forward(const cv::Point2d& x) const;
  /// Crop point → image point.
  cv::Point2d inverse(const cv::Point2d& u) const;
  /// The same crop at another resolution (e.g. res/4 for heatmaps).
  CropTransform at_resolution(int res) const { return CropTransform(params_, res); }
  /// Output side in pixels.
  int res() const { return res_; }
  /// The parameters this transform was built from.
  const CropParams& params() const { return params_; }

  /// Warps `image` (any type/channels) into a res×res crop: bilinear, zero outside the image.
  cv::Mat warp(const cv::Mat& image) const;

 private:
  CropParams params_;
  int res_;
  cv::Matx23d forward_, inverse_;
};

}  // namespace hg::data
