#include "hg/data/dataset.h"
#include "hg/data/readers.h"
#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"
#include "hg/io/export_onnx.h"
#include "hg/io/export_pytorch.h"
#include "hg/io/import_pytorch.h"
#include "hg/io/safetensors.h"
#include "hg/io/torch_file.h"

#include "test_util.h"

#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <torch/torch.h>
#include <opencv2/dnn.hpp>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using hg::io::CheckpointFormat;
using hg::model::StackedHourglassOptions;

namespace {

const std::string kFixtures = std::string(HG_TEST_DATA) + "/fixtures/";

std::string temp_path(const std::string& name) {
  return (hg::test::scratch_dir() / name).string();
}

// Random weights with batch-norm statistics far from the identity, as tools/make_fixtures.py.
hg::model::StackedHourglass random_model(const StackedHourglassOptions& o, uint64_t seed) {
  torch::manual_seed(seed);
  hg::model::StackedHourglass net(o);
  torch::NoGradGuard no_grad;
  for (auto& m : net->modules(false))
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.copy_(0.5 + torch::rand_like(bn->weight));
      bn->bias.copy_(0.2 * torch::randn_like(bn->bias));
      bn->running_mean.copy_(0.2 * torch::randn_like(bn->running_mean));
      bn->running_var.copy_(0.5 + torch::rand_like(bn->running_var));
    }
  net->eval();
  return net;
}

// MPII's joints for 16 heatmaps, else joints named by number.
hg::data::JointSet joints_for(int64_t count) {
  if (count == 16) return hg::data::mpii_joints();
  hg::data::JointSet j;
  j.name = "generic";
  for (int64_t k = 0; k < count; ++k) j.names.push_back("joint-" + std::to_string(k));
  return j;
}

hg::io::DeploymentInfo info_for(const StackedHourglassOptions& o, int64_t size) {
  return {joints_for(o.joints()), size, hg::data::PixelGrid::kExact};
}

// Runs an ONNX model in OpenCV's DNN module: N×3×H×W → the outputs `names`, by name.
std::map<std::string, at::Tensor> run_opencv(const std::string& bytes, const at::Tensor& input,
                                             const std::vector<std::string>& names) {
  auto net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
  const auto x = input.contiguous();
  const int sizes[] = {int(x.size(0)), int(x.size(1)), int(x.size(2)), int(x.size(3))};
  net.setInput(cv::Mat(4, sizes, CV_32F, x.data_ptr<float>()), "image");
  std::vector<cv::Mat> outs;
  net.forward(outs, std::vector<cv::String>(names.begin(), names.end()));
  std::map<std::string, at::Tensor> result;
  for (size_t i = 0; i < names.size(); ++i) {
    std::vector<int64_t> shape(outs[i].size.p, outs[i].size.p + outs[i].dims);
    result[names[i]] = torch::from_blob(outs[i].ptr<float>(), shape, torch::kFloat).clone();
  }
  return result;
}

// Its 5-D output `heatmaps` (a Newell network's export).
at::Tensor run_opencv(const std::string& bytes, const at::Tensor& input) {
  return run_opencv(bytes, input, {"heatmaps"}).at("heatmaps");
}

at::Tensor reference(hg::model::StackedHourglassImpl& net, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  return net.forward(x);
}

// OpenCV's output of the export against LibTorch's within 1e-4 × max|output|.
void expect_onnx_matches(hg::model::StackedHourglassImpl& net, const hg::io::OnnxExportOptions& o,
                         const at::Tensor& x, const std::string& what) {
  const auto bytes = hg::io::onnx_model_bytes(net, info_for(net.options, x.size(2)), o);
  auto want = reference(net, x);
  if (o.last_stack_only) want = want.narrow(1, want.size(1) - 1, 1);
  const auto got = run_opencv(bytes, x);
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double err = (got - want).abs().max().item<double>();
  const double scale = want.abs().max().item<double>();
  EXPECT_LE(err, 1e-4 * scale) << what << ": max |Δ| " << err << ", max |output| " << scale;
}

onnx::ModelProto parse_onnx(const std::string& bytes) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

