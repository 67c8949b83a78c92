// Datasets, crop transform, augmentation, heatmaps, synthetic data and the loader, on the real
// annotation files copied into tests/data (MPII valid.h5 + its first five images, FLIC valid.h5,
// four COCO images with their keypoints).

#include "hg/data/augment.h"
#include "hg/data/loader.h"
#include "hg/data/readers.h"
#include "hg/data/sample.h"
#include "hg/data/synthetic.h"
#include "hg/data/transform.h"

#include "test_util.h"

#include <H5Cpp.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

namespace fs = std::filesystem;
using namespace hg::data;

namespace {

const std::string kData = HG_TEST_DATA;
const std::string kMpii = kData + "/mpii/annot/valid.h5";
const std::string kFlic = kData + "/flic/annot/valid.h5";
const std::string kCoco = kData + "/coco/person_keypoints_test.json";

using hg::test::error_of;
using hg::test::write_text;

// Intensity-weighted centroid of a single-channel float image.
cv::Point2d centroid(const cv::Mat& m) {
  const cv::Moments mo = cv::moments(m);
  return {mo.m10 / mo.m00, mo.m01 / mo.m00};
}

// A Gaussian blob of σ px at p, W×H CV_32F.
cv::Mat blob(cv::Size size, cv::Point2d p, double sigma) {
  cv::Mat m(size, CV_32F);
  for (int y = 0; y < size.height; ++y)
    for (int x = 0; x < size.width; ++x)
      m.at<float>(y, x) = static_cast<float>(
          std::exp(-((x - p.x) * (x - p.x) + (y - p.y) * (y - p.y)) / (2 * sigma * sigma)));
  return m;
}

}  // namespace

// ---- readers ------------------------------------------------------------------------------------

TEST(MpiiReader, ReadsTheValidationSplitAndItsFirstEntry) {
  const auto d = read_mpii_h5(kMpii);
  ASSERT_EQ(d->size(), 2958u);
  EXPECT_EQ(d->joints().size(), 16);
  EXPECT_EQ(d->joints().names[0], "r-ankle");
  EXPECT_EQ(d->joints().names[9], "head-top");
  const Annotation a = d->annotation(0);
  EXPECT_EQ(fs::path(a.image).filename(), "005808361.jpg");
  EXPECT_EQ(fs::path(a.image).parent_path().filename(), "images");
  EXPECT_DOUBLE_EQ(a.center.x, 966);
  EXPECT_DOUBLE_EQ(a.center.y, 410.77731840074193);
  EXPECT_DOUBLE_EQ(a.scale, 5.8981098667284924);
  EXPECT_DOUBLE_EQ(a.normalize, 117.96219733456985);
  EXPECT_DOUBLE_EQ(a.torso_angle, 3.2620334773967556);
  EXPECT_EQ(a.index, 6);
  EXPECT_EQ(a.person, 0);
  const double part[16][2] = {{804, 711}, {816, 510},  {908, 438},  {1040, 454},
                              {906, 528}, {883, 707},  {974, 446},  {985, 253},
                              {982, 235}, {962, 80},   {869, 214},  {798, 340},
                              {902, 253}, {1067, 253}, {1167, 353}, {1142, 478}};
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(a.joints[j].pos, cv::Point2d(part[j][0], part[j][1])) << j;
    EXPECT_TRUE(a.joints[j].present && a.joints[j].visible) << j;
  }
  // Entry 2's right ankle is missing (stored as 0, 0); across the split, right ankles are
  // present 2115 times and visible 1589 times (the rest annotated as occluded).
  EXPECT_FALSE(d->annotation(2).joints[0].present);
  EXPECT_FALSE(d->annotation(2).joints[0].visible);
  int present = 0, visible = 0;
  for (const auto& s : d->samples()) {
    present += s.joints[0].present;
    visible += s.joints[0].visible;
  }
  EXPECT_EQ(present, 2115);
  EXPECT_EQ(visible, 1589);
}

TEST(MpiiReader, JointSetHasTheMpiiFlipPairs) {
  const JointSet j = mpii_joints();
  const std::vector<int> expected = {5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10};
  EXPECT_EQ(j.index_of("head-top"), 9);
  EXPECT_ERROR_HAS(j.index_of("tail"), "mpii", "'tail'");
  EXPECT_EQ(j.flip_permutation(), expected);
  // Flipping twice is the identity, and each pair swaps an r- joint with its l- twin.
  const auto p = j.flip_permutation();
  for (int i = 0; i < j.size(); ++i) {
    EXPECT_EQ(p[p[i]], i);
    if (p[i] != i) {
      EXPECT_EQ(j.names[i].substr(2), j.names[p[i]].substr(2));
      EXPECT_NE(j.names[i].substr(0, 2), j.names[p[i]].substr(0, 2));
    }
  }
}

TEST(FlicReader, LoadsElevenJoints) {
  const auto d = read_flic_h5(kFlic);
  ASSERT_EQ(d->size(), 1016u);
  EXPECT_EQ(d->joints().name, "flic");
  EXPECT_EQ(d->joints().size(), 11);
  EXPECT_EQ(d->joints().flip_permutation(), (std::vector<int>{3, 4, 5, 0, 1, 2, 7, 6, 9, 8, 10}));
  const Annotation a = d->annotation(0);
  EXPECT_EQ(fs::path(a.image).filename(), "12-oclock-high-special-edition-00171221.jpg");
  EXPECT_NEAR(a.center.x, 329.77716064453125, 1e-9);
  EXPECT_DOUBLE_EQ(a.scale, 2.2000000000000002);
  EXPECT_NEAR(a.joints[0].pos.x, 384.82449340820312, 1e-9);
  EXPECT_NEAR(a.normalize, 162.53936100696356, 1e-9);
  EXPECT_EQ(a.index, 140);
  // open_annotations tells FLIC from MPII by the joint count.
  EXPECT_EQ(open_annotations(kFlic)->joints().name, "flic");
  EXPECT_EQ(open_annotations(kMpii)->joints().name, "mpii");
}

