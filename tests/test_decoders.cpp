// The decoding and test-time options of current toolboxes (issue 15): the flip test's one-pixel
// shift, the rounded (biased) target encoding against the unbiased one, the chosen decoder on
// every prediction path, and COCO keypoint results and statistics from the tool.
#include "hg/data/sample.h"
#include "hg/infer/decode.h"
#include "hg/infer/predictor.h"
#include "hg/train/config.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

namespace {

namespace fs = std::filesystem;
using hg::test::kData;
using hg::test::read_json;
using hg::test::run_tool;
using hg::test::scratch_dir;

TEST(Decode, FlipShiftMovesTheMirrorOnePixelRight) {
  auto maps = torch::zeros({1, 1, 2, 1, 4});  // N×S×J×h×w, the mirror's maps all zero
  auto mirrored = torch::zeros_like(maps);
  // Mirrored joint 1 (joint 0 after the swap) at x = 2, i.e. x = 1 once flipped back; and a
  // value in the last column, which lands on column 0 and stays there.
  mirrored[0][0][1][0][2] = 1;
  mirrored[0][0][1][0][3] = 0.5;
  const std::vector<int> perm = {1, 0};
  const auto plain = hg::infer::average_with_mirror(maps, mirrored, perm);
  const auto shifted = hg::infer::average_with_mirror(maps, mirrored, perm, true);
  EXPECT_TRUE(torch::equal(plain[0][0][0][0], torch::tensor({0.25f, 0.5f, 0.f, 0.f})));
  // Column x takes column x - 1; column 0 keeps its own value (HRNet's shift_heatmap).
  EXPECT_TRUE(torch::equal(shifted[0][0][0][0], torch::tensor({0.25f, 0.25f, 0.5f, 0.f})));
  EXPECT_TRUE(torch::equal(shifted[0][0][1], plain[0][0][1]));
}

// A stand-in for a network trained on the original code's pixel grid: for a crop (row 0) and
// its mirror (row 1) it draws every joint where that grid puts it, heatmap = input / 4, so its
// mirror is 3/4 heatmap pixel off once flipped back. One heatmap pixel is 6.25 image pixels.
struct OriginalGridNet {
  hg::data::CropParams crop;
  std::vector<cv::Point2d> joints;
  std::vector<int> perm;
  int res = 64;

