// What a newcomer meets first: one error style with exit codes, "did you mean", the config keys
// listed, a COCO-format dataset that trains first time, checkpoints that carry their inference
// defaults, `info` on a checkpoint, predict's summary and the training curves.
#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"
#include "hg/runtime/text.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
using hg::test::kData;
using hg::test::run_tool;

const std::string kCoco = kData + "/coco/person_keypoints_test.json";
const std::string kImage = kData + "/mpii/images/004645041.jpg";

// A tiny model's flags for `hourglass train`.
std::string tiny_sets() {
  return " --set model.stacks=2 --set model.features=16 --set model.depth=2"
         " --set model.stem1=16 --set model.stem2=16 --set input_size=32 --set threads=2"
         " --set loader_threads=1";
}

// Every line of a run's log.jsonl.
std::vector<nlohmann::json> log_lines(const fs::path& run) {
  std::ifstream in(run / "log.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST(FirstHour, NamesAndCountsAreWrittenForPeople) {
  EXPECT_EQ(hg::runtime::count(1, "step"), "1 step");
  EXPECT_EQ(hg::runtime::count(2048, "step"), "2,048 steps");
  EXPECT_EQ(hg::runtime::count(1, "person", "people"), "1 person");
  EXPECT_EQ(hg::runtime::count(0, "person", "people"), "0 people");
  EXPECT_EQ(hg::runtime::closest_name("tran", {"train", "eval", "predict"}), "train");
  EXPECT_EQ(hg::runtime::closest_name("lr_schedul", {"lr", "lr_schedule"}), "lr_schedule");
  EXPECT_EQ(hg::runtime::closest_name("zzzzzz", {"train", "eval"}), "");
  EXPECT_EQ(hg::runtime::did_you_mean("EVAL", {"train", "eval"}), " (did you mean 'eval'?)");
  EXPECT_EQ(hg::runtime::listed({3, 8, 9}, 2), "3, 8, …");
  EXPECT_EQ(hg::runtime::listed({3, 8, 9}), "3, 8, 9");
  EXPECT_EQ(hg::runtime::listed({}), "");
}

// What `hourglass ARGS` prints, expecting a usage error (exit code 2).
std::string usage_error(const std::string& args) {
  const auto r = run_tool(args);
  EXPECT_EQ(r.code, 2) << args << ": " << r.out;
  return r.out;
}

// Usage errors: one "hourglass: error:" line and exit code 2, with the command named and what to
// run for help; an unknown command gets the nearest one.
TEST(FirstHour, UsageErrorsAreOneLineWithExitCodeTwo) {
  EXPECT_EQ(usage_error("tran"),
            "hourglass: error: unknown command 'tran' (did you mean 'train'?) (hourglass --help "
            "lists the commands)\n");
  auto out = usage_error("predict " + kImage);
  EXPECT_EQ(out.rfind("hourglass: error: predict: ", 0), 0u) << out;
  EXPECT_NE(out.find("--weights"), std::string::npos) << out;
  EXPECT_NE(out.find("(hourglass predict --help)\n"), std::string::npos) << out;
  out = usage_error("info --stacks");
  EXPECT_EQ(out.rfind("hourglass: error: info: ", 0), 0u) << out;
  out = usage_error("predict " + kImage + " --weights " + kImage + " --decoder darker");
  EXPECT_NE(out.find("darker"), std::string::npos) << out;
  // --help still prints and succeeds.
  const auto r = run_tool("train --help");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("--list-keys"), std::string::npos) << r.out;
}

TEST(FirstHour, ConfigKeysAndRecipesSuggestTheNameMeant) {
  EXPECT_EQ(usage_error("train --set learning_rate=0.1"),
            "hourglass: error: unknown config key 'learning_rate' (did you mean 'lr'? hourglass "
            "train --list-keys lists them all)\n");
  EXPECT_EQ(usage_error("train --set lr_schedul=cosine"),
            "hourglass: error: unknown config key 'lr_schedul' (did you mean 'lr_schedule'?)\n");
  EXPECT_EQ(usage_error("train --recipe dmeo"),
            "hourglass: error: unknown recipe 'dmeo' (did you mean 'demo'?): use paper, original, "
            "cpu, demo or coco\n");
  const auto out = usage_error("train --set stacks=4");
  EXPECT_NE(out.find("(did you mean 'model.stacks'?"), std::string::npos) << out;
}

