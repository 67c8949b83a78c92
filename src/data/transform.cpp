#include "hg/data/transform.h"

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

namespace hg::data {

const runtime::NameTable<PixelGrid>& name_table(PixelGrid) {
  static const runtime::NameTable<PixelGrid> table = {{"exact", PixelGrid::kExact},
                                                      {"original", PixelGrid::kOriginal}};
  return table;
}

std::string pixel_grid_name(PixelGrid grid) {
  return runtime::name_in(name_table(grid), grid);
}

// u = k·R(-rot)·(x - c) + o, k = res / (200·scale), o = (res-1)/2 (kExact) or res/2 (kOriginal);
// a flip then maps u_x to res-1-u_x. R(a) = [cos a, -sin a; sin a, cos a] in y-down axes.
CropTransform::CropTransform(const CropParams& params, int res) : params_(params), res_(res) {
  if (res <= 0)
    throw std::invalid_argument("crop resolution must be > 0, got " + std::to_string(res));
  if (!(params.scale > 0))
    throw std::invalid_argument("crop scale must be > 0, got " + std::to_string(params.scale));
  const double k = res / (200.0 * params.scale);
  const double a = -params.rotation_deg * M_PI / 180.0;
  const double ca = k * std::cos(a), sa = k * std::sin(a);
  const double o = params.grid == PixelGrid::kExact ? (res - 1) / 2.0 : res / 2.0;
  const double cx = params.center.x, cy = params.center.y;
  forward_ = cv::Matx23d(ca, -sa, o - (ca * cx - sa * cy),  //
                         sa, ca, o - (sa * cx + ca * cy));
  if (params.flip) {
    forward_(0, 0) = -forward_(0, 0);
    forward_(0, 1) = -forward_(0, 1);
    forward_(0, 2) = (res - 1) - forward_(0, 2);
  }
  cv::invertAffineTransform(forward_, inverse_);
}

cv::Point2d CropTransform::forward(const cv::Point2d& x) const {
  const auto& m = forward_;
  return {m(0, 0) * x.x + m(0, 1) * x.y + m(0, 2), m(1, 0) * x.x + m(1, 1) * x.y + m(1, 2)};
}

cv::Point2d CropTransform::inverse(const cv::Point2d& u) const {
  const auto& m = inverse_;
  return {m(0, 0) * u.x + m(0, 1) * u.y + m(0, 2), m(1, 0) * u.x + m(1, 1) * u.y + m(1, 2)};
}

cv::Mat CropTransform::warp(const cv::Mat& image) const {
  cv::Mat out;
  cv::warpAffine(image, out, cv::Mat(forward_), cv::Size(res_, res_), cv::INTER_LINEAR,
                 cv::BORDER_CONSTANT, cv::Scalar::all(0));
  return out;
}

}  // namespace hg::data
