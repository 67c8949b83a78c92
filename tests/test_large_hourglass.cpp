// The CornerNet/CenterNet hourglass family: its options, the network, CenterNet's decoders and the
// import of CenterNet and CornerNet checkpoints. The values against CenterNet's own code are
// checked by python/centernet_crosscheck.py (CTest's python_crosscheck_centernet).
#include "test_util.h"

#include "hg/eval/coco_eval.h"
#include "hg/infer/center_decode.h"
#include "hg/infer/center_detector.h"
#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"
#include "hg/io/import_centernet.h"
#include "hg/io/torch_file.h"
#include "hg/model/large_hourglass.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

namespace hg {
namespace {

using model::HeadSpec;
using model::LargeHourglassOptions;

// test::small_large_hourglass with a small multi_pose-like head set.
LargeHourglassOptions small_options() {
  return test::small_large_hourglass().heads(
      model::parse_heads("hm:1,wh:2,reg:2,hps:6,hm_hp:3,hp_offset:2"));
}

// test::small_large_hourglass, two stacks, as CornerNet builds it: corner modules and 3 classes.
LargeHourglassOptions small_cornernet() {
  return test::small_large_hourglass()
      .stacks(2)
      .heads(model::parse_heads("tl_heats:3,br_heats:3,tl_tags:1,br_tags:1,tl_regrs:2,br_regrs:2"))
      .head_style(model::HeadStyle::kCornerNet);
}

TEST(LargeHourglass, AnalyticParameterCountIsTheBuiltNetworks) {
  for (const auto& o :
       {small_options(), small_options().stacks(1).heads({}), small_cornernet(),
        small_options().head_style(model::HeadStyle::kMMPose),
        LargeHourglassOptions().levels(1).dims({4, 4}).modules({1, 3}).cnv_dim(4).stem(4)}) {
    SCOPED_TRACE(o.describe());
    EXPECT_EQ(o.parameter_count(), model::LargeHourglass(o)->parameter_count());
  }
}

TEST(LargeHourglass, Hourglass104HasCenterNetsParameterCount) {
  // Counted by CenterNet's get_large_hourglass_net (python/centernet/large_hourglass.py, Debian's
  // python3-torch 1.13): sum(p.numel() for p in model.parameters()).
  EXPECT_EQ(model::hourglass104(model::parse_heads("ctdet")).parameter_count(), 191284008);
  EXPECT_EQ(model::hourglass104(model::parse_heads("multi_pose")).parameter_count(), 194811124);
  // CornerNet's `model` (python/cornernet/models/CornerNet.py), counted the same way.
  EXPECT_EQ(model::large_hourglass_preset("cornernet", "").parameter_count(), 201035212);
  EXPECT_EQ(model::hourglass52({}).stacks(), 1);
}

TEST(LargeHourglass, ForwardGivesEveryHeadOfEveryStack) {
  torch::manual_seed(1);
  model::LargeHourglass net(small_options());
  net->eval();
  const auto out = net->forward(torch::rand({2, 3, 32, 32}));
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out.at("hm").sizes(), (std::vector<int64_t>{2, 3, 1, 8, 8}));
  EXPECT_EQ(out.at("hps").sizes(), (std::vector<int64_t>{2, 3, 6, 8, 8}));
  // Heatmap heads start at CenterNet's prior: the last conv's bias is -2.19.
  const auto& hm = net->heads[0]->at<torch::nn::SequentialImpl>(2);
  EXPECT_FLOAT_EQ(hm[1]->as<torch::nn::Conv2dImpl>()->bias[0].item<float>(), -2.19f);
  EXPECT_ERROR_HAS(net->forward(torch::rand({1, 3, 36, 36})),
                   "the input height and width must be a positive multiple of 16 (4·2^levels for "
                   "2 levels), got 36");
}

TEST(LargeHourglass, HeadsParseAndNameWhatIsWrong) {
  EXPECT_EQ(model::heads_text(model::parse_heads("ctdet")), "hm:80,wh:2,reg:2");
  EXPECT_EQ(model::parse_heads("multi_pose").size(), 6u);
  EXPECT_ERROR_HAS(model::parse_heads("hm,wh:2"),
                   "heads 'hm,wh:2': each head must be NAME:CHANNELS (e.g. hm:80,wh:2,reg:2), or "
                   "a head set (ctdet, multi_pose, cornernet); got 'hm'");
  EXPECT_ERROR_HAS(LargeHourglassOptions().heads({{"pre", 2}}).validate(),
                   "head name 'pre' must be an identifier");
  EXPECT_ERROR_HAS(LargeHourglassOptions().heads({{"detections", 2}}).validate(),
                   "other than pre, kps, cnvs, inters, inters_, cnvs_, tl_cnvs, br_cnvs, "
                   "features, detections and image");
  EXPECT_ERROR_HAS(LargeHourglassOptions().heads({{"hm", 2}, {"hm", 3}}).validate(),
                   "head 'hm' is named twice");
  EXPECT_ERROR_HAS(LargeHourglassOptions().heads({{"wh", 0}}).validate(),
                   "head 'wh' must have 1..1024 channels, got 0");
  EXPECT_ERROR_HAS(LargeHourglassOptions().levels(2).validate(),
                   "dims must have levels + 1 = 3 entries, got 6 (256-256-384-384-384-512)");
}

// One class's peak at (x 5, y 2) with a lower neighbour that the 3×3 maximum suppresses, another
// class's at (1, 6); sizes 4×2 and offsets (0.25, 0.5) everywhere.
TEST(CenterDecode, CtdetFindsPeaksAcrossClasses) {
  auto heat = torch::zeros({1, 2, 8, 8});
  heat[0][1][2][5] = 0.9;
  heat[0][1][2][6] = 0.8;
  heat[0][0][6][1] = 0.7;
  auto wh = torch::stack({torch::full({8, 8}, 4.0), torch::full({8, 8}, 2.0)}).unsqueeze(0);
  auto reg = torch::stack({torch::full({8, 8}, 0.25), torch::full({8, 8}, 0.5)}).unsqueeze(0);
  const auto d = infer::ctdet_decode(heat, wh, reg, 3);
  ASSERT_EQ(d.sizes(), (std::vector<int64_t>{1, 3, 6}));
  const auto expected = torch::tensor(
      {{3.25f, 1.5f, 7.25f, 3.5f, 0.9f, 1.0f}, {-0.75f, 5.5f, 3.25f, 7.5f, 0.7f, 0.0f}});
  EXPECT_TRUE(torch::allclose(d[0].slice(0, 0, 2), expected)) << d;
  EXPECT_EQ(d[0][2][4].item<float>(), 0.0f);  // the suppressed neighbour is not a detection
  EXPECT_ERROR_HAS(infer::ctdet_decode(heat, wh, reg, 65),
                   "top-k must be in 1..64 (the output's H·W for a 8×8 map), got 65");
}

TEST(CenterDecode, HeadsOfTheWrongShapeAreNamed) {
  const auto heat = torch::rand({1, 2, 8, 8});
  EXPECT_ERROR_HAS(infer::ctdet_decode(heat, torch::zeros({1, 4, 8, 8}), {}, 10),
                   "the 'wh' head must have 2 channels (width and height; CenterNet's "
                   "class-specific sizes are not decoded), got 4");
  EXPECT_ERROR_HAS(
      infer::multi_pose_decode(heat, torch::zeros({1, 2, 8, 8}), torch::zeros({1, 6, 8, 8}), {},
                               torch::zeros({1, 2, 8, 8}), {}, 10),
      "the 'hm_hp' head must have 3 channels (a heatmap per joint of 'hps'), got 2");
  EXPECT_ERROR_HAS(infer::ctdet_decode(heat, torch::zeros({1, 2, 4, 8}), {}, 10),
                   "the 'wh' head must be N×C×H×W like 'hm'");
}

TEST(CenterDecode, NeedsCenterNetsHeads) {
  model::HeadOutputs corner{{"tl_heats", torch::zeros({1, 1, 2, 8, 8})}};
  EXPECT_ERROR_HAS(infer::decode_detections(corner, 10),
                   "detections need CenterNet's 'hm' and 'wh' heads; this model lacks one of them");
  EXPECT_ERROR_HAS(infer::require_detection_heads(LargeHourglassOptions().heads({{"wh", 2}})),
                   "detections need CenterNet's 'hm' and 'wh' heads; this model's heads are wh:2");
}

// Saves `net` as CenterNet's training code does: {'epoch', 'state_dict'} with `module.` names;
// unwrapped, as CornerNet's does: the state dict alone, under its DummyModule's `module.`.
void save_as_centernet(const std::string& path, torch::nn::Module& net, bool wrapped = true) {
  auto state = io::PyValue::new_dict();
  for (const auto& p : net.named_parameters())
    state->set("module." + p.key(), io::PyValue::of(p.value()));
  for (const auto& b : net.named_buffers())
    state->set("module." + b.key(), io::PyValue::of(b.value()));
  auto root = io::PyValue::new_dict();
  root->set("epoch", io::PyValue::of(int64_t{70})).set("state_dict", state);
  io::write_torch_file(path, wrapped ? *root : *state);
}

TEST(ImportCenterNet, InfersTheArchitectureAndLoadsEveryTensor) {
  torch::manual_seed(2);
  model::LargeHourglass net(small_options());
  test::randomise_batch_norm(*net);
  net->eval();
  const auto path = (test::scratch_dir() / "ctdet.pth").string();
  save_as_centernet(path, *net);
  ASSERT_TRUE(io::holds_large_hourglass(path));
  EXPECT_FALSE(io::holds_large_hourglass(test::kData + "/fixtures/posenet_s1_f32_state_dict.pt"));
  auto loaded = io::load_large_hourglass(path);
  // heads_of reads the heads in name order.
  auto expected = small_options();
  auto heads = expected.heads();
  std::sort(heads.begin(), heads.end(),
            [](const HeadSpec& a, const HeadSpec& b) { return a.name < b.name; });
  EXPECT_EQ(loaded.model->options, expected.heads(heads));
  torch::NoGradGuard no_grad;
  const auto x = torch::rand({1, 3, 32, 32});
  const auto want = net->forward(x), got = loaded.model->forward(x);
  for (const auto& [name, t] : want) EXPECT_TRUE(torch::equal(got.at(name), t)) << name;
}

TEST(ImportCenterNet, RefusesOtherCornerPoolsAndIncompleteFiles) {
  std::map<std::string, at::Tensor> state = {
      {"pre.0.conv.weight", torch::zeros({6, 3, 7, 7})},
      {"kps.0.up1.0.conv1.weight", torch::zeros({8, 8, 3, 3})},
      {"tl_cnvs.0.p1_conv1.conv.weight", torch::zeros({64, 8, 3, 3})}};
  EXPECT_ERROR_HAS(io::large_hourglass_options(state, "corner.pkl"),
                   "cannot import corner.pkl: tl_cnvs.0.p1_conv1.conv.weight has 64 maps; "
                   "CornerNet's corner pooling has 128");
  state.erase("tl_cnvs.0.p1_conv1.conv.weight");
  state.emplace("", torch::zeros({1}));  // a hostile file's empty key is no head, nor a crash
  EXPECT_ERROR_HAS(io::large_hourglass_options(state, "cut.pth"),
                   "cannot import cut.pth: the checkpoint lacks "
                   "'kps.0.low2.0.conv1.weight'; is the file complete?");
}

// CornerNet's checkpoint: every tensor loads (its corner modules and heads kept, and written back
// by convert), the output is every stack's features, and detections are refused, saying why.
TEST(ImportCornerNet, RunsTheBackboneAsFeaturesAndKeepsTheCornerModules) {
  torch::manual_seed(6);
  model::LargeHourglass net(small_cornernet());
  test::randomise_batch_norm(*net);
  net->eval();
  const auto dir = test::scratch_dir();
  const auto src = (dir / "corner.pkl").string(), dst = (dir / "corner.hg").string();
  save_as_centernet(src, *net, false);
  auto loaded = io::load_large_hourglass(src);
  EXPECT_EQ(loaded.format, io::CheckpointFormat::kCornerNet);
  EXPECT_EQ(loaded.model->options.head_style(), model::HeadStyle::kCornerNet);
  EXPECT_EQ(loaded.model->options.outputs(), (std::vector<HeadSpec>{{"features", 10}}));
  torch::NoGradGuard no_grad;
  const auto x = torch::rand({2, 3, 32, 32});
  const auto got = loaded.model->forward(x);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got.at("features").sizes(), (std::vector<int64_t>{2, 2, 10, 8, 8}));
  const auto first = net->cnvs->at<model::ConvBnReluImpl>(0).forward(
      net->kps->at<model::HourglassLevelImpl>(0).forward(net->pre->forward(x)));
  EXPECT_TRUE(torch::equal(got.at("features").select(1, 0), first));
  EXPECT_TRUE(torch::equal(got.at("features"), net->forward(x).at("features")));
  EXPECT_ERROR_HAS(infer::require_detection_heads(loaded.model->options),
                   "a CornerNet model's corner heads are not decoded: corner pooling and grouping "
                   "are outside this project, which runs its backbone and writes its features");
  EXPECT_ERROR_HAS(io::load_model(src), "cannot import " + src,
                   std::string("it holds a CornerNet hourglass"));
  io::save_large_hourglass(dst, *loaded.model);
  const auto native = io::load_large_hourglass(dst);
  EXPECT_EQ(native.model->options, loaded.model->options);
  const auto kept = native.model->named_parameters();
  for (const auto& p : net->named_parameters()) EXPECT_TRUE(torch::equal(kept[p.key()], p.value()));
  EXPECT_GT(kept["tl_cnvs.1.p1_conv1.conv.weight"].numel(), 0);
}

