// End-to-end checks of the `hourglass` tool, run as a user would.
#include "hg/io/torch_file.h"
#include "tool_runner.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

namespace {

using Result = hg::test::ToolResult;
Result run(const std::string& args) {
  return hg::test::run_tool(args);
}

const std::string kFixtures = std::string(HG_TEST_DATA) + "/fixtures/";

TEST(Cli, InfoPrintsThePaperModelsParameterCount) {
  const auto r = run("info --stacks 8");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("25,434,112"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("27.44"), std::string::npos) << r.out;
}

TEST(Cli, ConvertThenForwardReproducesTheReference) {
  const auto dir = std::filesystem::temp_directory_path() / "hg_cli_test";
  std::filesystem::create_directories(dir);
  const auto native = (dir / "bearpaw.hg").string(), out = (dir / "out.pt").string();
  auto r = run("convert " + kFixtures + "bearpaw_hg_s2_b1_f64.pth.tar " + native);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("info --weights " + native);
  EXPECT_NE(r.out.find("2 stacks, 64 features"), std::string::npos) << r.out;
  r = run("forward --threads 2 --weights " + native + " --input " + kFixtures +
          "bearpaw_hg_s2_b1_f64.io.pt --output " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto got = hg::io::read_torch_file(out)->find("output")->tensor;
  const auto ref =
      hg::io::read_torch_file(kFixtures + "bearpaw_hg_s2_b1_f64.io.pt")->find("output")->tensor;
  EXPECT_LE((got - ref).abs().max().item<double>(), 1e-4 * ref.abs().max().item<double>());
}

TEST(Cli, ErrorsAreOneClearLineAndNonZeroExit) {
  const auto bad = std::filesystem::temp_directory_path() / "hg_cli_not_a_model.pt";
  {
    std::FILE* f = std::fopen(bad.c_str(), "w");
    std::fputs("hello", f);
    std::fclose(f);
  }
  const auto r = run("info --weights " + bad.string());
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.out.rfind("hourglass: error: cannot read " + bad.string(), 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;

  const auto bad_size = run("info --stacks 2 --size 100");
  EXPECT_NE(bad_size.code, 0);
  EXPECT_NE(bad_size.out.find("multiple of 64"), std::string::npos) << bad_size.out;
}

}  // namespace