TEST(CocoReader, LoadsEveryAnnotatedPerson) {
  const auto d = read_coco_json(kCoco);
  EXPECT_EQ(d->size(), 12u);  // 14 person annotations, 2 without any keypoint
  EXPECT_EQ(d->joints().size(), 17);
  EXPECT_EQ(d->joints().skeleton.size(), 19u);
  EXPECT_EQ(d->joints().skeleton[0], std::make_pair(15, 13));  // COCO's [16, 14], 1-based
  const Annotation a = d->annotation(0);
  EXPECT_EQ(fs::path(a.image).filename(), "000000000785.jpg");
  EXPECT_EQ(a.index, 785);
  int present = 0;
  for (const auto& k : a.joints) present += k.present;
  EXPECT_EQ(present, 17);
  for (size_t i = 0; i < d->size(); ++i) EXPECT_FALSE(d->image(i).empty());
  EXPECT_EQ(open_annotations(kCoco)->size(), 12u);
}

TEST(CustomReader, ReadsItsDocumentedFormat) {
  const fs::path dir = hg::test::scratch_dir();
  fs::create_directories(dir / "img");
  fs::copy_file(kData + "/mpii/images/005808361.jpg", dir / "img" / "a.jpg");
  write_text(dir / "pose.json", R"({
    "format": "hourglass-pose", "version": 1, "name": "three",
    "joints": ["head", "l-hand", "r-hand"], "flip_pairs": [[1, 2]], "skeleton": [[0, 1], [0, 2]],
    "image_root": "img",
    "samples": [
      {"image": "a.jpg", "joints": [[10, 20, 2], [30, 40, 1], [0, 0, 0]], "box": [100, 200, 40, 80],
       "normalize": 7.5},
      {"image": "a.jpg", "joints": [[1, 2, 2], [3, 4, 2], [5, 6, 2]], "center": [50, 60], "scale": 2}
    ]})");
  const auto d = read_custom_json((dir / "pose.json").string());
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ(d->joints().name, "three");
  EXPECT_EQ(d->joints().flip_permutation(), (std::vector<int>{0, 2, 1}));
  const Annotation a = d->annotation(0);
  EXPECT_EQ(a.center, cv::Point2d(120, 240));
  EXPECT_DOUBLE_EQ(a.scale, 1.25 * 80 / 200);
  EXPECT_DOUBLE_EQ(a.normalize, 7.5);
  EXPECT_TRUE(a.joints[0].visible);
  EXPECT_TRUE(a.joints[1].present && !a.joints[1].visible);
  EXPECT_FALSE(a.joints[2].present);
  EXPECT_EQ(d->annotation(1).center, cv::Point2d(50, 60));
  EXPECT_DOUBLE_EQ(d->annotation(1).scale, 2);
  EXPECT_EQ(d->image(0).size(), cv::Size(1280, 720));
  EXPECT_EQ(open_dataset((dir / "pose.json").string())->joints().name, "three");
}

// ---- malformed files ----------------------------------------------------------------------------

namespace {
// Writes an MPII-like .h5 with `n` people; `skip` leaves a field out, `joints` sets part's J.
void write_h5(const fs::path& path, const std::string& skip = "", hsize_t joints = 16,
              hsize_t n = 3, hsize_t center_cols = 2) {
  H5::H5File f(path.string(), H5F_ACC_TRUNC);
  auto numeric = [&](const std::string& name, std::vector<hsize_t> dims, double value) {
    if (name == skip) return;
    H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
    auto d = f.createDataSet(name, H5::PredType::NATIVE_DOUBLE, space);
    size_t total = 1;
    for (auto v : dims) total *= v;
    std::vector<double> values(total, value);
    d.write(values.data(), H5::PredType::NATIVE_DOUBLE);
  };
  if (skip != "imgname") {
    H5::StrType type(H5::PredType::C_S1, 13);
    hsize_t dims[1] = {n};
    H5::DataSpace space(1, dims);
    auto d = f.createDataSet("imgname", type, space);
    std::vector<char> names(n * 13, '\0');
    for (hsize_t i = 0; i < n; ++i) std::snprintf(names.data() + i * 13, 13, "img%03d.jpg", int(i));
    d.write(names.data(), type);
  }
  numeric("center", {n, center_cols}, 100);
  numeric("scale", {n}, 1);
  numeric("part", {n, joints, 2}, 50);
  numeric("visible", {n, joints}, 1);
  numeric("normalize", {n}, 10);
}
}  // namespace

TEST(MalformedFiles, Hdf5CasesNameFileAndField) {
  H5::Exception::dontPrint();
  const fs::path dir = hg::test::scratch_dir();
  const std::string good = (dir / "good.h5").string();
  write_h5(good);
  EXPECT_EQ(read_mpii_h5(good)->size(), 3u);
  EXPECT_EQ(read_mpii_h5(good)->annotation(2).image,
            (dir / "../images/img002.jpg").lexically_normal().string());

  EXPECT_ERROR_HAS(read_mpii_h5((dir / "absent.h5").string()), "absent.h5", "no such file");
  write_text(dir / "text.h5", "this is not HDF5");
  EXPECT_ERROR_HAS(read_mpii_h5((dir / "text.h5").string()), "text.h5", "not an HDF5 file");
  for (const std::string field : {"imgname", "center", "scale", "part", "visible", "normalize"}) {
    const std::string p = (dir / ("no_" + field + ".h5")).string();
    write_h5(p, field);
    EXPECT_ERROR_HAS(read_mpii_h5(p), "no_" + field + ".h5", "no dataset '" + field + "'");
  }
  const std::string flic_shape = (dir / "eleven.h5").string();
  write_h5(flic_shape, "", 11);
  EXPECT_ERROR_HAS(read_mpii_h5(flic_shape), "eleven.h5", "'part'", "3×11×2", "16 joints");
  EXPECT_EQ(open_annotations(flic_shape)->joints().name, "flic");
  const std::string twelve = (dir / "twelve.h5").string();
  write_h5(twelve, "", 12);
  EXPECT_ERROR_HAS(open_annotations(twelve), "twelve.h5", "N×16×2 (MPII) or N×11×2 (FLIC)");
  const std::string cols = (dir / "center3.h5").string();
  write_h5(cols, "", 16, 3, 3);
  EXPECT_ERROR_HAS(read_mpii_h5(cols), "center3.h5", "'center'", "3×3", "N×2");
}

