#pragma once
/// One name table per enum: parsing, printing, the command line's choices and config files all
/// read the same one. Each enum E declares `const runtime::NameTable<E>& name_table(E)` beside
/// it, so that generic code finds the table of any enum as name_table(E{}).

#include "hg/runtime/text.h"

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace hg::runtime {

/// The names of an enum's values, in the order they are listed to people.
template <typename E>
using NameTable = std::vector<std::pair<std::string, E>>;

/// The names, in order.
template <typename E>
std::vector<std::string> names_in(const NameTable<E>& table) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.push_back(entry.first);
  return names;
}

/// "a, b or c".
template <typename E>
std::string names_listed(const NameTable<E>& table) {
  std::string out;
  for (size_t i = 0; i < table.size(); ++i)
    out += (i == 0 ? "" : i + 1 == table.size() ? " or " : ", ") + table[i].first;
  return out;
}

/// The name of `value` (it is in the table: an enum's every value is).
template <typename E>
std::string name_in(const NameTable<E>& table, E value) {
  for (const auto& entry : table)
    if (entry.second == value) return entry.first;
  throw std::logic_error("a value missing from its enum's name table");
}

/// The value named `name`; throws std::invalid_argument naming `what` (a key or field), the
/// names taken and the one probably meant.
template <typename E>
E parse_in(const NameTable<E>& table, const std::string& name, const std::string& what) {
  for (const auto& entry : table)
    if (entry.first == name) return entry.second;
  throw std::invalid_argument(what + " must be " + names_listed(table) + ", got '" + name + "'" +
                              did_you_mean(name, names_in(table)));
}

}  // namespace hg::runtime
