#include "hg/eval/coco_eval.h"

#include "hg/eval/coco_predict.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <unistd.h>

namespace {

using hg::eval::CocoDetection;
using hg::eval::CocoTruth;
using hg::eval::CocoTruthPerson;

constexpr int kJoints = 17;

// 17 joints at (x + dx·k, y + dy·k), all with visibility v.
std::vector<double> line_of_joints(double x, double y, double dx, double dy, double v) {
  std::vector<double> kp;
  for (int k = 0; k < kJoints; ++k) kp.insert(kp.end(), {x + dx * k, y + dy * k, v});
  return kp;
}

CocoTruthPerson person(int64_t id, int64_t image, std::vector<double> kp, std::array<double, 4> box,
                       bool crowd = false) {
  CocoTruthPerson p;
  p.id = id;
  p.image_id = image;
  p.category_id = 1;
  p.keypoints = std::move(kp);
  p.bbox = box;
  p.area = 20000;  // "large" (> 96²): every truth is in the all and large ranges, none medium
  p.crowd = crowd;
  for (int k = 0; k < kJoints; ++k) p.num_keypoints += p.keypoints[3 * k + 2] > 0;
  return p;
}

CocoDetection detection(int64_t image, std::vector<double> kp, double score) {
  return {image, 1, std::move(kp), score};
}

// The hand-checked case: two images, a crowd and an empty person, ties in score.
//
// Image 1: A (17 labelled joints), C (a crowd), E (num_keypoints 0, box [600, 1000, 100, 200],
// so its doubled box is x ∈ [500, 800], y ∈ [800, 1200]). Image 2: B (17 labelled joints).
// Relevant truths (npig): A and B, 2.
//
// Detections, as cocoeval sees them at every threshold t:
//   dA  image 1, score 0.9: on A exactly, OKS 1 → true positive.
//   dC  image 1, score 0.8: on the crowd C, OKS 1 → matched to an ignored truth: ignored.
//   dE  image 1, score 0.8: inside E's doubled box; E has no labelled joint, so OKS is by the
//       distance outside that box, 0 for every joint: OKS 1 → matched to E (ignored): ignored.
//   dF  image 1, score 0.7: far from everyone, its joints span 192×192 px (> 96², so it also
//       counts in the large range): false positive.
//   dB  image 2, score 0.7: 12 of B's 17 joints exact, 5 a thousand pixels off: OKS 12/17 =
//       0.706 → true positive for t ≤ 0.70 (5 thresholds), false positive for t ≥ 0.75 (5).
// Sorted by score, ties by image then file order: dA, dC, dE, dF, dB (dF before dB: image 1
// comes first, whatever their order in the file).
//
// t ≤ 0.70: TP, -, -, FP, TP: recall .5 .5 .5 .5 1, precision 1 1 1 1/2 2/3, envelope
//   1 1 1 2/3 2/3. The 51 recall points 0..0.50 take 1, the 50 points 0.51..1 take 2/3:
//   precision (51 + 50·2/3) / 101 = 0.834983; recall 1.
// t ≥ 0.75: TP, -, -, FP, FP: recall stays .5: the 51 points up to 0.50 take 1, the rest 0:
//   precision 51/101 = 0.504950; recall 0.5.
// AP = (5·0.834983 + 5·0.504950) / 10 = 0.669967, AP50 = 0.834983, AP75 = 0.504950,
// AR = (5·1 + 5·0.5) / 10 = 0.75, AR50 = 1, AR75 = 0.5. Every truth is large: APl = AP,
// ARl = AR; no truth is medium: APm = ARm = -1.
// Had dB come before dF (ties by file order, or image 2 first), AP50 would be 1.
struct HandCase {
  CocoTruth truth;
  std::vector<CocoDetection> detections;
  HandCase() {
    truth.image_ids = {1, 2};
    truth.category_ids = {1};
    truth.sigmas = hg::eval::coco_keypoint_sigmas();
    const auto a = line_of_joints(100, 100, 10, 7, 2);
    const auto b = line_of_joints(150, 120, 9, 8, 2);
    const auto c = line_of_joints(1000, 100, 10, 7, 2);
    truth.people = {person(1, 1, a, {100, 100, 160, 112}),
                    person(2, 1, c, {1000, 100, 160, 112}, true),
                    person(3, 1, line_of_joints(0, 0, 0, 0, 0), {600, 1000, 100, 200}),
                    person(4, 2, b, {150, 120, 144, 128})};
    auto b_partly = b;
    for (int k = 12; k < kJoints; ++k) b_partly[3 * k] += 1000;
    detections = {detection(1, a, 0.9), detection(1, c, 0.8),
                  detection(1, line_of_joints(620, 1020, 5, 5, 1), 0.8),
                  detection(1, line_of_joints(2000, 2000, 12, 12, 1), 0.7),
                  detection(2, b_partly, 0.7)};
  }
};

void expect_hand_case_scores(const hg::eval::CocoKeypointScores& s) {
  const double low = (51 + 50 * 2.0 / 3) / 101, high = 51.0 / 101;
  EXPECT_NEAR(s.ap, (low + high) / 2, 1e-12);
  EXPECT_NEAR(s.ap50, low, 1e-12);
  EXPECT_NEAR(s.ap75, high, 1e-12);
  EXPECT_EQ(s.ap_medium, -1);
  EXPECT_NEAR(s.ap_large, (low + high) / 2, 1e-12);
  EXPECT_NEAR(s.ar, 0.75, 1e-12);
  EXPECT_NEAR(s.ar50, 1, 1e-12);
  EXPECT_NEAR(s.ar75, 0.5, 1e-12);
  EXPECT_EQ(s.ar_medium, -1);
  EXPECT_NEAR(s.ar_large, 0.75, 1e-12);
}

TEST(CocoEval, HandCheckedCaseWithCrowdEmptyPersonAndTies) {
  const HandCase c;
  const auto s = hg::eval::evaluate_coco_keypoints(c.truth, c.detections);
  EXPECT_NEAR(s.ap, 0.669967, 1e-6);
  expect_hand_case_scores(s);
}

TEST(CocoEval, TiesAcrossImagesGoByImageIdNotFileOrder) {
  HandCase c;
  std::swap(c.detections[3], c.detections[4]);  // dB before dF in the file
  expect_hand_case_scores(hg::eval::evaluate_coco_keypoints(c.truth, c.detections));
}

TEST(CocoEval, CrowdAndEmptyPeopleWouldOtherwiseCostPrecision) {
  HandCase c;
  c.truth.people[1].crowd = false;  // C counts now: dC is a true positive
  const auto s = hg::eval::evaluate_coco_keypoints(c.truth, c.detections);
  // npig 3; t ≤ 0.70: TP TP - FP TP → recall 1/3 2/3 2/3 2/3 1, AR50 = 1.
  EXPECT_NEAR(s.ar50, 1, 1e-12);
  // t ≥ 0.75: TP TP - FP FP → recall 2/3.
  EXPECT_NEAR(s.ar75, 2.0 / 3, 1e-12);
}

TEST(CocoEval, AtMostTwentyDetectionsPerImageCount) {
  HandCase c;
  // 20 better-scored misses in image 2 push dB out.
  for (int i = 0; i < 20; ++i)
    c.detections.push_back(detection(2, line_of_joints(3000 + i, 3000, 12, 12, 1), 0.95));
  const auto s = hg::eval::evaluate_coco_keypoints(c.truth, c.detections);
  EXPECT_NEAR(s.ar50, 0.5, 1e-12);
}

TEST(CocoEval, OksOfOneJointAndOfTheEmptyPersonsBox) {
  const auto sigmas = hg::eval::coco_keypoint_sigmas();
  ASSERT_EQ(sigmas.size(), 17u);
  EXPECT_DOUBLE_EQ(sigmas[0], 0.026);
  // Only the nose (σ = 0.026) labelled, area 1000, the detection 3 px right, 4 px down:
  // exp(-25 / (2 · 1000 · 0.052²)).
  CocoTruthPerson t = person(1, 1, line_of_joints(50, 50, 0, 0, 0), {40, 40, 20, 20});
  t.keypoints[2] = 2;
  t.area = 1000;
  auto d = line_of_joints(50, 50, 0, 0, 0);
  d[0] += 3;
  d[1] += 4;
  EXPECT_NEAR(hg::eval::object_keypoint_similarity(d, t, sigmas),
              std::exp(-25.0 / (2 * 1000 * 0.052 * 0.052)), 1e-15);
  // No joint labelled: the doubled box is [20, 80]²; one joint 3 px left and 4 px above it,
  // the 16 others inside: (16 + exp(-25 / (2 · 1000 · (2σ₀)²))) / 17.
  t.keypoints[2] = 0;
  d = line_of_joints(50, 50, 0, 0, 0);
  d[0] = 17;
  d[1] = 16;
  EXPECT_NEAR(hg::eval::object_keypoint_similarity(d, t, sigmas),
              (16 + std::exp(-25.0 / (2 * 1000 * 0.052 * 0.052))) / 17, 1e-15);
}

TEST(CocoEval, NoDetectionsScoreZeroAndUnknownImagesAreRefused) {
  const HandCase c;
  const auto s = hg::eval::evaluate_coco_keypoints(c.truth, {});
  EXPECT_EQ(s.ap, 0);
  EXPECT_EQ(s.ar, 0);
  EXPECT_EQ(s.ap_medium, -1);
  EXPECT_EQ(hg::test::error_of([&] {
              hg::eval::evaluate_coco_keypoints(c.truth,
                                                {detection(7, c.detections[0].keypoints, 1)});
            }),
            "detection 0 names image_id 7, which the ground truth does not list (the results do "
            "not correspond to this dataset)");
}

TEST(CocoEval, ResultsAndTruthFilesRoundTrip) {
  const HandCase c;
  const auto dir = hg::test::scratch_dir();
  const auto results = (dir / "results.json").string();
  hg::eval::write_coco_detections(results, c.detections);
  const auto back = hg::eval::read_coco_detections(results);
  ASSERT_EQ(back.size(), c.detections.size());
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].image_id, c.detections[i].image_id);
    EXPECT_EQ(back[i].keypoints, c.detections[i].keypoints);
    EXPECT_EQ(back[i].score, c.detections[i].score);
  }
  // The truth as a COCO file, images out of order and an annotation of an unlisted image.
  const auto truth_path = (dir / "truth.json").string();
  {
    nlohmann::json root = {{"images", {{{"id", 2}}, {{"id", 1}}}},
                           {"categories", {{{"id", 1}, {"name", "person"}}}}};
    root["annotations"] = nlohmann::json::array();
    for (const auto& p : c.truth.people)
      root["annotations"].push_back({{"id", p.id},
                                     {"image_id", p.image_id},
                                     {"category_id", 1},
                                     {"keypoints", p.keypoints},
                                     {"bbox", p.bbox},
                                     {"area", p.area},
                                     {"iscrowd", p.crowd ? 1 : 0},
                                     {"num_keypoints", p.num_keypoints}});
    root["annotations"].push_back(root["annotations"][0]);
    root["annotations"].back()["image_id"] = 99;
    std::ofstream(truth_path) << root.dump();
  }
  const auto truth = hg::eval::read_coco_truth(truth_path);
  EXPECT_EQ(truth.image_ids, (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(truth.people.size(), 4u);
  EXPECT_TRUE(truth.people[1].crowd);
  EXPECT_EQ(truth.people[2].num_keypoints, 0);
  expect_hand_case_scores(hg::eval::evaluate_coco_keypoints(truth, back));
  std::filesystem::remove_all(dir);
}

TEST(CocoEval, TruthWithoutSigmasForItsJointsIsRefused) {
  const auto path = (hg::test::scratch_dir() / "no_sigmas.json").string();
  std::ofstream(path) << R"({"images": [{"id": 1}], "categories": [{"id": 1}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": [1, 2, 2, 3, 4, 2],
                     "bbox": [0, 0, 5, 5], "area": 25}]})";
  EXPECT_EQ(hg::test::error_of([&] { hg::eval::read_coco_truth(path); }),
            "cannot read " + path +
                ": its people have 2 joints but no per-joint OKS sigmas are given: add "
                "\"sigmas\": [one per joint] to the person category");
  std::filesystem::remove(path);
}