TEST(MalformedFiles, JsonCasesNameFileAndField) {
  const fs::path dir = hg::test::scratch_dir();
  auto path = [&](const std::string& name, const std::string& text) {
    write_text(dir / name, text);
    return (dir / name).string();
  };
  EXPECT_ERROR_HAS(read_coco_json((dir / "none.json").string()), "none.json", "no such file");
  EXPECT_ERROR_HAS(read_coco_json(path("bad.json", "{ \"images\": [")), "bad.json",
                   "not valid JSON");
  EXPECT_ERROR_HAS(read_coco_json(path("nocat.json", R"({"images": [], "annotations": []})")),
                   "nocat.json", "'.categories'");
  const std::string cat = R"("categories": [{"id": 1, "name": "person"}])";
  EXPECT_ERROR_HAS(read_coco_json(path("noann.json", "{\"images\": [], " + cat + "}")),
                   "noann.json", "'.annotations'");
  EXPECT_ERROR_HAS(read_coco_json(path(
                       "kp.json", "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}], " + cat +
                                      R"(, "annotations": [{"category_id": 1, "image_id": 1,
                                              "bbox": [0, 0, 1, 1], "keypoints": [1, 2, 3]}]})")),
                   "kp.json", "'.annotations[0].keypoints'", "51 numbers");
  std::string kp = "1";
  for (int i = 1; i < 51; ++i) kp += ",2";
  EXPECT_ERROR_HAS(read_coco_json(path("img.json", "{\"images\": [], " + cat +
                                                       R"(, "annotations": [{"category_id": 1,
                                              "image_id": 9, "bbox": [0, 0, 1, 1], "keypoints": [)" +
                                                       kp + "]}]}")),
                   "img.json", "'.annotations[0].image_id' = 9");

  const std::string head = R"({"format": "hourglass-pose", "joints": ["a", "b"], )";
  EXPECT_ERROR_HAS(read_custom_json(path("fmt.json", R"({"format": "other", "joints": []})")),
                   "fmt.json", "'.format'", "hourglass-pose");
  EXPECT_ERROR_HAS(read_custom_json(path("nj.json", R"({"format": "hourglass-pose"})")), "nj.json",
                   "missing field '.joints'");
  EXPECT_ERROR_HAS(
      read_custom_json(path("flip.json", head + R"("flip_pairs": [[0, 5]], "samples": []})")),
      "flip.json", "flip_pairs", "0..1");
  EXPECT_ERROR_HAS(read_custom_json(path("count.json", head + R"("samples": [
                       {"image": "x.jpg", "joints": [[1, 2, 2]], "box": [0, 0, 5, 5]}]})")),
                   "count.json", "'.samples[0].joints'", "must list 2 joints");
  EXPECT_ERROR_HAS(read_custom_json(path("box.json", head + R"("samples": [
                       {"image": "x.jpg", "joints": [[1, 2, 2], [3, 4, 0]]}]})")),
                   "box.json", ".samples[0]", "'box'", "'center'");
  EXPECT_ERROR_HAS(read_custom_json(path("xyv.json", head + R"("samples": [
                       {"image": "x.jpg", "joints": [[1, 2, 2], [3, "4", 0]], "box": [0,0,1,1]}]})")),
                   "xyv.json", "'.samples[0].joints[1][1]'", "must be a number");
  EXPECT_ERROR_HAS(read_custom_json(path("scale.json", head + R"("samples": [
                       {"image": "x.jpg", "joints": [[1, 2, 2], [3, 4, 0]], "center": [1, 2],
                        "scale": -1}]})")),
                   "scale.json", "'.samples[0].scale' must be > 0");
  EXPECT_ERROR_HAS(open_annotations((dir / "a.csv").string()), "a.csv",
                   "unknown annotation format");
  EXPECT_ERROR_HAS(open_dataset("synthetic:ten"), "synthetic:ten", "synthetic:N");
}

// ---- crop transform -----------------------------------------------------------------------------

TEST(CropTransform, MapsTheSquareOntoTheCropEdgeToEdge) {
  const CropParams p{{300, 200}, 1.0};  // 200 px square
  const CropTransform t(p, 256);
  EXPECT_NEAR(cv::norm(t.forward({300, 200}) - cv::Point2d(127.5, 127.5)), 0, 1e-12);
  // The square's corners are the crop's outer pixel edges.
  EXPECT_NEAR(cv::norm(t.forward({200, 100}) - cv::Point2d(-0.5, -0.5)), 0, 1e-12);
  EXPECT_NEAR(cv::norm(t.forward({400, 300}) - cv::Point2d(255.5, 255.5)), 0, 1e-12);
  // Heatmap resolution: pixel k covers crop pixels 4k..4k+3, centred on 4k + 1.5.
  const CropTransform h = t.at_resolution(64);
  for (cv::Point2d x : {cv::Point2d(250, 170), cv::Point2d(333.3, 280.1)}) {
    const cv::Point2d u = t.forward(x), v = h.forward(x);
    EXPECT_NEAR(v.x, (u.x - 1.5) / 4, 1e-12);
    EXPECT_NEAR(v.y, (u.y - 1.5) / 4, 1e-12);
  }
  // The original code's grid puts the centre on res/2.
  CropParams o = p;
  o.grid = PixelGrid::kOriginal;
  EXPECT_NEAR(cv::norm(CropTransform(o, 64).forward({300, 200}) - cv::Point2d(32, 32)), 0, 1e-12);
}

