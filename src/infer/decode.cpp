#include "hg/infer/decode.h"

#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include <cmath>

namespace hg::infer {

at::Tensor decode_peaks(const at::Tensor& heatmaps) {
  TORCH_CHECK(heatmaps.dim() >= 2, "heatmaps must be ...×h×w, got ", heatmaps.sizes());
  const int64_t h = heatmaps.size(-2), w = heatmaps.size(-1);
  const auto maps =
      heatmaps.detach().to(torch::kCPU, torch::kFloat).reshape({-1, h, w}).contiguous();
  const auto idx = maps.reshape({maps.size(0), h * w}).argmax(1).contiguous();
  auto out = torch::empty({maps.size(0), 3}, torch::kFloat);
  auto m = maps.accessor<float, 3>();
  auto id = idx.accessor<int64_t, 1>();
  auto o = out.accessor<float, 2>();
  for (int64_t k = 0; k < maps.size(0); ++k) {
    const int64_t x = id[k] % w, y = id[k] / w;
    float fx = static_cast<float>(x), fy = static_cast<float>(y);
    if (x > 0 && x < w - 1 && y > 0 && y < h - 1) {
      const float dx = m[k][y][x + 1] - m[k][y][x - 1], dy = m[k][y + 1][x] - m[k][y - 1][x];
      fx += dx > 0 ? 0.25f : dx < 0 ? -0.25f : 0.f;
      fy += dy > 0 ? 0.25f : dy < 0 ? -0.25f : 0.f;
    }
    o[k][0] = fx;
    o[k][1] = fy;
    o[k][2] = m[k][y][x];
  }
  auto shape = heatmaps.sizes().vec();
  shape.pop_back();
  shape.back() = 3;
  return out.reshape(shape);
}

at::Tensor decode_dark(const at::Tensor& heatmaps, int kernel) {
  TORCH_CHECK(heatmaps.dim() >= 2, "heatmaps must be ...×h×w, got ", heatmaps.sizes());
  TORCH_CHECK(kernel > 0 && kernel % 2 == 1, "the DARK kernel must be odd, got ", kernel);
  auto out = decode_peaks(heatmaps).reshape({-1, 3}).contiguous();
  const int h = static_cast<int>(heatmaps.size(-2)), w = static_cast<int>(heatmaps.size(-1));
  const auto maps =
      heatmaps.detach().to(torch::kCPU, torch::kFloat).reshape({-1, h, w}).contiguous();
  auto o = out.accessor<float, 2>();
  const int border = (kernel - 1) / 2;
  for (int64_t k = 0; k < maps.size(0); ++k) {
    const cv::Mat map(h, w, CV_32F, maps[k].data_ptr<float>());
    cv::Point peak;
    double original_max = 0;
    cv::minMaxLoc(map, nullptr, &original_max, nullptr, &peak);
    const int px = peak.x, py = peak.y;
    o[k][0] = static_cast<float>(px);
    o[k][1] = static_cast<float>(py);
    if (!(px > 1 && px < w - 2 && py > 1 && py < h - 2)) continue;
    // Zero padding first, as the reference does, so that a peak near the border is not
    // mirrored back into the map by GaussianBlur's own border rule.
    cv::Mat padded, blurred;
    cv::copyMakeBorder(map, padded, border, border, border, border, cv::BORDER_CONSTANT, 0);
    cv::GaussianBlur(padded, blurred, cv::Size(kernel, kernel), 0);
    cv::Mat smooth = blurred(cv::Rect(border, border, w, h)).clone();
    double smooth_max = 0;
    cv::minMaxLoc(smooth, nullptr, &smooth_max);
    if (smooth_max > 0) smooth *= original_max / smooth_max;
    cv::max(smooth, 1e-10, smooth);
    cv::log(smooth, smooth);
    const auto at = [&](int y, int x) { return static_cast<double>(smooth.at<float>(y, x)); };
    const double dx = 0.5 * (at(py, px + 1) - at(py, px - 1));
    const double dy = 0.5 * (at(py + 1, px) - at(py - 1, px));
    const double dxx = 0.25 * (at(py, px + 2) - 2 * at(py, px) + at(py, px - 2));
    const double dxy =
        0.25 * (at(py + 1, px + 1) - at(py - 1, px + 1) - at(py + 1, px - 1) + at(py - 1, px - 1));
    const double dyy = 0.25 * (at(py + 2, px) - 2 * at(py, px) + at(py - 2, px));
    const double det = dxx * dyy - dxy * dxy;
    if (det == 0) continue;
    // -H⁻¹∇ with H = [[dxx, dxy], [dxy, dyy]].
    o[k][0] = static_cast<float>(px - (dyy * dx - dxy * dy) / det);
    o[k][1] = static_cast<float>(py - (dxx * dy - dxy * dx) / det);
  }
  auto shape = heatmaps.sizes().vec();
  shape.pop_back();
  shape.back() = 3;
  return out.reshape(shape);
}

const runtime::NameTable<PeakDecoder>& name_table(PeakDecoder) {
  static const runtime::NameTable<PeakDecoder> table = {
      {"quarter-offset", PeakDecoder::kQuarterOffset}, {"dark", PeakDecoder::kDark}};
  return table;
}

std::string decoder_name(PeakDecoder decoder) {
  return runtime::name_in(name_table(decoder), decoder);
}

at::Tensor decode(const at::Tensor& heatmaps, PeakDecoder decoder) {
  return decoder == PeakDecoder::kDark ? decode_dark(heatmaps) : decode_peaks(heatmaps);
}

at::Tensor average_with_mirror(const at::Tensor& heatmaps, const at::Tensor& mirrored,
                               const std::vector<int>& flip_perm, bool shift) {
  TORCH_CHECK(heatmaps.sizes() == mirrored.sizes(), "mirrored heatmaps have shape ",
              mirrored.sizes(), ", expected ", heatmaps.sizes());
  const int64_t joint_dim = heatmaps.dim() - 3;
  TORCH_CHECK(joint_dim >= 0 && heatmaps.size(joint_dim) == static_cast<int64_t>(flip_perm.size()),
              "flip permutation has ", flip_perm.size(), " joints, heatmaps ", heatmaps.sizes());
  const auto perm =
      torch::tensor(std::vector<int64_t>(flip_perm.begin(), flip_perm.end()),
                    torch::TensorOptions().dtype(torch::kLong).device(heatmaps.device()));
  auto back = mirrored.flip({-1}).index_select(joint_dim, perm);
  if (shift && back.size(-1) > 1) {
    const int64_t w = back.size(-1);
    back.narrow(-1, 1, w - 1).copy_(back.narrow(-1, 0, w - 1).clone());
  }
  return (heatmaps + back) * 0.5;
}

at::Tensor peaks_to_image(const at::Tensor& peaks, const data::CropParams& crop, int heatmap_side) {
  TORCH_CHECK(peaks.size(-1) == 3, "peaks must be ...×3, got ", peaks.sizes());
  const data::CropTransform t(crop, heatmap_side);
  auto out = peaks.to(torch::kFloat).contiguous().clone();
  auto flat = out.view({-1, 3});
  auto a = flat.accessor<float, 2>();
  for (int64_t k = 0; k < flat.size(0); ++k) {
    const auto p = t.inverse({a[k][0], a[k][1]});
    a[k][0] = static_cast<float>(p.x);
    a[k][1] = static_cast<float>(p.y);
  }
  return out;
}

}  // namespace hg::infer
