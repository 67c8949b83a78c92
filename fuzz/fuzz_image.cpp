// Images: the JPEG/PNG/WebP header checks (format, declared size against the pixel budget, a
// JPEG's end marker) and decoding through them, as `predict` and the server do.
#include "hg/data/dataset.h"
#include "hg/data/image_header.h"

#include <stdexcept>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    hg::data::check_image_header(bytes, 1 << 20);
  } catch (const std::runtime_error&) {
  }
  try {
    // A small budget: the fuzzer's memory limit is for bugs, not for images it may decode.
    hg::data::decode_image_rgb(bytes, 1 << 18, 1, /*other_formats=*/false);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
