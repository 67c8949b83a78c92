// The oneDNN engine against the LibTorch model (the reference path), on the fixture checkpoints
// and on random models whose batch-norm statistics are randomised so that folding is exercised.
//
// Inputs are smooth synthetic images (bilinearly upsampled low-resolution noise plus Gaussian
// blobs), like photographs in their spectrum; there is no trained model yet, so "decoded joints"
// are the arg-max of each heatmap of a random-weight network.
#include "hg/engine/engine.h"
#include "hg/engine/kernels.h"
#include "hg/io/checkpoint.h"
#include "hg/model/hourglass.h"
#include "hg/model/large_hourglass.h"

#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace {

using hg::engine::Algorithm;
using hg::engine::Engine;
using hg::engine::EngineOptions;
using hg::engine::Precision;
using hg::model::StackedHourglass;
using hg::model::StackedHourglassOptions;

/// Gives every batch norm of `net` random (but plausible) statistics and affines, and sets eval.
void randomise_batch_norms(torch::nn::Module& net) {
  torch::NoGradGuard no_grad;
  for (const auto& m : net.modules(false)) {
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      bn->running_mean.normal_(0, 0.3);
      bn->running_var.uniform_(0.4, 2.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.normal_(0, 0.2);
    }
  }
  net.eval();
}

/// A model with random weights and random (but plausible) batch-norm statistics and affines.
StackedHourglass random_model(const StackedHourglassOptions& options, uint64_t seed) {
  torch::manual_seed(seed);
  StackedHourglass net(options);
  randomise_batch_norms(*net);
  return net;
}

/// n smooth RGB images in [0, 1]: upsampled 8×8 noise plus a few bright Gaussian blobs.
at::Tensor smooth_images(int64_t n, int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  auto x = torch::nn::functional::interpolate(torch::rand({n, 3, 8, 8}),
                                              torch::nn::functional::InterpolateFuncOptions()
                                                  .size(std::vector<int64_t>{h, w})
                                                  .mode(torch::kBilinear)
                                                  .align_corners(false));
  const auto ys = torch::arange(h, torch::kFloat).view({1, 1, h, 1});
  const auto xs = torch::arange(w, torch::kFloat).view({1, 1, 1, w});
  for (int blob = 0; blob < 4; ++blob) {
    const auto cy = torch::rand({n, 1, 1, 1}) * h, cx = torch::rand({n, 1, 1, 1}) * w;
    const auto sigma = 0.03 * h + torch::rand({n, 1, 1, 1}) * 0.05 * h;
    x = x + torch::exp(-((ys - cy).pow(2) + (xs - cx).pow(2)) / (2 * sigma * sigma));
  }
  return (x / x.amax({1, 2, 3}, true)).contiguous();
}

at::Tensor reference(StackedHourglass& net, const at::Tensor& x) {
  torch::InferenceMode guard;
  return net->forward(x);
}

Engine build(StackedHourglass& net, const at::Tensor& x, Precision precision, Algorithm algorithm) {
  EngineOptions o;
  o.precision = precision;
  o.algorithm = algorithm;
  o.batch = x.size(0);
  o.height = x.size(2);
  o.width = x.size(3);
  return Engine::build(*net, o);
}

/// max |a − b| / max |b|.
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

/// Arg-max position (x, y) of every heatmap: N×S×J×h×w → N×S×J×2.
at::Tensor decode(const at::Tensor& heatmaps) {
  const int64_t w = heatmaps.size(4);
  const auto idx = heatmaps.flatten(3).argmax(3);
  return torch::stack({idx % w, idx.div(w, "floor")}, -1);
}

/// Fraction of joints whose decoded positions differ by at most `tolerance` pixels (Chebyshev).
double joints_within(const at::Tensor& a, const at::Tensor& b, int64_t tolerance) {
  const auto d = (decode(a) - decode(b)).abs().amax(-1);
  return (d <= tolerance).to(torch::kDouble).mean().item<double>();
}

void expect_direct_matches(StackedHourglass& net, const at::Tensor& x) {
  auto engine = build(net, x, Precision::kF32, Algorithm::kDirect);
  EXPECT_EQ(engine.summary().winograd, 0);
  const auto expected = reference(net, x);
  const auto out = engine.forward(x);
  ASSERT_EQ(out.sizes(), expected.sizes());
  EXPECT_LE(relative_error(out, expected), 1e-4) << engine.summary().layers;
  // A second pass through the same plan (buffers reused) gives the same result.
  EXPECT_TRUE(torch::equal(engine.forward(x), out));
}

struct Shape {
  int64_t stacks, features, depth, residuals, joints, stem1, stem2, batch, h, w;
};

std::string shape_name(const ::testing::TestParamInfo<Shape>& info) {
  const auto& s = info.param;
  return "s" + std::to_string(s.stacks) + "f" + std::to_string(s.features) + "d" +
         std::to_string(s.depth) + "r" + std::to_string(s.residuals) + "j" +
         std::to_string(s.joints) + "_" + std::to_string(s.stem1) + "_" + std::to_string(s.stem2) +
         "_n" + std::to_string(s.batch) + "_" + std::to_string(s.h) + "x" + std::to_string(s.w);
}

class EngineShapes : public ::testing::TestWithParam<Shape> {
 protected:
  StackedHourglass model() const {
    const auto& s = GetParam();
    return random_model(StackedHourglassOptions()
                            .stacks(s.stacks)
                            .features(s.features)
                            .depth(s.depth)
                            .residuals(s.residuals)
                            .joints(s.joints)
                            .stem1(s.stem1)
                            .stem2(s.stem2),
                        static_cast<uint64_t>(s.features * 131 + s.stacks));
  }
  at::Tensor input() const {
    const auto& s = GetParam();
    return smooth_images(s.batch, s.h, s.w, 7);
  }
};

TEST_P(EngineShapes, DirectF32EqualsLibTorch) {
  auto net = model();
  expect_direct_matches(net, input());
}

