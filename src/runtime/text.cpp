#include "hg/runtime/text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace hg::runtime {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Levenshtein distance by the two-row dynamic programme; names are short, so no library for it.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string count(int64_t n, const std::string& noun, const std::string& plural) {
  const std::string many = plural.empty() ? noun + "s" : plural;
  return with_commas(n) + " " + (n == 1 ? noun : many);
}

std::string fixed(double v, int digits) {
  if (std::isnan(v)) return "–";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string listed(const std::vector<int64_t>& values, size_t shown) {
  std::string out;
  for (size_t i = 0; i < values.size() && i < shown; ++i)
    out += (i ? ", " : "") + std::to_string(values[i]);
  return values.size() > shown ? out + ", …" : out;
}

std::string closest_name(const std::string& value, const std::vector<std::string>& names) {
  const std::string v = lower(value);
  const size_t limit = std::max<size_t>(2, v.size() / 3);
  std::string best;
  size_t best_distance = limit + 1;
  for (const auto& name : names) {
    const size_t d = edit_distance(v, lower(name));
    if (d < best_distance) best = name, best_distance = d;
  }
  return best;
}

std::string did_you_mean(const std::string& value, const std::vector<std::string>& names) {
  const std::string name = closest_name(value, names);
  return name.empty() ? "" : " (did you mean '" + name + "'?)";
}

std::string json_text(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace hg::runtime
