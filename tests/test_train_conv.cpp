// Training's Winograd 3×3 convolution (hg/engine/train_conv.h) against LibTorch's: values and the
// gradients of input, weights and bias; the per-shape choice with a fake timer; the model's hook.
#include "hg/engine/train_conv.h"
#include "hg/model/hourglass.h"
#include "hg/runtime/autocast.h"

#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace {

using hg::engine::Algorithm;
using hg::engine::ConvMethod;
using hg::engine::LayerCandidates;
using hg::engine::TrainConv3x3;

double max_abs(const at::Tensor& t) {
  return t.abs().max().item<double>();
}

/// |a - b| over the largest |b|.
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return max_abs(a - b) / max_abs(b);
}

struct Grads {
  at::Tensor y, x, w, b;
};

/// y = conv(x, w) + b by `conv` and the gradients of sum(y ⊙ r) for a fixed random r.
template <typename Conv>
Grads run(const at::Tensor& x0, const at::Tensor& w0, const at::Tensor& b0, Conv conv) {
  auto x = x0.detach().clone().requires_grad_(true);
  auto w = w0.detach().clone().requires_grad_(true);
  auto b = b0.detach().clone().requires_grad_(true);
  auto y = conv(x, w, b);
  torch::manual_seed(7);
  (y * torch::randn(y.sizes())).sum().backward();
  return {y.detach(), x.grad(), w.grad(), b.grad()};
}

struct ConvCase {
  int64_t batch, in, out, height, width;
  bool channels_last;
};

class TrainWinograd : public ::testing::TestWithParam<ConvCase> {};

