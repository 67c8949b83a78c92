// The native checkpoint (.hg): header, architecture, metadata JSON and tensors.
#include "fuzz_util.h"
#include "hg/io/checkpoint.h"

#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = hg::fuzz::as_file(data, size, ".hg");
  try {
    hg::io::read_checkpoint(path);
  } catch (const std::exception&) {  // c10::Error and the JSON reader's errors
  }
  return 0;
}