TEST(CropTransform, RotationIsCounterClockwiseAboutTheCentreAndInverts) {
  CropParams p{{300, 200}, 1.0, 90};
  const CropTransform t(p, 200);
  // A point right of the centre goes up (counter-clockwise on screen), one below goes right.
  EXPECT_NEAR(cv::norm(t.forward({350, 200}) - cv::Point2d(99.5, 49.5)), 0, 1e-9);
  EXPECT_NEAR(cv::norm(t.forward({300, 250}) - cv::Point2d(149.5, 99.5)), 0, 1e-9);
  cv::RNG rng(1);
  for (double rot : {0.0, 17.0, -45.0, 120.0})
    for (bool flip : {false, true}) {
      const CropTransform tt({{rng.uniform(0., 900.), rng.uniform(0., 600.)}, 3.7, rot, flip}, 256);
      for (int k = 0; k < 10; ++k) {
        const cv::Point2d x(rng.uniform(0., 1000.), rng.uniform(0., 800.));
        EXPECT_NEAR(cv::norm(tt.inverse(tt.forward(x)) - x), 0, 1e-9);
      }
    }
}

// The crop of 005808361.jpg: a blob painted at each annotated joint lands in the crop exactly
// where forward() predicts, and inverse() brings the measured position back within 0.5 px.
TEST(CropTransform, RealImageJointsLandWhereForwardPredicts) {
  const auto d = read_mpii_h5(kMpii);
  const Annotation a = d->annotation(0);
  const cv::Mat image = d->image(0);
  ASSERT_EQ(image.size(), cv::Size(1280, 720));
  for (double rot : {0.0, 30.0, -45.0})
    for (bool flip : {false, true}) {
      const CropTransform t({a.center, a.scale, rot, flip}, 256);
      int checked = 0;
      for (int j = 0; j < 16; ++j) {
        const cv::Point2d x = a.joints[j].pos, predicted = t.forward(x);
        // Only blobs that neither the image nor the crop cuts (3σ margins).
        if (x.x < 60 || x.y < 60 || x.x > image.cols - 61 || x.y > image.rows - 61) continue;
        if (predicted.x < 14 || predicted.y < 14 || predicted.x > 241 || predicted.y > 241)
          continue;
        ++checked;
        // σ = 20 image px ≈ 4.3 crop px: smooth enough for bilinear sampling to keep its centroid.
        const cv::Point2d u = centroid(t.warp(blob(image.size(), x, 20)));
        EXPECT_LT(cv::norm(u - predicted), 0.08)
            << "joint " << j << " rot " << rot << " flip " << flip;
        EXPECT_LT(cv::norm(t.inverse(u) - x), 0.5)
            << "joint " << j << " rot " << rot << " flip " << flip;
      }
      EXPECT_GE(checked, 10);
      // The crop of the photo itself: the bilinear sample of the photo at inverse(u) inside the
      // image, zero outside it.
      const cv::Mat crop = t.warp(image);
      int inside = 0, outside = 0;
      for (int y = 3; y < 256; y += 25)
        for (int x = 3; x < 256; x += 25) {
          const cv::Point u(x, y);
          const cv::Point2d p = t.inverse(cv::Point2d(u));
          const cv::Vec3b got = crop.at<cv::Vec3b>(u);
          if (p.x > 1 && p.y > 1 && p.x < image.cols - 2 && p.y < image.rows - 2) {
            ++inside;
            cv::Mat px;
            cv::getRectSubPix(image, cv::Size(1, 1), cv::Point2f(float(p.x), float(p.y)), px);
            const cv::Vec3b want = px.at<cv::Vec3b>(0, 0);
            for (int c = 0; c < 3; ++c) EXPECT_NEAR(got[c], want[c], 3) << u;
          } else if (p.x < -1 || p.y < -1 || p.x > image.cols || p.y > image.rows) {
            ++outside;
            EXPECT_EQ(got, cv::Vec3b(0, 0, 0)) << u;
          }
        }
      EXPECT_GT(inside, 40);
      EXPECT_GT(outside, 5);
    }
}

TEST(CropTransform, FlipMirrorsTheCropAndFlippingTwiceIsIdentity) {
  const auto d = read_mpii_h5(kMpii);
  const Annotation a = d->annotation(0);
  const cv::Mat image = d->image(0);
  CropParams p{a.center, a.scale, 20};
  const cv::Mat plain = CropTransform(p, 256).warp(image);
  p.flip = true;
  const cv::Mat flipped = CropTransform(p, 256).warp(image);
  cv::Mat mirrored;
  cv::flip(plain, mirrored, 1);
  EXPECT_LT(cv::norm(flipped, mirrored, cv::NORM_L1) / flipped.total() / 3, 0.5);
  cv::Mat twice;
  cv::flip(flipped, twice, 1);
  EXPECT_LT(cv::norm(plain, twice, cv::NORM_L1) / plain.total() / 3, 0.5);
  // On joints: mirror ∘ mirror = id at every resolution.
  for (int res : {256, 64})
    for (const auto& k : a.joints) {
      const cv::Point2d u = CropTransform({a.center, a.scale, 20, false}, res).forward(k.pos);
      const cv::Point2d v = CropTransform({a.center, a.scale, 20, true}, res).forward(k.pos);
      EXPECT_NEAR(v.x, res - 1 - u.x, 1e-9);
      EXPECT_NEAR(v.y, u.y, 1e-9);
    }
}