// `train --list-keys`: every key from the config's one table, with type, default and meaning.
TEST(FirstHour, TrainListsEveryConfigKey) {
  const auto r = run_tool("train --list-keys");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto keys = hg::train::config_keys();
  ASSERT_GT(keys.size(), 40u);
  for (const auto& k : keys)
    EXPECT_NE(r.out.find("  " + k.name + " "), std::string::npos) << k.name;
  EXPECT_NE(r.out.find("lr "), std::string::npos);
  const auto has_line = [&](const std::string& a, const std::string& b, const std::string& c) {
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);)
      if (line.find(" " + a + " ") != std::string::npos &&
          line.find(" " + b + " ") != std::string::npos && line.find(c) != std::string::npos)
        return true;
    return false;
  };
  EXPECT_TRUE(has_line("lr", "number", "learning rate")) << r.out;
  EXPECT_TRUE(has_line("model.stacks", "integer", "hourglass stacks")) << r.out;
  EXPECT_TRUE(has_line("amp", "off|bf16|auto", "\"auto\"")) << r.out;
  // Every key it lists is one --set takes.
  for (const auto& k : keys) {
    hg::train::TrainConfig c;
    EXPECT_NO_THROW(c.set(k.name + "=" + k.default_value)) << k.name;
  }
}

