// The native checkpoint (.hg): header, architecture, metadata JSON and tensors; and the
// CornerNet/CenterNet family's loader (native, CenterNet and MMPose files, the architecture
// inferred from names and shapes).
#include "fuzz_util.h"
#include "hg/io/checkpoint.h"

#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = hg::fuzz::as_file(data, size, ".hg");
  try {
    hg::io::read_checkpoint(path);
  } catch (const std::exception&) {  // c10::Error and the JSON reader's errors
  }
  try {
    hg::io::load_large_hourglass(path);
  } catch (const std::exception&) {
  }
  return 0;
}
