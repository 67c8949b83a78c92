#pragma once
// Helpers shared by the test files: scratch folders, error messages, running the tool.

#include "hg/model/large_hourglass.h"
#include "hg/train/config.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <torch/nn/module.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace hg::test {

/// tests/data.
inline const std::string kData = HG_TEST_DATA;

/// A tiny training run (2 stacks, 16 features, 32 px, 64 synthetic people, batch 8, 3 epochs of
/// 8 steps, no validation, 2 threads): a second or two.
inline hg::train::TrainConfig tiny_train_config() {
  hg::train::TrainConfig c;
  c.model =
      hg::model::StackedHourglassOptions().stacks(2).features(16).depth(2).stem1(16).stem2(16);
  c.input_size = 32;
  c.dataset = "synthetic:64:1";
  c.val_dataset = "";
  c.batch_size = 8;
  c.epochs = 3;
  c.optimizer = hg::train::Optimizer::kAdam;
  c.lr = 2e-3;
  c.augment = hg::data::AugmentPreset::kPaper;
  c.threads = 2;
  c.loader_threads = 1;
  return c;
}

/// A folder for the running test (named after it and the process), emptied on the test's first
/// call.
inline std::filesystem::path scratch_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string("hg_") + info->test_suite_name() + "_" + info->name() + "_" +
                     std::to_string(::getpid());
  for (char& ch : name)
    if (ch == '/') ch = '_';  // parameterised tests
  const auto dir = std::filesystem::temp_directory_path() / name;
  static std::filesystem::path last;
  if (dir != last) {
    std::filesystem::remove_all(dir);
    last = dir;
  }
  std::filesystem::create_directories(dir);
  return dir;
}

/// The message of the exception `f` throws ("" if none); c10::Error without its backtrace.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// Fills every batch norm's running statistics with values in [0.5, 1.5), so that a lost or
/// misplaced buffer shows in a model's outputs.
inline void randomise_batch_norm(torch::nn::Module& net) {
  torch::NoGradGuard no_grad;
  for (auto& b : net.named_buffers())
    if (b.key().find("running_") != std::string::npos) b.value().uniform_(0.5, 1.5);
}

/// A small CornerNet/CenterNet hourglass without heads: two levels, widths changing at every level
/// (8, 12, 16: not multiples of 16), three stacks.
inline model::LargeHourglassOptions small_large_hourglass() {
  return model::LargeHourglassOptions()
      .levels(2)
      .dims({8, 12, 16})
      .modules({2, 1, 2})
      .stacks(3)
      .cnv_dim(10)
      .stem(6);
}

/// A small top-down pose model in MMPose's style (the CornerNet/CenterNet family, Hourglass-52's
/// layout at widths 16–32, 17 heatmaps), random weights and batch norms, in eval mode.
inline model::LargeHourglass small_pose_model() {
  torch::manual_seed(5);
  model::LargeHourglass net(model::hourglass52(model::parse_heads("heatmaps:17"))
                                .levels(2)
                                .dims({16, 32, 32})
                                .modules({1, 1, 1})
                                .cnv_dim(16)
                                .stem(16));
  randomise_batch_norm(*net);
  net->eval();
  return net;
}

/// Expects `stmt` to throw, with every one of the strings after it in the message.
#define EXPECT_ERROR_HAS(stmt, ...)                                          \
  do {                                                                       \
    const std::string msg_ = ::hg::test::error_of([&] { stmt; });            \
    ASSERT_FALSE(msg_.empty()) << #stmt " did not throw";                    \
    for (const std::string& part_ : {__VA_ARGS__})                           \
      EXPECT_NE(msg_.find(part_), std::string::npos) << "message: " << msg_; \
  } while (0)

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

/// What the tool printed and how it ended.
struct ToolResult {
  int code;
  std::string out;  // stdout and stderr together
};

/// Runs a shell command line, capturing its output and exit code.
inline ToolResult run_command(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  return {WEXITSTATUS(status), out};
}

/// Runs the built `hourglass` with `args` (a shell command line), as a user would.
inline ToolResult run_tool(const std::string& args) {
  return run_command(std::string(HG_BINARY) + " " + args);
}

}  // namespace hg::test