TEST(ImportMMPose, RenamesEveryKeyAndRefusesStrangers) {
  const auto t = torch::zeros({1});
  std::map<std::string, at::Tensor> state = {
      {"backbone.stem.0.conv.weight", t},
      {"backbone.stem.1.0.downsample.1.running_mean", t},
      {"backbone.hourglass_modules.0.low1.0.downsample.0.weight", t},
      {"backbone.hourglass_modules.0.low2.low2.1.bn2.bias", t},
      {"backbone.conv1x1s.0.bn.weight", t},
      {"backbone.remap_convs.0.conv.weight", t},
      {"backbone.out_convs.0.bn.bias", t},
      {"backbone.inters.0.conv1.weight", t},  // a one-stack net's unused residual: left out
      {"head.multi_final_layers.0.bias", t}};
  std::vector<std::string> names;
  for (const auto& [name, tensor] : io::from_mmpose(state, "m.pth")) names.push_back(name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"cnvs.0.bn.bias", "cnvs_.0.0.weight", "heatmaps.0.bias",
                                      "inters_.0.1.weight", "kps.0.low1.0.skip.0.weight",
                                      "kps.0.low2.low2.1.bn2.bias", "pre.0.conv.weight",
                                      "pre.1.skip.1.running_mean"}));
  state.emplace("backbone.neck.weight", t);
  EXPECT_ERROR_HAS(io::from_mmpose(state, "m.pth"),
                   "cannot import m.pth: unexpected tensor 'backbone.neck.weight' for an MMPose "
                   "HourglassNet");
}

