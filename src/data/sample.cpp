#include "hg/data/sample.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace hg::data {

namespace {
bool inside(const cv::Point2d& p, int side) {
  return p.x >= -0.5 && p.y >= -0.5 && p.x < side - 0.5 && p.y < side - 0.5;
}
}  // namespace

// g(q) = exp(-|q - p|² / 2σ²) for |q_x - p_x| ≤ 3σ and |q_y - p_y| ≤ 3σ, else 0 (the original's
// square 6σ+1 window). Separable: g = gx(q_x) · gy(q_y), evaluated on the window only.
bool draw_gaussian(cv::Mat& map, const cv::Point2d& p, double sigma) {
  CV_Assert(map.type() == CV_32F && map.rows == map.cols);
  const int side = map.rows;
  if (!inside(p, side)) return false;
  const double r = 3 * sigma, inv = 1 / (2 * sigma * sigma);
  const int x0 = std::max(0, static_cast<int>(std::ceil(p.x - r)));
  const int x1 = std::min(side - 1, static_cast<int>(std::floor(p.x + r)));
  const int y0 = std::max(0, static_cast<int>(std::ceil(p.y - r)));
  const int y1 = std::min(side - 1, static_cast<int>(std::floor(p.y + r)));
  float gx[512];
  CV_Assert(x1 - x0 < 512);
  for (int x = x0; x <= x1; ++x)
    gx[x - x0] = static_cast<float>(std::exp(-(x - p.x) * (x - p.x) * inv));
  for (int y = y0; y <= y1; ++y) {
    const float gy = static_cast<float>(std::exp(-(y - p.y) * (y - p.y) * inv));
    float* row = map.ptr<float>(y);
    for (int x = x0; x <= x1; ++x) row[x] = std::max(row[x], gy * gx[x - x0]);
  }
  return true;
}

bool draw_gaussian_reference(cv::Mat& map, const cv::Point2d& p, double sigma) {
  CV_Assert(map.type() == CV_32F && map.rows == map.cols);
  if (!inside(p, map.rows)) return false;
  for (int y = 0; y < map.rows; ++y)
    for (int x = 0; x < map.cols; ++x) {
      const double dx = x - p.x, dy = y - p.y;
      if (std::abs(dx) > 3 * sigma || std::abs(dy) > 3 * sigma) continue;
      const float v = static_cast<float>(std::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)));
      map.at<float>(y, x) = std::max(map.at<float>(y, x), v);
    }
  return true;
}

const runtime::NameTable<TargetEncoding>& name_table(TargetEncoding) {
  static const runtime::NameTable<TargetEncoding> table = {{"unbiased", TargetEncoding::kUnbiased},
                                                           {"rounded", TargetEncoding::kRounded}};
  return table;
}

cv::Mat crop_input(const cv::Mat& image, const CropParams& crop, int res) {
  cv::Mat out;
  CropTransform(crop, res).warp(image).convertTo(out, CV_32FC3, 1.0 / 255);
  return out;
}

namespace {

// The crop centre and scale: the annotation's, or with aug.half_body MMPose's half-body box of
// the present joints of one half (a square crop: the longer side of their box × 1.5).
std::pair<cv::Point2d, double> crop_base(const Annotation& a, const JointSet& joints,
                                         const AugmentParams& aug, const AugmentOptions& o) {
  if (!aug.half_body || joints.upper_body.empty()) return {a.center, a.scale};
  std::vector<bool> upper(a.joints.size(), false);
  for (int j : joints.upper_body) upper.at(static_cast<size_t>(j)) = true;
  std::vector<cv::Point2d> up, low;
  for (size_t j = 0; j < a.joints.size(); ++j)
    if (a.joints[j].present) (upper[j] ? up : low).push_back(a.joints[j].pos);
  if (up.size() + low.size() <= static_cast<size_t>(o.half_body_min_joints))
    return {a.center, a.scale};
  const auto& chosen = aug.upper_body && up.size() > 2 ? up : low.size() > 2 ? low : up;
  if (chosen.size() < 2) return {a.center, a.scale};
  cv::Point2d mean(0, 0), lo = chosen[0], hi = chosen[0];
  for (const auto& p : chosen) {
    mean += p / static_cast<double>(chosen.size());
    lo = {std::min(lo.x, p.x), std::min(lo.y, p.y)};
    hi = {std::max(hi.x, p.x), std::max(hi.y, p.y)};
  }
  const double side = 1.5 * std::max(hi.x - lo.x, hi.y - lo.y);
  if (!(side > 0)) return {a.center, a.scale};
  return {mean, side / 200};
}

}  // namespace

