// The stacking experiment: parameter matching and the command end to end on tiny models.
#include "hg/train/ablation.h"

#include "test_util.h"

#include <filesystem>

namespace {
namespace fs = std::filesystem;
using hg::train::match_parameters;

// The paper's networks: 256 features, depth 4, 16 joints, the 128-wide stem.
hg::model::StackedHourglassOptions paper_base() {
  return hg::model::StackedHourglassOptions();
}

TEST(Ablation, TheseStackCountsGetThePapersResidualsAndMatchingParameters) {
  const auto models = match_parameters(paper_base(), {8, 2, 4}, 256);
  ASSERT_EQ(models.size(), 3u);
  const std::vector<int64_t> stacks = {2, 4, 8}, residuals = {4, 2, 1};
  for (size_t i = 0; i < models.size(); ++i) {
    EXPECT_EQ(models[i].stacks, stacks[i]);
    EXPECT_EQ(models[i].residuals, residuals[i]) << stacks[i] << " stacks";
    EXPECT_NEAR(models[i].parameters, 25434112, 0.1 * 25434112) << stacks[i] << " stacks";
    EXPECT_GT(models[i].gmacs, 0);
  }
  EXPECT_EQ(models[2].parameters, 25434112);  // the paper's 8-stack network
  // Each count is that of the network built with those options.
  const hg::model::StackedHourglass two(paper_base().stacks(2).residuals(4));
  EXPECT_EQ(models[0].parameters, two->parameter_count());
  EXPECT_DOUBLE_EQ(models[0].gmacs, static_cast<double>(two->macs(256, 256)) / 1e9);
}

TEST(Ablation, StackCountsThatCannotMatchAreRefusedWithTheClosestMatch) {
  const auto small = paper_base().features(32).stem1(32).stem2(32);
  EXPECT_ERROR_HAS(match_parameters(small, {1, 16}, 256), "1 stack would need 17 residuals",
                   "at most 8");
  EXPECT_ERROR_HAS(match_parameters(small, {5, 8}, 256), "5 stacks cannot match the",
                   "parameters of 8 stacks within 10 %", "closest: 2 residuals per block",
                   "e.g. 2,4,8");
  EXPECT_ERROR_HAS(match_parameters(small, {2, 2}, 256), "stack counts must differ");
  EXPECT_ERROR_HAS(match_parameters(small, {}, 256), "at least one stack count");
  hg::train::AblationOptions o;
  EXPECT_ERROR_HAS(hg::train::run_ablation(o), "needs one budget", "not both or neither");
}

// The flags of a tiny experiment (1 and 2 stacks of 16 features at 32², batch 4, no validation)
// into `out`, scored on `test_people` held-out synthetic people.
std::string tiny_flags(const fs::path& out, int test_people) {
  return " --stacks 1,2 --features 16 --size 32 --set model.depth=2 --set model.stem1=16"
         " --set model.stem2=16 --set batch_size=4 --set val_dataset= --set threads=2"
         " --set loader_threads=1 --test synthetic:" +
         std::to_string(test_people) + ":3 --threads 2 --out " + out.string();
}

// The command as a user runs it, on tiny models: training, per-stack scores, the report and the
// plot; run again, it resumes the finished runs and gives the same scores.
TEST(Ablation, TheCommandTrainsScoresAndReportsEveryStackAndRerunsToTheSameScores) {
  const auto dir = hg::test::scratch_dir();
  const std::string tiny = tiny_flags(dir / "a", 16);
  const auto first = hg::test::run_tool("ablation --steps 6" + tiny);
  ASSERT_EQ(first.code, 0) << first.out;
  EXPECT_NE(first.out.find("1 stack x 2 residuals"), std::string::npos) << first.out;
  const auto json = hg::test::read_json(dir / "a" / "ablation.json");
  EXPECT_EQ(json["steps"], 6);
  EXPECT_EQ(json["metric"], "pckh");
  ASSERT_EQ(json["models"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const auto& m = json["models"][i];
    EXPECT_EQ(m["stacks"], i + 1);
    EXPECT_EQ(m["residuals"], 2 - i);
    EXPECT_EQ(m["steps"], 6);
    EXPECT_GT(m["parameters"].get<int64_t>(), 0);
    ASSERT_EQ(m["per_stack"].size(), static_cast<size_t>(i + 1)) << m.dump();
    for (const auto& s : m["per_stack"]) {
      EXPECT_TRUE(s["pckh@0.5"].contains("mean")) << s.dump();
      EXPECT_LE(s["pckh@0.2"]["mean"].get<double>(), s["pckh@0.5"]["mean"].get<double>() + 1e-9)
          << "the stricter threshold cannot score more";
    }
  }
  EXPECT_EQ(json["paper_mpii_pckh@0.5"][2]["final"], 88.1);
  EXPECT_GT(fs::file_size(dir / "a" / "fig9.png"), 1000u);
  std::ifstream report(dir / "a" / "report.md");
  const std::string md((std::istreambuf_iterator<char>(report)), {});
  EXPECT_NE(md.find("| 2 stacks x 1 residual |"), std::string::npos) << md;

  const auto again = hg::test::run_tool("ablation --steps 6" + tiny);
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_NE(again.out.find("resuming the run in"), std::string::npos) << again.out;
  const auto json2 = hg::test::read_json(dir / "a" / "ablation.json");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(json2["models"][i]["steps"], 6);
    EXPECT_EQ(json2["models"][i]["per_stack"], json["models"][i]["per_stack"]);
  }
  // Another budget into the same folder would mix runs: refused, the finished runs kept.
  const auto other = hg::test::run_tool("ablation --steps 7" + tiny);
  EXPECT_EQ(other.code, 1);
  EXPECT_NE(other.out.find("hourglass: error: " + (dir / "a" / "stacks_1").string() +
                           " holds a run of another config"),
            std::string::npos)
      << other.out;
  EXPECT_TRUE(fs::exists(dir / "a" / "stacks_1" / "last.hg"));
}

// A time budget becomes one step count, measured and recorded, before any model trains.
TEST(Ablation, MinutesAreTurnedIntoOneRecordedStepCount) {
  const auto dir = hg::test::scratch_dir();
  const std::string command = "ablation --minutes 0.02" + tiny_flags(dir / "b", 8);
  const auto r = hg::test::run_tool(command);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto json = hg::test::read_json(dir / "b" / "ablation.json");
  const auto steps = json["steps"].get<int64_t>();
  EXPECT_GE(steps, 1);
  EXPECT_EQ(json["calibration"]["minutes"], 0.02);
  ASSERT_EQ(json["calibration"]["models"].size(), 2u);
  double slowest = 0;
  for (const auto& m : json["calibration"]["models"])
    slowest = std::max(slowest, m["seconds_per_step"].get<double>());
  EXPECT_EQ(steps, static_cast<int64_t>(std::floor(60 * 0.02 / slowest)));
  for (const auto& m : json["models"]) EXPECT_EQ(m["steps"], steps);
  EXPECT_FALSE(fs::exists(dir / "b" / "calibration"));
  // Run again, the timed budget is replayed from plan.json, not timed anew.
  const auto again = hg::test::run_tool(command);
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_NE(again.out.find("budget as timed before"), std::string::npos) << again.out;
  EXPECT_EQ(hg::test::read_json(dir / "b" / "ablation.json")["steps"], steps);
  const auto usage = hg::test::run_tool("ablation --stacks 2,4");
  EXPECT_NE(usage.code, 0);
  EXPECT_NE(usage.out.find("give the budget: --steps K or --minutes M"), std::string::npos)
      << usage.out;
}

}  // namespace
