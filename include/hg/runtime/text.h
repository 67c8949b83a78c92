#pragma once
/// Numbers and names written for people, one definition for the tool, the reports and the
/// library's errors.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace hg::runtime {

/// 1234567 -> "1,234,567".
std::string with_commas(int64_t n);

/// A count with its noun, plural-aware: (1, "step") -> "1 step", (2048, "step") -> "2,048 steps".
/// `plural` is the plural form when it is not `noun` + "s" ("people" for "person").
std::string count(int64_t n, const std::string& noun, const std::string& plural = "");

/// `v` with `digits` decimals (91.234 -> "91.2"); NaN (nothing to measure) -> "–".
std::string fixed(double v, int digits = 1);

/// The first `shown` of `values`, then "…" when there are more: ({3, 8, 9}, 2) -> "3, 8, …". For
/// messages that name what is at fault (line numbers, ids) without listing thousands.
std::string listed(const std::vector<int64_t>& values, size_t shown = 5);

/// The name of `names` nearest to `value` (Levenshtein distance, case-insensitive), or "" when
/// none is within max(2, |value|/3) edits: the "did you mean" of a mistyped key or command.
std::string closest_name(const std::string& value, const std::vector<std::string>& names);

/// " (did you mean 'NAME'?)" for closest_name's answer, or "" when there is none.
std::string did_you_mean(const std::string& value, const std::vector<std::string>& names);

/// `j` as JSON text (`indent` < 0: one line), with any byte sequence that is not UTF-8 in its
/// strings written as U+FFFD: a file name, a header or a path from outside never makes it throw
/// (nlohmann's dump() does), so every JSON this project writes goes through here.
std::string json_text(const nlohmann::json& j, int indent = -1);

}  // namespace hg::runtime
