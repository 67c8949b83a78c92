#include "hg/eval/plot.h"

#include "hg/io/atomic_file.h"

#include <plplot/plstream.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace hg::eval {
namespace {

// PLplot's antialiased memory device when its cairo driver is installed (Debian's
// plplot-driver-cairo, which scripts/setup.sh installs), else its plain one: PLplot asks for a
// device on standard input when the one named is missing, so it is looked up first.
const char* memory_device() {
  const char** menus = nullptr;
  const char** names = nullptr;
  int count = 64;
  std::vector<const char*> m(count), n(count);
  menus = m.data();
  names = n.data();
  plgDevs(&menus, &names, &count);
  for (int i = 0; i < count; ++i)
    if (std::string(names[i]) == "memcairo") return "memcairo";
  return "mem";
}

}  // namespace

void plot_curves(const std::string& png_path, const std::vector<double>& thresholds,
                 const std::vector<Panel>& panels, const std::string& x_label, int width,
                 int height) {
  if (panels.empty() || thresholds.empty())
    throw std::invalid_argument("nothing to plot into " + png_path);
  // A memory device rasterises into our buffer, which the atomic writer then encodes.
  cv::Mat rgb(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  static const char* const device = memory_device();
  {
    plstream pls;
    pls.scolbg(255, 255, 255);
    pls.scol0(1, 0, 0, 0);  // axes and labels black
    pls.sdev(device);
    pls.smem(width, height, rgb.data);
    pls.ssub(static_cast<PLINT>(panels.size()), 1);
    pls.init();
    pls.schr(0, 0.8);  // cairo's fonts are larger than the plain driver's
    // Distinct colours for the curves (cmap0 entries 2…).
    const std::vector<cv::Vec3b> palette = {
        {31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
        {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
    for (size_t c = 0; c < palette.size(); ++c)
      pls.scol0(static_cast<PLINT>(c + 2), palette[c][0], palette[c][1], palette[c][2]);
    const double xmax = thresholds.back();
    for (const auto& panel : panels) {
      // The data on the left, the legend outside it on the right.
      pls.col0(1);
      pls.adv(0);
      pls.vpor(0.16, 0.74, 0.16, 0.88);
      pls.wind(0, xmax, panel.y_min, panel.y_max);
      pls.box("bcnstg", 0, 0, "bcnstvg", 0, 0);
      pls.lab(x_label.c_str(), panel.y_label.c_str(), panel.title.c_str());
      const auto n = static_cast<PLINT>(panel.curves.size());
      std::vector<PLINT> opts(n, PL_LEGEND_LINE), text_colours(n, 1), colours(n), styles(n);
      std::vector<PLFLT> widths(n, 2);
      std::vector<const char*> labels(n);
      for (PLINT k = 0; k < n; ++k) {
        const auto& c = panel.curves[k];
        colours[k] = 2 + k % static_cast<PLINT>(palette.size());
        labels[k] = c.label.c_str();
        styles[k] = c.dashed ? 2 : 1;
        const auto& x = c.x.empty() ? thresholds : c.x;
        const auto count = static_cast<PLINT>(std::min(c.values.size(), x.size()));
        pls.col0(colours[k]);
        pls.width(2);
        pls.lsty(styles[k]);
        pls.line(count, x.data(), c.values.data());
        pls.lsty(1);
        if (c.markers) {
          pls.ssym(0, 1.5);
          pls.poin(count, x.data(), c.values.data(), 17);  // a filled circle
          pls.ssym(0, 1);
        }
      }
      pls.width(1);
      PLFLT lw = 0, lh = 0;
      pls.legend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
                 PL_POSITION_RIGHT | PL_POSITION_OUTSIDE, 0.03, 0.0, 0.06, 0, 1, 1, n, 1, n,
                 opts.data(), 1.0, 0.9, 2.0, 0.0, text_colours.data(), labels.data(), nullptr,
                 nullptr, nullptr, nullptr, colours.data(), styles.data(), widths.data(), nullptr,
                 nullptr, nullptr, nullptr);
    }
  }  // the stream's destructor flushes the page into the buffer
  cv::cvtColor(rgb, rgb, cv::COLOR_RGB2BGR);
  io::write_image_atomic(png_path, rgb);
}

}  // namespace hg::eval
