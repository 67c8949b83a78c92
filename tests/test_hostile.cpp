// Hardening, second round (issue 35): one regression test per class of hostile input found by
// the probe, outside the server (whose cases are in test_serve.cpp): non-UTF-8 text, run folders,
// silent wrong results, allocation before verification.
#include "hg/eval/coco_eval.h"
#include "hg/infer/predictor.h"
#include "hg/io/atomic_file.h"
#include "hg/io/checkpoint.h"
#include "hg/io/folder_lock.h"
#include "hg/io/safetensors.h"
#include "hg/model/hourglass.h"
#include "hg/runtime/limits.h"
#include "hg/runtime/text.h"
#include "hg/train/trainer.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace {

namespace fs = std::filesystem;
using hg::test::kData;
using hg::test::run_tool;
using hg::train::Trainer;
using nlohmann::json;

const std::string kModel = kData + "/fixtures/posenet_s2_f64_checkpoint.pt";
const std::string kImage = kData + "/mpii/images/005808361.jpg";

// ---- 1. non-UTF-8 text ------------------------------------------------------------------------

TEST(NonUtf8, JsonTextReplacesBadBytesInsteadOfThrowing) {
  const json j = {{"path", std::string("caf\xE9.jpg")}, {"ok", "photo.jpg"}};
  EXPECT_THROW((void)j.dump(), json::type_error);  // what the project no longer calls
  const std::string text = hg::runtime::json_text(j);
  EXPECT_EQ(json::parse(text)["path"], "caf\xEF\xBF\xBD.jpg");  // U+FFFD
  EXPECT_EQ(json::parse(text)["ok"], "photo.jpg");
}

// One file name with a byte that is not UTF-8 used to lose the JSON of the whole folder.
TEST(NonUtf8, PredictWritesEveryImageOfAFolderWithSuchAName) {
  const auto dir = hg::test::scratch_dir();
  fs::create_directories(dir / "in");
  fs::copy_file(kImage, dir / "in" / "a.jpg");
  fs::copy_file(kImage, dir / "in" / std::string("b\xFF.jpg"));
  const auto out = dir / "out.json";
  const auto r = run_tool("predict " + (dir / "in").string() + " --weights " + kModel +
                          " --size 64 --whole-image --no-flip -o " + out.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto doc = hg::test::read_json(out);
  ASSERT_EQ(doc["results"].size(), 2u);
  EXPECT_EQ(fs::path(doc["results"][1]["input"].get<std::string>()).filename().string(),
            "b\xEF\xBF\xBD.jpg");
}

// ---- 3. run folders -----------------------------------------------------------------------------

hg::train::TrainConfig two_steps() {
  auto c = hg::test::tiny_train_config();
  c.max_steps = 2;
  return c;
}

TEST(RunFolder, ANewRunRefusesAFolderThatHoldsAnotherAndOverwriteStartsOver) {
  const auto dir = (hg::test::scratch_dir() / "run").string();
  Trainer(two_steps(), dir).run();
  const auto wider = [] {
    auto c = two_steps();
    c.model.features(32);
    return c;
  }();
  EXPECT_ERROR_HAS(Trainer(wider, dir).run(), "run folder " + dir + " is not empty (it holds ",
                   std::string("config.json, last.hg, log.jsonl"),
                   std::string("resume the run there"), std::string("(overwrite)"));
  // The refused run changed nothing.
  EXPECT_EQ(hg::io::load_model(dir + "/last.hg").model->options.features(), 16);

  const auto result = Trainer(wider, dir, hg::train::ExistingRun::kOverwrite).run();
  EXPECT_EQ(result.step, 2);
  EXPECT_EQ(hg::io::load_model(dir + "/last.hg").model->options.features(), 32);
  int steps = 0;
  std::ifstream log(dir + "/log.jsonl");
  for (std::string line; std::getline(log, line);) steps += json::parse(line)["type"] == "step";
  EXPECT_EQ(steps, 2);  // the old run's lines are gone, not mixed in

  // The CLI: refused with exit 1, and --overwrite.
  const auto refused = run_tool("train --recipe cpu --run-dir " + dir + " --set max_steps=1");
  EXPECT_EQ(refused.code, 1) << refused.out;
  EXPECT_NE(refused.out.find("hourglass: error: run folder " + dir + " is not empty"),
            std::string::npos)
      << refused.out;
}

TEST(RunFolder, ASecondRunInTheSameFolderIsRefusedWhileTheFirstHoldsIt) {
  const auto dir = (hg::test::scratch_dir() / "run").string();
  Trainer(two_steps(), dir).run();
  {
    const hg::io::FolderLock first(dir);  // as a running training holds it
    const std::string in_use = dir + " is in use by another training run (process " +
                               std::to_string(::getpid()) + "): wait for it to end";
    EXPECT_ERROR_HAS(Trainer(two_steps(), dir, hg::train::ExistingRun::kOverwrite).run(), in_use);
    EXPECT_ERROR_HAS(Trainer::resume(dir, {"max_steps=3"}).run(), in_use);
  }
  EXPECT_EQ(Trainer::resume(dir, {"max_steps=3"}).run().step, 3);  // released with its holder
}

// A line that is not JSON in log.jsonl used to make a resume delete every later line.
TEST(RunFolder, ResumeKeepsTheGoodLinesAroundABadOne) {
  const auto dir = (hg::test::scratch_dir() / "run").string();
  auto c = two_steps();
  c.max_steps = 3;
  Trainer(c, dir).run();
  std::vector<std::string> lines;
  {
    std::ifstream in(dir + "/log.jsonl");
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  ASSERT_GE(lines.size(), 3u);
  lines.insert(lines.begin() + 1, "{not json");
  lines.insert(lines.begin() + 2, R"({"type": "step", "step": "tampered"})");
  {
    std::ofstream out(dir + "/log.jsonl");
    for (const auto& l : lines) out << l << "\n";
  }
  EXPECT_EQ(Trainer::resume(dir, {"max_steps=4"}).run().step, 4);
  std::vector<int64_t> steps;
  std::ifstream in(dir + "/log.jsonl");
  int bad = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      ++bad;
    } else if (j["type"] == "step" && j["step"].is_number_integer()) {
      steps.push_back(j["step"]);
    }
  }
  EXPECT_EQ(bad, 1);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));
}

