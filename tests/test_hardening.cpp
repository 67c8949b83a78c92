// Hostile and damaged inputs (issue 16): each class of the report's table, generated here, gets
// a clear error naming the file and the field, never a crash nor a silent result.
#include "hg/data/boxes.h"
#include "hg/data/dataset.h"
#include "hg/data/image_header.h"
#include "hg/data/json.h"
#include "hg/data/readers.h"
#include "hg/eval/pck.h"
#include "hg/infer/predictor.h"
#include "hg/infer/results.h"
#include "hg/io/checkpoint.h"
#include "hg/io/torch_file.h"
#include "hg/runtime/limits.h"
#include "hg/train/config.h"
#include "test_util.h"

#include <H5Cpp.h>
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace std::string_literals;
using hg::test::kData;
using hg::test::run_tool;
using hg::test::write_text;

namespace {

// `depth` nested JSON arrays around `inner`.
std::string nested_json(size_t depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A torch.save zip holding `pickle` as its data.pkl.
void write_pickle_zip(const fs::path& path, const std::string& pickle) {
  std::string bytes;
  {
    caffe2::serialize::PyTorchStreamWriter zip([&bytes](const void* data, size_t size) {
      bytes.append(static_cast<const char*>(data), size);
      return size;
    });
    zip.writeRecord("data.pkl", pickle.data(), pickle.size());
    zip.writeEndOfFile();
  }
  std::ofstream(path, std::ios::binary) << bytes;
}

// The smallest model the architecture allows (fast to build and run), saved with `meta`.
std::string tiny_model(const fs::path& dir, nlohmann::json meta = {{"input_size", 64}},
                       const char* name = "tiny.hg") {
  hg::model::StackedHourglass net(
      hg::model::StackedHourglassOptions().stacks(1).features(16).depth(1).stem1(8).stem2(8));
  const auto path = (dir / name).string();
  hg::io::save_model(path, *net, meta);
  return path;
}

// A seed of the fuzz corpora (fuzz/corpus/TARGET/NAME).
std::string fuzz_seed(const std::string& name) {
  return std::string(HG_SOURCE_DIR) + "/fuzz/corpus/" + name;
}

// A PNG whose IHDR declares w×h (and nothing else).
std::string png_header_only(uint32_t w, uint32_t h) {
  std::string b("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  for (uint32_t v : {w, h})
    for (int shift = 24; shift >= 0; shift -= 8) b += static_cast<char>((v >> shift) & 0xFF);
  return b + std::string("\x08\x02\0\0\0", 5) + std::string(64, '\0');
}

// Flips one byte of the first occurrence of `pattern` in the file.
void flip_byte_of(const fs::path& p, const std::string& pattern) {
  std::string bytes = read_bytes(p);
  const auto at = bytes.find(pattern);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 1] ^= 0x40;
  std::ofstream(p, std::ios::binary) << bytes;
}

// The MPII validation file of the test data with one value of `dataset` replaced.
std::string mpii_with(const fs::path& dir, const std::string& dataset, size_t index, double v) {
  const auto path = (dir / ("mpii_" + dataset + ".h5")).string();
  fs::copy_file(kData + "/mpii/annot/valid.h5", path, fs::copy_options::overwrite_existing);
  H5::H5File file(path, H5F_ACC_RDWR);
  auto d = file.openDataSet(dataset);
  const auto space = d.getSpace();
  std::vector<hsize_t> dims(static_cast<size_t>(space.getSimpleExtentNdims()));
  space.getSimpleExtentDims(dims.data());
  size_t n = 1;
  for (auto x : dims) n *= x;
  std::vector<double> values(n);
  d.read(values.data(), H5::PredType::NATIVE_DOUBLE);
  values.at(index) = v;
  d.write(values.data(), H5::PredType::NATIVE_DOUBLE);
  return path;
}

}  // namespace

// ---- unbounded recursion ------------------------------------------------------------------------

TEST(Hardening, DeeplyNestedPickleIsRefusedNotAStackOverflow) {
  const auto dir = hg::test::scratch_dir();
  // 2 MB of EMPTY_LIST, then APPENDs nesting each list into the one below it.
  const size_t n = 1'000'000;
  const auto deep = dir / "deep.pt";
  write_pickle_zip(deep, "\x80\x02" + std::string(n, ']') + std::string(n - 1, 'a') + ".");
  EXPECT_ERROR_HAS(hg::io::read_torch_file(deep.string()), "deep.pt", "nested deeper than 64");
  EXPECT_ERROR_HAS(hg::io::load_model(deep.string()), "deep.pt", "nested deeper than 64");
  // 64 levels are read.
  const auto ok = dir / "ok.pt";
  write_pickle_zip(ok, "\x80\x02" + std::string(64, ']') + std::string(63, 'a') + ".");
  EXPECT_EQ(hg::io::read_torch_file(ok.string())->type_name(), "list");
  // A list holding itself (through the memo) would never be freed.
  const auto cycle = dir / "cycle.pt";
  write_pickle_zip(cycle,
                   "\x80\x02]q\x00h\x00"
                   "a."s);
  EXPECT_ERROR_HAS(hg::io::read_torch_file(cycle.string()), "cycle.pt", "holds itself");
  // A list filled after it went into another (the way to build any cycle).
  const auto later = dir / "later.pt";
  write_pickle_zip(later,
                   "\x80\x02]q\x00]q\x01"
                   "ah\x01]a."s);
  EXPECT_ERROR_HAS(hg::io::read_torch_file(later.string()), "later.pt",
                   "modified after it was put in another");
}

TEST(Hardening, DeeplyNestedJsonIsRefusedEverywhere) {
  const auto dir = hg::test::scratch_dir();
  const std::string deep = nested_json(200'000);
  EXPECT_ERROR_HAS(hg::data::parse_json(deep, "x.json"), "cannot read x.json",
                   "nested deeper than 64 levels");
  EXPECT_EQ(hg::data::parse_json(nested_json(64), "x").dump(), nested_json(64));
  EXPECT_ERROR_HAS(hg::data::parse_json(nested_json(65), "x"), "nested deeper than 64");
  // `--config` (through the tool: no crash, one line), `--set`, COCO, custom, predictions.
  write_text(dir / "config.json", "{\"lr\": " + deep + "}");
  auto r = run_tool("train --config " + (dir / "config.json").string() + " --run-dir " +
                    (dir / "run").string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("config.json: arrays and objects nested deeper than 64"), std::string::npos)
      << r.out;
  auto config = hg::train::preset("paper");
  EXPECT_ERROR_HAS(config.set("model.features=" + deep), "config key model.features",
                   "nested deeper than 64");
  auto coco = hg::test::read_json(kData + "/coco/person_keypoints_test.json");
  std::string text = coco.dump();
  const std::string bbox = "\"bbox\":";
  text.replace(text.find(bbox), bbox.size(), bbox + deep + ",\"was\":");
  write_text(dir / "coco.json", text);
  EXPECT_ERROR_HAS(hg::data::open_annotations((dir / "coco.json").string()), "coco.json",
                   "nested deeper than 64");
  write_text(dir / "preds.json",
             "{\"format\": \"hourglass-predictions\", \"results\": " + deep + "}");
  EXPECT_ERROR_HAS(hg::infer::read_results((dir / "preds.json").string(), hg::data::mpii_joints()),
                   "preds.json", "nested deeper than 64");
}

TEST(Hardening, BoxesFilesAreBoundedAndChecked) {
  const auto dir = hg::test::scratch_dir();
  const auto model = tiny_model(dir);
  write_text(dir / "deep.json", "{\"a.jpg\": " + nested_json(100'000) + "}");
  const auto image = kData + "/mpii/images/004645041.jpg";
  auto r = run_tool("predict --weights " + model + " --boxes " + (dir / "deep.json").string() +
                    " " + image);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("--boxes file " + (dir / "deep.json").string() +
                       ": arrays and objects nested deeper than 64"),
            std::string::npos)
      << r.out;
  // Boxes of 1e300 would overflow every crop computation.
  EXPECT_ERROR_HAS(hg::data::boxes_file_from_json(
                       nlohmann::json::parse(R"({"a.jpg": [[0, 0, 1e300, 10]]})"), "b.json"),
                   "cannot read b.json: 'a.jpg'", "[0,0,1e+300,10] is not a box",
                   "at most 10000000");
  EXPECT_EQ(hg::data::boxes_file_from_json(
                nlohmann::json::parse(R"({"a.jpg": [[1, 2, 3, 4]], "b.jpg": []})"), "b.json")
                .at("a.jpg")
                .at(0),
            cv::Rect2d(1, 2, 3, 4));
}

TEST(Hardening, FuzzFindingsAreRegressionTests) {
  const auto dir = hg::test::scratch_dir();
  // fuzz_torch_file: a zip without a 'version' record (LibTorch's reader leaked on it).
  std::string bytes = read_bytes(fuzz_seed("torch_file/tensor_dict.pt"));
  const auto at = bytes.find("/version");
  ASSERT_NE(at, std::string::npos);
  for (size_t i = bytes.find("/version"); i != std::string::npos; i = bytes.find("/version", i))
    bytes[i + 1] = 'V';
  std::ofstream(dir / "noversion.pt", std::ios::binary) << bytes;
  EXPECT_ERROR_HAS(hg::io::read_torch_file((dir / "noversion.pt").string()), "noversion.pt",
                   "has no 'version' record");
}

// ---- sizes nobody bounds ------------------------------------------------------------------------

TEST(Hardening, ArchitectureAndInputSizesAreBoundedBeforeAllocation) {
  const auto dir = hg::test::scratch_dir();
  hg::io::Checkpoint huge;
  huge.options.features(1 << 20);
  const auto path = (dir / "huge.hg").string();
  hg::io::write_checkpoint(path, huge);
  EXPECT_ERROR_HAS(hg::io::load_model(path), "huge.hg", "features must be even and in 2..2048",
                   "1048576");
  hg::io::Checkpoint joints;
  joints.options.joints(1 << 30);
  hg::io::write_checkpoint(path, joints);
  EXPECT_ERROR_HAS(hg::io::read_checkpoint(path), "huge.hg", "joints must be in 1..1024");

  for (const int64_t side : std::vector<int64_t>{8192, 65536, int64_t(1) << 32 | 256}) {
    const auto model = tiny_model(dir, {{"input_size", side}}, "meta.hg");
    EXPECT_ERROR_HAS(hg::infer::Predictor::load(model), "checkpoint meta 'input_size' = "s,
                     std::to_string(side), "outside 1..2048"s);
  }
  const auto model = tiny_model(dir);
  auto r = run_tool("predict --weights " + model + " --whole-image --size 16384 " + kData +
                    "/mpii/images/004645041.jpg");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("must be at most 2048 pixels a side (the limit), got 16384"),
            std::string::npos)
      << r.out;
  hg::train::TrainConfig config;
  config.input_size = 4096;
  config.dataset = "synthetic:4";
  EXPECT_ERROR_HAS(config.validate(), "input_size must be at most 2048");
}

TEST(Hardening, ImagesAreCheckedFromTheirHeaderAgainstThePixelBudget) {
  const auto dir = hg::test::scratch_dir();
  write_text(dir / "bomb.png", png_header_only(32000, 32000));
  EXPECT_ERROR_HAS(hg::data::read_image_rgb((dir / "bomb.png").string()), "bomb.png",
                   "declares 32000×32000 pixels, more than the limit of 100000000 (max_pixels)");
  // Found by fuzz_image: sides of 2^32 - 1 overflowed the product (undefined behaviour).
  EXPECT_ERROR_HAS(hg::data::check_image_header(png_header_only(0xFFFFFFFF, 0xFFFFFFFF), 1000),
                   "declares 4294967295×4294967295 pixels, more than the limit of 1000");
  // Found by fuzz_http: a 16×43020 JPEG, within the budget, made OpenCV's warpAffine assert.
  write_text(dir / "thin.png", png_header_only(16, 43020));
  EXPECT_ERROR_HAS(hg::data::read_image_rgb((dir / "thin.png").string()), "thin.png",
                   "the PNG image is 16×43020 pixels: sides over 32766 pixels are not supported");
  const auto jpeg = read_bytes(kData + "/mpii/images/004645041.jpg");
  write_text(dir / "cut.jpg", jpeg.substr(0, jpeg.size() / 2));
  EXPECT_ERROR_HAS(hg::data::read_image_rgb((dir / "cut.jpg").string()), "cut.jpg",
                   "the JPEG image is cut short (no end-of-image marker)");
  const auto rgb = hg::data::read_image_rgb(kData + "/mpii/images/004645041.jpg");
  hg::data::set_max_image_pixels(int64_t(rgb.cols) * rgb.rows - 1);
  EXPECT_ERROR_HAS(hg::data::read_image_rgb(kData + "/mpii/images/004645041.jpg"),
                   "more than the limit of");
  hg::data::set_max_image_pixels(hg::limits::kDefaultMaxImagePixels);
  EXPECT_EQ(hg::data::read_image_rgb(kData + "/mpii/images/004645041.jpg").size(), rgb.size());
}

// ---- corruption not detected --------------------------------------------------------------------

TEST(Hardening, AFlippedByteInATensorRecordFailsItsCrc) {
  const auto dir = hg::test::scratch_dir();
  const auto pattern = "\x86\x38\x9e\x3f"s;  // 1.2361f, little-endian
  hg::io::write_tensor_dict((dir / "t.pt").string(), {{"w", torch::full({64}, 1.2361f)}});
  const float v =
      hg::io::read_torch_file((dir / "t.pt").string())->find("w")->tensor[0].item<float>();
  ASSERT_FLOAT_EQ(v, 1.2361f);
  flip_byte_of(dir / "t.pt", pattern);
  EXPECT_ERROR_HAS(hg::io::read_torch_file((dir / "t.pt").string()), "t.pt", "record 'data/0'",
                   "is corrupt (its CRC-32 does not match");

  // A native checkpoint (a training run's last.hg, as --resume reads it) and its deferred load.
  hg::model::StackedHourglass net(
      hg::model::StackedHourglassOptions().stacks(1).features(16).depth(1).stem1(8).stem2(8));
  {
    torch::NoGradGuard no_grad;
    net->pre_conv->weight.fill_(1.2361f);
  }
  const auto last = (dir / "last.hg").string();
  hg::io::save_model(last, *net);
  ASSERT_NO_THROW(hg::io::load_model(last));
  flip_byte_of(last, pattern);
  EXPECT_ERROR_HAS(hg::io::load_model(last), "last.hg", "is corrupt (its CRC-32");
  EXPECT_ERROR_HAS(hg::io::read_checkpoint(last), "last.hg", "is corrupt (its CRC-32");
  // A record that claims more than the file holds is refused before anything is allocated.
  write_pickle_zip(dir / "short.pt", "\x80\x02}.");
  auto zip = read_bytes(dir / "short.pt");
  const auto dir_entry = zip.find("PK\x01\x02");
  ASSERT_NE(dir_entry, std::string::npos);
  for (int i = 0; i < 4; ++i) zip[dir_entry + 24 + i] = '\x7f';  // uncompressed size
  std::ofstream(dir / "short.pt", std::ios::binary) << zip;
  EXPECT_ERROR_HAS(hg::io::read_torch_file((dir / "short.pt").string()), "short.pt",
                   "damaged or truncated", "more than the file holds");
}

TEST(Hardening, TensorShapesThatWrapOrReachPastTheirStorageAreRefused) {
  const auto dir = hg::test::scratch_dir();
  // _rebuild_tensor_v2(storage of 4 floats, offset 0, size (2^62, 4), stride (2^62, 1)).
  std::string bytes;
  {
    caffe2::serialize::PyTorchStreamWriter zip([&bytes](const void* data, size_t size) {
      bytes.append(static_cast<const char*>(data), size);
      return size;
    });
    const float data[4] = {1, 2, 3, 4};
    zip.writeRecord("data/0", data, sizeof(data));
    std::string p =
        "\x80\x02"
        "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\0\0\0storage"
        "ctorch\nFloatStorage\nX\x01\0\0\0"
        "0X\x03\0\0\0"
        "cpuK\x04tQK\x00(\x8a\x08"s;
    const int64_t big = int64_t(1) << 62;
    p.append(reinterpret_cast<const char*>(&big), 8);
    p += "K\x04t(\x8a\x08";
    p.append(reinterpret_cast<const char*>(&big), 8);
    p += "K\x01t\x89}tR.";
    zip.writeRecord("data.pkl", p.data(), p.size());
    zip.writeEndOfFile();
  }
  std::ofstream(dir / "wrap.pt", std::ios::binary) << bytes;
  EXPECT_ERROR_HAS(hg::io::read_torch_file((dir / "wrap.pt").string()), "wrap.pt",
                   "reaches past the end of its storage");
}

// ---- NaN and degenerate values ------------------------------------------------------------------

TEST(Hardening, NonFiniteWeightsAreRefusedNamingTheTensor) {
  const auto dir = hg::test::scratch_dir();
  hg::model::StackedHourglass net(
      hg::model::StackedHourglassOptions().stacks(1).features(16).depth(1).stem1(8).stem2(8));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->named_parameters())
      if (p.key() == "score.0.weight") p.value().fill_(NAN);
  }
  const auto path = (dir / "nan.hg").string();
  hg::io::save_model(path, *net);
  EXPECT_ERROR_HAS(hg::io::load_model(path), "nan.hg", "tensor 'score.0.weight' holds 256 NaN",
                   "damaged or its training diverged");
}

