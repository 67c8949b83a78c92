#include "zip_index.h"

#include <c10/util/Exception.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <vector>

namespace hg::io {
namespace {

uint64_t le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;
constexpr uint64_t kMaxComment = 0xFFFF;

}  // namespace

std::map<std::string, ZipEntry> read_zip_index(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  TORCH_CHECK(in.good(), "cannot read ", path, ": ", std::strerror(errno));
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  const auto damaged = [&](const std::string& why) {
    return c10::str("cannot read ", path, ": the zip archive is damaged or truncated (", why,
                    "); re-download or re-save the file");
  };
  auto read_at = [&](uint64_t offset, uint64_t n) {
    TORCH_CHECK(offset <= file_size && n <= file_size - offset,
                damaged("a structure lies beyond the file's end"));
    std::vector<unsigned char> b(n);
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(n));
    TORCH_CHECK(in.good(), damaged("cannot read the central directory"));
    return b;
  };
  // The end-of-central-directory record: 22 bytes and a comment of up to 64 KB, at the end.
  const uint64_t tail_size = std::min<uint64_t>(file_size, 22 + kMaxComment);
  TORCH_CHECK(tail_size >= 22, damaged("too short for a zip file"));
  const auto tail = read_at(file_size - tail_size, tail_size);
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail_size) - 22; i >= 0; --i)
    if (le(&tail[i], 4) == kEndOfDirectory) {
      eocd = i;
      break;
    }
  TORCH_CHECK(eocd >= 0, damaged("no end-of-central-directory record"));
  const unsigned char* e = &tail[eocd];
  uint64_t count = le(e + 10, 2), dir_size = le(e + 12, 4), dir_offset = le(e + 16, 4);
  if (count == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) {
    // Zip64: a locator just before the record points at the zip64 end record.
    const uint64_t locator_at = file_size - tail_size + static_cast<uint64_t>(eocd);
    TORCH_CHECK(locator_at >= 20, damaged("no zip64 locator"));
    const auto locator = read_at(locator_at - 20, 20);
    TORCH_CHECK(le(locator.data(), 4) == kZip64Locator, damaged("no zip64 locator"));
    const auto end64 = read_at(le(&locator[8], 8), 56);
    TORCH_CHECK(le(end64.data(), 4) == kZip64End, damaged("no zip64 end record"));
    count = le(&end64[32], 8);
    dir_size = le(&end64[40], 8);
    dir_offset = le(&end64[48], 8);
  }
  const auto dir = read_at(dir_offset, dir_size);
  TORCH_CHECK(count <= dir_size / 46, damaged("the directory claims more records than it holds"));
  std::map<std::string, ZipEntry> index;
  size_t at = 0;
  for (uint64_t n = 0; n < count; ++n) {
    TORCH_CHECK(at + 46 <= dir.size() && le(&dir[at], 4) == kDirectoryEntry,
                damaged("a central directory entry is cut short"));
    const unsigned char* d = &dir[at];
    ZipEntry entry;
    entry.crc32 = static_cast<uint32_t>(le(d + 16, 4));
    entry.compressed_size = le(d + 20, 4);
    entry.size = le(d + 24, 4);
    uint64_t local = le(d + 42, 4);
    const size_t name_len = le(d + 28, 2), extra_len = le(d + 30, 2), comment_len = le(d + 32, 2);
    TORCH_CHECK(at + 46 + name_len + extra_len + comment_len <= dir.size(),
                damaged("a central directory entry is cut short"));
    std::string name(reinterpret_cast<const char*>(d + 46), name_len);
    // Zip64 extra field (id 1): the 8-byte values whose 4-byte fields are 0xFFFFFFFF, in order.
    for (size_t x = 46 + name_len; x + 4 <= 46 + name_len + extra_len;) {
      const uint64_t id = le(d + x, 2), len = le(d + x + 2, 2);
      TORCH_CHECK(x + 4 + len <= 46 + name_len + extra_len, damaged("an extra field is cut short"));
      if (id == 1) {
        size_t f = x + 4;
        for (uint64_t* v : {&entry.size, &entry.compressed_size, &local})
          if (*v == 0xFFFFFFFF) {
            TORCH_CHECK(f + 8 <= x + 4 + len, damaged("a zip64 field is cut short"));
            *v = le(d + f, 8);
            f += 8;
          }
      }
      x += 4 + len;
    }
    TORCH_CHECK(local <= file_size && entry.compressed_size <= file_size - local,
                damaged("record '" + name + "' lies beyond the file's end"));
    // torch.save stores records uncompressed: a record larger than the file is a bomb.
    TORCH_CHECK(entry.size <= file_size,
                damaged("record '" + name + "' claims " + std::to_string(entry.size) +
                        " bytes, more than the file holds"));
    const auto slash = name.find('/');
    TORCH_CHECK(slash != std::string::npos,
                damaged("record '" + name + "' is not inside the archive's folder"));
    index[name.substr(slash + 1)] = entry;
    at += 46 + name_len + extra_len + comment_len;
  }
  return index;
}

void check_zip_record(const std::map<std::string, ZipEntry>& index, const std::string& path,
                      const std::string& record, const void* bytes, size_t size) {
  const auto it = index.find(record);
  TORCH_CHECK(it != index.end(), "cannot read ", path, ": the archive lacks the record '", record,
              "'");
  // zlib's crc32 takes at most 4 GB at a time.
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(bytes);
  for (size_t done = 0; done < size;) {
    const auto n = static_cast<uInt>(std::min<size_t>(size - done, 1u << 30));
    crc = crc32(crc, p + done, n);
    done += n;
  }
  TORCH_CHECK(size == it->second.size && crc == it->second.crc32, "cannot read ", path,
              ": record '", record,
              "' is corrupt (its CRC-32 does not match the archive's): the file was damaged "
              "after it was written; re-download or re-save it");
}

}  // namespace hg::io
