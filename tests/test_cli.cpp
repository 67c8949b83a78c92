// End-to-end checks of the `hourglass` tool, run as a user would, and of its progress output.
#include "hg/engine/engine.h"
#include "hg/io/progress.h"
#include "hg/io/torch_file.h"
#include "hg/model/large_hourglass.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

namespace {

using Result = hg::test::ToolResult;
Result run(const std::string& args) {
  return hg::test::run_tool(args);
}

const std::string kFixtures = std::string(HG_TEST_DATA) + "/fixtures/";

/// In a log (captured standard error is a file), progress is whole lines, throttled, with the
/// forced last one always shown.
TEST(Cli, ProgressInALogIsThrottledWholeLinesEndingWithTheLast) {
  testing::internal::CaptureStderr();
  hg::io::ProgressLine progress;  // after the capture: it sees a file, not a terminal
  for (int i = 1; i <= 100; ++i) progress.update("step " + std::to_string(i), i == 100);
  progress.finish();
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "step 1\nstep 100\n");
}

TEST(Cli, InfoPrintsThePaperModelsParameterCount) {
  const auto r = run("info --stacks 8");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("25,434,112"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("27.44"), std::string::npos) << r.out;
}

TEST(Cli, ConvertThenForwardReproducesTheReference) {
  const auto dir = hg::test::scratch_dir();
  const auto native = (dir / "bearpaw.hg").string(), out = (dir / "out.pt").string();
  auto r = run("convert " + kFixtures + "bearpaw_hg_s2_b1_f64.pth.tar " + native);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("info --weights " + native);
  EXPECT_NE(r.out.find("2 stacks, 64 features"), std::string::npos) << r.out;
  r = run("forward --threads 2 --precision f32 --weights " + native + " --input " + kFixtures +
          "bearpaw_hg_s2_b1_f64.io.pt --output " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto got = hg::io::read_torch_file(out)->find("output")->tensor;
  const auto ref =
      hg::io::read_torch_file(kFixtures + "bearpaw_hg_s2_b1_f64.io.pt")->find("output")->tensor;
  EXPECT_LE((got - ref).abs().max().item<double>(), 1e-4 * ref.abs().max().item<double>());
}

/// `hourglass bench` on a small model: every backend and mode at batch 1 and the throughput
/// batch, ratios against LibTorch, the per-step profile, and the same in its JSON.
TEST(Cli, BenchMeasuresLibTorchAndTheEngineModesWithAProfile) {
  const auto json = hg::test::scratch_dir() / "bench.json";
  const auto r =
      run("bench --threads 2 --stacks 1 --features 32 --depth 2 --size 64 --runs 2 "
          "--batch 2 --modes f32-direct f32-winograd --profile --json " +
          json.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("<- fastest"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("profile of f32-winograd, batch 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bn+relu"), std::string::npos) << r.out;
  std::ifstream in(json);
  const auto j = nlohmann::json::parse(in);
  std::set<std::string> seen;
  for (const auto& m : j.at("results")) {
    seen.insert(m.at("backend").get<std::string>() + " " + m.at("mode").get<std::string>() + " " +
                std::to_string(m.at("batch").get<int>()));
    EXPECT_GT(m.at("ms_per_image").get<double>(), 0) << m;
  }
  for (const char* k :
       {"torch eager 1", "engine f32-direct 1", "engine f32-winograd 1", "engine fastest 1",
        "torch eager 2", "engine f32-direct 2", "engine f32-winograd 2", "engine fastest 2"})
    EXPECT_TRUE(seen.count(k)) << k << " missing from " << j.dump();
  double profiled_ms = 0;
  bool winograd = false;
  for (const auto& step : j.at("profile").at("f32-winograd")) {
    profiled_ms += step.at("ms").get<double>();
    winograd |= step.at("step").get<std::string>().find("winograd") != std::string::npos;
  }
  EXPECT_GT(profiled_ms, 0);
  if (hg::engine::winograd_supported()) EXPECT_TRUE(winograd) << j.at("profile").dump();
  EXPECT_GT(j.at("peak_rss_mb").get<double>(), 0);
  std::filesystem::remove(json);
}

/// `hourglass bench --arch`: the CornerNet/CenterNet family (here MMPose's Hourglass-52, whose
/// strided layers wide enough for bf16 are timed where the CPU has it), and the usage errors.
TEST(Cli, BenchMeasuresTheCenterNetFamily) {
  const auto json = hg::test::scratch_dir() / "bench_family.json";
  const auto r =
      run("bench --threads 2 --arch hourglass52 --size 128 --runs 1 --batch 1 --modes "
          "auto-auto --json " +
          json.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("model: Hourglass, 1 stack, 5 levels"), std::string::npos) << r.out;
  std::ifstream in(json);
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("model").at("family"), "large_hourglass");
  EXPECT_NEAR(j.at("gmac_per_image").get<double>(),
              hg::model::hourglass52(hg::model::parse_heads("heatmaps:17")).macs(128, 128) / 1e9,
              1e-9);
  std::set<std::string> seen;
  for (const auto& m : j.at("results"))
    seen.insert(m.at("backend").get<std::string>() + " " + m.at("mode").get<std::string>());
  EXPECT_EQ(seen, (std::set<std::string>{"torch eager", "engine auto-auto", "engine fastest"}));
  EXPECT_EQ(run("bench --arch hourglass104 --stacks 2").code, 2);
  EXPECT_EQ(run("bench --heads ctdet").code, 2);
  std::filesystem::remove(json);
}

TEST(Cli, ErrorsAreOneClearLineAndNonZeroExit) {
  const auto bad = hg::test::scratch_dir() / "not_a_model.pt";
  {
    std::FILE* f = std::fopen(bad.c_str(), "w");
    std::fputs("hello", f);
    std::fclose(f);
  }
  const auto r = run("info --weights " + bad.string());
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.out.rfind("hourglass: error: cannot read " + bad.string(), 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;

  // Engine settings are checked where they are parsed, naming the flag and the accepted values.
  const auto bad_precision =
      run("predict " + bad.string() + " --weights " + bad.string() + " --precision fp16");
  EXPECT_NE(bad_precision.code, 0);
  EXPECT_NE(bad_precision.out.find("--precision: fp16 not in {auto,f32,bf16}"), std::string::npos)
      << bad_precision.out;

  const auto bad_size = run("info --stacks 2 --size 100");
  EXPECT_NE(bad_size.code, 0);
  EXPECT_NE(bad_size.out.find("multiple of 64"), std::string::npos) << bad_size.out;
}

TEST(Cli, ATrainingCheckpointWorksInPredictAndEval) {
  namespace fs = std::filesystem;
  const auto dir = hg::test::scratch_dir();
  fs::remove_all(dir);
  const auto run_dir = (dir / "run").string();
  auto r = run("train --recipe cpu --run-dir " + run_dir +
               " --set model.stacks=2 --set model.features=16 --set model.depth=2"
               " --set model.stem1=16 --set model.stem2=16 --set input_size=64"
               " --set dataset=synthetic:32:1 --set val_dataset=synthetic:24:7 --set batch_size=8"
               " --set epochs=1 --set threads=2 --set loader_threads=1");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto checkpoint = run_dir + "/last.hg";
  ASSERT_TRUE(fs::exists(checkpoint)) << r.out;

  // eval: every stack of the trained model, with the engine (default) and with LibTorch.
  auto eval_json = [&](const std::string& backend) {
    const auto path = (dir / ("eval_" + backend + ".json")).string();
    const auto e = run("eval synthetic:24:7 --weights " + checkpoint + " --backend " + backend +
                       " --no-flip --per-stack --json " + path);
    EXPECT_EQ(e.code, 0) << e.out;
    std::ifstream in(path);
    return nlohmann::json::parse(in);
  };
  const auto engine = eval_json("engine"), torch_eval = eval_json("torch");
  EXPECT_EQ(engine["evaluated"], 24);
  ASSERT_EQ(engine["per_stack"].size(), 2u);
  ASSERT_EQ(torch_eval["per_stack"].size(), 2u);
  for (int s = 0; s < 2; ++s) {
    const double a = engine["per_stack"][s]["pckh@0.5"]["mean"];
    const double b = torch_eval["per_stack"][s]["pckh@0.5"]["mean"];
    EXPECT_NEAR(a, b, 100.0 / 24) << "stack " << s + 1;  // at most one joint per person apart
  }
  // The validation the trainer logged is `eval --weights` of the checkpoint on the same data:
  // one inference core (LibTorch, no flip test, batch 8 for both).
  std::ifstream log(run_dir + "/log.jsonl");
  nlohmann::json epoch;
  for (std::string line; std::getline(log, line);)
    if (nlohmann::json::parse(line)["type"] == "epoch") epoch = nlohmann::json::parse(line);
  ASSERT_EQ(epoch["val_pckh@0.5"].size(), 2u) << epoch.dump();
  for (int s = 0; s < 2; ++s)
    EXPECT_DOUBLE_EQ(epoch["val_pckh@0.5"][s]["mean"].get<double>(),
                     torch_eval["per_stack"][s]["pckh@0.5"]["mean"].get<double>())
        << "stack " << s + 1;

  // predict: a real image, the whole image as the crop, joints by name and both stacks.
  const auto out = (dir / "predict.json").string();
  r = run("predict --weights " + checkpoint + " --whole-image -o " + out + " " +
          std::string(HG_TEST_DATA) + "/mpii/images/004645041.jpg");
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream in(out);
  const auto doc = nlohmann::json::parse(in);
  const auto& people = doc["results"][0]["people"];
  ASSERT_EQ(people.size(), 1u) << doc.dump();
  EXPECT_EQ(people[0]["found_by"], "whole-image");
  EXPECT_EQ(people[0]["joints"].size(), 16u);
  EXPECT_TRUE(people[0]["joints"].contains("l-wrist"));
  EXPECT_EQ(people[0]["stacks"].size(), 2u);
  fs::remove_all(dir);
}

}  // namespace
