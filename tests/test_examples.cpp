// The installed package as a user consumes it: `cmake --install` into a fresh prefix, the
// examples configured with find_package(hourglass) and built against it, then run.
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

namespace {

namespace fs = std::filesystem;
using hg::test::run_command;

std::string quoted(const fs::path& p) {
  return "'" + p.string() + "'";
}

TEST(Examples, BuildAgainstTheInstalledPackageTrainAndPredictLikeTheTool) {
  const auto work = hg::test::scratch_dir();
  const auto prefix = work / "prefix", build = work / "build", run = work / "run";
  const std::string cmake = HG_CMAKE;
  auto r =
      run_command(cmake + " --install " + quoted(HG_BUILD_DIR) + " --prefix " + quoted(prefix));
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* file :
       {"include/hg/hourglass.h", "bin/hourglass", "lib/cmake/hourglass/hourglassConfig.cmake",
        "lib/cmake/hourglass/hourglassConfigVersion.cmake"})
    EXPECT_TRUE(fs::exists(prefix / file)) << file;
  EXPECT_FALSE(fs::exists(prefix / "include/hg/cli")) << "the CLI's headers are not the library's";

  const std::string launcher = std::string(HG_CCACHE).empty()
                                   ? ""
                                   : " -DCMAKE_CXX_COMPILER_LAUNCHER=" + std::string(HG_CCACHE);
  r = run_command(
      cmake + " -S " + quoted(fs::path(HG_SOURCE_DIR) / "examples") + " -B " + quoted(build) +
      " -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" + quoted(prefix) + launcher);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_command(cmake + " --build " + quoted(build) + " -j2");
  ASSERT_EQ(r.code, 0) << r.out;

  // Train a tiny model for a few steps: the example reports its steps and every stack's score.
  r = run_command("OMP_NUM_THREADS=2 " + quoted(build / "train_dataset") + " synthetic:32:1 " +
                  quoted(run) +
                  " model.stacks=2 model.features=16 model.depth=2 model.stem1=16 model.stem2=16"
                  " input_size=64 batch_size=8 max_steps=3 threads=2 loader_threads=1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("trained 3 steps"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stack 1: PCKh@0.5 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stack 2: PCKh@0.5 "), std::string::npos) << r.out;

  // The people of a real MPII image, found and predicted by the example and by the installed
  // tool with the same checkpoint and defaults: the same people, the same joints.
  const auto model = run / "last.hg";
  const auto image = fs::path(hg::test::kData) / "mpii/images/004645041.jpg";
  r = run_command("OMP_NUM_THREADS=2 " + quoted(build / "predict_image") + " " + quoted(model) +
                  " " + quoted(image) + " > " + quoted(work / "example.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_command("OMP_NUM_THREADS=2 " + quoted(prefix / "bin/hourglass") + " predict --weights " +
                  quoted(model) + " -o " + quoted(work / "tool.json") + " " + quoted(image));
  ASSERT_EQ(r.code, 0) << r.out;
  const auto example = hg::test::read_json(work / "example.json");
  const auto tool = hg::test::read_json(work / "tool.json")["results"][0]["people"];
  ASSERT_TRUE(example.is_array()) << example.dump();
  ASSERT_GE(example.size(), 1u);
  ASSERT_EQ(example.size(), tool.size());
  for (size_t p = 0; p < example.size(); ++p) {
    EXPECT_EQ(example[p]["found_by"], tool[p]["found_by"]);
    const auto& joints = example[p]["joints"];
    ASSERT_EQ(joints.size(), 16u);
    for (const auto& [name, xys] : joints.items()) {
      const auto& t = tool[p]["joints"][name];
      ASSERT_FALSE(t.is_null()) << name;
      EXPECT_NEAR(xys[0].get<double>(), t["x"].get<double>(), 1e-3) << name;
      EXPECT_NEAR(xys[1].get<double>(), t["y"].get<double>(), 1e-3) << name;
    }
  }
}

}  // namespace