// ---- 4. errors that name the key, the value and the fix -------------------------------------

TEST(NamedErrors, AbsurdConfigValuesAreRefusedNamingTheKeyBeforeAnyWork) {
  for (const auto& [key, message] : std::vector<std::pair<std::string, std::string>>{
           {"iters_per_epoch=-1", "config key 'iters_per_epoch' = -1 is outside [0, "},
           {"batch_size=100000", "config key 'batch_size' = 100000 is outside [1, 4096]"},
           {"loader_threads=5000", "config key 'loader_threads' = 5000 is outside [0, 256]"},
           {"max_minutes=-3", "config key 'max_minutes' = -3 is outside [0, "},
           {"lr=-1", "config key 'lr' = -1 is outside [1e-12, "},
           {"lr=nan", "config key 'lr': \"nan\" is invalid (expected a number)"},
           {"epochs=0", "config key 'epochs' = 0 is outside [1, 1000000]"}}) {
    auto c = two_steps();
    EXPECT_ERROR_HAS(
        {
          c.set(key);
          c.validate();
        },
        message);
  }
  auto c = two_steps();
  c.dataset = "synthetic:99999999999999";
  const auto dir = (hg::test::scratch_dir() / "run").string();
  EXPECT_ERROR_HAS(Trainer(c, dir).run(), "synthetic:N takes at most 100000000 people");
}

TEST(NamedErrors, TamperedTrainingStateAndAnotherOptimizerOnResume) {
  const auto dir = (hg::test::scratch_dir() / "run").string();
  auto c = two_steps();
  c.optimizer = hg::train::Optimizer::kRmsprop;
  Trainer(c, dir).run();
  EXPECT_ERROR_HAS(Trainer::resume(dir, {"optimizer=adam", "max_steps=3"}).run(),
                   "with optimizer adam: it holds the state of rmsprop",
                   "resume with that optimizer, or start a new run from its weights");
  // A run stopped before its first checkpoint resumes from config.json: tampered, it is named.
  const auto early = (hg::test::scratch_dir() / "early").string();
  fs::create_directories(early);
  auto saved = c.to_json();
  saved["epochs"] = -5;
  hg::test::write_text(early + "/config.json", saved.dump());
  EXPECT_ERROR_HAS(Trainer::resume(early).run(), "config key 'epochs' = -5 is outside [1, ");
  saved["epochs"] = "many";
  hg::test::write_text(early + "/config.json", saved.dump());
  EXPECT_ERROR_HAS(Trainer::resume(early).run(), "config key 'epochs'", "\"many\" is invalid");

  auto ckpt = hg::io::read_checkpoint(dir + "/last.hg");
  ckpt.meta["train"]["epoch"] = -5;
  hg::io::write_checkpoint(dir + "/last.hg", ckpt);
  EXPECT_ERROR_HAS(Trainer::resume(dir, {"max_steps=3"}).run(),
                   "its training state 'epoch' = -5 is impossible");
}

