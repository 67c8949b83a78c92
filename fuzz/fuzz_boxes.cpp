// Person boxes: a `--boxes` file, and the boxes of a /v1/pose request (a list, or an object with
// one list).
#include "hg/data/boxes.h"
#include "hg/data/json.h"

#include <stdexcept>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto j = hg::data::parse_json(text, "boxes");
    try {
      hg::data::boxes_file_from_json(j, "boxes");
    } catch (const std::invalid_argument&) {
    }
    hg::data::boxes_from_json(j.is_object() && j.size() == 1 ? j.begin().value() : j, "boxes");
  } catch (const std::exception&) {
  }
  return 0;
}
