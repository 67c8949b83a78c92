#pragma once
/// JSON reading with a nesting-depth limit (hg::limits::kMaxJsonDepth), checked while parsing so
/// that no value deeper than the limit is ever built (copying, printing or comparing one recurses
/// once per level).

#include <nlohmann/json.hpp>

#include <istream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hg::data {

/// Thrown for text that is not valid JSON or nests too deeply; the message names the source.
class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses `text`. `source` names it in messages ("config.json", "--set lr", "the request body").
/// Throws JsonError: "cannot read SOURCE: not valid JSON (...)" or "... nested deeper than 64
/// levels ...".
nlohmann::json parse_json(std::string_view text, const std::string& source);
/// As parse_json, for a stream (a file being read).
nlohmann::json parse_json(std::istream& in, const std::string& source);
/// Reads and parses the file at `path` (a missing file is a JsonError naming it).
nlohmann::json read_json_file(const std::string& path);

}  // namespace hg::data