// ---- heatmaps -----------------------------------------------------------------------------------

TEST(Heatmap, PeakIsOneOnTheJointAndMatchesTheReference) {
  cv::RNG rng(7);
  for (double sigma : {kPaperSigma, kOriginalSigma, 3.0})
    for (int k = 0; k < 50; ++k) {
      const cv::Point2d p(rng.uniform(-0.5, 63.49), rng.uniform(-0.5, 63.49));
      cv::Mat fast = cv::Mat::zeros(64, 64, CV_32F), ref = cv::Mat::zeros(64, 64, CV_32F);
      ASSERT_TRUE(draw_gaussian(fast, p, sigma));
      ASSERT_TRUE(draw_gaussian_reference(ref, p, sigma));
      EXPECT_LT(cv::norm(fast, ref, cv::NORM_INF), 1e-6);
      double peak;
      cv::Point at;
      cv::minMaxLoc(fast, nullptr, &peak, nullptr, &at);
      EXPECT_EQ(at, cv::Point(cvRound(p.x), cvRound(p.y))) << p;
      const double d2 = (at.x - p.x) * (at.x - p.x) + (at.y - p.y) * (at.y - p.y);
      EXPECT_NEAR(peak, std::exp(-d2 / (2 * sigma * sigma)), 1e-6);
    }
  cv::Mat on = cv::Mat::zeros(64, 64, CV_32F);
  ASSERT_TRUE(draw_gaussian(on, {20, 30}, 1.0));
  EXPECT_FLOAT_EQ(on.at<float>(30, 20), 1.f);
  EXPECT_NEAR(on.at<float>(30, 21), std::exp(-0.5), 1e-6);
  EXPECT_EQ(on.at<float>(30, 24), 0.f);  // beyond 3σ
  cv::Mat off = cv::Mat::zeros(64, 64, CV_32F);
  EXPECT_FALSE(draw_gaussian(off, {64, 10}, 1.0));
  EXPECT_FALSE(draw_gaussian(off, {10, -0.6}, 1.0));
  EXPECT_EQ(cv::countNonZero(off), 0);
}

TEST(Sample, RealImageHeatmapsPeakOnTheirJointsAndFlipSwapsSides) {
  const auto d = read_mpii_h5(kMpii);
  SampleOptions o;
  AugmentParams aug;
  aug.rotation_deg = 25;
  aug.scale = 1.1;
  const Sample s = make_sample(*d, 0, o, aug);
  ASSERT_EQ(s.input.size(), cv::Size(256, 256));
  ASSERT_EQ(s.heatmaps.size(), 16u);
  const CropTransform heat = CropTransform(s.meta.crop, 64);
  for (int j = 0; j < 16; ++j) {
    ASSERT_EQ(s.weight[j], 1.f) << j;
    cv::Point at;
    cv::minMaxLoc(s.heatmaps[j], nullptr, nullptr, nullptr, &at);
    const cv::Point2d v = heat.forward(s.meta.joints[j].pos);
    EXPECT_EQ(at, cv::Point(cvRound(v.x), cvRound(v.y))) << j;
    // Mapped back to the image, the peak pixel is within half a heatmap pixel of the joint.
    const double px = 200 * s.meta.crop.scale / 64;
    EXPECT_LT(cv::norm(heat.inverse(cv::Point2d(at)) - s.meta.joints[j].pos), 0.71 * px) << j;
  }
  // Flipped: channel j is the mirror image of channel perm[j] of the unflipped sample.
  aug.flip = true;
  const Sample f = make_sample(*d, 0, o, aug);
  const auto perm = d->joints().flip_permutation();
  for (int j = 0; j < 16; ++j) {
    cv::Mat mirrored;
    cv::flip(s.heatmaps[perm[j]], mirrored, 1);
    EXPECT_LT(cv::norm(f.heatmaps[j], mirrored, cv::NORM_INF), 1e-5) << j;
  }
  cv::Mat mirrored;
  cv::flip(s.input, mirrored, 1);
  EXPECT_LT(cv::norm(f.input, mirrored, cv::NORM_L1) / f.input.total() / 3, 0.01);
}

// The reduced JPEG decode (the default) against the full decode (the reference): same geometry,
// same targets, pixels within the difference between bilinear and DCT-domain downscaling.
TEST(Sample, ReducedDecodeMatchesFullDecode) {
  const auto d = read_mpii_h5(kMpii);
  EXPECT_EQ(decode_reduction(200 * d->annotation(0).scale, 256), 4);  // 1180 px → 256
  EXPECT_EQ(decode_reduction(511, 256), 1);
  EXPECT_EQ(decode_reduction(512, 256), 2);
  EXPECT_EQ(decode_reduction(1e5, 256), 8);
  SampleOptions reduced, full;
  full.reduced_decode = false;
  for (size_t i = 0; i < 5; ++i) {
    AugmentParams aug;
    aug.rotation_deg = 10.0 * i;
    aug.flip = i % 2;
    const Sample a = make_sample(*d, i, reduced, aug), b = make_sample(*d, i, full, aug);
    for (size_t j = 0; j < 16; ++j)
      EXPECT_EQ(cv::norm(a.heatmaps[j], b.heatmaps[j], cv::NORM_INF), 0);
    // Blur the full decode's aliasing away before comparing; a half-pixel shift would show as a
    // large difference at every edge.
    cv::Mat ba, bb;
    cv::GaussianBlur(a.input, ba, cv::Size(5, 5), 1.0);
    cv::GaussianBlur(b.input, bb, cv::Size(5, 5), 1.0);
    const double mean = cv::norm(ba, bb, cv::NORM_L1) / ba.total() / 3;
    EXPECT_LT(mean, 0.02) << "sample " << i;
    cv::Mat shifted;
    const cv::Matx23d shift(1, 0, 1, 0, 1, 0);
    cv::warpAffine(bb, shifted, cv::Mat(shift), bb.size());
    EXPECT_LT(mean, 0.7 * cv::norm(ba, shifted, cv::NORM_L1) / ba.total() / 3) << "sample " << i;
  }
}

