// Test entry point: Debian's LibTorch starts with one thread; use every core, as the tool does.
#include "hg/runtime/runtime.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
  torch::set_num_threads(hg::runtime::cores());
  // Training's amp=auto and the engine's auto choices are cached under XDG_CACHE_HOME: the tests
  // (and the tools they start) keep theirs out of the user's.
  const auto cache =
      std::filesystem::temp_directory_path() / ("hg_test_cache_" + std::to_string(::getpid()));
  setenv("XDG_CACHE_HOME", cache.c_str(), 1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
