#pragma once
/// A small JSON file of answers measured on this machine (which precision trains faster, which
/// method computes a layer fastest), so that a later process reuses them instead of timing again
/// and so that every process on the machine makes the same choice.

#include <nlohmann/json.hpp>

#include <istream>
#include <optional>
#include <string>

namespace hg::runtime {

/// The CPU as the caches key it: /proc/cpuinfo's "model name" with its family, model and stepping
/// ("AMD EPYC (family 25 model 17 stepping 1)"): a virtual machine often names only the vendor's
/// line, which covers cores of different speeds. "unknown cpu" where there is no model name.
std::string cpu_identity();
/// The same from the text of a /proc/cpuinfo (its first processor's block).
std::string cpu_identity(std::istream& cpuinfo);

/// $XDG_CACHE_HOME/hourglass/`file`, else $HOME/.cache/hourglass/`file` ("" without either).
std::string default_cache_file(const std::string& file);

/// The JSON object in the file `path` (empty for a "" path, a missing or unreadable file).
nlohmann::json cached_entries(const std::string& path);

/// The entry `key` of the JSON object in the file `path`, if any ("" path, a missing or
/// unreadable file: none).
std::optional<nlohmann::json> cached_entry(const std::string& path, const std::string& key);

/// Adds (or replaces) `key` in the JSON object of the file `path`, creating its folder; written
/// to a temporary beside it and renamed over it. A file that cannot be written is left alone
/// with a warning on stderr (once per file and process) naming it, `what` it holds and the
/// `hint` (what to do about it); a "" path is no file.
void store_entry(const std::string& path, const std::string& key, const nlohmann::json& value,
                 const std::string& what, const std::string& hint);

}  // namespace hg::runtime