// Geometry of the reduced decode: a blob in a large JPEG lands where the crop transform says,
// to a twentieth of a crop pixel (a half-pixel slip of the reduced grid would be ~0.3 px).
TEST(Sample, ReducedDecodeKeepsThePixelGrid) {
  const fs::path dir = hg::test::scratch_dir();
  const cv::Point2d at(1003.3, 777.7);
  cv::Mat grey;
  blob(cv::Size(2000, 1600), at, 40).convertTo(grey, CV_8U, 255);
  cv::Mat bgr;
  cv::cvtColor(grey, bgr, cv::COLOR_GRAY2BGR);
  ASSERT_TRUE(cv::imwrite((dir / "blob.jpg").string(), bgr, {cv::IMWRITE_JPEG_QUALITY, 100}));
  write_text(dir / "blob.json", R"({"format": "hourglass-pose", "joints": ["blob"], "samples": [
      {"image": "blob.jpg", "joints": [[1003.3, 777.7, 2]], "center": [950, 820], "scale": 8}]})");
  const auto d = read_custom_json((dir / "blob.json").string());
  for (bool reduced : {true, false}) {
    SampleOptions o;
    o.reduced_decode = reduced;
    AugmentParams aug;
    aug.rotation_deg = 15;
    const Sample s = make_sample(*d, 0, o, aug);
    cv::Mat channels[3];
    cv::split(s.input, channels);
    const cv::Point2d predicted = CropTransform(s.meta.crop, 256).forward(at);
    EXPECT_LT(cv::norm(centroid(channels[1]) - predicted), 0.05) << "reduced " << reduced;
  }
}

TEST(Sample, MissingAndOutOfCropJointsGetZeroWeight) {
  const auto d = read_mpii_h5(kMpii);
  Annotation a = d->annotation(0);
  a.joints[3].present = false;
  a.joints[3].visible = false;
  a.joints[9].pos = {5000, 80};  // far outside the crop
  const Sample s = make_sample(a, d->image(0), d->joints(), SampleOptions{}, AugmentParams{});
  EXPECT_EQ(s.weight[3], 0.f);
  EXPECT_EQ(s.weight[9], 0.f);
  EXPECT_EQ(cv::countNonZero(s.heatmaps[3]), 0);
  EXPECT_EQ(cv::countNonZero(s.heatmaps[9]), 0);
  EXPECT_EQ(s.weight[0], 1.f);
}

// ---- augmentation -------------------------------------------------------------------------------

TEST(Augment, OriginalPresetFollowsItsLaws) {
  const auto o = AugmentOptions::original();
  int rotated = 0, flipped = 0;
  const int n = 20000;
  double log_scale_sq = 0;
  for (int i = 0; i < n; ++i) {
    auto rng = sample_rng(3, 1, static_cast<uint64_t>(i));
    const auto p = sample_augment(o, rng);
    ASSERT_GE(p.scale, std::exp2(-0.5) - 1e-12);
    ASSERT_LE(p.scale, std::exp2(0.5) + 1e-12);
    ASSERT_LE(std::abs(p.rotation_deg), 60);
    for (float c : p.colour) ASSERT_TRUE(c >= 0.6f && c <= 1.4f);
    rotated += p.rotation_deg != 0;
    flipped += p.flip;
    log_scale_sq += std::log2(p.scale) * std::log2(p.scale);
  }
  EXPECT_NEAR(rotated / double(n), 0.4, 0.02);
  EXPECT_NEAR(flipped / double(n), 0.5, 0.02);
  EXPECT_NEAR(std::sqrt(log_scale_sq / n), 0.25, 0.01);  // clamp at 2σ trims little
  // Deterministic per (seed, epoch, sample); different epochs differ.
  auto r1 = sample_rng(3, 1, 5), r2 = sample_rng(3, 1, 5), r3 = sample_rng(3, 2, 5);
  const auto a = sample_augment(o, r1), b = sample_augment(o, r2), c = sample_augment(o, r3);
  EXPECT_EQ(a.scale, b.scale);
  EXPECT_EQ(a.rotation_deg, b.rotation_deg);
  EXPECT_NE(a.scale, c.scale);
  const auto paper = AugmentOptions::paper();
  for (int i = 0; i < 1000; ++i) {
    auto rng = sample_rng(0, 0, static_cast<uint64_t>(i));
    const auto p = sample_augment(paper, rng);
    ASSERT_TRUE(p.scale >= 0.75 && p.scale <= 1.25);
    ASSERT_LE(std::abs(p.rotation_deg), 30);
  }
  EXPECT_ERROR_HAS(
      hg::runtime::parse_in(name_table(hg::data::AugmentPreset{}), "strong", "augment"),
      "augment must be none, paper, original or coco, got 'strong'");
}

TEST(Augment, ColourGainsAreClampedToOne) {
  const auto d = read_mpii_h5(kMpii);
  AugmentParams aug;
  aug.colour[0] = 1.4f;
  aug.colour[1] = 0.6f;
  const Sample plain = make_sample(*d, 0, SampleOptions{}, AugmentParams{});
  const Sample s = make_sample(*d, 0, SampleOptions{}, aug);
  double lo, hi;
  cv::minMaxLoc(s.input.reshape(1), &lo, &hi);
  EXPECT_GE(lo, 0);
  EXPECT_LE(hi, 1);
  const cv::Vec3f p = plain.input.at<cv::Vec3f>(128, 128), q = s.input.at<cv::Vec3f>(128, 128);
  EXPECT_NEAR(q[0], std::min(1.f, p[0] * 1.4f), 1e-6);
  EXPECT_NEAR(q[1], p[1] * 0.6f, 1e-6);
  EXPECT_NEAR(q[2], p[2], 1e-6);
}

