#pragma once
/// PCK-versus-threshold plots (PLplot, rendered in memory and written as PNG by OpenCV).

#include <string>
#include <vector>

namespace hg::eval {

/// One curve: a label and one value (percent) per threshold.
struct Curve {
  std::string label;
  std::vector<double> values;
  /// Its own x positions, one per value (empty: the plot's shared `thresholds`).
  std::vector<double> x = {};
  bool markers = false;  ///< also draw a point at each value
  bool dashed = false;   ///< a dashed line (e.g. published figures beside measured ones)
};

/// One panel of curves sharing the x axis `thresholds`.
struct Panel {
  std::string title;
  std::vector<Curve> curves;
  std::string y_label = "% of joints";
  double y_min = 0, y_max = 100;
};

/// Draws the panels side by side (x: `x_label`, 0…the last of `thresholds`; y: each panel's
/// label and range, by default percent 0…100), each with a legend, into a PNG of
/// `width`×`height` pixels. Throws naming `png_path` when it cannot write.
void plot_curves(const std::string& png_path, const std::vector<double>& thresholds,
                 const std::vector<Panel>& panels, const std::string& x_label, int width = 1400,
                 int height = 600);

}  // namespace hg::eval
