#include "hg/viz/draw.h"

#include <c10/util/Exception.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>

namespace hg::viz {

cv::Scalar joint_colour(const std::string& name) {
  if (name.rfind("r-", 0) == 0) return {230, 60, 40};
  if (name.rfind("l-", 0) == 0) return {50, 110, 240};
  return {40, 200, 60};
}

void put_label(cv::Mat& image, const std::string& text, cv::Point at, double size) {
  cv::putText(image, text, at, cv::FONT_HERSHEY_SIMPLEX, size, cv::Scalar(0, 0, 0), 3, cv::LINE_AA);
  cv::putText(image, text, at, cv::FONT_HERSHEY_SIMPLEX, size, cv::Scalar(255, 255, 255), 1,
              cv::LINE_AA);
}

void draw_skeleton(cv::Mat& image, const std::vector<cv::Point2d>& points,
                   const std::vector<bool>& shown, const data::JointSet& joints, int thickness) {
  // OpenCV draws at integer positions unless given fixed-point coordinates: 4 fractional bits
  // keep sub-pixel joints where they are.
  constexpr int kShift = 4;
  auto fixed = [](const cv::Point2d& p) {
    return cv::Point(cvRound(p.x * (1 << kShift)), cvRound(p.y * (1 << kShift)));
  };
  for (const auto& [a, b] : joints.skeleton)
    if (shown[a] && shown[b])
      cv::line(image, fixed(points[a]), fixed(points[b]), joint_colour(joints.names[b]), thickness,
               cv::LINE_AA, kShift);
  const int radius = std::max(2, thickness + thickness / 2 + 1) << kShift;
  for (size_t j = 0; j < points.size(); ++j)
    if (shown[j]) {
      cv::circle(image, fixed(points[j]), radius, joint_colour(joints.names[j]), -1, cv::LINE_AA,
                 kShift);
      cv::circle(image, fixed(points[j]), radius, cv::Scalar(0, 0, 0), 1, cv::LINE_AA, kShift);
    }
}

cv::Mat colour_map(const cv::Mat& map, cv::Size size) {
  cv::Mat m8, colour;
  map.convertTo(m8, CV_8U, 255);  // saturates: values outside [0, 1] clip
  cv::resize(m8, m8, size, 0, 0, cv::INTER_NEAREST);
  cv::applyColorMap(m8, colour, cv::COLORMAP_JET);
  cv::cvtColor(colour, colour, cv::COLOR_BGR2RGB);
  return colour;
}

cv::Mat overlay_map(const cv::Mat& base, const cv::Mat& map) {
  cv::Mat out;
  cv::addWeighted(base, 0.5, colour_map(map, base.size()), 0.5, 0, out);
  return out;
}

cv::Point2d magnify(const cv::Point2d& u, double zoom) {
  return (u + cv::Point2d(0.5, 0.5)) * zoom - cv::Point2d(0.5, 0.5);
}

cv::Mat skeleton_panel(const cv::Mat& image, const std::vector<cv::Point2d>& points,
                       const data::JointSet& joints, const std::string& label) {
  cv::Mat out = image.clone();
  draw_skeleton(out, points, std::vector<bool>(points.size(), true), joints);
  if (!label.empty()) put_label(out, label, {6, 18});
  return out;
}

cv::Mat max_panel(const cv::Mat& image, const std::vector<cv::Mat>& maps,
                  const std::string& label) {
  TORCH_CHECK(!maps.empty(), "max_panel needs at least one map");
  cv::Mat m = maps[0].clone();
  for (const auto& h : maps) cv::max(m, h, m);
  cv::Mat out = overlay_map(image, m);
  if (!label.empty()) put_label(out, label, {6, 18});
  return out;
}

cv::Mat tile(const std::vector<cv::Mat>& tiles, int cols) {
  if (tiles.empty()) return {};
  const int w = tiles[0].cols, h = tiles[0].rows, n = static_cast<int>(tiles.size());
  cols = std::max(1, std::min(cols, n));
  const int rows = (n + cols - 1) / cols;
  cv::Mat out(rows * h, cols * w, CV_8UC3, cv::Scalar(40, 40, 40));
  for (int k = 0; k < n; ++k) tiles[k].copyTo(out(cv::Rect((k % cols) * w, (k / cols) * h, w, h)));
  return out;
}

}  // namespace hg::viz