// A COCO file trains first time: the model takes its 17 joints, validation on a file without
// `normalize` scores PCK@0.2 of the box (as eval does), and the checkpoint carries COCO's joint
// set, which `info` reports with the checkpoint's own size.
TEST(FirstHour, ACocoFileTrainsFirstTimeAndEvalAgrees) {
  const auto dir = hg::test::scratch_dir();
  const auto run = dir / "run";
  auto r = run_tool("train --recipe cpu --run-dir " + run.string() + " --set dataset=" + kCoco +
                    " --set val_dataset=" + kCoco + tiny_sets() +
                    " --set batch_size=4 --set epochs=1 --set iters_per_epoch=2");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("model.joints: 17 (the joints of coco:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("validation PCK@0.2 (mean) per stack:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("best validation PCK@0.2 "), std::string::npos) << r.out;
  nlohmann::json epoch;
  for (const auto& line : log_lines(run))
    if (line["type"] == "epoch") epoch = line;
  ASSERT_TRUE(epoch.contains("val_pck@0.2")) << epoch.dump();

  // eval of the checkpoint on the same file: the same metric and, for the last stack, the same
  // score (the trainer validates through the same predictor, LibTorch, no flip test).
  const auto json = (dir / "eval.json").string();
  r = run_tool("eval " + kCoco + " --weights " + (run / "last.hg").string() +
               " --backend torch --no-flip --batch 4 --json " + json);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto e = hg::test::read_json(json);
  EXPECT_EQ(e["metric"], "pck");
  EXPECT_DOUBLE_EQ(e["pck@0.2"]["mean"].get<double>(),
                   epoch["val_pck@0.2"][1]["mean"].get<double>());

  r = run_tool("info --weights " + (run / "last.hg").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("input:       3×32×32"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("joint set:   coco (17 joints)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("training:    1 epoch, 2 steps (finished), best validation "),
            std::string::npos)
      << r.out;
}

TEST(FirstHour, AValidationSetOfOtherJointsIsRefusedBeforeTheFirstStep) {
  const auto dir = hg::test::scratch_dir();
  const auto r = run_tool("train --recipe cpu --run-dir " + (dir / "run").string() +
                          " --set dataset=" + kCoco + " --set val_dataset=synthetic:8:2" +
                          tiny_sets() + " --set batch_size=4 --set max_steps=2");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("hourglass: error: the model has 17 joints (those of coco: "),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(") but validation dataset synthetic: seed 2, 8 samples"), std::string::npos)
      << r.out;
  EXPECT_FALSE(fs::exists(dir / "run" / "log.jsonl")) << "no step may be taken";
}

// A demo-recipe checkpoint records that its model never saw mirrored people and was trained on
// unbiased targets: predict, eval and `info` use no flip test and DARK unless told otherwise.
TEST(FirstHour, ADemoCheckpointCarriesItsInferenceDefaults) {
  const auto dir = hg::test::scratch_dir();
  const auto run = dir / "run";
  auto r = run_tool("train --recipe demo --run-dir " + run.string() + tiny_sets() +
                    " --set dataset=synthetic:64:1 --set val_dataset= --set max_minutes=0"
                    " --set batch_size=4 --set max_steps=2");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto model = (run / "last.hg").string();
  const auto loaded = hg::io::load_model(model);
  EXPECT_EQ(loaded.meta["inference"], (nlohmann::json{{"flip", false}, {"decoder", "dark"}}));
  const auto p = hg::infer::Predictor::load(model);
  EXPECT_FALSE(*p.options().flip);
  EXPECT_EQ(*p.options().decoder, hg::infer::PeakDecoder::kDark);

  r = run_tool("info --weights " + model);
  EXPECT_NE(r.out.find("inference:   flip test off, dark decoder"), std::string::npos) << r.out;
  const auto header = [&](const std::string& flags) {
    const auto out = (dir / "p.json").string();
    const auto res = run_tool("predict --whole-image --weights " + model + " " + flags + " -o " +
                              out + " " + kImage);
    EXPECT_EQ(res.code, 0) << res.out;
    const auto j = hg::test::read_json(out);
    return std::make_pair(j["flip_test"].get<bool>(), j["decoder"].get<std::string>());
  };
  EXPECT_EQ(header(""), std::make_pair(false, std::string("dark")));
  EXPECT_EQ(header("--flip --decoder quarter-offset"),
            std::make_pair(true, std::string("quarter-offset")));
  // Converting keeps them; imported weights (no record) keep the old defaults.
  r = run_tool("convert --weights " + model + " -o " + (dir / "c.hg").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(hg::io::load_model((dir / "c.hg").string()).meta["inference"],
            loaded.meta["inference"]);
  const auto imported =
      hg::infer::Predictor::load(kData + "/fixtures/posenet_s2_f64_checkpoint.pt");
  EXPECT_TRUE(*imported.options().flip);
  EXPECT_EQ(*imported.options().decoder, hg::infer::PeakDecoder::kQuarterOffset);
}

TEST(FirstHour, PredictWithoutOutputPrintsASummary) {
  const auto model = kData + "/fixtures/posenet_s2_f64_checkpoint.pt";
  auto r = run_tool("predict --threads 2 --whole-image --weights " + model + " " + kImage);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find(kImage + ": 1 person\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 input, 1 person; the joints as JSON with -o FILE (or -o - for standard "
                       "output)\n"),
            std::string::npos)
      << r.out;
  r = run_tool("predict --threads 2 --whole-image --weights " + model + " -o - " + kImage +
               " 2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["results"].size(), 1u);
}

// The trainer draws its curves into the run folder at every epoch's end.
TEST(FirstHour, TrainingWritesItsCurves) {
  const auto dir = hg::test::scratch_dir();
  const auto run = dir / "run";
  const auto r = run_tool("train --recipe cpu --run-dir " + run.string() + tiny_sets() +
                          " --set dataset=synthetic:64:1 --set val_dataset=synthetic:8:2"
                          " --set batch_size=2 --set epochs=2 --set lr_drops=[]");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("finished after 2 epochs, 64 steps in "), std::string::npos) << r.out;
  for (const char* png : {"loss.png", "validation.png"}) {
    const cv::Mat image = cv::imread((run / png).string());
    ASSERT_FALSE(image.empty()) << png;
    EXPECT_EQ(image.rows, 500) << png;
  }
  EXPECT_EQ(r.out.find("hardware solid fills"), std::string::npos) << r.out;
}

}  // namespace