TEST_P(EngineShapes, WinogradIsCloseAndDecodesTheSameJoints) {
  auto net = model();
  const auto x = input();
  auto engine = build(net, x, Precision::kF32, Algorithm::kWinograd);
  // The kernel takes residuals of 16k channels (features 32k) on AVX-512.
  if (hg::engine::winograd_supported() && GetParam().features % 32 == 0)
    EXPECT_GT(engine.summary().winograd, 0) << engine.summary().layers;
  const auto expected = reference(net, x);
  const auto out = engine.forward(x);
  EXPECT_LE(relative_error(out, expected), 1e-3) << engine.summary().layers;
  EXPECT_GE(joints_within(out, expected, 0), 0.999);
}

TEST_P(EngineShapes, AutoF32IsCloseToLibTorch) {
  auto net = model();
  const auto x = input();
  auto engine = build(net, x, Precision::kF32, Algorithm::kAuto);
  EXPECT_LE(relative_error(engine.forward(x), reference(net, x)), 1e-3);
}

TEST_P(EngineShapes, Bf16IsCloseToF32) {
  if (!hg::engine::bf16_supported()) GTEST_SKIP() << "this CPU lacks AVX512-BF16";
  auto net = model();
  const auto x = input();
  const auto f32 = build(net, x, Precision::kF32, Algorithm::kDirect).forward(x);
  for (auto algorithm : {Algorithm::kDirect, Algorithm::kWinograd}) {
    auto engine = build(net, x, Precision::kBf16, algorithm);
    EXPECT_LE(relative_error(engine.forward(x), f32), 3e-2) << engine.summary().layers;
  }
}

TEST_P(EngineShapes, BuildConsumingFreesTheModelAndGivesTheSameOutput) {
  auto net = model();
  const auto x = input();
  const auto expected = build(net, x, Precision::kF32, Algorithm::kDirect).forward(x);
  EngineOptions o;
  o.precision = Precision::kF32;
  o.algorithm = Algorithm::kDirect;
  o.batch = x.size(0);
  o.height = x.size(2);
  o.width = x.size(3);
  auto engine = Engine::build_consuming(*net, o);
  for (const auto& t : net->parameters()) EXPECT_EQ(t.numel(), 0);
  for (const auto& t : net->buffers()) EXPECT_EQ(t.numel(), 0);
  EXPECT_TRUE(torch::equal(engine.forward(x), expected));
}

// Channel counts that are not multiples of 16 (padded blocks), several residuals per block, skip
// convolutions in the stem, non-square inputs, batches, shallow and deep hourglasses.
INSTANTIATE_TEST_SUITE_P(Configs, EngineShapes,
                         ::testing::Values(Shape{1, 32, 4, 1, 16, 128, 128, 1, 64, 64},
                                           Shape{2, 64, 3, 1, 17, 64, 96, 2, 64, 96},
                                           Shape{3, 32, 2, 2, 11, 32, 48, 3, 48, 32},
                                           Shape{2, 24, 1, 3, 5, 16, 24, 2, 16, 24}),
                         shape_name);

// ---- The CornerNet/CenterNet hourglass: post-activation basic residuals, strided convolutions,
// upsample-adds, stack merges and named heads, against LargeHourglassImpl::forward.

struct LargeShape {
  std::string name;
  hg::model::LargeHourglassOptions options;
  int64_t batch, h, w;
};

class EngineLargeHourglass : public ::testing::TestWithParam<LargeShape> {
 protected:
  hg::model::LargeHourglass model() const {
    torch::manual_seed(17);
    hg::model::LargeHourglass net(GetParam().options);
    randomise_batch_norms(*net);
    return net;
  }
  at::Tensor input() const {
    const auto& s = GetParam();
    return smooth_images(s.batch, s.h, s.w, 11);
  }
  Engine build(hg::model::LargeHourglassImpl& net, Precision precision, Algorithm algorithm,
               bool consume = false) const {
    EngineOptions o;
    o.precision = precision;
    o.algorithm = algorithm;
    o.batch = GetParam().batch;
    o.height = GetParam().h;
    o.width = GetParam().w;
    return consume ? Engine::build_consuming(net, o) : Engine::build(net, o);
  }
  static hg::model::HeadOutputs reference(hg::model::LargeHourglassImpl& net, const at::Tensor& x) {
    torch::InferenceMode guard;
    return net.forward(x);
  }
  /// The largest relative error of any head of `got` against `want`, which must hold the same.
  static double worst_head(const std::map<std::string, at::Tensor>& got,
                           const hg::model::HeadOutputs& want) {
    EXPECT_EQ(got.size(), want.size());
    double worst = 0;
    for (const auto& [name, t] : want) {
      EXPECT_EQ(got.at(name).sizes(), t.sizes()) << name;
      worst = std::max(worst, relative_error(got.at(name), t));
    }
    return worst;
  }
};

TEST_P(EngineLargeHourglass, DirectF32EqualsLibTorchOnEveryHead) {
  auto net = model();
  const auto x = input();
  const auto want = reference(*net, x);
  auto engine = build(*net, Precision::kF32, Algorithm::kDirect);
  std::vector<std::string> names;
  for (const auto& out : GetParam().options.outputs()) names.push_back(out.name);
  EXPECT_EQ(engine.output_names(), names);
  const auto got = engine.forward_all(x);
  EXPECT_LE(worst_head(got, want), 1e-4) << engine.summary().layers;
  // A second pass through the same plan (buffers reused) gives the same result.
  for (const auto& [name, t] : engine.forward_all(x)) EXPECT_TRUE(torch::equal(t, got.at(name)));
  auto consuming = build(*net, Precision::kF32, Algorithm::kDirect, true);
  for (const auto& t : net->parameters()) EXPECT_EQ(t.numel(), 0);
  for (const auto& [name, t] : consuming.forward_all(x)) EXPECT_TRUE(torch::equal(t, got.at(name)));
}

