// amp=auto's probe: the decision under a fake timer (no timed assertions), the cache, and what a
// run records of it.
#include "hg/engine/engine.h"
#include "hg/runtime/machine_cache.h"
#include "hg/train/amp_probe.h"
#include "hg/train/trainer.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using hg::train::AmpChoice;
using hg::train::prefer_bf16;
using hg::train::probe_amp;

namespace {

// Steps of a fixed length per precision; counts the steps of each.
struct FakeSteps {
  double f32_s, bf16_s;
  int calls[2] = {0, 0};
  std::function<void(bool)> step() {
    return [this](bool bf16) { ++calls[bf16]; };
  }
  hg::train::ProbeTimer timer() {
    return [this](bool bf16, const std::function<void()>& run) {
      run();
      return bf16 ? bf16_s : f32_s;
    };
  }
};

}  // namespace

TEST(AmpProbe, Bf16NeedsAClearGain) {
  EXPECT_TRUE(prefer_bf16(0.100, 0.090));
  EXPECT_TRUE(prefer_bf16(0.1031, 0.100));  // just over kAmpGain
  EXPECT_FALSE(prefer_bf16(0.100, 0.099));  // 1%: stays float32
  EXPECT_FALSE(prefer_bf16(0.100, 0.140));  // the CPU: bf16 slower
  EXPECT_FALSE(prefer_bf16(0.100, 0));      // not measured
}

TEST(AmpProbe, AFakeTimerDecidesAfterOneUntimedStepOfEach) {
  FakeSteps fast_bf16{0.20, 0.10};
  const AmpChoice a = probe_amp(fast_bf16.step(), 3, fast_bf16.timer());
  EXPECT_TRUE(a.bf16);
  EXPECT_EQ(a.source, "probe");
  EXPECT_DOUBLE_EQ(a.f32_s, 0.20);
  EXPECT_DOUBLE_EQ(a.bf16_s, 0.10);
  EXPECT_EQ(fast_bf16.calls[0], 4);
  EXPECT_EQ(fast_bf16.calls[1], 4);

  FakeSteps slow_bf16{0.10, 0.13};
  EXPECT_FALSE(probe_amp(slow_bf16.step(), 2, slow_bf16.timer()).bf16);
  EXPECT_EQ(slow_bf16.calls[0], 3);
}

TEST(AmpProbe, TheBestOfTheRoundsCounts) {
  // bf16's first timed round was slowed by another process; its best is what decides.
  int round = 0;
  const auto timer = [&](bool bf16, const std::function<void()>&) {
    return bf16 ? (round++ == 0 ? 0.5 : 0.08) : 0.1;
  };
  const auto a = probe_amp([](bool) {}, 3, timer);
  EXPECT_TRUE(a.bf16);
  EXPECT_DOUBLE_EQ(a.bf16_s, 0.08);
}

TEST(AmpProbe, CacheRoundTripsPerKey) {
  const auto path = (hg::test::scratch_dir() / "sub" / "amp.json").string();
  EXPECT_FALSE(hg::train::cached_amp(path, "k1"));  // no file yet
  AmpChoice c;
  c.bf16 = true;
  c.f32_s = 0.2;
  c.bf16_s = 0.1;
  hg::train::store_amp(path, "k1", c);
  c.bf16 = false;
  hg::train::store_amp(path, "k2", c);
  const auto k1 = hg::train::cached_amp(path, "k1");
  ASSERT_TRUE(k1);
  EXPECT_TRUE(k1->bf16);
  EXPECT_EQ(k1->source, "cache");
  EXPECT_NEAR(k1->f32_s, 0.2, 1e-12);
  ASSERT_TRUE(hg::train::cached_amp(path, "k2"));
  EXPECT_FALSE(hg::train::cached_amp(path, "k2")->bf16);
  EXPECT_FALSE(hg::train::cached_amp(path, "k3"));
  EXPECT_FALSE(hg::train::cached_amp("", "k1"));  // caching off
  std::ofstream(path) << "{ not json";
  EXPECT_FALSE(hg::train::cached_amp(path, "k1"));
  hg::train::store_amp(path, "k1", c);  // a corrupt cache is replaced
  EXPECT_TRUE(hg::train::cached_amp(path, "k1"));
}