std::string metadata(const onnx::ModelProto& m, const std::string& key) {
  for (const auto& p : m.metadata_props())
    if (p.key() == key) return p.value();
  ADD_FAILURE() << "no metadata '" << key << "'";
  return "";
}

int count_ops(const onnx::ModelProto& m, const std::string& op) {
  int n = 0;
  for (const auto& node : m.graph().node()) n += node.op_type() == op;
  return n;
}

int64_t count_batch_norms(hg::model::StackedHourglassImpl& net) {
  int64_t n = 0;
  for (auto& m : net.modules(false)) n += m->as<torch::nn::BatchNorm2dImpl>() != nullptr;
  return n;
}

at::Tensor io_input(const std::string& checkpoint) {
  const auto dot = checkpoint.find('.');
  const auto root = hg::io::read_torch_file(kFixtures + checkpoint.substr(0, dot) + ".io.pt");
  return root->find("input")->tensor;
}

const std::vector<std::string> kFixtureFiles = {
    "posenet_s2_f64_checkpoint.pt",        "posenet_s1_f32_state_dict.pt",
    "bearpaw_hg_s2_b1_f64.pth.tar",        "gen/posenet_s3_f32_j11_state_dict.pt",
    "gen/posenet_s1_f16_d3_checkpoint.pt", "gen/bearpaw_s1_b2_f32.pth.tar",
    "gen/bearpaw_s3_b1_f16_j7.pth.tar"};

// ---- ONNX ---------------------------------------------------------------------------------------

TEST(OnnxExport, FixturesMatchLibTorchInOpenCV) {
  for (const auto& file : kFixtureFiles) {
    auto loaded = hg::io::load_model(kFixtures + file);
    const auto x = io_input(file);
    expect_onnx_matches(*loaded.model, {}, x, file + " (folded, opset 13)");
    hg::io::OnnxExportOptions plain;
    plain.fold_batch_norm = false;
    plain.opset = 11;
    expect_onnx_matches(*loaded.model, plain, x, file + " (not folded, opset 11)");
  }
}

TEST(OnnxExport, RandomShapesMatchLibTorchInOpenCV) {
  const std::vector<StackedHourglassOptions> shapes = {StackedHourglassOptions()
                                                           .stacks(2)
                                                           .features(16)
                                                           .depth(2)
                                                           .residuals(2)
                                                           .joints(5)
                                                           .stem1(8)
                                                           .stem2(12),
                                                       StackedHourglassOptions()
                                                           .stacks(1)
                                                           .features(8)
                                                           .depth(1)
                                                           .residuals(1)
                                                           .joints(3)
                                                           .stem1(4)
                                                           .stem2(6),
                                                       StackedHourglassOptions()
                                                           .stacks(3)
                                                           .features(12)
                                                           .depth(3)
                                                           .residuals(1)
                                                           .joints(7)
                                                           .stem1(16)
                                                           .stem2(8)};
  uint64_t seed = 1;
  for (const auto& o : shapes) {
    auto net = random_model(o, seed++);
    const int64_t side = 4 << o.depth();
    const auto x = torch::rand({2, 3, side * 2, side * 2});
    for (int64_t opset : {11, 13, 17}) {
      hg::io::OnnxExportOptions e;
      e.opset = opset;
      expect_onnx_matches(*net, e, x, o.describe() + " opset " + std::to_string(opset));
    }
    hg::io::OnnxExportOptions last;
    last.last_stack_only = true;
    expect_onnx_matches(*net, last, x, o.describe() + " last stack only");
  }
}

TEST(OnnxExport, DynamicSizeRunsAtSeveralSizes) {
  const auto o =
      StackedHourglassOptions().stacks(2).features(8).depth(2).joints(4).stem1(8).stem2(8);
  auto net = random_model(o, 7);
  hg::io::OnnxExportOptions e;
  e.dynamic_size = true;
  const auto bytes = hg::io::onnx_model_bytes(*net, info_for(o, 64), e);
  const auto m = parse_onnx(bytes);
  const auto& dims = m.graph().input(0).type().tensor_type().shape().dim();
  EXPECT_EQ(dims[0].dim_param(), "batch");
  EXPECT_EQ(dims[2].dim_param(), "height");
  EXPECT_EQ(dims[3].dim_param(), "width");
  for (const auto& shape :
       {std::vector<int64_t>{1, 3, 32, 48}, std::vector<int64_t>{3, 3, 64, 16}}) {
    const auto x = torch::rand(shape);
    const auto want = reference(*net, x);
    const auto got = run_opencv(bytes, x);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LE((got - want).abs().max().item<double>(), 1e-4 * want.abs().max().item<double>());
  }
}