TEST_P(TrainWinograd, ValuesAndGradientsEqualLibTorchs) {
  const auto p = GetParam();
  torch::manual_seed(1);
  auto x = torch::randn({p.batch, p.in, p.height, p.width});
  if (p.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  const auto w = torch::randn({p.out, p.in, 3, 3}) / std::sqrt(9.0 * p.in);
  const auto b = torch::randn({p.out});
  if (!hg::engine::winograd_trainable(x, p.out))
    GTEST_SKIP() << "the engine's Winograd kernel needs AVX-512";
  const auto expected =
      run(x, w, b, [](auto& x, auto& w, auto& b) { return torch::conv2d(x, w, b, 1, 1); });
  const auto got = run(x, w, b, hg::engine::winograd_conv3x3_train);
  EXPECT_LE(relative_error(got.y, expected.y), 1e-5);
  EXPECT_LE(relative_error(got.x, expected.x), 1e-5);
  EXPECT_LE(relative_error(got.w, expected.w), 1e-5);
  EXPECT_LE(relative_error(got.b, expected.b), 1e-5);
  EXPECT_EQ(got.y.suggest_memory_format(), x.suggest_memory_format());
  EXPECT_EQ(got.x.sizes(), x.sizes());
}

INSTANTIATE_TEST_SUITE_P(Shapes, TrainWinograd,
                         ::testing::Values(ConvCase{2, 32, 48, 8, 12, true},
                                           ConvCase{1, 16, 16, 4, 4, false},
                                           ConvCase{3, 64, 32, 16, 8, true}),
                         [](const ::testing::TestParamInfo<ConvCase>& info) {
                           const auto& p = info.param;
                           return "b" + std::to_string(p.batch) + "_" + std::to_string(p.in) +
                                  "to" + std::to_string(p.out) + "_" + std::to_string(p.height) +
                                  "x" + std::to_string(p.width) +
                                  (p.channels_last ? "_nhwc" : "_nchw");
                         });

TEST(TrainWinograd, RefusesShapesItCannotCompute) {
  const auto x = torch::randn({1, 24, 8, 8});
  const auto w = torch::randn({16, 24, 3, 3});
  EXPECT_FALSE(hg::engine::winograd_trainable(x, 16));
  EXPECT_ERROR_HAS(hg::engine::winograd_conv3x3_train(x, w, torch::zeros({16})),
                   "the engine's Winograd kernel cannot compute a 3x3 convolution of [1, 24, 8, "
                   "8] (Float) to 16 channels here");
}

TEST(TrainConvAuto, TheTimerDecidesPerShapeOnce) {
  if (!hg::engine::winograd_supported())
    GTEST_SKIP() << "the engine's Winograd kernel needs AVX-512";
  // The fake timer finds Winograd twice as fast at 8×8 and slower at 4×4.
  std::vector<std::string> asked;
  TrainConv3x3 conv(Algorithm::kAuto, [&](const LayerCandidates& c) {
    asked.push_back(c.layer);
    EXPECT_EQ(c.methods,
              (std::vector<ConvMethod>{ConvMethod::kF32Direct, ConvMethod::kF32Winograd}));
    for (const auto& run : c.runs) run();
    return c.layer.find("@8x8") != std::string::npos ? std::vector<double>{2.0, 1.0}
                                                     : std::vector<double>{1.0, 1.5};
  });
  const auto w = torch::randn({16, 16, 3, 3}), b = torch::zeros({16});
  for (int i = 0; i < 2; ++i) {
    conv(torch::randn({2, 16, 8, 8}), w, b);
    conv(torch::randn({2, 16, 4, 4}), w, b);
  }
  conv(torch::randn({2, 24, 8, 8}), torch::randn({16, 24, 3, 3}), b);  // not applicable
  EXPECT_EQ(asked,
            (std::vector<std::string>{"16->16 3x3 @8x8 batch 2", "16->16 3x3 @4x4 batch 2"}));
  const auto choices = conv.choices();
  ASSERT_EQ(choices.size(), 2u);
  EXPECT_EQ(choices.at("16->16 3x3 @8x8 batch 2").method, ConvMethod::kF32Winograd);
  EXPECT_EQ(choices.at("16->16 3x3 @4x4 batch 2").method, ConvMethod::kF32Direct);
  EXPECT_EQ(choices.at("16->16 3x3 @4x4 batch 2").ms, (std::vector<double>{1.0, 1.5}));
}

TEST(Bf16Autocast, IsOnInItsScopeOnlyAndOnlyWhenAsked) {
  EXPECT_FALSE(hg::runtime::autocast_enabled(at::kCPU));
  {
    hg::runtime::Bf16Autocast off(false, at::kCPU);
    EXPECT_FALSE(hg::runtime::autocast_enabled(at::kCPU));
  }
  {
    hg::runtime::Bf16Autocast on(true, at::kCPU);
    EXPECT_TRUE(hg::runtime::autocast_enabled(at::kCPU));
    EXPECT_EQ(torch::mm(torch::ones({2, 2}), torch::ones({2, 2})).scalar_type(), at::kBFloat16);
  }
  EXPECT_FALSE(hg::runtime::autocast_enabled(at::kCPU));
  EXPECT_EQ(torch::mm(torch::ones({2, 2}), torch::ones({2, 2})).scalar_type(), at::kFloat);
}

TEST(TrainConvAuto, ForcedModesAndAutocastNeedNoTimer) {
  if (!hg::engine::winograd_supported())
    GTEST_SKIP() << "the engine's Winograd kernel needs AVX-512";
  const auto fail = [](const LayerCandidates& c) -> std::vector<double> {
    ADD_FAILURE() << "timed " << c.layer;
    return {1.0, 1.0};
  };
  const auto x = torch::randn({1, 16, 8, 8}), w = torch::randn({16, 16, 3, 3}),
             b = torch::zeros({16});
  TrainConv3x3 winograd(Algorithm::kWinograd, fail);
  winograd(x, w, b);
  EXPECT_EQ(winograd.choices().at("16->16 3x3 @8x8 batch 1").method, ConvMethod::kF32Winograd);
  TrainConv3x3 direct(Algorithm::kDirect, fail);
  EXPECT_TRUE(torch::equal(direct(x, w, b), torch::conv2d(x, w, b, 1, 1)));
  EXPECT_TRUE(direct.choices().empty());
  TrainConv3x3 under_autocast(Algorithm::kAuto, fail);
  at::Tensor y;
  {
    hg::runtime::Bf16Autocast autocast(true, at::kCPU);
    y = under_autocast(x, w, b);
  }
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);  // LibTorch's convolution, cast by autocast
  EXPECT_TRUE(under_autocast.choices().empty());
}

TEST(TrainConvAuto, NamesRoundTripAndABadOneIsNamed) {
  for (auto a : {Algorithm::kAuto, Algorithm::kDirect, Algorithm::kWinograd})
    EXPECT_EQ(hg::engine::parse_algorithm(hg::engine::algorithm_name(a)), a);
  EXPECT_ERROR_HAS(hg::engine::parse_algorithm("fast"),
                   "the 3x3 convolution algorithm must be auto, direct or winograd, got 'fast'");
}

TEST(ModelConv3x3Hook, ComputesEveryResidualsThreeByThree) {
  torch::manual_seed(3);
  hg::model::StackedHourglass net(
      hg::model::StackedHourglassOptions().stacks(1).features(32).depth(1).stem1(16).stem2(16));
  net->eval();
  const auto x = torch::rand({1, 3, 32, 32});
  const auto expected = net->forward(x);
  int calls = 0;
  net->set_conv3x3([&](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
    ++calls;
    return torch::conv2d(x, w, b, 1, 1);
  });
  EXPECT_TRUE(torch::equal(net->forward(x), expected));
  int residuals = 0;
  for (const auto& m : net->modules()) residuals += m->as<hg::model::ResidualImpl>() != nullptr;
  EXPECT_EQ(calls, residuals);
  net->set_conv3x3({});
  calls = 0;
  net->forward(x);
  EXPECT_EQ(calls, 0);
}

}  // namespace