TEST_P(EngineLargeHourglass, WinogradAutoAndBf16AreClose) {
  auto net = model();
  const auto x = input();
  const auto want = reference(*net, x);
  auto winograd = build(*net, Precision::kF32, Algorithm::kWinograd);
  const bool wide = GetParam().options.dims()[0] % 16 == 0;
  if (hg::engine::winograd_supported() && wide)
    EXPECT_GT(winograd.summary().winograd, 0) << winograd.summary().layers;
  EXPECT_LE(worst_head(winograd.forward_all(x), want), 1e-3) << winograd.summary().layers;
  EXPECT_LE(worst_head(build(*net, Precision::kF32, Algorithm::kAuto).forward_all(x), want), 1e-3);
  if (!hg::engine::bf16_supported()) return;
  auto bf16 = build(*net, Precision::kBf16, Algorithm::kDirect);
  EXPECT_LE(worst_head(bf16.forward_all(x), want), 3e-2) << bf16.summary().layers;
}

// Widths that change at every level and are not multiples of 16 (padded blocks), up to three
// stacks, every head style (CornerNet's: the features), non-square inputs and batches; the last
// has Winograd's widths.
INSTANTIATE_TEST_SUITE_P(
    Configs, EngineLargeHourglass,
    ::testing::Values(
        LargeShape{"centernet_s3",
                   hg::test::small_large_hourglass().heads(hg::model::parse_heads("multi_pose")), 2,
                   32, 48},
        LargeShape{"mmpose_s1",
                   hg::model::hourglass52(hg::model::parse_heads("heatmaps:17"))
                       .levels(2)
                       .dims({16, 32, 32})
                       .modules({1, 2, 2})
                       .cnv_dim(16)
                       .stem(16),
                   1, 64, 64},
        LargeShape{"centernet_s2",
                   hg::model::LargeHourglassOptions()
                       .levels(1)
                       .dims({32, 48})
                       .modules({1, 1})
                       .stacks(2)
                       .cnv_dim(32)
                       .stem(16)
                       .heads(hg::model::parse_heads("hm:3,wh:2,reg:2")),
                   2, 32, 32},
        LargeShape{"cornernet_s2",
                   hg::test::small_large_hourglass()
                       .stacks(2)
                       .heads(hg::model::parse_heads("tl_heats:3,br_heats:3,tl_tags:1,br_tags:1"))
                       .head_style(hg::model::HeadStyle::kCornerNet),
                   2, 32, 16}),
    [](const ::testing::TestParamInfo<LargeShape>& info) { return info.param.name; });

TEST(EngineLargeHourglassOutputs, ForwardNeedsOneOutputAndTheNetworkAHead) {
  const auto options = hg::model::LargeHourglassOptions()
                           .levels(1)
                           .dims({8, 8})
                           .modules({1, 1})
                           .stacks(1)
                           .cnv_dim(8)
                           .stem(8)
                           .heads(hg::model::parse_heads("hm:3,wh:2"));
  hg::model::LargeHourglass net(options);
  net->eval();
  EngineOptions o;
  o.height = o.width = 16;
  auto engine = Engine::build(*net, o);
  EXPECT_ERROR_HAS(engine.forward(torch::zeros({1, 3, 16, 16})),
                   std::string("this engine's network has 2 outputs (hm, wh): use forward_all"));
  hg::model::LargeHourglass bare(hg::model::LargeHourglassOptions(options).heads({}));
  EXPECT_ERROR_HAS(Engine::build(*bare, o),
                   std::string("the engine needs a network with at least one head"));
  o.height = 20;
  EXPECT_ERROR_HAS(Engine::build(*net, o), std::string("the engine's input height and width"));
}

TEST(EngineWinograd, IsUsedWhereTheShapesAllowIt) {
  if (!hg::engine::winograd_supported())
    GTEST_SKIP() << "the engine's Winograd kernel needs AVX-512";
  auto net = random_model(StackedHourglassOptions().stacks(1).features(64).depth(2), 3);
  const auto x = smooth_images(1, 64, 64, 1);
  auto engine = build(net, x, Precision::kF32, Algorithm::kWinograd);
  EXPECT_GT(engine.summary().winograd, 0) << engine.summary().layers;
}

class EngineFixtures : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineFixtures, DirectF32EqualsLibTorch) {
  auto loaded = hg::io::load_model(std::string(HG_TEST_DATA) + "/fixtures/" + GetParam());
  expect_direct_matches(loaded.model, smooth_images(2, 64, 64, 5));
}

TEST_P(EngineFixtures, WinogradDecodesTheSameJoints) {
  auto loaded = hg::io::load_model(std::string(HG_TEST_DATA) + "/fixtures/" + GetParam());
  const auto x = smooth_images(2, 64, 64, 6);
  auto engine = build(loaded.model, x, Precision::kF32, Algorithm::kWinograd);
  const auto expected = reference(loaded.model, x);
  const auto out = engine.forward(x);
  EXPECT_LE(relative_error(out, expected), 1e-3);
  EXPECT_GE(joints_within(out, expected, 0), 0.999);
}

TEST_P(EngineFixtures, Bf16IsCloseToF32) {
  if (!hg::engine::bf16_supported()) GTEST_SKIP() << "this CPU lacks AVX512-BF16";
  auto loaded = hg::io::load_model(std::string(HG_TEST_DATA) + "/fixtures/" + GetParam());
  const auto x = smooth_images(2, 64, 64, 8);
  const auto f32 = build(loaded.model, x, Precision::kF32, Algorithm::kDirect).forward(x);
  auto engine = build(loaded.model, x, Precision::kBf16, Algorithm::kAuto);
  EXPECT_LE(relative_error(engine.forward(x), f32), 3e-2) << engine.summary().layers;
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, EngineFixtures,
                         ::testing::Values("posenet_s1_f32_state_dict.pt",
                                           "posenet_s2_f64_checkpoint.pt",
                                           "bearpaw_hg_s2_b1_f64.pth.tar"),
                         [](const auto& info) {
                           return info.param.substr(0, info.param.find('.'));
                         });