TEST(OnnxExport, GraphPassesCheckerAndFoldsBatchNorm) {
  const auto o =
      StackedHourglassOptions().stacks(2).features(8).depth(2).joints(16).stem1(8).stem2(8);
  auto net = random_model(o, 3);
  const auto folded = parse_onnx(hg::io::onnx_model_bytes(*net, info_for(o, 64)));
  EXPECT_NO_THROW(onnx::checker::check_model(folded));
  EXPECT_EQ(folded.opset_import(0).version(), hg::io::kDefaultOnnxOpset);
  EXPECT_EQ(folded.graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "batch");
  const auto& out = folded.graph().output(0).type().tensor_type().shape().dim();
  ASSERT_EQ(out.size(), 5);
  EXPECT_EQ(out[1].dim_value(), 2);
  EXPECT_EQ(out[2].dim_value(), 16);
  EXPECT_EQ(out[3].dim_value(), 16);

  // Residuals' input batch norms stay (a ReLU parts them from any conv), the rest fold.
  int64_t residuals = 0;
  for (auto& m : net->modules(false)) residuals += m->as<hg::model::ResidualImpl>() != nullptr;
  EXPECT_EQ(count_ops(folded, "BatchNormalization"), residuals);
  hg::io::OnnxExportOptions plain;
  plain.fold_batch_norm = false;
  const auto unfolded = parse_onnx(hg::io::onnx_model_bytes(*net, info_for(o, 64), plain));
  EXPECT_EQ(count_ops(unfolded, "BatchNormalization"), count_batch_norms(*net));
  EXPECT_EQ(count_ops(folded, "Conv"), count_ops(unfolded, "Conv"));

  EXPECT_EQ(metadata(folded, "joint_set"), "mpii");
  EXPECT_EQ(metadata(folded, "joint_names").substr(0, 22), "[\"r-ankle\",\"r-knee\",\"r");
  EXPECT_EQ(metadata(folded, "flip_pairs").substr(0, 13), "[[0,5],[1,4],");
  EXPECT_NE(metadata(folded, "skeleton").find("[8,9]"), std::string::npos);
  EXPECT_EQ(metadata(folded, "input_size"), "64");
  EXPECT_EQ(metadata(folded, "pixel_grid"), "exact");
  EXPECT_EQ(metadata(folded, "mean"), "[0.0,0.0,0.0]");
  EXPECT_EQ(metadata(folded, "architecture"), hg::io::options_to_json(o).dump());
}

// A CornerNet/CenterNet hourglass of either head style, every head a named output: in OpenCV as in
// LibTorch, for each way of exporting (folded or not, opsets 11 and 17, last stack only).
void expect_large_onnx_matches(const hg::model::LargeHourglassOptions& o) {
  hg::model::LargeHourglass net(o);
  hg::test::randomise_batch_norm(*net);
  net->eval();
  const auto x = torch::rand({2, 3, 32, 32});
  hg::model::HeadOutputs want;
  {
    torch::NoGradGuard no_grad;
    want = net->forward(x);
  }
  std::vector<std::string> names;
  for (const auto& h : o.heads()) names.push_back(h.name);
  hg::io::OnnxExportOptions plain, unfolded, last;
  unfolded.opset = 11;
  unfolded.fold_batch_norm = false;
  last.opset = 17;
  last.last_stack_only = true;
  for (const auto* options : {&plain, &unfolded, &last}) {
    const auto bytes = hg::io::onnx_model_bytes(*net, 32, nlohmann::json::object(), *options);
    const auto got = run_opencv(bytes, x, names);
    for (const auto& [name, t] : want) {
      const auto expected = options->last_stack_only ? t.slice(1, 1) : t;
      ASSERT_EQ(got.at(name).sizes(), expected.sizes()) << name;
      const double err =
          ((got.at(name) - expected).abs().max() / expected.abs().max()).item<double>();
      EXPECT_LE(err, 1e-4) << name << " opset " << options->opset;
    }
    const auto m = parse_onnx(bytes);
    EXPECT_EQ(hg::io::large_options_from_json(nlohmann::json::parse(metadata(m, "architecture"))),
              o);
    EXPECT_EQ(count_ops(m, "MaxPool"), 0);
  }
}

