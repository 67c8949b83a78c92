#include "hg/eval/official_mpii.h"

#include <torch/torch.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>

namespace hg::eval {
namespace {

// A minimal MATLAB 5 reader, hand-written because Debian's build dependencies have no MAT
// library: it reads the numeric top-level arrays (compressed or not) and skips the rest.
struct MatArray {
  std::vector<int64_t> dims;   // MATLAB order (column-major)
  std::vector<double> values;  // column-major
};

constexpr uint32_t kMiMatrix = 14, kMiCompressed = 15;

struct Element {
  uint32_t type;
  const uint8_t* data;
  uint32_t bytes;
};

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  throw std::runtime_error("cannot read the official MPII truth " + path + ": " + why);
}

// Reads the element at `off` of [buf, end) and advances `off` past it (and its padding).
Element next(const uint8_t* buf, size_t size, size_t& off, const std::string& path) {
  if (off + 8 > size) bad(path, "truncated MAT element");
  uint32_t type, bytes;
  std::memcpy(&type, buf + off, 4);
  std::memcpy(&bytes, buf + off + 4, 4);
  if (type >> 16) {  // small data element: size in the upper half, data in the second word
    Element e{type & 0xffff, buf + off + 4, type >> 16};
    off += 8;
    return e;
  }
  if (off + 8 + bytes > size) bad(path, "truncated MAT element");
  Element e{type, buf + off + 8, bytes};
  off += 8 + (type == kMiCompressed ? bytes : (bytes + 7) / 8 * 8);
  return e;
}

template <typename T>
void append(std::vector<double>& out, const uint8_t* p, uint32_t bytes) {
  for (uint32_t k = 0; k + sizeof(T) <= bytes; k += sizeof(T)) {
    T v;
    std::memcpy(&v, p + k, sizeof(T));
    out.push_back(static_cast<double>(v));
  }
}

bool numeric(const Element& e, std::vector<double>& out) {
  switch (e.type) {
    case 1:
      append<int8_t>(out, e.data, e.bytes);
      return true;
    case 2:
      append<uint8_t>(out, e.data, e.bytes);
      return true;
    case 3:
      append<int16_t>(out, e.data, e.bytes);
      return true;
    case 4:
      append<uint16_t>(out, e.data, e.bytes);
      return true;
    case 5:
      append<int32_t>(out, e.data, e.bytes);
      return true;
    case 6:
      append<uint32_t>(out, e.data, e.bytes);
      return true;
    case 7:
      append<float>(out, e.data, e.bytes);
      return true;
    case 9:
      append<double>(out, e.data, e.bytes);
      return true;
    case 12:
      append<int64_t>(out, e.data, e.bytes);
      return true;
    case 13:
      append<uint64_t>(out, e.data, e.bytes);
      return true;
    default:
      return false;
  }
}

void read_matrix(const Element& m, std::map<std::string, MatArray>& out, const std::string& path) {
  size_t off = 0;
  const auto flags = next(m.data, m.bytes, off, path);
  const auto dims = next(m.data, m.bytes, off, path);
  const auto name = next(m.data, m.bytes, off, path);
  uint32_t array_flags = 0;
  if (flags.bytes >= 4) std::memcpy(&array_flags, flags.data, 4);
  const uint32_t cls = array_flags & 0xff;
  if (cls < 6 || cls > 15) return;  // cells, structs, chars, sparse: not needed
  MatArray a;
  std::vector<double> d;
  numeric(dims, d);
  for (double v : d) a.dims.push_back(static_cast<int64_t>(v));
  if (!numeric(next(m.data, m.bytes, off, path), a.values)) return;
  out[std::string(reinterpret_cast<const char*>(name.data), name.bytes)] = std::move(a);
}

std::map<std::string, MatArray> read_mat(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) bad(path, "cannot open the file");
  const std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
  if (buf.size() < 128 || std::memcmp(buf.data(), "MATLAB 5.0 MAT-file", 19) != 0)
    bad(path, "not a MATLAB 5 (-v6/-v7) MAT file");
  std::map<std::string, MatArray> out;
  for (size_t off = 128; off < buf.size();) {
    const auto e = next(buf.data(), buf.size(), off, path);
    if (e.type == kMiMatrix) {
      read_matrix(e, out, path);
    } else if (e.type == kMiCompressed) {
      // The inflated size is unknown: grow until zlib reports the end of the stream.
      std::vector<uint8_t> raw(std::max<size_t>(4 * e.bytes, 1024));
      for (;;) {
        uLongf len = raw.size();
        const int rc = uncompress(raw.data(), &len, e.data, e.bytes);
        if (rc == Z_BUF_ERROR) {
          raw.resize(raw.size() * 2);
          continue;
        }
        if (rc != Z_OK) bad(path, "corrupt compressed MAT element");
        size_t inner = 0;
        const auto m = next(raw.data(), len, inner, path);
        if (m.type == kMiMatrix) read_matrix(m, out, path);
        break;
      }
    }
  }
  return out;
}

const MatArray& get(const std::map<std::string, MatArray>& m, const std::string& name,
                    const std::vector<int64_t>& dims, const std::string& path) {
  const auto it = m.find(name);
  if (it == m.end()) bad(path, "no numeric variable '" + name + "'");
  if (it->second.dims != dims)
    bad(path, "'" + name + "' has dimensions " + c10::Join("×", it->second.dims) + ", expected " +
                  c10::Join("×", dims));
  return it->second;
}

}  // namespace

Truth read_official_mpii_truth(const std::string& path) {
  const auto m = read_mat(path);
  const auto it = m.find("jnt_missing");
  if (it == m.end() || it->second.dims.size() != 2) bad(path, "no J×N variable 'jnt_missing'");
  const int64_t j = it->second.dims[0], n = it->second.dims[1];
  const auto& missing = it->second.values;
  const auto& pos = get(m, "pos_gt_src", {j, 2, n}, path).values;
  const auto& boxes = get(m, "headboxes_src", {2, 2, n}, path).values;
  Truth t{torch::zeros({n, j, 2}, torch::kDouble), torch::zeros({n, j}, torch::kBool),
          torch::zeros({n}, torch::kDouble)};
  auto joints = t.joints.accessor<double, 3>();
  auto present = t.present.accessor<bool, 2>();
  auto normalize = t.normalize.accessor<double, 1>();
  constexpr double kScBias = 0.6;  // the official evaluation's head-size factor
  for (int64_t i = 0; i < n; ++i) {
    // Column-major: element (a, b, c) of an A×B×C array is at a + A·(b + B·c).
    const double dx = boxes[1 + 2 * (0 + 2 * i)] - boxes[0 + 2 * (0 + 2 * i)];
    const double dy = boxes[1 + 2 * (1 + 2 * i)] - boxes[0 + 2 * (1 + 2 * i)];
    normalize[i] = kScBias * std::hypot(dx, dy);
    for (int64_t k = 0; k < j; ++k) {
      joints[i][k][0] = pos[k + j * (0 + 2 * i)];
      joints[i][k][1] = pos[k + j * (1 + 2 * i)];
      present[i][k] = missing[k + j * i] == 0;
    }
  }
  return t;
}

}  // namespace hg::eval
