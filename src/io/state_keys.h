#pragma once
// Splitting state_dict keys into their dotted parts: shared by the import and the export of the
// PyTorch ports' and CenterNet's key names (private to src/io).

#include <algorithm>
#include <cstdint>
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

/// The largest index i for which some key of `state` starts with prefix + "i.", plus one.
template <typename Map>
int64_t count_indexed(const Map& state, const std::string& prefix) {
  int64_t n = 0;
  for (const auto& entry : state) {
    const std::string& k = entry.first;
    if (k.compare(0, prefix.size(), prefix) != 0) continue;
    const auto rest = k.substr(prefix.size());
    const auto idx = rest.substr(0, rest.find('.'));
    if (is_index(idx) && idx.size() <= 9) n = std::max<int64_t>(n, std::stoll(idx) + 1);
  }
  return n;
}

/// A key without the wrappers' prefixes: "model." (posenet's training wrapper), then "module."
/// (DataParallel's).
inline std::string strip_prefix(std::string key) {
  for (const std::string prefix : {"model.", "module."})
    if (key.rfind(prefix, 0) == 0) key = key.substr(prefix.size());
  return key;
}

/// A state dict with strip_prefix applied to every key.
template <typename Map>
Map without_prefixes(const Map& raw) {
  Map state;
  for (const auto& [key, value] : raw) state.emplace(strip_prefix(key), value);
  return state;
}

/// What Newell's loaders say of a file of the CornerNet/CenterNet family, after "it holds a …
/// hourglass": who runs it instead.
inline constexpr const char* kLargeFamilyElsewhere =
    ", which Newell's loader does not read: forward, info, convert, export and bench run this "
    "family, predict, eval, show and serve its top-down pose models (MMPose's), and train "
    "neither";

}  // namespace hg::io