  at::Tensor operator()(const at::Tensor& input) const {
    const int side = res / 4;
    auto out = torch::zeros({input.size(0), 1, static_cast<int64_t>(joints.size()), side, side});
    auto grid_crop = crop;
    grid_crop.grid = hg::data::PixelGrid::kOriginal;
    const hg::data::CropTransform t(grid_crop, res);
    for (int64_t row = 0; row < input.size(0); ++row)
      for (size_t j = 0; j < joints.size(); ++j) {
        // In the mirror, joint perm[j] looks like joint j, at the mirrored input position.
        cv::Point2d u = t.forward(joints[row == 0 ? j : static_cast<size_t>(perm[j])]);
        if (row == 1) u.x = res - 1 - u.x;
        cv::Mat m(side, side, CV_32F, out[row][0][static_cast<int64_t>(j)].data_ptr<float>());
        hg::data::draw_gaussian(m, u / 4, 2.0);
      }
    return out;
  }
};

// Mean x and y error (image pixels) of the predictions of `o` with the stand-in network.
cv::Point2d mean_error(hg::infer::PredictorOptions o) {
  const auto joints = hg::data::mpii_joints();
  OriginalGridNet net;
  net.crop.center = {50, 50};
  net.crop.scale = 0.5;
  net.perm = joints.flip_permutation();
  for (int j = 0; j < joints.size(); ++j) net.joints.push_back({32.3 + 2.3 * j, 68.1 - 2.1 * j});
  o.input_size = net.res;
  o.grid = hg::data::PixelGrid::kOriginal;
  o.decoder = hg::infer::PeakDecoder::kDark;
  const hg::infer::Predictor predictor(net, joints, o);
  const cv::Mat rgb(100, 100, CV_8UC3, cv::Scalar::all(0));
  const auto p = predictor.predict(rgb, {{net.crop, hg::infer::PersonSource::kCenterScale, {}, 0}});
  cv::Point2d error(0, 0);
  for (int j = 0; j < joints.size(); ++j)
    error += cv::Point2d(p.at(0).joints[0][j][0].item<double>(),
                         p.at(0).joints[0][j][1].item<double>()) -
             net.joints[static_cast<size_t>(j)];
  return error / joints.size();
}

TEST(Predictor, FlipShiftRealignsTheMirrorOfOriginalGridModels) {
  hg::infer::PredictorOptions o;
  o.flip = false;
  const auto alone = mean_error(o);
  o.flip = true;
  const auto flipped = mean_error(o);
  o.flip_shift = true;
  const auto shifted = mean_error(o);
  // 6.25 image px per heatmap px: the average of the crop's maps and the mirror's sits
  // 3/8 px left (-2.34 image px), 1/8 px right with the shift (+0.78); y is untouched.
  EXPECT_NEAR(alone.x, 0, 0.3);
  EXPECT_NEAR(flipped.x, -0.375 * 6.25, 0.3);
  EXPECT_NEAR(shifted.x, 0.125 * 6.25, 0.3);
  for (const auto& e : {alone, flipped, shifted}) EXPECT_NEAR(e.y, 0, 0.3);
}

TEST(Predictor, PredictCropsDecodesWithTheChosenDecoder) {
  const auto joints = hg::data::mpii_joints();
  OriginalGridNet net;
  net.crop.center = {50, 50};
  net.crop.scale = 0.5;
  net.perm = joints.flip_permutation();
  for (int j = 0; j < joints.size(); ++j) net.joints.push_back({30.6 + 2.7 * j, 40.2 + 1.9 * j});
  hg::infer::PredictorOptions o;
  o.input_size = net.res;
  o.grid = hg::data::PixelGrid::kOriginal;
  o.flip = false;
  const cv::Mat rgb(100, 100, CV_8UC3, cv::Scalar::all(0));
  const std::vector<hg::infer::PersonCrop> people = {
      {net.crop, hg::infer::PersonSource::kCenterScale, {}, 0}};
  for (const auto decoder :
       {hg::infer::PeakDecoder::kQuarterOffset, hg::infer::PeakDecoder::kDark}) {
    o.decoder = decoder;
    const hg::infer::Predictor predictor(net, joints, o);
    const auto crops = predictor.predict_crops(predictor.crops(rgb, people), {net.crop});
    EXPECT_TRUE(torch::equal(crops[0], predictor.predict(rgb, people).at(0).joints));
  }
  // And the two decoders differ (DARK is sub-pixel, the quarter step is not).
  o.decoder = hg::infer::PeakDecoder::kDark;
  const hg::infer::Predictor dark(net, joints, o);
  o.decoder = hg::infer::PeakDecoder::kQuarterOffset;
  const hg::infer::Predictor quarter(net, joints, o);
  EXPECT_FALSE(torch::equal(dark.predict_crops(dark.crops(rgb, people), {net.crop}),
                            quarter.predict_crops(quarter.crops(rgb, people), {net.crop})));
}

TEST(Sample, RoundedTargetsPeakOnTheNearestPixelUnbiasedOnTheJoint) {
  // A 64 px crop onto 64 px: heatmap 16 px of 4 image px, v = (x - 32) / 4 + 7.5.
  const auto joints = hg::data::mpii_joints();
  hg::data::Annotation a;
  a.center = {32, 32};
  a.scale = 64 / 200.0;
  a.joints.resize(16);
  a.joints[0] = {{33.4, 30.2}, true, true};  // v = (7.85, 7.05)
  a.joints[1] = {{200, 30}, true, true};     // outside the map: no target, weight 0
  const cv::Mat image(64, 64, CV_8UC3, cv::Scalar::all(0));
  hg::data::SampleOptions o;
  o.res = 64;
  o.sigma = 1.5;
  const auto unbiased = hg::data::make_sample(a, image, joints, o, {});
  o.target_encoding = hg::data::TargetEncoding::kRounded;
  const auto rounded = hg::data::make_sample(a, image, joints, o, {});
  const auto& r = rounded.heatmaps[0];
  const auto& u = unbiased.heatmaps[0];
  EXPECT_FLOAT_EQ(r.at<float>(7, 8), 1.0f);  // row y = 7, column x = 8
  EXPECT_FLOAT_EQ(r.at<float>(7, 7), r.at<float>(7, 9));
  EXPECT_FLOAT_EQ(r.at<float>(6, 8), r.at<float>(8, 8));
  EXPECT_NEAR(u.at<float>(7, 8), std::exp(-(0.15 * 0.15 + 0.05 * 0.05) / (2 * 1.5 * 1.5)), 1e-6);
  EXPECT_LT(u.at<float>(7, 8), 1.0f);
  EXPECT_GT(u.at<float>(7, 7), u.at<float>(7, 9));  // x = 7.85: column 7 is nearer than 9
  EXPECT_EQ(rounded.weight, unbiased.weight);
  EXPECT_EQ(rounded.weight[0], 1.f);
  EXPECT_EQ(rounded.weight[1], 0.f);
  EXPECT_EQ(cv::countNonZero(rounded.heatmaps[1]), 0);
}

TEST(Config, TargetEncodingIsAKeyDefaultingToUnbiased) {
  hg::train::TrainConfig c;
  EXPECT_EQ(c.target_encoding, hg::data::TargetEncoding::kUnbiased);
  EXPECT_EQ(hg::train::preset("demo").target_encoding, hg::data::TargetEncoding::kUnbiased);
  c.set("target_encoding=rounded");
  EXPECT_EQ(c.to_json()["target_encoding"], "rounded");
  c.validate();
  EXPECT_EQ(hg::test::error_of([&] { c.set("target_encoding=dark"); }),
            "config key 'target_encoding': \"dark\" is invalid (target_encoding must be unbiased "
            "or rounded, got 'dark')");
}

// ---- the tool -----------------------------------------------------------------------------------

const std::string kFixture = kData + "/fixtures/posenet_s2_f64_checkpoint.pt";
const std::string kCocoImage = kData + "/coco/images/000000000785.jpg";

TEST(Predict, SavesCocoKeypointResultsWithImageIdsAndPersonScores) {
  const auto dir = scratch_dir();
  const auto out = (dir / "results.json").string();
  // An MPII model has no OKS sigmas: NMS between its people cannot be computed.
  auto r = run_tool("predict --threads 2 " + kCocoImage + " --weights " + kFixture +
                    " --whole-image -o " + (dir / "p.json").string() + " --save-results " + out);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("--oks-nms needs the model's per-joint OKS sigmas and its joint set "
                       "'mpii' has none: give --oks-nms 1"),
            std::string::npos)
      << r.out;

