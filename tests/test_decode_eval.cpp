#include "hg/data/sample.h"
#include "hg/eval/pck.h"
#include "hg/infer/decode.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace {

TEST(Decode, QuarterPixelTowardTheHigherNeighbour) {
  auto maps = torch::zeros({2, 8, 8});
  maps[0][3][4] = 1.0;  // peak at x=4, y=3
  maps[0][3][5] = 0.5;  // right neighbour higher: x + 0.25
  maps[0][2][4] = 0.2;  // upper neighbour higher: y - 0.25
  maps[1][0][6] = 1.0;  // border peak: no refinement
  maps[1][0][7] = 0.9;
  const auto p = hg::infer::decode_peaks(maps);
  EXPECT_FLOAT_EQ(p[0][0].item<float>(), 4.25f);
  EXPECT_FLOAT_EQ(p[0][1].item<float>(), 2.75f);
  EXPECT_FLOAT_EQ(p[0][2].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(p[1][0].item<float>(), 6.0f);
  EXPECT_FLOAT_EQ(p[1][1].item<float>(), 0.0f);
}

TEST(Decode, MirrorAveragingUndoesTheFlipAndSwapsJoints) {
  auto maps = torch::rand({1, 2, 3, 8, 8});  // N×S×J×h×w
  const std::vector<int> perm = {1, 0, 2};
  // The mirror's output of a perfectly flip-equivariant network.
  auto mirrored = maps.flip({-1}).index_select(2, torch::tensor({1, 0, 2}));
  EXPECT_TRUE(torch::allclose(hg::infer::average_with_mirror(maps, mirrored, perm), maps));
}

TEST(Decode, RoundTripThroughCropHeatmapDecodeAndInverseIsWithinOnePixel) {
  // Heatmaps rendered from known joints (no network), decoded and mapped back to the image.
  const hg::data::CropParams crop{{310.5, 240.25}, 1.7, 20.0, true};
  const int side = 64;
  const hg::data::CropTransform t(crop, side);
  const std::vector<cv::Point2d> joints = {{300, 200}, {330.3, 260.8}, {280.9, 245.1}};
  auto maps = torch::zeros({3, side, side});
  for (size_t j = 0; j < joints.size(); ++j) {
    cv::Mat m(side, side, CV_32F, maps[j].data_ptr<float>());
    ASSERT_TRUE(hg::data::draw_gaussian(m, t.forward(joints[j]), 1.0));
  }
  const auto back = hg::infer::peaks_to_image(hg::infer::decode_peaks(maps), crop, side);
  for (size_t j = 0; j < joints.size(); ++j) {
    const double dx = back[j][0].item<double>() - joints[j].x,
                 dy = back[j][1].item<double>() - joints[j].y;
    // One heatmap pixel is 200·1.7/64 = 5.3 image px; the quarter-pixel refinement keeps the
    // error under 1/4 heatmap px per axis plus the rendering's own half-pixel quantisation.
    EXPECT_LT(std::hypot(dx, dy), 0.5 * 200 * 1.7 / side) << "joint " << j;
  }
}

TEST(Pck, StrictThresholdMissingJointsAndTheMpiiTable) {
  const auto joints = hg::data::mpii_joints();
  // Two people, unit normalize 10 px; person 0 exact, person 1 every joint off by 5 px
  // (exactly 0.5: not counted, the test is strict) except the head top, off by 4.9 px.
  auto truth = torch::zeros({2, 16, 2}, torch::kDouble);
  auto pred = truth.clone();
  pred.select(0, 1).select(1, 0).fill_(5.0);
  pred[1][9][0] = 4.9;
  auto present = torch::ones({2, 16}, torch::kBool);
  present[0][5] = false;  // l-ankle missing for person 0
  const auto errors =
      hg::eval::normalized_errors(pred, truth, present, torch::full({2}, 10.0, torch::kDouble));
  EXPECT_TRUE(std::isnan(errors[0][5].item<double>()));
  const auto table = hg::eval::pck_table(errors, joints, 0.5);
  EXPECT_DOUBLE_EQ(table.per_joint[9], 100.0);  // head top: both
  EXPECT_DOUBLE_EQ(table.per_joint[0], 50.0);   // r-ankle: person 0 only
  EXPECT_DOUBLE_EQ(table.per_joint[5], 0.0);    // l-ankle: only person 1 counts, and misses
  ASSERT_EQ(table.group_names.front(), "head");
  EXPECT_DOUBLE_EQ(table.groups.front(), 100.0);
  EXPECT_DOUBLE_EQ(table.groups.back(), 25.0);  // ankle = mean(r 50, l 0)
  // Mean over the 14 joints without pelvis and thorax: head top 100, 12 others at 50, l-ankle 0.
  EXPECT_NEAR(table.mean, (100.0 + 12 * 50.0 + 0.0) / 14, 1e-12);
  // Weighted by counts: (2 + 12·1 + 0) hits / (2·13 + 1) present.
  EXPECT_NEAR(table.mean_weighted, 100.0 * 14 / 27, 1e-12);
}

}  // namespace
