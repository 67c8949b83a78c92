#include "hg/data/augment.h"
#include "hg/data/sample.h"

#include <gtest/gtest.h>

namespace {

// A COCO person: joint k at (100 + 10k, 50 + 20k), the first `present` joints labelled.
hg::data::Annotation person(int present) {
  hg::data::Annotation a;
  a.image = "test";
  a.center = {200, 200};
  a.scale = 1.5;
  for (int k = 0; k < 17; ++k)
    a.joints.push_back({{100.0 + 10 * k, 50.0 + 20 * k}, k < present, k < present});
  return a;
}

hg::data::CropParams crop_of(const hg::data::Annotation& a, bool half, bool upper) {
  hg::data::SampleOptions o;
  o.res = 64;
  o.augment = hg::data::AugmentOptions::coco();
  hg::data::AugmentParams aug;
  aug.half_body = half;
  aug.upper_body = upper;
  const cv::Mat image(400, 400, CV_8UC3, cv::Scalar::all(0));
  return hg::data::make_sample(a, image, hg::data::coco_joints(), o, aug).meta.crop;
}

TEST(HalfBody, CropsToTheBoxOfOneHalfOfTheJoints) {
  const auto a = person(17);
  // Upper body: joints 0..10, x 100..200, y 50..250: centre their mean (150, 150), side
  // 1.5 · max(100, 200) = 300 px, scale 1.5.
  auto c = crop_of(a, true, true);
  EXPECT_DOUBLE_EQ(c.center.x, 150);
  EXPECT_DOUBLE_EQ(c.center.y, 150);
  EXPECT_DOUBLE_EQ(c.scale, 1.5);
  // Lower body: joints 11..16, x 210..260, y 270..370: mean (235, 320), side 1.5 · 100.
  c = crop_of(a, true, false);
  EXPECT_DOUBLE_EQ(c.center.x, 235);
  EXPECT_DOUBLE_EQ(c.center.y, 320);
  EXPECT_DOUBLE_EQ(c.scale, 0.75);
  // Without the draw, or with 8 joints or fewer (not more than half_body_min_joints), the
  // annotation's crop.
  for (const auto& [p, half] : {std::pair{17, false}, std::pair{8, true}}) {
    c = crop_of(person(p), half, true);
    EXPECT_EQ(c.center, cv::Point2d(200, 200));
    EXPECT_EQ(c.scale, 1.5);
  }
  // 9 joints: the lower half has none, so the upper one is taken even when lower was drawn.
  c = crop_of(person(9), true, false);
  EXPECT_DOUBLE_EQ(c.center.x, 140);
  EXPECT_DOUBLE_EQ(c.scale, 1.5 * 160 / 200);
}

TEST(HalfBody, CocoAugmentationDrawsAfterTheOthers) {
  // The half-body draws come last: the other parameters are those of the same stream without
  // them, and about 30% of samples are half-body, 69% of those upper.
  auto coco = hg::data::AugmentOptions::coco();
  auto no_half = coco;
  no_half.half_body_prob = 0;
  int half = 0, upper = 0;
  for (uint64_t i = 0; i < 4000; ++i) {
    auto r1 = hg::data::sample_rng(1, 0, i), r2 = r1;
    const auto a = hg::data::sample_augment(coco, r1), b = hg::data::sample_augment(no_half, r2);
    ASSERT_EQ(a.scale, b.scale);
    ASSERT_EQ(a.rotation_deg, b.rotation_deg);
    ASSERT_EQ(a.flip, b.flip);
    ASSERT_FALSE(b.half_body);
    ASSERT_GE(a.scale, 0.5);
    ASSERT_LE(a.scale, 1.5);
    half += a.half_body;
    upper += a.half_body && a.upper_body;
  }
  EXPECT_NEAR(half / 4000.0, 0.3, 0.03);
  EXPECT_NEAR(static_cast<double>(upper) / half, 0.69, 0.05);
}

}  // namespace
