#pragma once
// Splitting state_dict keys into their dotted parts: shared by the import and the export of the
// PyTorch ports' key names (private to src/io).

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

namespace hg::io {

using Parts = std::vector<std::string>;

/// "a.0.b" → {"a", "0", "b"}.
inline Parts split(const std::string& key) {
  Parts parts;
  std::stringstream s(key);
  std::string part;
  while (std::getline(s, part, '.')) parts.push_back(part);
  return parts;
}

/// Whether a key part is a module list index ("0", "12").
inline bool is_index(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace hg::io
