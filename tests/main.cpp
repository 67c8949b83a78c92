// Test entry point: Debian's LibTorch starts with one thread; use every core, as the tool does.
#include "hg/runtime/runtime.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

int main(int argc, char** argv) {
  torch::set_num_threads(hg::runtime::cores());
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