TEST(OnnxExport, LargeHourglassHeadsMatchLibTorchInOpenCV) {
  torch::manual_seed(11);
  const auto o = hg::model::LargeHourglassOptions()
                     .levels(2)
                     .dims({8, 12, 16})
                     .modules({2, 1, 2})
                     .stacks(2)
                     .cnv_dim(10)
                     .stem(6)
                     .heads(hg::model::parse_heads("hm:3,wh:2,reg:2"));
  expect_large_onnx_matches(o);
  expect_large_onnx_matches(hg::model::LargeHourglassOptions(o)
                                .heads(hg::model::parse_heads("heatmaps:5"))
                                .head_style(hg::model::HeadStyle::kMMPose));
  auto headless = hg::model::LargeHourglass(hg::model::LargeHourglassOptions(o).heads({}));
  EXPECT_ERROR_HAS(hg::io::onnx_model_bytes(*headless, 32, nlohmann::json::object()),
                   "the model has no heads, so the graph would have no output");
}

TEST(OnnxExport, RefusesBadOptions) {
  const auto o =
      StackedHourglassOptions().stacks(1).features(8).depth(2).joints(4).stem1(8).stem2(8);
  auto net = random_model(o, 1);
  hg::io::OnnxExportOptions e;
  e.opset = 9;
  EXPECT_EQ(hg::test::error_of([&] { hg::io::onnx_model_bytes(*net, info_for(o, 64), e); }),
            "ONNX opset 9 is not supported: use 11 to 17 (default 13)");
  EXPECT_EQ(hg::test::error_of([&] { hg::io::onnx_model_bytes(*net, info_for(o, 40)); }),
            "the ONNX export's input size must be a positive multiple of 16 (4·2^depth for depth "
            "2), got 40");
}

// ---- safetensors --------------------------------------------------------------------------------

TEST(Safetensors, ModelRoundTripsBitExactly) {
  const auto o = StackedHourglassOptions()
                     .stacks(2)
                     .features(12)
                     .depth(2)
                     .residuals(2)
                     .joints(11)
                     .stem1(8)
                     .stem2(8);
  auto net = random_model(o, 5);
  const auto path = temp_path("model.safetensors");
  hg::io::export_safetensors(path, *net, hg::data::flic_joints(), {{"input_size", 128}});
  auto loaded = hg::io::load_model(path);
  EXPECT_EQ(loaded.format, CheckpointFormat::kNative);
  EXPECT_TRUE(loaded.model->options == o);
  EXPECT_EQ(loaded.meta["input_size"], 128);
  EXPECT_EQ(loaded.meta["joints"]["name"], "flic");
  const auto a = hg::io::state_of(*net), b = hg::io::state_of(*loaded.model);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, t] : a) {
    ASSERT_TRUE(b.count(k)) << k;
    EXPECT_EQ(b.at(k).scalar_type(), t.scalar_type()) << k;
    EXPECT_TRUE(torch::equal(b.at(k), t)) << k;
  }
  EXPECT_EQ(hg::infer::model_input_size(loaded), 128);
}