  // The image id is the file name's number.
  r = run_tool("predict --threads 2 " + kCocoImage + " --weights " + kFixture +
               " --whole-image --oks-nms 1 -o " + (dir / "p.json").string() + " --save-results " +
               out);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto results = read_json(out);
  const auto predictions = read_json(dir / "p.json");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0]["image_id"], 785);
  EXPECT_EQ(results[0]["category_id"], 1);
  ASSERT_EQ(results[0]["keypoints"].size(), 48u);
  // Person score = box score 1 × the mean of the joint maxima above 0.2 (0 when none is).
  const auto& person = predictions["results"][0]["people"][0];
  double sum = 0;
  int above = 0;
  const auto names = hg::data::mpii_joints().names;
  for (size_t j = 0; j < names.size(); ++j) {
    const double x = person["joints"][names[j]]["x"], score = person["joints"][names[j]]["score"];
    EXPECT_NEAR(results[0]["keypoints"][3 * j].get<double>(), x, 1e-4);
    EXPECT_NEAR(results[0]["keypoints"][3 * j + 2].get<double>(), score, 1e-6);
    if (score > 0.2) sum += score, ++above;
  }
  EXPECT_NEAR(results[0]["score"].get<double>(), above > 0 ? sum / above : 0.0, 1e-6);

  // Other names need --image-ids, whose '.images' and 'person' category give the ids.
  fs::copy_file(kCocoImage, dir / "person.jpg");
  r = run_tool("predict --threads 2 " + (dir / "person.jpg").string() + " --weights " + kFixture +
               " --whole-image --oks-nms 1 -o " + (dir / "p.json").string() + " --save-results " +
               out);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("--save-results needs its COCO image id: its file name is not a number "
                       "(give --image-ids ANNOTATIONS.json)"),
            std::string::npos)
      << r.out;
  hg::test::write_text(dir / "ids.json",
                       R"({"images": [{"id": 42, "file_name": "val/person.jpg"}],
                           "categories": [{"id": 7, "name": "person"}]})");
  r = run_tool("predict --threads 2 " + (dir / "person.jpg").string() + " --weights " + kFixture +
               " --whole-image --oks-nms 1 --image-ids " + (dir / "ids.json").string() + " -o " +
               (dir / "p.json").string() + " --save-results " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_json(out)[0]["image_id"], 42);
  EXPECT_EQ(read_json(out)[0]["category_id"], 7);
}

TEST(DataStats, CocoFilesReportCrowdsEmptyPeopleBoxesAndAreaRanges) {
  const auto r = run_tool("data stats --no-images " + kData + "/coco/person_keypoints_test.json");
  ASSERT_EQ(r.code, 0) << r.out;
  // 14 person annotations in 4 images; 2 have num_keypoints 0 (areas 491 and 286), none is a
  // crowd. Of the 12 used, 181 labelled joints (15.1 each); areas 1870, 2789, 3405, 8260, 8914
  // are medium (32² = 1024 .. 96² = 9216), the other 7 large.
  for (const std::string line :
       {"samples:   12", "COCO:      4 images (4 with people used), 14 person annotations",
        "left out:  0 crowds, 2 without labelled joints (ignored by OKS AP too)",
        "used:      12 people, 15.1 labelled joints each of 17",
        "boxes:     30..267 × 96..347 px (w × h)",
        "areas:     0 small (< 32², not scored by APm/APl), 5 medium, 7 large"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
}

}  // namespace
