#include "hg/model/hourglass.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

using hg::model::StackedHourglass;
using hg::model::StackedHourglassOptions;

TEST(Model, PaperModelHasTheOriginalParameterCount) {
  // 8 stacks, F=256, 1 residual per block, 16 joints: the count of the original Torch model.
  StackedHourglass net(StackedHourglassOptions().stacks(8));
  EXPECT_EQ(net->parameter_count(), 25434112);
  EXPECT_NEAR(net->macs(256, 256) / 1e9, 27.4, 0.05);
}

TEST(Model, ParameterCountsOfOtherStackCounts) {
  // Per stack: hourglass 2,788,864 + head 284,944; merges 70,144; stem 352,640.
  EXPECT_EQ(StackedHourglass(StackedHourglassOptions().stacks(1))->parameter_count(), 3426448);
  EXPECT_EQ(StackedHourglass(StackedHourglassOptions().stacks(2))->parameter_count(), 6570400);
  EXPECT_EQ(StackedHourglass(StackedHourglassOptions().stacks(4))->parameter_count(), 12858304);
}

struct ShapeCase {
  int64_t stacks, features, depth, residuals, joints, h, w;
};

class ModelShapes : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(ModelShapes, OutputIsNxSxJxH4xW4) {
  const auto c = GetParam();
  StackedHourglass net(StackedHourglassOptions()
                           .stacks(c.stacks)
                           .features(c.features)
                           .depth(c.depth)
                           .residuals(c.residuals)
                           .joints(c.joints));
  net->eval();
  torch::NoGradGuard g;
  auto y = net->forward(torch::rand({2, 3, c.h, c.w}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, c.stacks, c.joints, c.h / 4, c.w / 4}));
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
}

INSTANTIATE_TEST_SUITE_P(Configs, ModelShapes,
                         ::testing::Values(ShapeCase{1, 32, 4, 1, 16, 64, 64},
                                           ShapeCase{2, 16, 4, 2, 16, 128, 64},
                                           ShapeCase{3, 16, 2, 1, 11, 48, 32},
                                           ShapeCase{2, 8, 1, 3, 17, 8, 16}),
                         [](const ::testing::TestParamInfo<ShapeCase>& info) {
                           const auto& c = info.param;
                           return "s" + std::to_string(c.stacks) + "f" +
                                  std::to_string(c.features) + "d" + std::to_string(c.depth) + "r" +
                                  std::to_string(c.residuals) + "j" + std::to_string(c.joints) +
                                  "_" + std::to_string(c.h) + "x" + std::to_string(c.w);
                         });

TEST(Model, RejectsInputSizesThatAreNotMultiplesOf4TimesTwoToTheDepth) {
  StackedHourglass net(StackedHourglassOptions().stacks(1).features(8));
  try {
    net->forward(torch::rand({1, 3, 100, 64}));
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be a positive multiple of 64"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(net->forward(torch::rand({1, 1, 64, 64})), c10::Error);
}

TEST(Model, RejectsInvalidOptions) {
  EXPECT_THROW(StackedHourglass(StackedHourglassOptions().stacks(0)), c10::Error);
  EXPECT_THROW(StackedHourglass(StackedHourglassOptions().stacks(17)), c10::Error);
  EXPECT_THROW(StackedHourglass(StackedHourglassOptions().features(7)), c10::Error);
}

TEST(Model, CudaForwardMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "LibTorch has no CUDA device here";
  // cuDNN may use TF32 on Ampere and later, which rounds to 10 mantissa bits; compare in full
  // float32 precision.
  at::globalContext().setAllowTF32CuDNN(false);
  StackedHourglass net(StackedHourglassOptions().stacks(2).features(32));
  net->eval();
  torch::NoGradGuard g;
  auto x = torch::rand({2, 3, 128, 128});
  auto cpu = net->forward(x);
  net->to(torch::kCUDA);
  auto gpu = net->forward(x.cuda()).cpu();
  EXPECT_LE((cpu - gpu).abs().max().item<double>(), 1e-3 * cpu.abs().max().item<double>());
}
