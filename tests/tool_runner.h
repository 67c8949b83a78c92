#pragma once
// Runs the `hourglass` tool as a user would, for the end-to-end tests.

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <string>

namespace hg::test {

struct ToolResult {
  int code;
  std::string out;  // stdout and stderr together
};

inline ToolResult run_tool(const std::string& args) {
  const std::string cmd = std::string(HG_BINARY) + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  return {WEXITSTATUS(status), out};
}

}  // namespace hg::test