TEST(CocoEval, OksNmsDropsNearDuplicatesAndPersonScoreAveragesConfidentJoints) {
  const auto sigmas = hg::eval::coco_keypoint_sigmas();
  const auto a = line_of_joints(100, 100, 10, 7, 0.9);
  auto a_shifted = a;
  for (int k = 0; k < kJoints; ++k) a_shifted[3 * k] += 1;  // OKS with a 0.99698
  const auto far = line_of_joints(900, 100, 10, 7, 0.9);
  const std::vector<CocoDetection> people = {detection(1, a_shifted, 0.5), detection(1, a, 0.8),
                                             detection(1, far, 0.6)};
  const std::vector<double> areas = {20000, 20000, 20000};
  EXPECT_EQ(hg::eval::oks_nms(people, areas, sigmas, 0.9), (std::vector<size_t>{1, 2}));
  EXPECT_EQ(hg::eval::oks_nms(people, areas, sigmas, 0.997), (std::vector<size_t>{1, 2, 0}));
  // Box 0.8 × mean(0.5, 0.7) (0.1 is below the 0.2 threshold).
  EXPECT_DOUBLE_EQ(hg::eval::person_score(0.8, {0.5, 0.1, 0.7}), 0.8 * 0.6);
  EXPECT_EQ(hg::eval::person_score(0.8, {0.1, 0.2}), 0);
}

