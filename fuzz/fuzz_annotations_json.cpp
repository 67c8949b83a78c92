// The JSON annotation readers: COCO and the custom hourglass-pose format.
#include "fuzz_util.h"
#include "hg/data/readers.h"

#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = hg::fuzz::as_file(data, size, ".json");
  try {
    hg::data::open_annotations(path, "/nonexistent");
  } catch (const std::exception&) {
  }
  return 0;
}
