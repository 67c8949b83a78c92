#pragma once
// The central directory of a zip archive (a `torch.save` file), read independently of LibTorch's
// reader, whose miniz is built without CRC-32 checks: the sizes bound what a record may claim
// before anything is allocated for it, and the CRC-32 of every record read is verified against
// it (private to src/io).

#include <cstdint>
#include <map>
#include <string>

namespace hg::io {

/// One record of the archive.
struct ZipEntry {
  uint64_t size = 0;             ///< uncompressed bytes
  uint64_t compressed_size = 0;  ///< bytes in the file
  uint32_t crc32 = 0;
};

/// The records of the zip file at `path` by name, with the archive's top folder stripped
/// ("archive/data/0" → "data/0"), as PyTorchStreamReader names them. Throws, naming the file, if
/// the central directory is missing, cut short or claims records beyond the file's end.
std::map<std::string, ZipEntry> read_zip_index(const std::string& path);

/// Throws, naming the file and record, unless `bytes` of `size` bytes have the CRC-32 the index
/// gives for `record`.
void check_zip_record(const std::map<std::string, ZipEntry>& index, const std::string& path,
                      const std::string& record, const void* bytes, size_t size);

}  // namespace hg::io
