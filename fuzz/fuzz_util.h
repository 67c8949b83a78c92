#pragma once
// Shared by the fuzz targets: readers that take a path get the input as a file (one per process,
// rewritten for every input).

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

namespace hg::fuzz {

/// Writes the input to a file of this process ending in `suffix` and returns its path.
inline std::string as_file(const uint8_t* data, size_t size, const std::string& suffix) {
  const std::string path = "/tmp/hg_fuzz_" + std::to_string(::getpid()) + suffix;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::terminate();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::terminate();
  std::fclose(f);
  return path;
}

}  // namespace hg::fuzz