TEST(ImportCenterNet, ForwardWritesHeadsAndDetections) {
  torch::manual_seed(3);
  model::LargeHourglass net(small_options().stacks(2));
  const auto dir = test::scratch_dir();
  save_as_centernet((dir / "pose.pth").string(), *net);
  io::write_tensor_dict((dir / "in.pt").string(), {{"input", torch::rand({3, 3, 32, 32})}});
  const std::string common = "forward -w " + (dir / "pose.pth").string() + " -i " +
                             (dir / "in.pt").string() + " --batch 2 --top-k 7 -o ";
  const auto r = test::run_tool(common + (dir / "out.pt").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto out = io::read_torch_file((dir / "out.pt").string());
  EXPECT_EQ(out->string_keys().size(), 7u);
  EXPECT_EQ(out->find("detections")->tensor.sizes(), (std::vector<int64_t>{3, 7, 6 + 6}));
  EXPECT_EQ(out->find("hm_hp")->tensor.sizes(), (std::vector<int64_t>{3, 2, 3, 8, 8}));
  // The engine (in f32) gives the same heads and detections, with a batch plan of 2 and one of 1.
  const auto engine = test::run_tool(common + (dir / "engine.pt").string() +
                                     " --backend engine --precision f32 --algorithm direct");
  ASSERT_EQ(engine.code, 0) << engine.out;
  const auto got = io::read_torch_file((dir / "engine.pt").string());
  for (const auto& name : out->string_keys()) {
    const auto& want = out->find(name)->tensor;
    const auto& t = got->find(name)->tensor;
    ASSERT_EQ(t.sizes(), want.sizes()) << name;
    EXPECT_LE((t - want).abs().max().item<double>(),
              name == "detections" ? 1e-3 : 1e-4 * want.abs().max().item<double>())
        << name;
  }
}

TEST(ImportCenterNet, ConvertsToANativeCheckpointThatOnlyThisFamilyLoads) {
  torch::manual_seed(4);
  model::LargeHourglass net(small_options().stacks(1));
  test::randomise_batch_norm(*net);
  net->eval();
  const auto dir = test::scratch_dir();
  const auto src = (dir / "centernet.pth").string(), dst = (dir / "native.hg").string();
  save_as_centernet(src, *net);
  const auto r = test::run_tool("convert " + src + " " + dst);
  ASSERT_EQ(r.code, 0) << r.out;
  auto native = io::load_large_hourglass(dst);
  EXPECT_EQ(native.format, io::CheckpointFormat::kNative);
  EXPECT_EQ(native.meta["converted_from"]["format"], "centernet");
  torch::NoGradGuard no_grad;
  const auto x = torch::rand({1, 3, 32, 32});
  const auto want = net->forward(x), got = native.model->forward(x);
  for (const auto& [name, t] : want) EXPECT_TRUE(torch::equal(got.at(name), t)) << name;
  // Newell's loaders name what the file holds instead of failing on its keys.
  EXPECT_ERROR_HAS(io::load_model(dst), "cannot read " + dst,
                   std::string("it holds a CornerNet/CenterNet hourglass, which Newell's loader "
                               "does not read: forward, info, convert, export and bench run this "
                               "family, predict, eval, show and serve its top-down pose models "
                               "(MMPose's), and train neither"));
  EXPECT_ERROR_HAS(io::load_model(src), "cannot import " + src,
                   std::string("it holds a CenterNet hourglass"));
  const auto info = test::run_tool("info --json -w " + dst + " --size 64");
  ASSERT_EQ(info.code, 0) << info.out;
  EXPECT_EQ(nlohmann::json::parse(info.out)["parameters"], net->parameter_count());
}

TEST(ImportCenterNet, NativeArchitectureIsCheckedKeyByKey) {
  auto j = io::large_options_to_json(small_options());
  EXPECT_EQ(io::large_options_from_json(j), small_options());
  auto unknown = j;
  unknown["depth"] = 4;
  EXPECT_ERROR_HAS(io::large_options_from_json(unknown), "unknown architecture key 'depth'");
  auto missing = j;
  missing.erase("cnv_dim");
  EXPECT_ERROR_HAS(io::large_options_from_json(missing), "architecture key 'cnv_dim' is missing");
  auto bad = j;
  bad["heads"][0] = "hm";
  EXPECT_ERROR_HAS(io::large_options_from_json(bad),
                   "architecture key 'heads': each head must be {\"name\": text, \"channels\": "
                   "integer}, got \"hm\"");
}

TEST(ImportCenterNet, InfoDescribesHourglass104) {
  const auto r = test::run_tool("info --arch hourglass104 --heads ctdet");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("parameters:  191,284,008"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3×512×512 → 2 stacks × outputs hm:80,wh:2,reg:2 of 128×128"),
            std::string::npos)
      << r.out;  // Newell's shape flags, or --heads without --arch, are usage errors, never
                 // silently ignored.
  EXPECT_EQ(test::run_tool("info --arch hourglass104 --stacks 4").code, 2);
  EXPECT_EQ(test::run_tool("info --heads ctdet").code, 2);
}

TEST(MMPosePredictor, NormalisesAsMMPoseOnBothBackends) {
  auto net = test::small_pose_model();
  const auto path = (test::scratch_dir() / "mmpose.hg").string();
  io::save_large_hourglass(path, *net);
  infer::PredictorOptions po;
  po.input_size = 64;
  po.flip = false;
  po.backend.kind = infer::BackendKind::kTorch;
  const auto predictor = infer::Predictor::load(path, po);
  EXPECT_EQ(predictor.joints().name, "coco");
  EXPECT_EQ(*predictor.options().grid, data::PixelGrid::kOriginal);
  EXPECT_TRUE(predictor.options().flip_shift);
  const auto x = torch::rand({2, 3, 64, 64});
  const auto mean = torch::tensor({123.675f, 116.28f, 103.53f}).view({1, 3, 1, 1});
  const auto std = torch::tensor({58.395f, 57.12f, 57.375f}).view({1, 3, 1, 1});
  at::Tensor want;
  {
    torch::InferenceMode guard;
    want = net->forward((x * 255 - mean) / std).at("heatmaps");
  }
  const auto scale = want.abs().max().item<double>();
  EXPECT_LE((predictor.heatmaps(x) - want).abs().max().item<double>(), 1e-6 * scale);
  po.backend.kind = infer::BackendKind::kEngine;
  po.backend.engine.precision = engine::Precision::kF32;
  po.backend.engine.algorithm = engine::Algorithm::kDirect;
  const auto on_engine = infer::Predictor::load(path, po);
  EXPECT_LE((on_engine.heatmaps(x) - want).abs().max().item<double>(), 1e-4 * scale);
}

TEST(MMPosePredictor, PredictRunsItAndDetectorsAreRefused) {
  auto net = test::small_pose_model();
  const auto dir = test::scratch_dir();
  const auto path = (dir / "mmpose.hg").string();
  io::save_large_hourglass(path, *net);
  const auto r = test::run_tool("predict --threads 2 " + test::kData +
                                "/coco/images/000000000785.jpg --weights " + path +
                                " --size 64 --whole-image -o " + (dir / "p.json").string());
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream in(dir / "p.json");
  const auto joints = nlohmann::json::parse(in)["results"][0]["people"][0]["joints"];
  EXPECT_EQ(joints.size(), 17u);
  EXPECT_TRUE(joints.contains("l-shoulder")) << joints.dump();
  model::LargeHourglass detector(small_options().stacks(1));
  const auto det = (dir / "ctdet.hg").string();
  io::save_large_hourglass(det, *detector);
  EXPECT_ERROR_HAS(infer::Predictor::load(det),
                   det +
                       " holds a CenterNet detector (heads hm:1,wh:2,reg:2,hps:6,hm_hp:3,"
                       "hp_offset:2), not a top-down pose model: run it with forward (or, for "
                       "CenterNet's multi_pose, predict)");
}

// CenterNet's multi_pose in predict: every person and its 17 joints from one pass (the values
// against CenterNet's own pipeline: python/centernet_pipeline_crosscheck.py), and the refusals.
TEST(CenterNetPipeline, PredictFindsPeopleBottomUpAndRefusesWhatDoesNotApply) {
  torch::manual_seed(8);
  model::LargeHourglass net(test::small_large_hourglass().stacks(1).heads(
      model::parse_heads("hm:1,wh:2,reg:2,hps:34,hm_hp:17,hp_offset:2")));
  test::randomise_batch_norm(*net);
  const auto dir = test::scratch_dir();
  const auto weights = (dir / "multi_pose.pth").string(), out = (dir / "p.json").string();
  save_as_centernet(weights, *net);
  const std::string predict = "predict --threads 2 " + test::kData +
                              "/coco/images/000000000785.jpg --weights " + weights + " ";
  const auto results = (dir / "coco.json").string();
  const auto r = test::run_tool(predict + "--size 64 --top-k 7 --det-threshold 0 -o " + out +
                                " --save-results " + results);
  ASSERT_EQ(r.code, 0) << r.out;
  // Every detection in CenterNet's results format: its box, joints of visibility 1, 2 decimals.
  const auto coco = eval::read_coco_detections(results);
  ASSERT_EQ(coco.size(), 7u);
  EXPECT_EQ(coco[0].image_id, 785);
  EXPECT_EQ(coco[0].keypoints.size(), 51u);
  EXPECT_EQ(coco[0].keypoints[2], 1.0);
  std::ifstream saved(results);
  const auto first = nlohmann::json::parse(saved)[0];
  ASSERT_EQ(first["bbox"].size(), 4u);
  EXPECT_EQ(first["score"].get<double>(), std::round(first["score"].get<double>() * 100) / 100);
  std::ifstream in(out);
  const auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["input_size"], 64);
  EXPECT_EQ(doc["flip_test"], false);  // CenterNet's default
  const auto& people = doc["results"][0]["people"];
  ASSERT_EQ(people.size(), 7u);
  for (size_t i = 0; i < people.size(); ++i) {
    EXPECT_EQ(people[i]["found_by"], "bottom-up");
    EXPECT_EQ(people[i]["joints"].size(), 17u);
    EXPECT_FLOAT_EQ(people[i]["joints"]["nose"]["score"].get<float>(),
                    people[i]["detection_score"].get<float>());
    if (i > 0) EXPECT_LE(people[i]["detection_score"], people[i - 1]["detection_score"]);
  }
  for (const auto& [flags, message] : std::vector<std::pair<std::string, std::string>>{
           {"--box 1,2,30,40",
            "--center, --box, --boxes and --whole-image choose the people of "
            "a top-down model; " +
                weights + " holds a bottom-up model"},
           {"--keep-res --size 64",
            "--keep-res runs the network at the image's own size: give it or --size, not both"}}) {
    const auto refused = test::run_tool(predict + flags);
    EXPECT_EQ(refused.code, 1) << flags;
    EXPECT_NE(refused.out.find(message), std::string::npos) << refused.out;
  }
  infer::CenterNetOptions o;
  o.input_size = 64;
  EXPECT_ERROR_HAS(infer::CenterNetDetector(
                       model::LargeHourglass(test::small_large_hourglass().heads(
                           model::parse_heads("hm:1,wh:2,reg:2,hps:6,hm_hp:3,hp_offset:2"))),
                       o),
                   "a multi_pose model's joints are COCO's 17; ");
  const auto ctdet = (dir / "ctdet.pth").string();
  model::LargeHourglass detector(
      test::small_large_hourglass().heads(model::parse_heads("hm:3,wh:2,reg:2")));
  save_as_centernet(ctdet, *detector);
  const auto plain =
      test::run_tool("predict " + test::kData + "/coco/images/000000000785.jpg --weights " + ctdet);
  EXPECT_EQ(plain.code, 1);
  EXPECT_NE(plain.out.find(ctdet + " holds a CenterNet detector without joints (heads "
                                   "hm:3,reg:2,wh:2): predict runs pose models; run it with "
                                   "forward"),
            std::string::npos)
      << plain.out;
}

}  // namespace
}  // namespace hg
