#include "hg/runtime/machine_cache.h"
#include "hg/runtime/text.h"

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>

namespace hg::runtime {
namespace fs = std::filesystem;

namespace {

// Once per file and process: an engine build stores an answer per layer, and a read-only cache
// folder would otherwise print the same warning for each.
void warn_once(const std::string& path, const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> warned;
  const std::lock_guard<std::mutex> lock(mutex);
  if (warned.insert(path).second) std::cerr << message;
}

nlohmann::json read_object(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json::object();
  // A cache holds flat objects; a file too deep or broken is no cache (it is rewritten).
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : nlohmann::json::object();
}

}  // namespace

std::string cpu_identity(std::istream& cpuinfo) {
  // The first processor's block: every core of these machines is the same.
  std::map<std::string, std::string> fields;
  std::string line;
  while (std::getline(cpuinfo, line) && !line.empty()) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    fields[key] = value;
  }
  const auto field = [&](const std::string& k) {
    const auto it = fields.find(k);
    return it == fields.end() ? std::string("?") : it->second;
  };
  if (!fields.count("model name")) return "unknown cpu";
  return field("model name") + " (family " + field("cpu family") + " model " + field("model") +
         " stepping " + field("stepping") + ")";
}

std::string cpu_identity() {
  std::ifstream in("/proc/cpuinfo");
  return cpu_identity(in);
}

std::string default_cache_file(const std::string& file) {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return (fs::path(x) / "hourglass" / file).string();
  if (const char* h = std::getenv("HOME"); h && *h)
    return (fs::path(h) / ".cache" / "hourglass" / file).string();
  return "";
}

nlohmann::json cached_entries(const std::string& path) {
  return path.empty() ? nlohmann::json::object() : read_object(path);
}

std::optional<nlohmann::json> cached_entry(const std::string& path, const std::string& key) {
  const auto j = cached_entries(path);
  if (!j.contains(key)) return std::nullopt;
  return j.at(key);
}

void store_entry(const std::string& path, const std::string& key, const nlohmann::json& value,
                 const std::string& what, const std::string& hint) {
  if (path.empty()) return;
  auto j = read_object(path);
  j[key] = value;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  // One temporary per process: two processes storing at once each rename a whole file.
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    out << runtime::json_text(j, 2) << "\n";
    if (!out.good()) {
      warn_once(path, "hourglass: warning: cannot write the " + what + " cache " + path + " (" +
                          hint + ")\n");
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    warn_once(path, "hourglass: warning: cannot write the " + what + " cache " + path + " (" +
                        ec.message() + "; " + hint + ")\n");
    fs::remove(tmp, ec);
  }
}

}  // namespace hg::runtime