TEST(Hardening, DegenerateAnnotationValuesAreRefusedNamingRowAndField) {
  H5::Exception::dontPrint();
  const auto dir = hg::test::scratch_dir();
  EXPECT_ERROR_HAS(hg::data::read_mpii_h5(mpii_with(dir, "normalize", 3, 0)), "mpii_normalize.h5",
                   "field 'normalize[3]' = 0 must be a positive size");
  EXPECT_ERROR_HAS(hg::data::read_mpii_h5(mpii_with(dir, "normalize", 1, NAN)),
                   "field 'normalize[1]' = nan");
  EXPECT_ERROR_HAS(hg::data::read_mpii_h5(mpii_with(dir, "part", 2 * 16 * 2 + 5, NAN)),
                   "mpii_part.h5", "field 'part[2][2][1]' = nan is not a coordinate");
  EXPECT_ERROR_HAS(hg::data::read_mpii_h5(mpii_with(dir, "center", 0, 1e300)),
                   "field 'center[0][0]' = 1e+300 is not a coordinate");
  EXPECT_ERROR_HAS(hg::data::read_mpii_h5(mpii_with(dir, "scale", 0, 1e300)),
                   "field 'scale[0]' = 1e+300 is not a coordinate");

  const auto custom = [&](const std::string& sample) {
    write_text(
        dir / "custom.json",
        R"({"format": "hourglass-pose", "joints": ["a", "b"], "samples": [)" + sample + "]}");
    return (dir / "custom.json").string();
  };
  EXPECT_ERROR_HAS(
      hg::data::read_custom_json(custom(R"({"image": "x.jpg", "joints": [[1, 2, 1], [3, 4, 1]],
                                           "box": [0, 0, 1e300, 10]})")),
      "custom.json", "field '.samples[0].box[2]' = 1e+300 is not a coordinate");
  EXPECT_ERROR_HAS(
      hg::data::read_custom_json(custom(R"({"image": "x.jpg", "joints": [[1, 2, 1], [3e300, 4, 1]],
                                           "box": [0, 0, 10, 10]})")),
      "field '.samples[0].joints[1][0]' = 3e+300 is not a coordinate");
  EXPECT_ERROR_HAS(
      hg::data::read_custom_json(custom(R"({"image": "x.jpg", "joints": [[1, 2, 1], [3, 4, 1]],
                                           "box": [0, 0, 10, 10], "normalize": 0})")),
      "field '.samples[0].normalize' must be a positive size");
  auto coco = hg::test::read_json(kData + "/coco/person_keypoints_test.json");
  coco["annotations"][0]["category_id"] = 1e300;
  write_text(dir / "coco.json", coco.dump());
  EXPECT_ERROR_HAS(hg::data::read_coco_json((dir / "coco.json").string()), "coco.json",
                   "field '.annotations[0].category_id' = 1e+300 is not an integer");
}