int decode_reduction(double crop_side, int res) {
  int f = 1;
  while (f < 8 && crop_side >= 2.0 * f * res) f *= 2;
  return f;
}

Sample make_sample(const Dataset& dataset, size_t i, const SampleOptions& options,
                   const AugmentParams& aug) {
  // The crop side needs the annotation before the image is decoded; it is cheap for every
  // dataset (file datasets hold it in memory).
  const double base =
      crop_base(dataset.annotation(i), dataset.joints(), aug, options.augment).second;
  const int want =
      options.reduced_decode ? decode_reduction(200 * base * aug.scale, options.res) : 1;
  cv::Mat image;
  int reduced = 1;
  Annotation a = dataset.load(i, image, want, &reduced);
  Sample s = make_sample(a, image, dataset.joints(), options, aug, reduced);
  s.meta.sample = i;
  return s;
}

Sample make_sample(const Annotation& a, const cv::Mat& image, const JointSet& joints,
                   const SampleOptions& options, const AugmentParams& aug, int reduced) {
  if (image.type() != CV_8UC3)
    throw std::invalid_argument("make_sample needs an RGB CV_8UC3 image (" + a.image + ")");
  if (a.joints.size() != static_cast<size_t>(joints.size()))
    throw std::invalid_argument("annotation of " + a.image + " has " +
                                std::to_string(a.joints.size()) + " joints, its dataset " +
                                std::to_string(joints.size()));
  Sample s;
  s.meta.index = a.index;
  s.meta.center = a.center;
  s.meta.scale = a.scale;
  s.meta.normalize = pck_unit(a);
  s.meta.joints = a.joints;
  s.meta.augment = aug;
  const auto [center, scale] = crop_base(a, joints, aug, options.augment);
  s.meta.crop = {center, scale * aug.scale, aug.rotation_deg, aug.flip, options.grid};

  const CropTransform crop(s.meta.crop, options.res);
  // A reduced image's pixel i is centred on original coordinate f·i + (f-1)/2: the same crop in
  // its coordinates has centre (c - (f-1)/2) / f and scale s / f.
  CropParams in_image = s.meta.crop;
  const double f = reduced;
  in_image.center = (in_image.center - cv::Point2d((f - 1) / 2, (f - 1) / 2)) / f;
  in_image.scale /= f;
  s.input = crop_input(image, in_image, options.res);
  if (aug.colour[0] != 1 || aug.colour[1] != 1 || aug.colour[2] != 1) {
    cv::multiply(s.input, cv::Scalar(aug.colour[0], aug.colour[1], aug.colour[2]), s.input);
    cv::min(s.input, cv::Scalar::all(1.0), s.input);
  }

  const int side = options.heatmap_side();
  const CropTransform heat = crop.at_resolution(side);
  const std::vector<int> perm = joints.flip_permutation();
  const size_t nj = a.joints.size();
  s.heatmaps.resize(nj);
  s.weight.assign(nj, 0.f);
  for (size_t j = 0; j < nj; ++j) {
    s.heatmaps[j] = cv::Mat::zeros(side, side, CV_32F);
    // After a flip, the person's left limb looks like a right one: channel j shows perm[j].
    const Keypoint& k = a.joints[aug.flip ? static_cast<size_t>(perm[j]) : j];
    if (!k.present) continue;
    const cv::Point2d p = heat.forward(k.pos);
    // The nearest pixel is inside the map exactly when p is: the same joints get weight 1.
    const cv::Point2d centre = options.target_encoding == TargetEncoding::kRounded
                                   ? cv::Point2d(std::floor(p.x + 0.5), std::floor(p.y + 0.5))
                                   : p;
    if (draw_gaussian(s.heatmaps[j], centre, options.sigma)) s.weight[j] = 1.f;
  }
  return s;
}

}  // namespace hg::data