// ---- synthetic ----------------------------------------------------------------------------------

TEST(Synthetic, DeterministicBySeedWithMpiiConventions) {
  SyntheticDataset a(200, 11), b(200, 11), c(200, 12);
  EXPECT_EQ(a.joints().names, mpii_joints().names);
  EXPECT_EQ(a.joints().flip_pairs, mpii_joints().flip_pairs);
  for (size_t i : {0, 7, 199}) {
    cv::Mat ia, ib, ic;
    const Annotation aa = a.load(i, ia), ab = b.load(i, ib), ac = c.load(i, ic);
    EXPECT_EQ(cv::norm(ia, ib, cv::NORM_INF), 0);
    EXPECT_GT(cv::norm(ia, ic, cv::NORM_L1), 0);
    EXPECT_EQ(aa.center, ab.center);
    EXPECT_NE(aa.center, ac.center);
    EXPECT_EQ(aa.joints[9].pos, a.annotation(i).joints[9].pos);
  }
  int present = 0, visible = 0, total = 0, truncated = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const Annotation s = a.annotation(i);
    EXPECT_GT(s.normalize, 0);
    EXPECT_GT(s.scale, 0);
    const auto& J = s.joints;
    // Pelvis and thorax are the hip and shoulder midpoints (MPII's definition).
    EXPECT_NEAR(cv::norm((J[2].pos + J[3].pos) * 0.5 - J[6].pos), 0, 1e-9);
    EXPECT_NEAR(cv::norm((J[12].pos + J[13].pos) * 0.5 - J[7].pos), 0, 1e-9);
    bool cut = false;
    for (const auto& k : J) {
      ++total;
      present += k.present;
      visible += k.visible;
      EXPECT_TRUE(k.present || !k.visible);
      const bool inside = k.pos.x >= 0 && k.pos.y >= 0 && k.pos.x <= 255 && k.pos.y <= 255;
      EXPECT_EQ(k.present, inside);
      cut = cut || !inside;
    }
    truncated += cut;
  }
  EXPECT_GT(present, total * 9 / 10);
  EXPECT_LT(visible, present);  // occluders hide some joints
  EXPECT_GT(truncated, 0);
  EXPECT_ERROR_HAS(a.annotation(200), "200", "out of range");
}

// MPII's sides: a figure facing the camera has its right shoulder and hip on the image left;
// one showing its back has them on the image right.
TEST(Synthetic, RightAndLeftFollowTheFacing) {
  for (double back : {0.0, 1.0}) {
    SyntheticOptions o;
    o.back_facing_prob = back;
    SyntheticDataset d(300, 4, o);
    int upright = 0;
    for (size_t i = 0; i < d.size(); ++i) {
      const Annotation a = d.annotation(i);
      if (std::abs(a.torso_angle) > 45) continue;
      ++upright;
      const double sign = back > 0 ? 1 : -1;  // sign of x(right) - x(left)
      EXPECT_GT(sign * (a.joints[12].pos.x - a.joints[13].pos.x), 0) << i;  // shoulders
      EXPECT_GT(sign * (a.joints[2].pos.x - a.joints[3].pos.x), 0) << i;    // hips
    }
    EXPECT_GT(upright, 200);
  }
}

// Predicting the training set's mean pose (in the crop frame) must score at most 30% PCKh@0.5.
TEST(Synthetic, MeanPoseScoresAtMostThirtyPercentPckh) {
  SyntheticDataset train(3000, 1), test(1000, 2);
  std::vector<cv::Point2d> mean(16);
  std::vector<int> count(16);
  for (size_t i = 0; i < train.size(); ++i) {
    const Annotation a = train.annotation(i);
    for (size_t j = 0; j < 16; ++j)
      if (a.joints[j].present) {
        mean[j] += (a.joints[j].pos - a.center) / (200 * a.scale);
        ++count[j];
      }
  }
  for (size_t j = 0; j < 16; ++j) mean[j] /= count[j];
  int hit = 0, n = 0;
  for (size_t i = 0; i < test.size(); ++i) {
    const Annotation a = test.annotation(i);
    for (size_t j = 0; j < 16; ++j) {
      if (!a.joints[j].present) continue;
      ++n;
      hit += cv::norm(a.center + mean[j] * 200 * a.scale - a.joints[j].pos) <= 0.5 * a.normalize;
    }
  }
  const double pckh = double(hit) / n;
  std::printf("mean-pose PCKh@0.5 on synthetic: %.1f%%\n", 100 * pckh);
  EXPECT_LE(pckh, 0.30);
  EXPECT_GT(pckh, 0.02);  // and it is a real measurement, not an empty one
}

// ---- loader -------------------------------------------------------------------------------------

namespace {
LoaderOptions small_batches(int batch_size, int res) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.sample.res = res;
  return o;
}
}  // namespace