TEST(Hardening, NonFinitePredictionsAreScoredAsMisses) {
  // Two people, unit 10 px; person 1's predictions are NaN: a miss, not left out.
  auto truth = torch::zeros({2, 2, 2}, torch::kDouble);
  auto pred = truth.clone();
  pred[1].fill_(NAN);
  const auto present = torch::ones({2, 2}, torch::kBool);
  const auto errors =
      hg::eval::normalized_errors(pred, truth, present, torch::full({2}, 10.0, torch::kDouble));
  const auto pck = hg::eval::pck_per_joint(errors, 0.5);
  EXPECT_DOUBLE_EQ(pck[0], 50.0);
  EXPECT_DOUBLE_EQ(pck[1], 50.0);
  EXPECT_EQ(hg::eval::present_counts(errors)[0], 2);
}

// ---- errors that abort or mislead ---------------------------------------------------------------

TEST(Hardening, PredictReportsEachBadImageAndProcessesTheOthers) {
  const auto dir = hg::test::scratch_dir();
  const auto model = tiny_model(dir);
  write_text(dir / "bomb.png", png_header_only(60000, 60000));
  const auto jpeg = read_bytes(kData + "/mpii/images/004645041.jpg");
  write_text(dir / "cut.jpg", jpeg.substr(0, jpeg.size() * 2 / 3));
  write_text(dir / "garbage.png", "\x89PNG\r\n\x1a\n not really");
  const auto good = kData + "/mpii/images/004645041.jpg";
  const auto out = (dir / "out.json").string();
  const auto r = run_tool("predict --weights " + model + " --whole-image -o " + out + " " +
                          (dir / "bomb.png").string() + " " + good + " " +
                          (dir / "cut.jpg").string() + " " + (dir / "garbage.png").string());
  EXPECT_EQ(r.code, 1) << r.out;
  for (const std::string& line :
       {"bomb.png: cannot read image " + (dir / "bomb.png").string() +
            ": the PNG image declares 60000×60000 pixels, more than the limit of 100000000 "
            "(max_pixels)",
        "cut.jpg: cannot read image " + (dir / "cut.jpg").string() +
            ": the JPEG image is cut short (no end-of-image marker)",
        "garbage.png: cannot read image " + (dir / "garbage.png").string() + ": ",
        "3 of 4 inputs failed"s})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  // libjpeg's own warning (which names no file) never appears: the cut is caught first.
  EXPECT_EQ(r.out.find("Corrupt JPEG data"), std::string::npos) << r.out;
  const auto doc = hg::test::read_json(out);
  ASSERT_EQ(doc["results"].size(), 4u);
  EXPECT_TRUE(doc["results"][0].contains("error"));
  EXPECT_EQ(doc["results"][1]["people"].size(), 1u);
  EXPECT_TRUE(doc["results"][2].contains("error"));
  // A lower budget from the command line.
  const auto small =
      run_tool("predict --weights " + model + " --whole-image --max-pixels 1000 " + good);
  EXPECT_EQ(small.code, 1);
  EXPECT_NE(small.out.find("more than the limit of 1000 (max_pixels)"), std::string::npos)
      << small.out;
}
