#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"
#include "hg/train/trainer.h"

#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using hg::train::TrainConfig;
using hg::train::Trainer;

namespace {

// A model and data small enough to train in seconds: 2 stacks, 16 features, depth 2, 32 px input.
TrainConfig tiny() {
  return hg::test::tiny_train_config();
}

// A run folder that does not exist yet, in the test's scratch folder.
std::string fresh_dir(const std::string& name) {
  return (hg::test::scratch_dir() / name).string();
}

std::vector<nlohmann::json> log_lines(const std::string& dir, const std::string& type) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(fs::path(dir) / "log.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == type) lines.push_back(j);
  }
  return lines;
}

TEST(Train, StackLossesAreTheMseOfEveryStackAgainstTheSameTarget) {
  const auto target = torch::rand({2, 3, 4, 4});
  auto heatmaps = torch::stack({target, target + 1.0}, 1);  // stack 0 exact, stack 1 off by 1
  const auto losses = hg::train::stack_losses(heatmaps, target, at::Tensor());
  EXPECT_NEAR(losses[0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(losses[1].item<double>(), 1.0, 1e-6);
  auto weight = torch::ones({2, 3});
  weight[0][1] = 0;  // one of six maps weighted out
  EXPECT_NEAR(hg::train::stack_losses(heatmaps, target, weight)[1].item<double>(), 5.0 / 6, 1e-6);
}

TEST(Train, LossFallsOnATinyModel) {
  const auto dir = fresh_dir("falls");
  auto c = tiny();
  c.epochs = 4;
  const auto result = Trainer(c, dir).run();
  EXPECT_EQ(result.outcome, hg::train::Outcome::kFinished);
  EXPECT_EQ(result.step, 4 * 8);
  const auto epochs = log_lines(dir, "epoch");
  ASSERT_EQ(epochs.size(), 4u);
  EXPECT_LT(epochs.back()["train_loss"].get<double>(),
            0.5 * epochs.front()["train_loss"].get<double>());
  // Every stack is supervised: each stack's loss is logged.
  EXPECT_EQ(log_lines(dir, "step").back()["stacks"].size(), 2u);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "config.json"));
  // The checkpoint loads as a model anywhere a model is accepted.
  const auto loaded = hg::io::load_model((fs::path(dir) / "last.hg").string());
  EXPECT_TRUE(loaded.model->options == c.model);
  EXPECT_EQ(loaded.meta["train"]["epoch"], 4);
}

TEST(Train, LossFallsWithBf16MixedPrecisionInEitherMemoryLayout) {
  for (bool channels_last : {true, false}) {
    const auto dir = fresh_dir(channels_last ? "bf16_nhwc" : "bf16_nchw");
    auto c = tiny();
    c.epochs = 4;
    c.amp = hg::train::Amp::kBf16;
    c.channels_last = channels_last;
    EXPECT_EQ(Trainer(c, dir).run().outcome, hg::train::Outcome::kFinished);
    const auto epochs = log_lines(dir, "epoch");
    ASSERT_EQ(epochs.size(), 4u);
    EXPECT_LT(epochs.back()["train_loss"].get<double>(),
              0.5 * epochs.front()["train_loss"].get<double>())
        << "channels_last " << channels_last;
    // The weights stay float32 (only the forward pass runs in bf16).
    const auto ckpt = hg::io::read_checkpoint((fs::path(dir) / "last.hg").string());
    for (const auto& [name, t] : ckpt.state)
      if (t.is_floating_point()) EXPECT_EQ(t.scalar_type(), torch::kFloat) << name;
  }
}