TEST(Loader, BatchesAreDeterministicWhateverTheThreadCount) {
  auto d = std::make_shared<SyntheticDataset>(21, 5);
  LoaderOptions o = small_batches(4, 64);
  o.seed = 9;
  o.sample.augment = AugmentOptions::original();
  std::vector<torch::Tensor> inputs[2];
  for (int threads : {1, 3}) {
    o.threads = threads;
    Loader loader(d, o);
    EXPECT_EQ(loader.batches_per_epoch(), 6);
    loader.start_epoch(2);
    Batch b;
    int64_t rows = 0;
    while (loader.next(b)) {
      EXPECT_EQ(b.input.sizes(), (std::vector<int64_t>{b.input.size(0), 3, 64, 64}));
      EXPECT_EQ(b.target.sizes(), (std::vector<int64_t>{b.input.size(0), 16, 16, 16}));
      EXPECT_EQ(b.weight.sizes(), (std::vector<int64_t>{b.input.size(0), 16}));
      EXPECT_EQ(b.meta.size(), static_cast<size_t>(b.input.size(0)));
      EXPECT_LE(b.input.max().item<float>(), 1.f);
      rows += b.input.size(0);
      inputs[threads == 3].push_back(b.input.clone());
    }
    EXPECT_EQ(rows, 21);
    EXPECT_EQ(loader.skipped(), 0);
  }
  ASSERT_EQ(inputs[0].size(), inputs[1].size());
  for (size_t k = 0; k < inputs[0].size(); ++k)
    EXPECT_TRUE(torch::equal(inputs[0][k], inputs[1][k]));
  // Another epoch gives another order and other augmentations.
  o.threads = 2;
  Loader loader(d, o);
  EXPECT_FALSE(torch::equal(loader.build_batch(3, 0).input, inputs[0][0]));
  EXPECT_TRUE(torch::equal(loader.build_batch(2, 0).input, inputs[0][0]));
  const auto order = loader.epoch_order(2);
  EXPECT_EQ(std::set<size_t>(order.begin(), order.end()).size(), 21u);
}

TEST(Loader, RestartsAndStopsMidEpoch) {
  auto d = std::make_shared<SyntheticDataset>(64, 5);
  LoaderOptions o = small_batches(4, 32);
  o.prefetch = 2;
  Batch b;
  {
    Loader loader(d, o);
    EXPECT_THROW(loader.next(b), std::exception);  // before start_epoch
    loader.start_epoch(0);
    ASSERT_TRUE(loader.next(b));
    loader.start_epoch(1);  // abandons epoch 0 with batches in flight
    int n = 0;
    while (loader.next(b)) EXPECT_EQ(b.number, n++);
    EXPECT_EQ(n, 16);
    EXPECT_FALSE(loader.next(b));
    loader.start_epoch(2);
    ASSERT_TRUE(loader.next(b));
  }  // destroyed mid-epoch: must neither hang nor crash
  o.drop_last = true;
  EXPECT_EQ(Loader(std::make_shared<SyntheticDataset>(10, 1), o).batches_per_epoch(), 2);
  o.drop_last = false;
  EXPECT_EQ(Loader(std::make_shared<SyntheticDataset>(10, 1), o).batches_per_epoch(), 3);
}

TEST(Loader, MissingAndCorruptImagesAreSkippedAndCounted) {
  const fs::path dir = hg::test::scratch_dir();
  fs::copy_file(kData + "/mpii/images/052475643.jpg", dir / "good.jpg");
  write_text(dir / "corrupt.jpg", "\xff\xd8\xff garbage, not a JPEG");
  std::string samples;
  for (const char* name : {"good.jpg", "missing.jpg", "corrupt.jpg", "good.jpg", "missing.jpg"})
    samples += std::string(samples.empty() ? "" : ",") + R"({"image": ")" + name +
               R"(", "joints": [[10, 10, 2]], "center": [100, 100], "scale": 1})";
  write_text(dir / "set.json",
             R"({"format": "hourglass-pose", "joints": ["x"], "samples": [)" + samples + "]}");
  auto d = read_custom_json((dir / "set.json").string());
  LoaderOptions o = small_batches(2, 32);
  o.shuffle = false;
  Loader loader(d, o);
  testing::internal::CaptureStderr();
  loader.start_epoch(0);
  Batch b;
  std::vector<int64_t> sizes;
  while (loader.next(b)) sizes.push_back(b.input.size(0));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(sizes, (std::vector<int64_t>{1, 1}));  // batch 2 ({missing}) had nothing left
  EXPECT_EQ(loader.skipped(), 3);
  // Each bad path is reported once, with its path.
  auto count = [&](const std::string& s) {
    size_t n = 0;
    for (size_t p = err.find(s); p != std::string::npos; p = err.find(s, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count((dir / "missing.jpg").string()), 1u) << err;
  EXPECT_EQ(count((dir / "corrupt.jpg").string()), 1u) << err;
}

// ---- the tool -----------------------------------------------------------------------------------

TEST(DataCommand, StatsAndShowRunOnRealAndSyntheticData) {
  const fs::path dir = hg::test::scratch_dir();
  const std::string bin = HG_BINARY;
  const std::string out = (dir / "stats.txt").string();
  ASSERT_EQ(std::system((bin + " data stats " + kMpii + " > " + out).c_str()), 0);
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("samples:   2,958"), std::string::npos) << text;
  EXPECT_NE(text.find("5 read"), std::string::npos) << text;
  EXPECT_NE(text.find("head-top"), std::string::npos) << text;
  for (const std::string& args : {"data show " + kMpii + " --index 3 -a original --seed 4",
                                  std::string("data show synthetic:10:3 --index 2"),
                                  "data show " + kCoco + " --index 1 -a paper"}) {
    const std::string png = (dir / "show.png").string();
    fs::remove(png);
    ASSERT_EQ(std::system((bin + " " + args + " -o " + png + " > /dev/null").c_str()), 0) << args;
    const cv::Mat img = cv::imread(png);
    EXPECT_EQ(img.rows, args.find("coco") == std::string::npos ? 512 : 640) << args;  // 17 maps
    EXPECT_EQ(img.cols, 3 * 512) << args;
  }
  EXPECT_NE(
      std::system((bin + " data show " + kMpii + " --index 99999 -o x.png 2>/dev/null").c_str()),
      0);
}
