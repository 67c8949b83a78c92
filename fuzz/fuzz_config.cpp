// Training configurations: a `--config` JSON file, or (input without a leading '{') `--set`
// assignments, one a line; then the validation every training runs.
#include "hg/data/json.h"
#include "hg/train/config.h"

#include <sstream>
#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto config = hg::train::preset("paper");
    if (!text.empty() && text[0] == '{') {
      config.merge(hg::data::parse_json(text, "config"));
    } else {
      std::istringstream lines(text);
      for (std::string line; std::getline(lines, line);) config.set(line);
    }
    config.validate();
    config.to_json();
  } catch (const std::exception&) {
  }
  return 0;
}