TEST(Train, ResumedRunMatchesAnUninterruptedOne) {
  auto c = tiny();
  c.max_steps = 11;  // stops mid-epoch (8 steps per epoch)
  const auto straight = fresh_dir("straight"), split = fresh_dir("split");
  Trainer(c, straight).run();
  c.max_steps = 5;
  EXPECT_EQ(Trainer(c, split).run().outcome, hg::train::Outcome::kStopped);
  // From the middle part on, last.hg is also written every 2 steps within an epoch (at steps 6
  // and 10; 8 ends the epoch): resumed mid-epoch, periodic checkpoints change nothing.
  EXPECT_EQ(Trainer::resume(split, {"max_steps=7", "checkpoint_every_steps=2"}).run().step, 7);
  EXPECT_EQ(hg::io::read_checkpoint((fs::path(split) / "last.hg").string()).meta["train"]["batch"],
            7);
  const auto result = Trainer::resume(split, {"max_steps=11"}).run();
  EXPECT_EQ(result.step, 11);
  std::vector<int64_t> steps;
  for (const auto& line : log_lines(split, "step")) steps.push_back(line["step"]);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  const auto a = hg::io::read_checkpoint((fs::path(straight) / "last.hg").string());
  const auto b = hg::io::read_checkpoint((fs::path(split) / "last.hg").string());
  ASSERT_EQ(a.state.size(), b.state.size());
  for (const auto& [name, t] : a.state)
    EXPECT_TRUE(
        torch::allclose(t.to(torch::kDouble), b.state.at(name).to(torch::kDouble), 1e-5, 1e-6))
        << name << " differs by "
        << (t.to(torch::kDouble) - b.state.at(name).to(torch::kDouble)).abs().max().item<double>();
}

TEST(Train, NonFiniteLossStopsCleanlyAndKeepsTheLastGoodCheckpoint) {
  const auto dir = fresh_dir("nan");
  auto c = tiny();
  c.epochs = 1;
  Trainer(c, dir).run();
  const auto last = (fs::path(dir) / "last.hg").string();
  const auto before = hg::io::read_checkpoint(last);
  try {
    Trainer::resume(dir, {"epochs=3", "lr=1e30"}).run();
    FAIL() << "expected the run to diverge";
  } catch (const hg::train::DivergedError& e) {
    EXPECT_NE(std::string(e.what()).find("the loss became"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(last), std::string::npos) << e.what();
  }
  const auto after = hg::io::read_checkpoint(last);
  for (const auto& [name, t] : before.state)
    EXPECT_TRUE(torch::equal(t, after.state.at(name))) << name;
}

TEST(Train, ConfigErrorsNameTheKey) {
  TrainConfig c;
  auto message = [&](const std::string& assignment) {
    try {
      c.set(assignment);
    } catch (const c10::Error& e) {
      return std::string(e.what_without_backtrace());
    }
    return std::string();
  };
  EXPECT_NE(message("lrate=0.1").find("unknown config key 'lrate'"), std::string::npos);
  EXPECT_NE(message("epochs=ten").find("config key 'epochs'"), std::string::npos);
  EXPECT_NE(message("model.wings=2").find("unknown architecture key 'wings'"), std::string::npos);
  c.set("model.stacks=4");
  EXPECT_EQ(c.model.stacks(), 4);
  c.set("lr_drops=[3, 5]");
  EXPECT_EQ(c.lr_drops, (std::vector<int64_t>{3, 5}));
  c.set("channels_last=false");
  EXPECT_FALSE(c.channels_last);
  c.set("amp=bf16");
  EXPECT_EQ(c.amp, hg::train::Amp::kBf16);
  EXPECT_ERROR_HAS(c.set("amp=fp8"), "amp must be off, bf16 or auto, got 'fp8'");
  EXPECT_EQ(c.amp, hg::train::Amp::kBf16);
}

TEST(Train, UnwritableRunFolderIsReportedBeforeTraining) {
  try {
    Trainer(tiny(), "/proc/hg-run").run();
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("/proc/hg-run"), std::string::npos);
  }
}

TEST(Config, CocoRecipeIsMmposesHourglassSetting) {
  const auto c = hg::train::preset("coco");
  c.validate();
  EXPECT_EQ(c.model.stacks(), 1);
  EXPECT_EQ(c.model.joints(), 17);
  EXPECT_EQ(c.input_size, 256);
  EXPECT_EQ(c.sigma, 2.0);
  EXPECT_EQ(c.optimizer, hg::train::Optimizer::kAdam);
  EXPECT_EQ(c.lr, 5e-4);
  EXPECT_EQ(c.epochs, 210);
  EXPECT_EQ(c.lr_drops, (std::vector<int64_t>{170, 200}));
  EXPECT_EQ(c.augment, hg::data::AugmentPreset::kCoco);
  try {
    hg::train::preset("cocoa");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("unknown recipe 'cocoa' (did you mean 'coco'?): use "
                                         "paper, original, cpu, demo or coco"),
              std::string::npos);
  }
}

}  // namespace