TEST(MachineCache, TheCpuIsNamedWithItsFamilyModelAndStepping) {
  // Two cores a virtual machine names alike ("AMD EPYC": a Zen 3 and a Zen 4) get apart keys.
  std::istringstream zen4(
      "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
      "model name\t: AMD EPYC\nstepping\t: 1\n\nprocessor\t: 1\nmodel name\t: other\n");
  EXPECT_EQ(hg::runtime::cpu_identity(zen4), "AMD EPYC (family 25 model 17 stepping 1)");
  std::istringstream partial("model name\t: Some CPU\ncpu family\t: 6\n");
  EXPECT_EQ(hg::runtime::cpu_identity(partial), "Some CPU (family 6 model ? stepping ?)");
  std::istringstream none("processor\t: 0\n");
  EXPECT_EQ(hg::runtime::cpu_identity(none), "unknown cpu");
}

TEST(AmpProbe, CacheKeyNamesTheCpuAndLibTorch) {
  const auto key = hg::train::amp_cache_key("shape");
  EXPECT_EQ(key.rfind(hg::runtime::cpu_identity() + " | libtorch ", 0), 0u) << key;
  EXPECT_EQ(key.substr(key.size() - 8), " | shape");
  const std::string old = std::getenv("XDG_CACHE_HOME") ? std::getenv("XDG_CACHE_HOME") : "";
  setenv("XDG_CACHE_HOME", "/x/cache", 1);
  EXPECT_EQ(hg::train::default_amp_cache(), "/x/cache/hourglass/amp.json");
  setenv("XDG_CACHE_HOME", old.c_str(), 1);
}

TEST(AmpProbe, ARunRecordsItsChoiceAndTheNextOneReadsTheCache) {
  hg::train::TrainConfig c;
  c.model =
      hg::model::StackedHourglassOptions().stacks(1).features(16).depth(1).stem1(16).stem2(16);
  c.input_size = 32;
  c.dataset = "synthetic:16:1";
  c.batch_size = 8;
  c.epochs = 1;
  c.optimizer = hg::train::Optimizer::kAdam;
  c.threads = 2;
  c.loader_threads = 1;
  c.amp = hg::train::Amp::kAuto;
  const auto dir = hg::test::scratch_dir();
  c.amp_cache = (dir / "amp.json").string();
  const bool has_bf16 = hg::engine::bf16_supported();
  for (const std::string expected : {"probe", "cache"}) {
    const auto run = (dir / ("run_" + expected)).string();
    hg::train::Trainer(c, run).run();
    const auto config = hg::test::read_json(run + "/config.json");
    ASSERT_TRUE(config.contains("amp_probe")) << config.dump();
    EXPECT_EQ(config["amp_probe"]["source"], has_bf16 ? expected : "unsupported");
    std::ifstream log(run + "/log.jsonl");
    std::string first;
    std::getline(log, first);
    const auto line = nlohmann::json::parse(first);
    EXPECT_EQ(line["type"], "amp_probe");
    EXPECT_EQ(line["chosen_bf16"], line["bf16"]);
  }
}

TEST(MachineCache, EntriesRoundTripAndAnUnwritableFileWarnsOnceNamingIt) {
  const auto path = (hg::test::scratch_dir() / "sub" / "cache.json").string();
  EXPECT_FALSE(hg::runtime::cached_entry(path, "k"));
  hg::runtime::store_entry(path, "k", {1.5, 2.5}, "test", "no hint");
  hg::runtime::store_entry(path, "j", "x", "test", "no hint");
  ASSERT_TRUE(hg::runtime::cached_entry(path, "k"));
  EXPECT_EQ(*hg::runtime::cached_entry(path, "k"), nlohmann::json({1.5, 2.5}));
  EXPECT_EQ(*hg::runtime::cached_entry(path, "j"), "x");
  EXPECT_FALSE(hg::runtime::cached_entry("", "k"));

  const std::string bad = "/proc/hg_no_such_folder/cache.json";
  testing::internal::CaptureStderr();
  for (int i = 0; i < 3; ++i) hg::runtime::store_entry(bad, "k", i, "test", "do this");
  const auto err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "hourglass: warning: cannot write the test cache " + bad + " (do this)\n");
  EXPECT_FALSE(hg::runtime::cached_entry(bad, "k"));
}