// A person whose joints are not finite (a degenerate crop) is a miss: --save-results writes
// numbers only, which pycocotools can read, with NMS on or off.
TEST(CocoEval, PeopleWithNonFiniteJointsAreLeftOutOfTheResults) {
  auto person = [](float x) {
    hg::infer::PosePrediction p;
    p.person.crop.scale = 1;
    p.joints = torch::full({2, kJoints, 3}, 0.5f);
    p.joints[-1][3][0] = x;
    return p;
  };
  const std::vector<hg::infer::PosePrediction> people = {
      person(std::nanf("")), person(40), person(std::numeric_limits<float>::infinity())};
  for (const double nms : {1.0, 0.9}) {
    hg::eval::CocoPredictOptions options;
    options.oks_nms = nms;
    const auto found = hg::eval::coco_people(people, {0.9, 0.8, 0.7}, 5, 1,
                                             hg::eval::coco_keypoint_sigmas(), options);
    ASSERT_EQ(found.size(), 1u) << "oks_nms " << nms;
    EXPECT_EQ(found[0].keypoints[9], 40);
    EXPECT_EQ(found[0].image_id, 5);
  }
}

}  // namespace

namespace {

TEST(CocoEval, EvalCommandScoresCocoResultsAsTheOfficialEvaluation) {
  namespace fs = std::filesystem;
  const std::string dataset = std::string(HG_TEST_DATA) + "/coco/person_keypoints_test.json";
  const auto truth = hg::eval::read_coco_truth(dataset);
  // Every non-crowd annotation as a result of score 1, the two without labelled joints too:
  // those (all joints at (0, 0), far outside their doubled boxes) are false positives of area 0,
  // so they count in the "all" range only. pycocotools gives AP 0.893918 (APm = APl = 1), AR 1.
  std::vector<CocoDetection> copies;
  for (const auto& p : truth.people)
    if (!p.crowd) copies.push_back({p.image_id, p.category_id, p.keypoints, 1.0});
  const auto dir = hg::test::scratch_dir();
  const auto results = (dir / "results.json").string(), out = (dir / "eval.json").string();
  hg::eval::write_coco_detections(results, copies);
  const auto r =
      hg::test::run_tool("eval " + dataset + " --predictions " + results + " --json " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(std::ifstream(out))["coco_keypoints"];
  EXPECT_NEAR(j["AP"].get<double>(), 0.893918, 1e-6);
  EXPECT_EQ(j["APm"].get<double>(), 1);
  EXPECT_EQ(j["APl"].get<double>(), 1);
  EXPECT_EQ(j["AR"].get<double>(), 1);

  const auto bad = hg::test::run_tool("eval " + dataset + " --predictions " + results +
                                      " --save-results " + (dir / "x.json").string());
  EXPECT_NE(bad.code, 0);
  EXPECT_EQ(bad.out,
            "hourglass: error: --person-boxes and --save-results need a model (--weights) and a "
            "COCO dataset\n");
  fs::remove_all(dir);
}

}  // namespace

namespace {

// A network whose every heatmap peaks (0.5) at the centre pixel of the crop.
at::Tensor centre_peaks(const at::Tensor& input) {
  auto maps = torch::zeros({input.size(0), 1, kJoints, 16, 16});
  maps.select(3, 8).select(3, 8).fill_(0.5);
  return maps;
}

TEST(CocoEval, PredictCocoScoresPeopleAndThinsThemByOksNms) {
  const std::string dataset = std::string(HG_TEST_DATA) + "/coco/person_keypoints_test.json";
  const auto truth = hg::eval::read_coco_truth(dataset);
  hg::infer::PredictorOptions options;
  options.input_size = 64;
  options.flip = false;
  const hg::infer::Predictor predictor(centre_peaks, hg::data::coco_joints(), options);
  // Image 785: a detector's box (score 0.9), a near copy (0.6) and a distant box (0.8); another
  // category's box and a box of image 40083 below the score floor are skipped.
  const std::vector<hg::eval::CocoBox> boxes = {{785, 1, {280, 44, 218, 346}, 0.9},
                                                {785, 1, {282, 45, 218, 346}, 0.6},
                                                {785, 1, {20, 20, 100, 100}, 0.8},
                                                {785, 2, {20, 20, 100, 100}, 0.8},
                                                {40083, 1, {38, 110, 174, 174}, 0.01}};
  hg::eval::CocoPredictOptions o;
  o.min_box_score = 0.05;
  const auto people = hg::eval::predict_coco(predictor, truth,
                                             std::string(HG_TEST_DATA) + "/coco/images", boxes, o);
  // The near copy has OKS > 0.9 with the first box's person: dropped. Scores: box × 0.5 (every
  // joint's confidence, all above 0.2), best first.
  ASSERT_EQ(people.size(), 2u);
  EXPECT_DOUBLE_EQ(people[0].score, 0.9 * 0.5);
  EXPECT_DOUBLE_EQ(people[1].score, 0.8 * 0.5);
  for (const auto& p : people) {
    EXPECT_EQ(p.image_id, 785);
    EXPECT_EQ(p.category_id, truth.person_category);
    ASSERT_EQ(p.keypoints.size(), 3u * kJoints);
  }
  // Every joint at the crop's centre, within one heatmap pixel (side 1.25 · 346 / 16).
  EXPECT_NEAR(people[0].keypoints[0], 280 + 218 / 2.0, 1.25 * 346 / 16);
  EXPECT_NEAR(people[0].keypoints[1], 44 + 346 / 2.0, 1.25 * 346 / 16);
  EXPECT_NEAR(people[0].keypoints[2], 0.5, 1e-6);
  o.oks_nms = 1;  // off: the near copy stays
  EXPECT_EQ(
      hg::eval::predict_coco(predictor, truth, std::string(HG_TEST_DATA) + "/coco/images", boxes, o)
          .size(),
      3u);
}

}  // namespace
