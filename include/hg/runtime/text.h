#pragma once
/// Numbers written for people, one definition for the tool, the reports and the library's errors.

#include <cstdint>
#include <string>

namespace hg::runtime {

/// 1234567 -> "1,234,567".
std::string with_commas(int64_t n);

/// `v` with `digits` decimals (91.234 -> "91.2"); NaN (nothing to measure) -> "–".
std::string fixed(double v, int digits = 1);

}  // namespace hg::runtime