namespace {

// A custom dataset of 16 drawn people with 5 joints of its own: a head, two hands, two feet.
std::string write_custom_dataset(const fs::path& dir) {
  nlohmann::json samples = nlohmann::json::array();
  cv::RNG rng(7);
  for (int i = 0; i < 16; ++i) {
    cv::Mat bgr(96, 96, CV_8UC3, cv::Scalar(40, 40, 40));
    nlohmann::json joints = nlohmann::json::array();
    for (int j = 0; j < 5; ++j) {
      const cv::Point p(rng.uniform(16, 80), rng.uniform(16, 80));
      cv::circle(bgr, p, 3, cv::Scalar(60 * j, 255 - 40 * j, 200), -1);
      joints.push_back({p.x, p.y, 2});
    }
    const std::string name = "person" + std::to_string(i) + ".png";
    EXPECT_TRUE(cv::imwrite((dir / name).string(), bgr));
    samples.push_back({{"image", name}, {"joints", joints}, {"center", {48, 48}}, {"scale", 0.48}});
  }
  const nlohmann::json doc = {{"format", "hourglass-pose"},
                              {"name", "blobs"},
                              {"joints", {"head", "l-hand", "r-hand", "l-foot", "r-foot"}},
                              {"flip_pairs", {{1, 2}, {3, 4}}},
                              {"skeleton", {{0, 1}, {0, 2}, {0, 3}, {0, 4}}},
                              {"samples", samples}};
  const auto path = (dir / "blobs.json").string();
  std::ofstream(path) << doc.dump();
  return path;
}

TEST(Train, ACustomJointSetTravelsWithTheModelIntoPredictionFlipAndDrawing) {
  const auto dir = hg::test::scratch_dir();
  auto c = tiny();
  c.dataset = write_custom_dataset(dir);
  c.model.joints(5);
  c.epochs = 1;
  const auto run = (dir / "run").string();
  Trainer(c, run).run();
  const auto model = run + "/last.hg";

  // The predictor reads the joint set from the checkpoint: names, flip pairs, skeleton.
  hg::infer::PredictorOptions o;
  o.backend.kind = hg::infer::BackendKind::kTorch;
  o.flip = false;
  const auto plain = hg::infer::Predictor::load(model, o);
  const auto& joints = plain.joints();
  EXPECT_EQ(joints.name, "blobs");
  EXPECT_EQ(joints.names,
            (std::vector<std::string>{"head", "l-hand", "r-hand", "l-foot", "r-foot"}));
  EXPECT_EQ(joints.flip_pairs, (std::vector<std::pair<int, int>>{{1, 2}, {3, 4}}));
  EXPECT_EQ(joints.skeleton.size(), 4u);

  // The flip test mirrors with those pairs: flip-averaged heatmaps = the mean of the crop's and
  // of its mirror's, the mirror's flipped back and its channels swapped pair by pair.
  o.flip = true;
  const auto flipped = hg::infer::Predictor::load(model, o);
  const auto x = torch::rand({2, 3, 32, 32});
  const auto mirror = plain.heatmaps(x.flip({3}))
                          .flip({4})
                          .index_select(2, torch::tensor(std::vector<int64_t>{0, 2, 1, 4, 3}));
  EXPECT_TRUE(torch::allclose(flipped.heatmaps(x), (plain.heatmaps(x) + mirror) / 2, 1e-5, 1e-6));

  // `hourglass predict` names the joints so, and `show` draws one panel per joint (skeleton,
  // heatmap maximum, then the 5 joints: two rows of six 32-px tiles at zoom 1).
  const auto image = (dir / "person0.png").string();
  auto r = hg::test::run_tool("predict --weights " + model + " --whole-image -o " +
                              (dir / "p.json").string() + " " + image);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto doc = hg::test::read_json(dir / "p.json");
  EXPECT_EQ(doc["joint_set"], "blobs");
  const auto& predicted = doc["results"][0]["people"][0]["joints"];
  for (const auto& name : joints.names) EXPECT_TRUE(predicted.contains(name)) << name;
  r = hg::test::run_tool("show --weights " + model + " --whole-image -o " +
                         (dir / "show.png").string() + " " + image);
  ASSERT_EQ(r.code, 0) << r.out;
  const cv::Mat shown = cv::imread((dir / "show.png").string());
  EXPECT_EQ(shown.rows, 2 * 32);
  EXPECT_EQ(shown.cols, 6 * 32);
}

}  // namespace