/// Per heatmap of N×S×J×h×w: how far the maximum stands above the best value farther than 1 px
/// from it, as a fraction of the heatmap's range (0: a tie elsewhere, the arg-max is ambiguous).
at::Tensor peak_margins(const at::Tensor& heatmaps) {
  const int64_t h = heatmaps.size(3), w = heatmaps.size(4);
  const auto flat = heatmaps.flatten(0, 2).contiguous();
  auto margins = torch::empty({flat.size(0)}, torch::kDouble);
  const auto a = flat.accessor<float, 3>();
  for (int64_t k = 0; k < flat.size(0); ++k) {
    float best = a[k][0][0], low = best;
    int64_t by = 0, bx = 0;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        if (a[k][y][x] > best) best = a[k][y][x], by = y, bx = x;
        low = std::min(low, a[k][y][x]);
      }
    float second = low;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        if (std::abs(y - by) > 1 || std::abs(x - bx) > 1) second = std::max(second, a[k][y][x]);
    margins[k] = best > low ? (best - second) / (best - low) : 0.0;
  }
  return margins.view({heatmaps.size(0), heatmaps.size(1), heatmaps.size(2)});
}

// bf16 against the engine's own f32 (direct) result on 32 synthetic images. With 8 bits of
// mantissa, heatmap values move by about 1% of their range. A random-weight network's heatmaps
// often have several near-equal maxima far apart, whose arg-max any rounding flips (f32 Winograd
// flips some too), so the 1 px criterion is asked of the joints whose f32 peak is unambiguous:
// it exceeds everything farther than 1 px by at least 5% of the heatmap's range. The test also
// bounds the heatmap error and checks that such joints are not rare.
TEST(EngineBf16, DecodedJointsStayWithinOnePixelOfF32) {
  if (!hg::engine::bf16_supported())
    GTEST_SKIP() << "this CPU lacks AVX512-BF16 (avx512_core_bf16): bf16 mode is refused here";
  auto net = random_model(StackedHourglassOptions().stacks(2).features(64).depth(3), 11);
  const auto x = smooth_images(32, 64, 64, 12);
  const auto f32 = build(net, x, Precision::kF32, Algorithm::kDirect).forward(x);
  const auto clear = peak_margins(f32) >= 0.05;
  const double clear_fraction = clear.to(torch::kDouble).mean().item<double>();
  EXPECT_GE(clear_fraction, 0.3);  // 40% with this seed
  // kWinograd mixes f32 Winograd 3×3 layers (writing bf16) with bf16 1×1 layers.
  for (auto algorithm : {Algorithm::kDirect, Algorithm::kAuto, Algorithm::kWinograd}) {
    auto engine = build(net, x, Precision::kBf16, algorithm);
    EXPECT_GT(engine.summary().bf16, 0);
    const auto out = engine.forward(x);
    EXPECT_LE(relative_error(out, f32), 2e-2);  // 0.6% measured
    const auto close = (decode(out) - decode(f32)).abs().amax(-1) <= 1;
    const double within = close.masked_select(clear).to(torch::kDouble).mean().item<double>();
    EXPECT_GE(within, 0.99) << hg::engine::algorithm_name(algorithm) << ": of "
                            << clear.sum().item<int64_t>() << " unambiguous joints; "
                            << joints_within(out, f32, 1) << " of all joints";
    std::cout << "bf16 " << hg::engine::algorithm_name(algorithm) << ": " << within * 100 << "% of "
              << clear.sum().item<int64_t>() << " unambiguous joints within 1 px ("
              << joints_within(out, f32, 1) * 100 << "% of all " << clear.numel() << "); max error "
              << relative_error(out, f32) << " of max |f32|\n";
  }
}

// ONEDNN_MAX_CPU_ISA makes oneDNN act as on a CPU without AVX512-BF16 (it is read once per
// process, hence the tool in a child process).
TEST(EngineBf16, IsRefusedClearlyWhenOneDnnMayNotUseIt) {
  const std::string fixture = std::string(HG_TEST_DATA) + "/fixtures/posenet_s1_f32_state_dict";
  const std::string log = ::testing::TempDir() + "engine_bf16_refusal.log";
  const std::string command = "ONEDNN_MAX_CPU_ISA=AVX512_CORE " + std::string(HG_BINARY) +
                              " forward -w " + fixture + ".pt -i " + fixture + ".io.pt -o " +
                              ::testing::TempDir() + "unused.pt --backend engine --precision " +
                              "bf16 > " + log + " 2>&1";
  EXPECT_NE(std::system(command.c_str()), 0);
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("needs a CPU with AVX512-BF16"), std::string::npos) << text;
}

TEST(EngineBf16, IsRefusedClearlyWithoutAvx512Bf16) {
  if (hg::engine::bf16_supported()) GTEST_SKIP() << "this CPU has AVX512-BF16";
  auto net = random_model(StackedHourglassOptions().stacks(1).features(16).depth(1), 1);
  try {
    build(net, smooth_images(1, 16, 16, 1), Precision::kBf16, Algorithm::kDirect);
    FAIL() << "expected bf16 to be refused";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("AVX512-BF16"), std::string::npos) << e.what();
  }
}

