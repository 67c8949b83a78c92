// The MPII/FLIC HDF5 readers beyond HDF5 itself: well-formed HDF5 files whose datasets' shapes,
// types and values come from the input (fuzzing HDF5's own parser is HDF5's business).
#include "fuzz_util.h"
#include "hg/data/readers.h"

#include <H5Cpp.h>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace {

struct Input {
  const uint8_t* p;
  size_t left;
  uint8_t byte() {
    if (left == 0) return 0;
    --left;
    return *p++;
  }
  double number() {
    // Mostly small values, sometimes any bit pattern (NaN, infinities, 1e300).
    const uint8_t kind = byte();
    if (kind < 200) return static_cast<double>(static_cast<int8_t>(byte())) * 4;
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | byte();
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
};

void write_numeric(H5::H5File& file, const char* name, std::vector<hsize_t> dims, Input& in) {
  size_t n = 1;
  for (auto d : dims) n *= d;
  std::vector<double> values(n);
  for (auto& v : values) v = in.number();
  H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
  file.createDataSet(name, H5::PredType::NATIVE_DOUBLE, space)
      .write(values.data(), H5::PredType::NATIVE_DOUBLE);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  const std::string path = hg::fuzz::as_file(nullptr, 0, ".h5");
  H5::Exception::dontPrint();
  try {
    H5::H5File file(path, H5F_ACC_TRUNC);
    const hsize_t n = in.byte() % 5;
    const hsize_t joints = in.byte() % 2 ? 16 : 11;
    const uint8_t skip = in.byte();  // which datasets are missing or mis-shaped
    const auto odd = [&](int bit) { return (skip >> bit) & 1; };
    if (!odd(0)) {
      std::vector<const char*> names(n, "a.jpg");
      H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
      const hsize_t dims[1] = {n};
      H5::DataSpace space(1, dims);
      file.createDataSet("imgname", type, space).write(names.data(), type);
    }
    if (!odd(1)) write_numeric(file, "center", {n, odd(5) ? 3u : 2u}, in);
    if (!odd(2)) write_numeric(file, "scale", {n}, in);
    write_numeric(file, "part", {n, odd(6) ? joints + 1 : joints, 2}, in);
    if (!odd(3)) write_numeric(file, "visible", {n, joints}, in);
    if (!odd(4)) write_numeric(file, "normalize", {odd(7) ? n + 1 : n}, in);
    if (in.byte() % 2) write_numeric(file, "index", {n}, in);
    if (in.byte() % 2) write_numeric(file, "person", {n}, in);
  } catch (const H5::Exception&) {
    return 0;
  }
  try {
    hg::data::open_annotations(path, "/nonexistent");
  } catch (const std::exception&) {
  }
  return 0;
}