// ---- 6. special files ---------------------------------------------------------------------------

TEST(SpecialFiles, OutputsThatArePipesOrDevicesAreWrittenInPlace) {
  const auto dir = hg::test::scratch_dir();
  const auto fifo = dir / "out.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] {
    std::ifstream in(fifo);
    got.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  });
  hg::io::write_file_atomic(fifo.string(), "through the pipe");
  reader.join();
  EXPECT_EQ(got, "through the pipe");
  EXPECT_EQ(fs::status(fifo).type(), fs::file_type::fifo);  // still the pipe
  EXPECT_ERROR_HAS(hg::io::write_file_atomic("/dev/full", "x"), "cannot write /dev/full",
                   "No space left on device");
  EXPECT_TRUE(fs::is_character_file("/dev/full"));
  hg::io::write_file_atomic("/dev/null", "x");
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  EXPECT_ERROR_HAS(hg::io::write_file_atomic(dir.string(), "x"), "it is a folder");
}

TEST(SpecialFiles, InputsThatAreNotFilesAreEachOnesErrorNotTheFolders) {
  const auto dir = hg::test::scratch_dir();
  fs::create_directories(dir / "in");
  fs::copy_file(kImage, dir / "in" / "a.jpg");
  fs::create_symlink("loop.jpg", dir / "in" / "loop.jpg");  // a link to itself
  fs::create_symlink("/dev/zero", dir / "in" / "zero.jpg");
  {  // 8 GB with a JPEG header, sparse: refused by its size, never read
    std::ofstream(dir / "in" / "huge.jpg") << "\xFF\xD8\xFF\xE0";
    fs::resize_file(dir / "in" / "huge.jpg", uintmax_t{8} << 30);
  }
  const auto out = dir / "out.json";
  const auto r = run_tool("predict " + (dir / "in").string() + " --weights " + kModel +
                          " --size 64 --whole-image --no-flip -o " + out.string());
  EXPECT_EQ(r.code, 1) << r.out;  // some inputs failed, each named
  EXPECT_NE(
      r.out.find("huge.jpg: is 8589934592 bytes: image files over 1073741824 bytes are not read"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("loop.jpg: cannot be read (Too many levels of symbolic links)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("zero.jpg: is not a regular file"), std::string::npos) << r.out;
  const auto doc = hg::test::read_json(out);
  ASSERT_EQ(doc["results"].size(), 4u);
  EXPECT_FALSE(doc["results"][0].contains("error"));  // a.jpg
}

// ---- 7. silent wrong results ------------------------------------------------------------------

TEST(SilentResults, NonFiniteOrHugeBoxAndCenterAreRefused) {
  struct Case {
    std::string args, message;
    int code;  // 2: refused as the option is parsed
  };
  for (const auto& c : std::vector<Case>{
           {"--box nan,1,100,100", "--box: nan is not a finite number", 2},
           {"--center 10,10 --scale nan", "--scale: nan is not a finite number", 2},
           {"--box 1e308,1,100,100", "--box: [1e+308,1,100,100] is not a box", 1},
           {"--box 1,1,0,100", "--box: [1,1,0,100] is not a box [x, y, w, h] with w, h > 0", 1},
           {"--center 1e308,1 --scale 1", "--center X,Y with --scale: [1e+308,1,200,200]", 1},
           {"--center 10,10 --scale 1e300", "--scale 1e+300 is not a crop scale", 1}}) {
    const auto r = run_tool("predict " + kImage + " --weights " + kModel + " --size 64 " + c.args);
    EXPECT_EQ(r.code, c.code) << c.args << ": " << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << ": " << r.out;
  }
}

TEST(SilentResults, ANanOksMatchesNothing) {
  hg::eval::CocoTruth truth;
  truth.image_ids = {1};
  truth.category_ids = {1};
  truth.sigmas = hg::eval::coco_keypoint_sigmas();
  hg::eval::CocoTruthPerson p;
  p.id = 1;
  p.image_id = 1;
  p.category_id = 1;
  p.bbox = {100, 100, 100, 200};
  p.area = 20000;
  for (int k = 0; k < 17; ++k) p.keypoints.insert(p.keypoints.end(), {120.0 + k, 150.0 + k, 2});
  p.num_keypoints = 17;
  truth.people = {p};
  auto nan = p.keypoints;
  nan[0] = std::nan("");
  const auto s = hg::eval::evaluate_coco_keypoints(truth, {{1, 1, nan, 0.9}});
  EXPECT_EQ(s.ap, 0);
  EXPECT_NEAR(hg::eval::evaluate_coco_keypoints(truth, {{1, 1, p.keypoints, 0.9}}).ap, 1, 1e-9);
}

TEST(SilentResults, CocoTruthWithRepeatedIdsIsRefused) {
  const auto dir = hg::test::scratch_dir();
  json truth = hg::test::read_json(kData + "/coco/person_keypoints_test.json");
  ASSERT_GE(truth["annotations"].size(), 2u);
  truth["annotations"][1]["id"] = truth["annotations"][0]["id"];
  const auto path = dir / "dup.json";
  hg::test::write_text(path, truth.dump());
  EXPECT_ERROR_HAS(hg::eval::read_coco_truth(path.string()),
                   "'.annotations' repeats the id " +
                       std::to_string(truth["annotations"][0]["id"].get<int64_t>()),
                   std::string("every entry needs its own id"));
  truth = hg::test::read_json(kData + "/coco/person_keypoints_test.json");
  truth["images"].push_back(truth["images"][0]);
  hg::test::write_text(path, truth.dump());
  EXPECT_ERROR_HAS(hg::eval::read_coco_truth(path.string()), "'.images' repeats the id");
}

// ---- 8. allocation before verification ---------------------------------------------------------

TEST(DeclaredArchitecture, ParameterCountIsKnownBeforeBuilding) {
  using O = hg::model::StackedHourglassOptions;
  for (const auto& o : {O(), O().stacks(1), O().stacks(3).features(32).depth(2).residuals(2),
                        O().stacks(2).features(16).depth(1).stem1(8).stem2(24).joints(17)})
    EXPECT_EQ(o.parameter_count(), hg::model::StackedHourglass(o)->parameter_count())
        << o.describe();
}

// A 2 MB file declaring a huge architecture made info and predict build it first (3.6 GB, then
// the allocator's failure).
TEST(DeclaredArchitecture, IsCheckedAgainstTheTensorsBeforeTheModelIsBuilt) {
  const auto dir = hg::test::scratch_dir();
  const auto small =
      hg::model::StackedHourglassOptions().stacks(1).features(16).depth(1).stem1(16).stem2(16);
  hg::model::StackedHourglass net(small);
  const auto state = hg::io::state_of(*net);
  const auto file = [&](const hg::model::StackedHourglassOptions& declared) {
    const auto path = (dir / "m.safetensors").string();
    hg::io::write_safetensors(
        path, state,
        {{"format", "hourglass"}, {"architecture", hg::io::options_to_json(declared).dump()}});
    return path;
  };
  const auto huge =
      hg::model::StackedHourglassOptions().stacks(16).features(2048).depth(8).residuals(8);
  EXPECT_ERROR_HAS(hg::io::load_model(file(huge)),
                   "parameters, more than the limit of 1,000,000,000");
  const auto paper = hg::model::StackedHourglassOptions();
  EXPECT_ERROR_HAS(hg::io::load_model(file(paper)),
                   "has 25,434,112 parameters, but the file holds ",
                   "the architecture it declares is not that of its tensors");
  EXPECT_EQ(hg::io::load_model(file(small)).model->parameter_count(), net->parameter_count());
  const auto r = run_tool("info --weights " + file(huge));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("more than the limit"), std::string::npos) << r.out;
}

}  // namespace