TEST(Safetensors, EveryDtypeRoundTrips) {
  const std::map<std::string, at::Tensor> tensors = {
      {"f64", torch::randn({3, 2}, torch::kDouble)},
      {"f16", torch::randn({5}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"i64", torch::arange(-3, 4, torch::kLong)},
      {"u8", torch::arange(0, 200, torch::kLong).to(torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"empty", torch::zeros({0, 4})},
      {"scalar", torch::tensor(2.5f)}};
  const auto path = temp_path("dtypes.safetensors");
  hg::io::write_safetensors(path, tensors, {{"note", "x"}});
  const auto back = hg::io::read_safetensors(path);
  EXPECT_EQ(back.metadata.at("note"), "x");
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [k, t] : tensors) {
    EXPECT_EQ(back.tensors.at(k).scalar_type(), t.scalar_type()) << k;
    EXPECT_EQ(back.tensors.at(k).sizes(), t.sizes()) << k;
    EXPECT_TRUE(torch::equal(back.tensors.at(k), t)) << k;
  }
}

// A safetensors file of `header` and `data` bytes, with `length` as its header length if given.
std::string raw_safetensors(const std::string& name, const std::string& header,
                            const std::string& data, int64_t length = -1) {
  const uint64_t n = length < 0 ? header.size() : static_cast<uint64_t>(length);
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  const auto path = temp_path(name);
  std::ofstream(path, std::ios::binary) << bytes << header << data;
  return path;
}

std::string read_error(const std::string& path) {
  return hg::test::error_of([&] { hg::io::read_safetensors(path); });
}

TEST(Safetensors, MalformedFilesAreRefusedNamingTheProblem) {
  const std::string eight(8, 'x');
  auto p = temp_path("short.safetensors");
  std::ofstream(p, std::ios::binary) << "abc";
  EXPECT_EQ(read_error(p), "cannot read " + p +
                               ": the file has 3 bytes, too few for a safetensors file (8-byte "
                               "header length first)");
  p = raw_safetensors("long_header.safetensors", "{}", "", 1000);
  EXPECT_EQ(read_error(p), "cannot read " + p +
                               ": header length 1000 exceeds the file's 2 bytes after the length "
                               "(truncated or not safetensors?)");
  p = raw_safetensors("json.safetensors", "{\"a\": [", "");
  EXPECT_NE(read_error(p).find("the safetensors header is not JSON"), std::string::npos);
  p = raw_safetensors("bounds.safetensors",
                      R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234");
  EXPECT_EQ(read_error(p), "cannot read " + p +
                               ": tensor 'w': data_offsets [0,8] are not a range inside the 4 "
                               "bytes of data (truncated file?)");
  p = raw_safetensors("shape.safetensors",
                      R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight);
  EXPECT_EQ(read_error(p), "cannot read " + p +
                               ": tensor 'w': shape [3] of F32 needs 12 bytes, data_offsets "
                               "[0,8] hold 8");
  p = raw_safetensors("dtype.safetensors",
                      R"({"w":{"dtype":"F8","shape":[8],"data_offsets":[0,8]}})", eight);
  EXPECT_EQ(read_error(p), "cannot read " + p + ": tensor 'w': unknown dtype \"F8\"");
  p = raw_safetensors("overlap.safetensors",
                      R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                      eight);
  EXPECT_NE(read_error(p).find("starts at byte 4 of the data, not at 8 (overlaps another)"),
            std::string::npos);
  p = raw_safetensors("hole.safetensors",
                      R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", eight);
  EXPECT_EQ(read_error(p), "cannot read " + p +
                               ": tensor 'a' starts at byte 4 of the data, not at 0 (leaves a "
                               "hole)");
  p = raw_safetensors(
      "huge.safetensors",
      R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", eight);
  EXPECT_EQ(read_error(p),
            "cannot read " + p + ": tensor 'a': shape [4294967296,4294967296] is too big");

  // A valid file cut short anywhere is refused, never read past its end.
  const auto o =
      StackedHourglassOptions().stacks(1).features(4).depth(1).joints(2).stem1(4).stem2(4);
  auto net = random_model(o, 2);
  const auto full = temp_path("full.safetensors");
  hg::io::export_safetensors(full, *net, joints_for(2));
  std::ifstream in(full, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t cut : {size_t{5}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    const auto t = temp_path("cut.safetensors");
    std::ofstream(t, std::ios::binary | std::ios::trunc) << bytes.substr(0, cut);
    EXPECT_THROW(hg::io::load_model(t), c10::Error) << "cut at " << cut;
  }
}

// ---- PyTorch ports ------------------------------------------------------------------------------

// Our export of each fixture has exactly the fixture's own keys, and the same tensors but for
// posenet's unused skip convolutions (random there, zeros here).
TEST(PyTorchExport, FixturesExportToTheirOwnKeys) {
  for (const auto& file : kFixtureFiles) {
    auto loaded = hg::io::load_model(kFixtures + file);
    if (loaded.model->options.depth() != 4) continue;  // neither implementation builds it
    const auto root = hg::io::read_torch_file(kFixtures + file);
    const auto* sd = root->find("state_dict");
    std::map<std::string, at::Tensor> original;
    for (const auto& [k, t] : hg::io::tensor_entries(sd ? *sd : *root)) {
      std::string key = k;
      for (const char* prefix : {"model.", "module."})
        if (key.rfind(prefix, 0) == 0) key = key.substr(std::strlen(prefix));
      original.emplace(key, t);
    }
    const auto exported = hg::io::foreign_state_dict(*loaded.model, loaded.format);
    ASSERT_EQ(exported.size(), original.size()) << file;
    for (const auto& [k, t] : original) {
      ASSERT_TRUE(exported.count(k)) << file << " lacks " << k;
      EXPECT_EQ(exported.at(k).sizes(), t.sizes()) << file << " " << k;
      const bool unused_skip = k.find("skip_layer") != std::string::npos &&
                               exported.at(k).abs().max().item<double>() == 0;
      if (!unused_skip) EXPECT_TRUE(torch::equal(exported.at(k), t)) << file << " " << k;
    }
  }
}

TEST(PyTorchExport, RandomModelsRoundTripThroughTheImporter) {
  const std::vector<std::pair<CheckpointFormat, StackedHourglassOptions>> cases = {
      {CheckpointFormat::kPoseNet, StackedHourglassOptions().stacks(2).features(8).joints(5)},
      {CheckpointFormat::kBearpaw,
       StackedHourglassOptions().stacks(3).features(6).residuals(2).joints(4).stem2(256)},
      {CheckpointFormat::kBearpaw,
       StackedHourglassOptions().stacks(1).features(10).residuals(3).stem2(256)}};
  for (const auto& [format, o] : cases) {
    auto net = random_model(o, 11);
    const auto path = temp_path("port_" + hg::io::format_name(format) + ".pth");
    hg::io::export_pytorch(path, *net, format);
    auto back = hg::io::load_model(path);
    EXPECT_EQ(back.format, format);
    EXPECT_TRUE(back.model->options == o) << back.model->options.describe();
    const auto x = torch::rand({1, 3, 64, 64});
    EXPECT_TRUE(torch::equal(reference(*net, x), reference(*back.model, x))) << o.describe();
  }
}

TEST(PyTorchExport, RefusesWhatTheImplementationCannotBuild) {
  auto message = [](const StackedHourglassOptions& o, CheckpointFormat f) {
    return hg::test::error_of([&] { hg::io::check_exportable(o, f); });
  };
  const auto o = StackedHourglassOptions();
  EXPECT_EQ(message(StackedHourglassOptions(o).residuals(2), CheckpointFormat::kPoseNet),
            "cannot export to posenet: PoseNet has one residual per hourglass block; this model "
            "has residuals = 2");
  EXPECT_EQ(message(StackedHourglassOptions(o).depth(3), CheckpointFormat::kBearpaw),
            "cannot export to bearpaw: HourglassNet builds depth-4 hourglasses; this model has "
            "depth = 3");
  EXPECT_EQ(message(StackedHourglassOptions(o).stem1(64), CheckpointFormat::kPoseNet),
            "cannot export to posenet: PoseNet's stem is 64-128-128-F; this model has stem1 = 64");
  EXPECT_EQ(message(StackedHourglassOptions(o).stem2(128), CheckpointFormat::kBearpaw),
            "cannot export to bearpaw: HourglassNet's stem is 64-128-256-F; this model has stem2 = "
            "128");
  EXPECT_EQ(message(StackedHourglassOptions(o).residuals(2).stem2(256), CheckpointFormat::kBearpaw),
            "");
}

// ---- the CLI ------------------------------------------------------------------------------------

TEST(ExportCli, WritesEveryFormatAndRefusesClearly) {
  const std::string src = kFixtures + "posenet_s1_f32_state_dict.pt";
  const auto onnx_path = temp_path("cli.onnx");
  auto r = hg::test::run_tool("export " + src + " " + onnx_path + " --last-stack-only");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("(ONNX opset 13, input N×3×256×256)"), std::string::npos) << r.out;
  std::ifstream in(onnx_path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto m = parse_onnx(bytes);
  EXPECT_EQ(metadata(m, "pixel_grid"), "original");  // imported PyTorch weights
  EXPECT_EQ(m.graph().output(0).type().tensor_type().shape().dim(1).dim_value(), 1);

  const auto st = temp_path("cli.safetensors");
  r = hg::test::run_tool("export " + src + " " + st);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto pth = temp_path("cli_posenet.pth");
  r = hg::test::run_tool("export " + st + " " + pth + " --format posenet");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(hg::io::load_model(pth).format, CheckpointFormat::kPoseNet);

  r = hg::test::run_tool("export " + src + " " + temp_path("x.pth"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("give --format onnx|safetensors|posenet|bearpaw"), std::string::npos);
  r = hg::test::run_tool("export " + src + " " + st + " --opset 11");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "hourglass: error: --opset applies to --format onnx only\n");
  r = hg::test::run_tool("export " + kFixtures + "gen/posenet_s1_f16_d3_checkpoint.pt " +
                         temp_path("d3.pth") + " --format posenet");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out,
            "hourglass: error: cannot export to posenet: PoseNet builds depth-4 hourglasses; this "
            "model has depth = 3\n");
}

}  // namespace

namespace {

// Every export carries every metadata field of the native checkpoint (issue 35: safetensors
// dropped pixel_grid, so an exported model's predictions moved).
TEST(ExportMetadata, EveryExportCarriesEveryFieldOfTheCheckpoint) {
  const auto dir = hg::test::scratch_dir();
  const auto o = StackedHourglassOptions().stacks(1).features(16).depth(2).stem1(16).stem2(16);
  hg::model::StackedHourglass net(o);
  const nlohmann::json meta = {{"input_size", 64},
                               {"pixel_grid", "original"},
                               {"inference", {{"flip", false}, {"decoder", "dark"}}},
                               {"joints", hg::data::joint_set_to_json(hg::data::mpii_joints())},
                               {"joint_set", "mpii"},
                               {"dataset", "synthetic:64:1"},
                               {"config", {{"lr", 0.001}}},
                               {"train", {{"epoch", 3}}}};
  const auto native = (dir / "m.hg").string();
  hg::io::save_model(native, *net, meta);
  const auto expected = hg::infer::deployment_meta(hg::io::load_model(native), native);
  EXPECT_EQ(expected, meta);  // nothing implied: every field is the checkpoint's own

  const auto st = (dir / "m.safetensors").string(), onnx = (dir / "m.onnx").string();
  for (const auto& out : {st, onnx}) {
    const auto r = hg::test::run_tool("export " + native + " " + out);
    ASSERT_EQ(r.code, 0) << r.out;
  }
  const auto back = hg::io::load_model(st);
  EXPECT_EQ(back.meta, meta);
  EXPECT_EQ(hg::infer::model_grid(back), hg::data::PixelGrid::kOriginal);
  std::ifstream in(onnx, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(nlohmann::json::parse(metadata(parse_onnx(bytes), "meta")), meta);

  // An imported PyTorch checkpoint's implied fields (the original pixel grid, MPII joints, the
  // flip test) travel explicitly into its safetensors export, as convert writes them.
  const auto posenet = hg::test::kData + "/fixtures/posenet_s2_f64_checkpoint.pt";
  const auto from_posenet = (dir / "p.safetensors").string();
  const auto r = hg::test::run_tool("export " + posenet + " " + from_posenet);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto p = hg::io::load_model(from_posenet);
  EXPECT_EQ(p.meta["pixel_grid"], "original");
  EXPECT_EQ(hg::infer::model_grid(p), hg::data::PixelGrid::kOriginal);
  EXPECT_EQ(p.meta["joints"]["name"], "mpii");
  EXPECT_EQ(p.meta["inference"]["flip"], true);
}

}  // namespace