/// The pre-activation kernel against its reference: batch 2 of 3 channel blocks, a pixel count
/// that does not divide into the kernel's chunks, negative values, NaN, and bf16 rounding ties.
TEST(EngineKernels, ScaleShiftReluEqualsItsReference) {
  for (const int64_t block : {16, 8}) {
    const hg::engine::BlockedShape shape{2 * 3, 3, 67, block};
    torch::manual_seed(5);
    auto x = torch::randn({shape.groups * shape.pixels * block}) * 3;
    auto s = torch::rand({3 * block}) + 0.5, t = torch::randn({3 * block});
    s[0] = 1.f;
    t[0] = 0.f;  // channel 0 passes x through: place exact bf16 ties there
    auto xa = x.accessor<float, 1>();
    const uint32_t ties[] = {0x3f808000u, 0x3f818000u, 0x41208000u};  // halfway between bf16s
    for (int i = 0; i < 3; ++i) std::memcpy(&xa[(i + 1) * block], &ties[i], sizeof(float));
    xa[5 * block] = std::nanf("");
    for (const bool bf16 : {false, true}) {
      if (bf16 && !hg::engine::bf16_supported()) continue;
      const auto type = bf16 ? torch::kInt16 : torch::kFloat;
      auto fast = torch::empty_like(x, type), ref = torch::empty_like(x, type);
      hg::engine::scale_shift_relu(shape, x.data_ptr<float>(), s.data_ptr<float>(),
                                   t.data_ptr<float>(), fast.data_ptr(), bf16);
      hg::engine::scale_shift_relu_reference(shape, x.data_ptr<float>(), s.data_ptr<float>(),
                                             t.data_ptr<float>(), ref.data_ptr(), bf16);
      EXPECT_TRUE(torch::equal(fast, ref)) << "block " << block << (bf16 ? " bf16" : " f32");
      if (bf16) {
        // Ties go to the even neighbour: 0x3f80|8000 down, 0x3f81|8000 up, 0x4120|8000 down.
        auto r = ref.accessor<int16_t, 1>();
        EXPECT_EQ(static_cast<uint16_t>(r[block]), 0x3f80);
        EXPECT_EQ(static_cast<uint16_t>(r[2 * block]), 0x3f82);
        EXPECT_EQ(static_cast<uint16_t>(r[3 * block]), 0x4120);
      } else {
        auto expected =
            torch::relu(x.view({2, 3, 67, block}) * s.view({3, 1, block}) + t.view({3, 1, block}))
                .flatten()
                .nan_to_num(0.);
        EXPECT_TRUE(torch::allclose(ref, expected, 1e-6, 1e-6));
        EXPECT_EQ(ref[5 * block].item<float>(), 0.f) << "NaN becomes 0";
      }
    }
  }
}

/// x viewed as N×C×H×W from its blocked layout (N·channel_blocks groups of H·W·block values).
torch::Tensor unblock(const torch::Tensor& x, int64_t n, int64_t blocks, int64_t block, int64_t h,
                      int64_t w) {
  return x.view({n, blocks, h, w, block})
      .permute({0, 1, 4, 2, 3})
      .reshape({n, blocks * block, h, w});
}

/// Two images of 3 channel blocks of `block` at 10×14, random values: the blocked shape and x.
struct BlockedInput {
  static constexpr int64_t n = 2, blocks = 3, h = 10, w = 14;
  hg::engine::BlockedShape shape;
  torch::Tensor x;
  explicit BlockedInput(int64_t block) : shape{n * blocks, blocks, h * w, block} {
    torch::manual_seed(block);
    x = torch::randn({shape.groups * h * w * block});
  }
};

/// The pass's second output: acc = x (+ upsampled low), in place or not, with the pass's spans
/// (64 pixels) starting inside rows (width 14), against its reference and LibTorch.
TEST(EngineKernels, ScaleShiftReluWritesTheSkipOutput) {
  constexpr int64_t n = BlockedInput::n, blocks = BlockedInput::blocks, h = BlockedInput::h,
                    w = BlockedInput::w;
  for (const int64_t block : {16, 8}) {
    const BlockedInput input(block);
    const auto& [shape, x] = input;
    const auto low = torch::randn({shape.groups * h * w / 4 * block});
    const auto s = torch::rand({blocks * block}) + 0.5, t = torch::randn({blocks * block});
    const auto expected_y = torch::relu(unblock(x, n, blocks, block, h, w) * s.view({1, -1, 1, 1}) +
                                        t.view({1, -1, 1, 1}));
    const auto upsampled = torch::upsample_nearest2d(unblock(low, n, blocks, block, h / 2, w / 2),
                                                     std::vector<int64_t>{h, w});
    for (const bool with_low : {false, true})
      for (const bool in_place : {false, true}) {
        if (in_place && !with_low) continue;  // the engine never asks for a copy onto itself
        auto y = torch::empty_like(x), y_ref = torch::empty_like(x);
        auto acc = in_place ? x.clone() : torch::full_like(x, std::nanf(""));
        auto acc_ref = in_place ? x.clone() : torch::full_like(x, std::nanf(""));
        const float* low_data = with_low ? low.data_ptr<float>() : nullptr;
        const hg::engine::SkipOutput skip{acc.data_ptr<float>(), low_data, w},
            skip_ref{acc_ref.data_ptr<float>(), low_data, w};
        const float* xs = in_place ? acc.data_ptr<float>() : x.data_ptr<float>();
        const float* xs_ref = in_place ? acc_ref.data_ptr<float>() : x.data_ptr<float>();
        hg::engine::scale_shift_relu(shape, xs, s.data_ptr<float>(), t.data_ptr<float>(),
                                     y.data_ptr(), false, &skip);
        hg::engine::scale_shift_relu_reference(shape, xs_ref, s.data_ptr<float>(),
                                               t.data_ptr<float>(), y_ref.data_ptr(), false,
                                               &skip_ref);
        const std::string what = "block " + std::to_string(block) + (with_low ? " +low" : "") +
                                 (in_place ? " in place" : "");
        EXPECT_TRUE(torch::equal(y, y_ref)) << what;
        EXPECT_TRUE(torch::equal(acc, acc_ref)) << what;
        EXPECT_TRUE(torch::allclose(unblock(y, n, blocks, block, h, w), expected_y, 1e-6, 1e-6))
            << what;
        const auto x_nchw = unblock(x, n, blocks, block, h, w);
        EXPECT_TRUE(torch::equal(unblock(acc, n, blocks, block, h, w),
                                 with_low ? x_nchw + upsampled : x_nchw))
            << what;
      }
    try {
      float dummy = 0;
      const hg::engine::SkipOutput odd{&dummy, &dummy, 7};
      hg::engine::scale_shift_relu(shape, &dummy, &dummy, &dummy, &dummy, false, &odd);
      FAIL() << "expected an odd width to be refused";
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("even width"), std::string::npos) << e.what();
    }
  }
}

