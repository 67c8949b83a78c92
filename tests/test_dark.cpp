#include "hg/infer/decode.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace {

// A 64×64 Gaussian (σ = 2, peak 1) centred on the sub-pixel point (cx, cy).
at::Tensor gaussian(double cx, double cy) {
  auto m = torch::empty({64, 64});
  auto a = m.accessor<float, 2>();
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      a[y][x] = static_cast<float>(std::exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / 8));
  return m;
}

TEST(Dark, RecoversSubPixelCentresOfGaussianHeatmaps) {
  // The log of a Gaussian smoothed by a Gaussian is quadratic: the Newton step lands on the
  // centre (up to the float32 maps and the discrete kernel), where the quarter-pixel step of the
  // original decoder is up to a quarter pixel off.
  const double centres[][2] = {{20.3, 31.7}, {40.5, 10.1}, {8.9, 50.45}, {33, 33}};
  auto maps = torch::stack({gaussian(20.3, 31.7), gaussian(40.5, 10.1), gaussian(8.9, 50.45),
                            gaussian(33, 33)})
                  .unsqueeze(0);  // 1×4×64×64
  const auto dark = hg::infer::decode_dark(maps);
  const auto quarter = hg::infer::decode_peaks(maps);
  ASSERT_EQ(dark.sizes(), (std::vector<int64_t>{1, 4, 3}));
  double worst_dark = 0, worst_quarter = 0;
  for (int k = 0; k < 4; ++k) {
    for (int c = 0; c < 2; ++c) {
      worst_dark = std::max(worst_dark, std::abs(dark[0][k][c].item<double>() - centres[k][c]));
      worst_quarter =
          std::max(worst_quarter, std::abs(quarter[0][k][c].item<double>() - centres[k][c]));
    }
    EXPECT_FLOAT_EQ(dark[0][k][2].item<float>(), maps[0][k].max().item<float>());
  }
  EXPECT_LT(worst_dark, 0.01);
  EXPECT_GT(worst_quarter, 0.2);
}

TEST(Dark, PeaksNearTheBorderKeepTheirPixel) {
  const auto maps = gaussian(1.3, 40.2).unsqueeze(0);
  const auto p = hg::infer::decode_dark(maps);
  EXPECT_EQ(p[0][0].item<float>(), 1.0f);
  EXPECT_EQ(p[0][1].item<float>(), 40.0f);
  EXPECT_EQ(hg::infer::decode(maps, hg::infer::PeakDecoder::kQuarterOffset)[0][0].item<float>(),
            1.25f);
}

}  // namespace
