// Precision::kAuto: the per-layer choice between f32 direct, f32 Winograd and bf16 direct. A fake
// timer decides here (no timed assertions); the plans it leads to must equal the forced modes'.
#include "hg/engine/engine.h"
#include "hg/model/hourglass.h"

#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

namespace {

using hg::engine::Algorithm;
using hg::engine::ConvMethod;
using hg::engine::Engine;
using hg::engine::EngineOptions;
using hg::engine::LayerCandidates;
using hg::engine::pick_method;
using hg::engine::Precision;
using hg::model::StackedHourglass;
using hg::model::StackedHourglassOptions;

StackedHourglass small_model() {
  torch::manual_seed(5);
  StackedHourglass net(StackedHourglassOptions().stacks(2).features(64).depth(2));
  net->eval();
  return net;
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

at::Tensor image() {
  torch::manual_seed(9);
  return torch::rand({1, 3, 64, 64});
}

}  // namespace

TEST(EngineAuto, PickMethodKeepsTheReferenceUnlessAnotherIsClearlyFaster) {
  using M = ConvMethod;
  const std::vector<M> all{M::kF32Direct, M::kF32Winograd, M::kBf16Direct};
  EXPECT_EQ(pick_method(all, {10, 9.6, 9.7}), M::kF32Direct);  // under 5% faster
  EXPECT_EQ(pick_method(all, {10, 9.0, 6.0}), M::kBf16Direct);
  EXPECT_EQ(pick_method(all, {10, 5.0, 6.0}), M::kF32Winograd);
  EXPECT_EQ(pick_method(all, {10, 9.5, 20}), M::kF32Winograd);  // exactly the 5% gain
  EXPECT_EQ(pick_method({M::kBf16Direct, M::kF32Winograd}, {4, 5}), M::kBf16Direct);
  EXPECT_EQ(pick_method({M::kF32Direct}, {3}), M::kF32Direct);
  EXPECT_ERROR_HAS(pick_method(all, {1, 2}), "pick_method: 2 times for 3 methods");
}

TEST(EngineAuto, IsTheDefaultAndOffersBf16OnlyWhereTheCpuHasIt) {
  EXPECT_EQ(EngineOptions().precision, Precision::kAuto);
  auto net = small_model();
  FakeTimer timer{ConvMethod::kF32Direct};
  auto o = options(Precision::kAuto, Algorithm::kAuto);
  o.timer = timer;
  Engine::build(*net, o);
  ASSERT_FALSE(timer.seen->empty());
  std::set<ConvMethod> offered;
  for (const auto& c : *timer.seen) {
    ASSERT_EQ(c.methods.size(), c.runs.size()) << c.layer;
    EXPECT_EQ(c.methods.front(), ConvMethod::kF32Direct) << c.layer;
    offered.insert(c.methods.begin(), c.methods.end());
  }
  EXPECT_EQ(offered.count(ConvMethod::kBf16Direct) > 0, hg::engine::bf16_supported());
  EXPECT_EQ(offered.count(ConvMethod::kF32Winograd) > 0, hg::engine::winograd_supported());
}

TEST(EngineAuto, TheTimersChoiceGivesTheForcedModesPlan) {
  auto net = small_model();
  const auto x = image();
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
    EXPECT_LE((out - f32).abs().max().item<double>() / f32.abs().max().item<double>(), 3e-2)
        << name;
  }
}