/// The trunk's conversion to bfloat16 against LibTorch's (nearest, ties to even), with ties, NaN
/// and, with blocks of 8 and 133 pixels, spans of values that are not a multiple of the vector
/// width.
TEST(EngineKernels, ToBf16EqualsLibTorch) {
  for (const int64_t block : {16, 8}) {
    const hg::engine::BlockedShape shape{2 * 3, 3, 133, block};
    auto x = BlockedInput(block).x.narrow(0, 0, shape.groups * shape.pixels * block).clone();
    auto xa = x.accessor<float, 1>();
    const uint32_t ties[] = {0x3f808000u, 0x3f818000u, 0xc1208000u};  // halfway between bf16s
    for (int i = 0; i < 3; ++i) std::memcpy(&xa[17 * i + 3], &ties[i], sizeof(float));
    xa[100] = std::nanf("");
    auto y = torch::empty_like(x, torch::kInt16);
    hg::engine::to_bf16(shape, x.data_ptr<float>(), reinterpret_cast<uint16_t*>(y.data_ptr()));
    const auto expected = x.to(torch::kBFloat16);
    const auto finite = torch::isfinite(x);
    EXPECT_TRUE(torch::equal(y.view(torch::kBFloat16).masked_select(finite),
                             expected.masked_select(finite)))
        << "block " << block;
    EXPECT_TRUE(torch::isnan(y.view(torch::kBFloat16)[100]).item<bool>());
  }
}

/// The engine's 2×2 max-pooling against LibTorch's, both block sizes, with negative values.
TEST(EngineKernels, MaxPoolEqualsLibTorch) {
  using In = BlockedInput;
  for (const int64_t block : {16, 8}) {
    const In in(block);
    auto y = torch::full({in.x.numel() / 4}, std::nanf(""));
    hg::engine::max_pool_2x2(in.shape, In::w, in.x.data_ptr<float>(), y.data_ptr<float>());
    EXPECT_TRUE(torch::equal(
        unblock(y, In::n, In::blocks, block, In::h / 2, In::w / 2),
        torch::max_pool2d(unblock(in.x, In::n, In::blocks, block, In::h, In::w), {2, 2})))
        << "block " << block;
  }
}

TEST(EngineKernels, WinogradConvolutionMatchesItsDirectReference) {
  // Channels of one and several blocks and of a partial product column (80 = 64 + 16), sizes with
  // a partial register block of tiles (5×3 tiles), two images, fewer tiles than threads (4×4);
  // 48→80 at 72×52 (234 tiles, 4.3 MB transformed) runs fused, the others in bands of tiles.
  for (const hg::engine::WinogradShape shape :
       {hg::engine::WinogradShape{2, 32, 80, 20, 12}, hg::engine::WinogradShape{1, 16, 16, 4, 4},
        hg::engine::WinogradShape{1, 128, 128, 16, 16},
        hg::engine::WinogradShape{1, 48, 80, 72, 52}}) {
    if (!hg::engine::winograd_applicable(shape)) GTEST_SKIP() << "this CPU lacks AVX-512";
    torch::manual_seed(7);
    const auto src = torch::randn({shape.batch * shape.in * shape.height * shape.width});
    const auto weights = torch::randn({shape.in * 9 * shape.out}) / std::sqrt(9.0 * shape.in);
    const auto bias = torch::randn({shape.out});
    const int64_t out_size = shape.batch * shape.out * shape.height * shape.width;
    // With accumulate, dst starts as the skip the convolution is added onto.
    const auto skip = torch::randn({out_size});
    for (const hg::engine::ConvEpilogue epilogue :
         {hg::engine::ConvEpilogue{false, false}, hg::engine::ConvEpilogue{false, true},
          hg::engine::ConvEpilogue{true, true}}) {
      const bool relu = epilogue.relu;
      const auto start = [&] {
        return epilogue.accumulate ? skip.clone() : torch::full({out_size}, std::nanf(""));
      };
      auto ref = start();
      hg::engine::conv3x3_reference(shape, src.data_ptr<float>(), weights.data_ptr<float>(),
                                    bias.data_ptr<float>(), ref.data_ptr<float>(), epilogue);
      if (relu) EXPECT_EQ(ref.min().item<float>(), 0.f);
      const double scale = ref.abs().max().item<double>();
      for (const int threads : {1, 2, 3}) {
        auto fast = start();
        std::vector<float> scratch(hg::engine::winograd_scratch_floats(shape, threads));
        hg::engine::winograd_conv3x3(shape, src.data_ptr<float>(), weights.data_ptr<float>(),
                                     bias.data_ptr<float>(), fast.data_ptr<float>(), false,
                                     scratch.data(), scratch.size(), epilogue, threads);
        EXPECT_LT((fast - ref).abs().max().item<double>(), 1e-5 * scale)
            << shape.in << "->" << shape.out << " @" << shape.height << "x" << shape.width
            << (relu ? " relu" : "") << (epilogue.accumulate ? " accumulate" : "") << " on "
            << threads << " threads";
      }
      if (hg::engine::bf16_supported() && !epilogue.accumulate) {
        // bfloat16 output: the float32 result rounded to nearest, ties to even.
        std::vector<float> scratch(hg::engine::winograd_scratch_floats(shape, 2));
        auto f32 = torch::empty({out_size});
        auto bits = torch::empty({out_size}, torch::kInt16);
        for (const bool bf16 : {false, true})
          hg::engine::winograd_conv3x3(shape, src.data_ptr<float>(), weights.data_ptr<float>(),
                                       bias.data_ptr<float>(),
                                       bf16 ? bits.data_ptr() : f32.data_ptr(), bf16,
                                       scratch.data(), scratch.size(), epilogue, 2);
        EXPECT_TRUE(torch::equal(bits.view(torch::kBFloat16), f32.to(torch::kBFloat16)))
            << "bf16 output " << shape.in << "->" << shape.out;
      }
    }
  }
}

