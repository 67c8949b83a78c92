// The predictions file of `hourglass predict` (`eval --predictions x.json`).
#include "fuzz_util.h"
#include "hg/data/dataset.h"
#include "hg/infer/results.h"

#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto joints = hg::data::mpii_joints();
  const auto path = hg::fuzz::as_file(data, size, ".json");
  try {
    hg::infer::read_results(path, joints);
  } catch (const std::exception&) {
  }
  return 0;
}
