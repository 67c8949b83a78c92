// Pose prediction, evaluation and drawing: the predictor's round trip, the tool end to end.
#include "hg/data/readers.h"
#include "hg/data/sample.h"
#include "hg/data/synthetic.h"
#include "hg/eval/predictions.h"
#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

namespace {

namespace fs = std::filesystem;
using hg::test::run_tool;

using hg::test::kData;
const std::string kFixture = kData + "/fixtures/posenet_s2_f64_checkpoint.pt";

using hg::test::read_json;
using hg::test::scratch_dir;

// The whole predictor (crop, flip test, decode, inverse transform) with a stand-in network that
// renders the true joints' heatmaps: a synthetic person comes back within 1 px of the truth.
TEST(Predictor, SyntheticPersonRoundTripsWithinOnePixel) {
  hg::data::SyntheticOptions so;
  so.image_size = 128;  // whole-image crop: 2 image px per heatmap px
  const hg::data::SyntheticDataset d(1, 7, so);
  cv::Mat rgb;
  const auto a = d.load(0, rgb);
  const auto joints = d.joints();
  const auto perm = joints.flip_permutation();
  const hg::infer::PersonCrop person{
      hg::infer::crop_of_image(rgb.size()), hg::infer::PersonSource::kWholeImage, {}, 0};
  hg::infer::PredictorOptions o;
  o.input_size = 256;
  const int side = o.input_size / 4;
  int calls = 0;
  // Input: the crop and its mirror (flip test); output: 2×S×J×h×w with S = 2.
  auto truth_maps = [&](const at::Tensor& input) {
    ++calls;
    EXPECT_EQ(input.size(0), 2);
    auto out = torch::zeros({2, 2, joints.size(), side, side});
    for (int mirrored = 0; mirrored < 2; ++mirrored) {
      auto crop = person.crop;
      crop.flip = mirrored == 1;
      const hg::data::CropTransform t(crop, side);
      for (int j = 0; j < joints.size(); ++j) {
        const auto& k = a.joints[static_cast<size_t>(mirrored ? perm[j] : j)];
        if (!k.present) continue;
        cv::Mat m(side, side, CV_32F);
        m.setTo(0);
        hg::data::draw_gaussian(m, t.forward(k.pos), 1.0);
        for (int s = 0; s < 2; ++s)
          out[mirrored][s][j].copy_(torch::from_blob(m.data, {side, side}));
      }
    }
    return out;
  };
  const hg::infer::Predictor predictor(truth_maps, joints, o);
  const auto p = predictor.predict(rgb, {person});
  ASSERT_EQ(calls, 1);
  ASSERT_EQ(p.size(), 1u);
  ASSERT_EQ(p[0].joints.sizes(), (std::vector<int64_t>{2, joints.size(), 3}));
  int checked = 0;
  for (int j = 0; j < joints.size(); ++j) {
    const auto& k = a.joints[static_cast<size_t>(j)];
    if (!k.present) continue;
    const double dx = p[0].joints[1][j][0].item<double>() - k.pos.x,
                 dy = p[0].joints[1][j][1].item<double>() - k.pos.y;
    EXPECT_LT(std::hypot(dx, dy), 1.0) << joints.names[j] << " at " << k.pos;
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(Predictor, BoxesBecomeCropsWithAQuarterMargin) {
  const auto c = hg::infer::crop_of_box({100, 50, 80, 200});
  EXPECT_DOUBLE_EQ(c.center.x, 140);
  EXPECT_DOUBLE_EQ(c.center.y, 150);
  EXPECT_DOUBLE_EQ(c.scale, 1.25);
  const auto w = hg::infer::crop_of_image({640, 480});
  EXPECT_DOUBLE_EQ(w.center.x, 319.5);
  EXPECT_DOUBLE_EQ(w.scale, 3.2);
  EXPECT_THROW(hg::infer::crop_of_box({0, 0, 0, 10}), std::invalid_argument);
}

TEST(Predictor, FixtureModelOnARealImageGivesEveryStackInImagePixels) {
  const auto mpii = hg::data::read_mpii_h5(kData + "/mpii/annot/valid.h5");
  cv::Mat rgb;
  const auto a = mpii->load(0, rgb);
  hg::infer::PredictorOptions o;
  o.backend.kind = hg::infer::BackendKind::kTorch;
  const auto predictor = hg::infer::Predictor::load(kFixture, o);
  EXPECT_EQ(*predictor.options().grid, hg::data::PixelGrid::kOriginal);  // PyTorch-trained
  EXPECT_EQ(predictor.joints().name, "mpii");  // imported PyTorch models are MPII models
  hg::data::CropParams crop;
  crop.center = a.center;
  crop.scale = a.scale;
  const auto p =
      predictor.predict(rgb, {{crop, hg::infer::PersonSource::kAnnotation, {}, 0}}, true);
  ASSERT_EQ(p[0].joints.sizes(), (std::vector<int64_t>{2, 16, 3}));
  ASSERT_EQ(p[0].heatmaps.sizes(), (std::vector<int64_t>{2, 16, 64, 64}));
  // Every joint lies in the crop square (200·scale around the centre).
  const auto xy = p[0].joints.slice(2, 0, 2);
  const auto offset = (xy - torch::tensor({a.center.x, a.center.y}).to(torch::kFloat)).abs();
  EXPECT_LE(offset.max().item<double>(), 100 * a.scale + 1);
}

// The engine backend with a plan batch of 3 runs 7 crops as 3 + 3 + 1 + 1 + 1 and gives what the
// batch-1 backend gives (f32 direct: the same arithmetic per crop).
TEST(Predictor, EngineBackendWithABatchPlanMatchesOneCropAtATime) {
  hg::engine::EngineOptions o;
  o.precision = hg::engine::Precision::kF32;
  o.algorithm = hg::engine::Algorithm::kDirect;
  const auto backend = [&](int64_t batch) {
    auto engine = o;
    engine.batch = batch;
    return hg::infer::engine_backend(hg::io::load_model(kFixture).model, engine, 64);
  };
  const auto input = torch::rand({7, 3, 64, 64});
  const auto one = backend(1)(input), three = backend(3)(input);
  ASSERT_EQ(three.sizes(), one.sizes());
  EXPECT_LE((three - one).abs().max().item<double>(), 1e-4 * one.abs().max().item<double>());
}

// ---- eval ---------------------------------------------------------------------------------------

// Predictions = the annotations of valid.h5 moved by known fractions of each person's PCKh unit;
// the expected table is counted here joint by joint, independently of the library.
TEST(Eval, ReproducesHandComputedPckhOnValidH5) {
  const auto mpii = hg::data::read_mpii_h5(kData + "/mpii/annot/valid.h5");
  const auto n = static_cast<int64_t>(mpii->size());
  auto preds = torch::zeros({n, 16, 2}, torch::kDouble);
  std::vector<double> hits5(16), hits1(16), present(16);
  for (int64_t i = 0; i < n; ++i) {
    const auto a = mpii->annotation(static_cast<size_t>(i));
    for (int j = 0; j < 16; ++j) {
      const auto& k = a.joints[static_cast<size_t>(j)];
      // Relative errors 0.025 … 0.975, never on a threshold; the direction turns with i, j.
      const double e = ((i * 7 + j * 3) % 20 + 0.5) / 20.0, angle = 0.7 * i + 1.3 * j;
      preds[i][j][0] = k.pos.x + e * a.normalize * std::cos(angle);
      preds[i][j][1] = k.pos.y + e * a.normalize * std::sin(angle);
      if (!k.present) continue;
      present[j] += 1;
      hits5[j] += e < 0.5;
      hits1[j] += e < 0.1;
    }
  }
  const auto dir = scratch_dir();
  hg::eval::write_predictions_h5((dir / "preds.h5").string(), preds);
  const auto r = run_tool("eval " + kData + "/mpii/annot/valid.h5 --predictions " +
                          (dir / "preds.h5").string() + " --json " + (dir / "pck.json").string() +
                          " --plot " + (dir / "pck.png").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto got = read_json(dir / "pck.json");
  EXPECT_EQ(got["evaluated"], n);
  for (const auto& [key, hits] : {std::pair{"pckh@0.5", hits5}, std::pair{"pckh@0.1", hits1}}) {
    std::vector<double> pck(16);
    for (int j = 0; j < 16; ++j) pck[j] = 100.0 * hits[j] / present[j];
    const auto& t = got[key];
    // MPII order: 0 r-ankle 1 r-knee 2 r-hip 3 l-hip 4 l-knee 5 l-ankle 6 pelvis 7 thorax
    // 8 upper-neck 9 head-top 10 r-wrist 11 r-elbow 12 r-shoulder 13 l-shoulder 14 l-elbow 15
    // l-wrist
    EXPECT_NEAR(t["head"].get<double>(), pck[9], 1e-9) << key;
    EXPECT_NEAR(t["shoulder"].get<double>(), (pck[12] + pck[13]) / 2, 1e-9) << key;
    EXPECT_NEAR(t["elbow"].get<double>(), (pck[11] + pck[14]) / 2, 1e-9) << key;
    EXPECT_NEAR(t["wrist"].get<double>(), (pck[10] + pck[15]) / 2, 1e-9) << key;
    EXPECT_NEAR(t["hip"].get<double>(), (pck[2] + pck[3]) / 2, 1e-9) << key;
    EXPECT_NEAR(t["knee"].get<double>(), (pck[1] + pck[4]) / 2, 1e-9) << key;
    EXPECT_NEAR(t["ankle"].get<double>(), (pck[0] + pck[5]) / 2, 1e-9) << key;
    double mean = 0, h = 0, c = 0;
    for (int j = 0; j < 16; ++j) {
      if (j == 6 || j == 7) continue;  // pelvis and thorax are left out of the mean
      mean += pck[j] / 14;
      h += hits[j];
      c += present[j];
    }
    EXPECT_NEAR(t["mean"].get<double>(), mean, 1e-9) << key;
    EXPECT_NEAR(t["mean_weighted"].get<double>(), 100.0 * h / c, 1e-9) << key;
  }
  EXPECT_EQ(got["thresholds"].size(), 51u);
  EXPECT_GT(fs::file_size(dir / "pck.png"), 1000u);
}

// Real predictions of some method (pos_pred_src of gt_valid_official.mat, saved in valid.h5's
// order as preds_valid_example.h5) scored against the official truth file: the expected numbers
// come from a line-by-line port of the official evaluation (eval_PCKh.py, SC_BIAS 0.6, strict
// threshold, jnt_missing) run on the same .mat.
TEST(Eval, ReproducesTheOfficialMpiiEvaluation) {
  const auto dir = scratch_dir();
  const auto annot = kData + "/mpii/annot/";
  const auto r = run_tool("eval " + annot + "valid.h5 --predictions " + annot +
                          "preds_valid_example.h5 --official-truth " + annot +
                          "gt_valid_official.mat --json " + (dir / "pck.json").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto got = read_json(dir / "pck.json");
  const std::map<std::string, std::map<std::string, double>> official = {
      {"pckh@0.5",
       {{"head", 95.6002728513},
        {"shoulder", 92.7139945652},
        {"elbow", 83.3645772083},
        {"wrist", 76.7357158489},
        {"hip", 81.9283239799},
        {"knee", 73.3627755232},
        {"ankle", 65.4461547387},
        {"mean", 81.4584447839},
        {"mean_weighted", 82.3367161072}}},
      {"pckh@0.1",
       {{"head", 42.5648021828},
        {"shoulder", 33.0332880435},
        {"elbow", 32.8447420347},
        {"wrist", 31.058072789},
        {"hip", 15.7003377028},
        {"knee", 20.5130784708},
        {"ankle", 19.8627859834},
        {"mean", 28.3975871336},
        {"mean_weighted", 28.9747593026}}}};
  for (const auto& [key, table] : official)
    for (const auto& [group, value] : table)
      EXPECT_NEAR(got[key][group].get<double>(), value, 1e-8) << key << " " << group;
}

// FLIC (torso unit) and COCO (box unit): predictions = the truth, except the wrists moved by
// 0.3 of the person's unit: PCK@0.2 is 100 everywhere but 0 for the wrists.
TEST(Eval, FlicTorsoAndCocoBoxPckAtPointTwo) {
  const auto dir = scratch_dir();
  for (const std::string file : {"/flic/annot/valid.h5", "/coco/person_keypoints_test.json"}) {
    const auto d = hg::data::open_annotations(kData + file);
    const auto n = static_cast<int64_t>(d->size());
    const int nj = d->joints().size();
    auto preds = torch::zeros({n, nj, 2}, torch::kDouble);
    for (int64_t i = 0; i < n; ++i) {
      const auto a = d->annotation(static_cast<size_t>(i));
      const double unit = a.normalize > 0 ? a.normalize : 200 * a.scale / 1.25;
      for (int j = 0; j < nj; ++j) {
        const bool wrist = d->joints().names[j].find("wrist") != std::string::npos;
        preds[i][j][0] = a.joints[j].pos.x + (wrist ? 0.3 * unit : 0.0);
        preds[i][j][1] = a.joints[j].pos.y;
      }
    }
    hg::eval::write_predictions_h5((dir / "preds.h5").string(), preds);
    const auto r = run_tool("eval " + kData + file + " --predictions " +
                            (dir / "preds.h5").string() + " --json " + (dir / "pck.json").string());
    ASSERT_EQ(r.code, 0) << r.out;
    const auto t = read_json(dir / "pck.json")["pck@0.2"];
    EXPECT_DOUBLE_EQ(t["wrist"].get<double>(), 0.0) << file;
    EXPECT_DOUBLE_EQ(t["elbow"].get<double>(), 100.0) << file;
    EXPECT_DOUBLE_EQ(t["shoulder"].get<double>(), 100.0) << file;
  }
}

TEST(Eval, RejectsPredictionsOfTheWrongShape) {
  const auto dir = scratch_dir();
  hg::eval::write_predictions_h5((dir / "preds.h5").string(), torch::zeros({5, 16, 2}));
  const auto r = run_tool("eval " + kData + "/mpii/annot/valid.h5 --predictions " +
                          (dir / "preds.h5").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("hourglass: error: cannot use"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2958×16×2"), std::string::npos) << r.out;
}

// ---- predict / show end to end ------------------------------------------------------------------

TEST(Predict, FiveMpiiImagesEndToEndWithTheDetector) {
  const auto dir = scratch_dir();
  const auto r =
      run_tool("predict --threads 2 " + kData + "/mpii/images --weights " + kFixture + " --draw " +
               (dir / "drawn").string() + " -o " + (dir / "out.json").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = read_json(dir / "out.json");
  EXPECT_EQ(j["joint_set"], "mpii");
  ASSERT_EQ(j["results"].size(), 5u);
  for (const auto& res : j["results"]) {
    ASSERT_FALSE(res["people"].empty()) << res.dump();
    for (const auto& person : res["people"]) {
      const std::string how = person["found_by"];
      EXPECT_TRUE(how == "hog-detector" || how == "whole-image-no-detection") << how;
      EXPECT_EQ(person["joints"].size(), 16u);
      EXPECT_EQ(person["stacks"].size(), 2u);
      EXPECT_TRUE(std::isfinite(person["joints"]["head-top"]["x"].get<double>()));
    }
    const auto drawn =
        dir / "drawn" / (fs::path(res["input"].get<std::string>()).stem().string() + ".jpg");
    EXPECT_TRUE(fs::exists(drawn)) << drawn;
  }
  // Its JSON is accepted by eval (the five people are the first five of valid.h5).
  const auto e = run_tool("eval " + kData + "/mpii/annot/valid.h5 --limit 5 --predictions " +
                          (dir / "out.json").string());
  EXPECT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("evaluated:   5 of 5"), std::string::npos) << e.out;
}

TEST(Predict, BadInputsAreReportedAndTheOthersStillProcessed) {
  const auto dir = scratch_dir();
  fs::create_directories(dir / "empty");
  std::ofstream(dir / "broken.jpg") << "not a jpeg";
  std::ofstream(dir / "notes.txt") << "hello";
  std::ofstream(dir / "broken.mp4") << "not a video";
  const auto good = kData + "/mpii/images/052475643.jpg";
  const auto r =
      run_tool("predict --threads 2 --no-flip --box 10,20,100,200 --weights " + kFixture + " " +
               (dir / "broken.jpg").string() + " " + (dir / "notes.txt").string() + " " +
               (dir / "empty").string() + " " + (dir / "broken.mp4").string() + " " +
               (dir / "missing.png").string() + " " + good + " -o " + (dir / "out.json").string());
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("broken.jpg: cannot read image"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("notes.txt: unknown extension '.txt'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the folder has no images"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("broken.mp4: cannot open the video"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("missing.png: no such file"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("5 of 6 inputs failed"), std::string::npos) << r.out;
  const auto j = read_json(dir / "out.json");
  ASSERT_EQ(j["results"].size(), 6u);
  const auto& ok = j["results"][5];
  ASSERT_EQ(ok["people"].size(), 1u);
  EXPECT_EQ(ok["people"][0]["found_by"], "box");
  EXPECT_EQ(j["flip_test"], false);
}

// tests/data/video holds a copy of the shared PoseTrack clip (5 frames of 1280×720).
TEST(Predict, VideoToJsonAndAnnotatedVideo) {
  const auto dir = scratch_dir();
  const auto r = run_tool("predict --threads 2 --no-flip --whole-image --weights " + kFixture +
                          " " + kData + "/video/posetrack_000001.mp4 --draw " + dir.string() +
                          " -o " + (dir / "out.json").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = read_json(dir / "out.json");
  ASSERT_GT(j["results"].size(), 1u);
  EXPECT_EQ(j["results"][0]["frame"], 0);
  EXPECT_EQ(j["results"][1]["frame"], 1);
  cv::VideoCapture drawn((dir / "posetrack_000001.mp4").string());
  ASSERT_TRUE(drawn.isOpened());
  EXPECT_EQ(static_cast<size_t>(drawn.get(cv::CAP_PROP_FRAME_COUNT)), j["results"].size());
}

TEST(Show, WritesTheMontageAndThePerStackView) {
  const auto dir = scratch_dir();
  const auto image = kData + "/mpii/images/005808361.jpg";
  auto r = run_tool("show --threads 2 " + image + " --weights " + kFixture + " --whole-image -o " +
                    (dir / "montage.png").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto m = cv::imread((dir / "montage.png").string());
  EXPECT_EQ(m.cols, 6 * 256);  // 6 tiles of the 256 px crop
  EXPECT_EQ(m.rows, 3 * 256);  // skeleton, max, 16 joints = 18 tiles
  r = run_tool("show --threads 2 " + image + " --weights " + kFixture + " --stacks --zoom 2 -o " +
               (dir / "stacks.png").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto s = cv::imread((dir / "stacks.png").string());
  EXPECT_EQ(s.cols, 2 * 512);  // 2 stacks at zoom 2
  EXPECT_EQ(s.rows, 2 * 512);
}

}  // namespace