TEST(EngineKernels, DirectReferenceEqualsLibTorch) {
  const hg::engine::WinogradShape shape{1, 16, 32, 6, 10};
  torch::manual_seed(8);
  const auto x = torch::randn({1, shape.in, shape.height, shape.width});
  const auto w = torch::randn({shape.out, shape.in, 3, 3}), b = torch::randn({shape.out});
  // nChw16c: N × C/16 × H × W × 16; weights [in][3][3][out].
  const auto blocked = [](const at::Tensor& t) {
    return t.view({t.size(0), t.size(1) / 16, 16, t.size(2), t.size(3)})
        .permute({0, 1, 3, 4, 2})
        .contiguous();
  };
  const auto src = blocked(x), weights = w.permute({1, 2, 3, 0}).contiguous();
  auto dst = torch::empty({1, shape.out / 16, shape.height, shape.width, 16});
  hg::engine::conv3x3_reference(shape, src.data_ptr<float>(), weights.data_ptr<float>(),
                                b.data_ptr<float>(), dst.data_ptr<float>(), {});
  EXPECT_TRUE(torch::allclose(dst, blocked(torch::conv2d(x, w, b, 1, 1)), 1e-4, 1e-4));
}

TEST(Engine, RejectsOtherInputShapesAndBadOptions) {
  auto net = random_model(StackedHourglassOptions().stacks(1).features(16).depth(1), 2);
  auto engine = build(net, smooth_images(1, 16, 16, 1), Precision::kF32, Algorithm::kDirect);
  EXPECT_THROW(engine.forward(torch::rand({2, 3, 16, 16})), c10::Error);
  EXPECT_THROW(engine.forward(torch::rand({1, 3, 16, 16}, torch::kDouble)), c10::Error);
  EngineOptions o;
  o.height = 20;
  EXPECT_THROW(Engine::build(*net, o), c10::Error);
}

}  // namespace

// ---- Precision::kAuto: the per-layer choice between f32 direct, f32 Winograd and bf16 direct. A
// fake timer decides (no timed assertions); the plans it leads to must equal the forced modes'.
namespace {

using hg::engine::ConvMethod;
using hg::engine::LayerCandidates;
using hg::engine::pick_method;

StackedHourglass small_model() {
  return random_model(StackedHourglassOptions().stacks(2).features(64).depth(2), 5);
}

EngineOptions options(Precision p, Algorithm a) {
  EngineOptions o;
  o.precision = p;
  o.algorithm = a;
  o.height = o.width = 64;
  return o;
}

/// A timer under which `winner` takes 1 ms and every other method 2 ms; it records what it saw.
struct FakeTimer {
  ConvMethod winner;
  std::shared_ptr<std::vector<LayerCandidates>> seen =
      std::make_shared<std::vector<LayerCandidates>>();
  std::vector<double> operator()(const LayerCandidates& c) const {
    seen->push_back(c);
    std::vector<double> ms;
    for (auto m : c.methods) ms.push_back(m == winner ? 1.0 : 2.0);
    return ms;
  }
};

// Whether auto has more than float32 direct to choose from on this CPU (AVX-512 brings the
// Winograd kernel, AVX512-BF16 the bf16 convolutions).
bool engine_has_a_choice() {
  return hg::engine::winograd_supported() || hg::engine::bf16_supported();
}
constexpr const char* kNoChoice =
    "this CPU lacks AVX-512: auto's only method is float32 direct, so nothing is timed or cached";

}  // namespace

TEST(EngineAuto, PickMethodKeepsTheReferenceUnlessAnotherIsClearlyFaster) {
  using M = ConvMethod;
  const std::vector<M> all{M::kF32Direct, M::kF32Winograd, M::kBf16Direct};
  EXPECT_EQ(pick_method(all, {10, 9.6, 9.7}), M::kF32Direct);  // under 5% faster
  EXPECT_EQ(pick_method(all, {10, 9.0, 6.0}), M::kBf16Direct);
  EXPECT_EQ(pick_method(all, {10, 5.0, 6.0}), M::kF32Winograd);
  EXPECT_EQ(pick_method(all, {10, 9.5, 20}), M::kF32Winograd);  // just over the 5% gain
  EXPECT_EQ(pick_method({M::kBf16Direct, M::kF32Winograd}, {4, 5}), M::kBf16Direct);
  EXPECT_EQ(pick_method({M::kF32Direct}, {3}), M::kF32Direct);
  EXPECT_ERROR_HAS(pick_method(all, {1, 2}), "pick_method: 2 times for 3 methods");
}

TEST(EngineAuto, TheTimerRotatesWhichCandidateRunsFirstAndKeepsEachOnesBest) {
  std::vector<int> order;
  LayerCandidates c{"layer",
                    "layer",
                    {ConvMethod::kF32Direct, ConvMethod::kF32Winograd, ConvMethod::kBf16Direct},
                    {}};
  for (int k = 0; k < 3; ++k) c.runs.push_back([&order, k] { order.push_back(k); });
  const auto ms = time_layer_candidates(c);
  ASSERT_EQ(ms.size(), 3u);
  for (const double t : ms) EXPECT_GE(t, 0);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 1, 2, 0, 2, 0, 1, 0, 1, 2, 1, 2, 0, 2, 0, 1}));
  // So each candidate runs after each other one in the timed rounds (1–5).
  for (int k = 0; k < 3; ++k)
    for (int before = 0; before < 3; ++before) {
      if (before == k) continue;
      bool seen = false;
      for (size_t i = 4; i < order.size(); ++i) seen |= order[i] == k && order[i - 1] == before;
      EXPECT_TRUE(seen) << k << " after " << before;
    }
}

