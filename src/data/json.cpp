#include "hg/data/json.h"

#include "hg/runtime/limits.h"

#include <fstream>

namespace hg::data {
namespace {

using nlohmann::json;

struct TooDeep {};

// The parser (iterative in nlohmann) reports each start of an array or object with its depth,
// before it builds anything inside: throwing there leaves at most kMaxJsonDepth levels to destroy.
template <typename Input>
json parse_bounded(Input&& input, const std::string& source) {
  const json::parser_callback_t check = [](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= limits::kMaxJsonDepth)
      throw TooDeep{};
    return true;
  };
  try {
    return json::parse(std::forward<Input>(input), check);
  } catch (const TooDeep&) {
    throw JsonError("cannot read " + source + ": arrays and objects nested deeper than " +
                    std::to_string(limits::kMaxJsonDepth) +
                    " levels (the limit; real files nest a few): not a valid file of its kind");
  } catch (const json::exception& e) {
    // e.what() quotes only the last token read, never the document.
    throw JsonError("cannot read " + source + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace

json parse_json(std::string_view text, const std::string& source) {
  return parse_bounded(text, source);
}

json parse_json(std::istream& in, const std::string& source) {
  return parse_bounded(in, source);
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw JsonError("cannot read " + path + ": no such file (or it is not readable)");
  return parse_json(in, path);
}

}  // namespace hg::data