// The default is what is fastest on the CPU at hand, measured (issue 19).
TEST(EngineAuto, IsTheDefaultAndOffersBf16OnlyWhereTheCpuHasIt) {
  EXPECT_EQ(EngineOptions().precision, Precision::kAuto);
  EXPECT_EQ(EngineOptions().algorithm, Algorithm::kAuto);
  auto net = small_model();
  FakeTimer timer{ConvMethod::kF32Direct};
  auto o = options(Precision::kAuto, Algorithm::kAuto);
  o.timer = timer;
  Engine::build(*net, o);
  // Without AVX-512, float32 direct is the only method: nothing is timed.
  ASSERT_EQ(timer.seen->empty(), !engine_has_a_choice());
  std::set<ConvMethod> offered;
  for (const auto& c : *timer.seen) {
    ASSERT_EQ(c.methods.size(), c.runs.size()) << c.layer;
    EXPECT_EQ(c.methods.front(), ConvMethod::kF32Direct) << c.layer;
    offered.insert(c.methods.begin(), c.methods.end());
  }
  EXPECT_EQ(offered.count(ConvMethod::kBf16Direct) > 0, hg::engine::bf16_supported());
  EXPECT_EQ(offered.count(ConvMethod::kF32Winograd) > 0, hg::engine::winograd_supported());
}

// Engines built with one remembering timer (every engine of a process: process_layer_timer) ask
// it once per layer and so choose alike: a server's engine and a predictor's give the same output.
TEST(EngineAuto, ARememberingTimerIsAskedOncePerLayerAndBuildsChooseAlike) {
  if (!engine_has_a_choice()) GTEST_SKIP() << kNoChoice;
  auto net = small_model();
  const auto x = smooth_images(1, 64, 64, 3);
  int asked = 0;
  auto o = options(Precision::kAuto, Algorithm::kAuto);
  o.timer = hg::engine::remembering([&asked](const LayerCandidates& c) {
    ++asked;
    // A timer that would decide differently every time it is asked.
    std::vector<double> ms;
    for (size_t k = 0; k < c.methods.size(); ++k)
      ms.push_back(k == static_cast<size_t>(asked) % c.methods.size() ? 1 : 2);
    return ms;
  });
  auto first = Engine::build(*net, o);
  const int first_asked = asked;
  ASSERT_GT(first_asked, 0);
  auto second = Engine::build(*net, o);
  EXPECT_EQ(asked, first_asked);
  EXPECT_EQ(first.summary().layers, second.summary().layers);
  EXPECT_TRUE(torch::equal(first.forward(x), second.forward(x)));
  // Another batch has the same layer keys: not timed again, the same choices, and each image's
  // output is the batch-1 engine's.
  o.batch = 2;
  auto pair = Engine::build(*net, o);
  EXPECT_EQ(asked, first_asked);
  EXPECT_EQ(pair.summary().layers, first.summary().layers);
  const auto both = pair.forward(torch::cat({x, x.flip({3})}));
  EXPECT_TRUE(torch::allclose(both[0], first.forward(x)[0], 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(both[1], first.forward(x.flip({3}))[0], 1e-5, 1e-6));
}

// The choices kept in a cache file serve another process's builds: a second remembering timer
// (as a new process has) on the same file is never asked, and its engine gives the same output.
TEST(EngineAuto, TheChoiceCacheFileServesTheNextProcess) {
  if (!engine_has_a_choice()) GTEST_SKIP() << kNoChoice;
  auto net = small_model();
  const auto x = smooth_images(1, 64, 64, 5);
  const auto cache = (hg::test::scratch_dir() / "engine.json").string();
  const auto build = [&](ConvMethod winner, int& asked) {
    auto o = options(Precision::kAuto, Algorithm::kAuto);
    o.timer = hg::engine::remembering(
        [&asked, fake = FakeTimer{winner}](const LayerCandidates& c) {
          ++asked;
          return fake(c);
        },
        cache);
    return Engine::build(*net, o);
  };
  int first_asked = 0, second_asked = 0;
  auto first =
      build(hg::engine::bf16_supported() ? ConvMethod::kBf16Direct : ConvMethod::kF32Winograd,
            first_asked);
  ASSERT_GT(first_asked, 0);
  ASSERT_TRUE(std::filesystem::exists(cache));
  auto second = build(ConvMethod::kF32Direct, second_asked);  // would choose otherwise if asked
  EXPECT_EQ(second_asked, 0);
  EXPECT_EQ(first.summary().winograd, second.summary().winograd);
  EXPECT_EQ(first.summary().bf16, second.summary().bf16);
  EXPECT_TRUE(torch::equal(first.forward(x), second.forward(x)));
  EXPECT_EQ(
      hg::engine::default_choice_cache().substr(0, std::strlen(std::getenv("XDG_CACHE_HOME"))),
      std::getenv("XDG_CACHE_HOME"));
}

TEST(EngineAuto, TheTimersChoiceGivesTheForcedModesPlan) {
  auto net = small_model();
  const auto x = smooth_images(1, 64, 64, 9);
  const auto f32 = Engine::build(*net, options(Precision::kF32, Algorithm::kDirect)).forward(x);
  struct Case {
    ConvMethod winner;
    Precision precision;
    Algorithm algorithm;
    bool available;
  };
  for (const Case& c : {Case{ConvMethod::kF32Direct, Precision::kF32, Algorithm::kDirect, true},
                        Case{ConvMethod::kF32Winograd, Precision::kF32, Algorithm::kWinograd,
                             hg::engine::winograd_supported()},
                        Case{ConvMethod::kBf16Direct, Precision::kBf16, Algorithm::kDirect,
                             hg::engine::bf16_supported()}}) {
    if (!c.available) continue;
    auto o = options(Precision::kAuto, Algorithm::kAuto);
    o.timer = FakeTimer{c.winner};
    auto chosen = Engine::build(*net, o);
    auto forced = Engine::build(*net, options(c.precision, c.algorithm));
    const auto name = hg::engine::method_name(c.winner);
    EXPECT_EQ(chosen.summary().winograd, forced.summary().winograd) << name;
    EXPECT_EQ(chosen.summary().bf16, forced.summary().bf16) << name;
    EXPECT_EQ(chosen.summary().layers, forced.summary().layers) << name;
    const auto out = chosen.forward(x);
    EXPECT_TRUE(torch::equal(out, forced.forward(x))) << name;
    // The bf16 mode's bound against f32 (EngineShapes.Bf16IsCloseToF32).
    EXPECT_LE(relative_error(out, f32), 3e-2) << name;
  }
}
