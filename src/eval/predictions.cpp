#include "hg/eval/predictions.h"

#include "hg/io/atomic_file.h"
#include "hg/runtime/limits.h"

#include <H5Cpp.h>
#include <torch/torch.h>

#include <filesystem>
#include <stdexcept>

namespace hg::eval {

at::Tensor read_predictions_h5(const std::string& path) {
  TORCH_CHECK(std::filesystem::is_regular_file(path), "cannot read predictions ", path,
              ": no such file");
  H5::Exception::dontPrint();
  try {
    TORCH_CHECK(H5::H5File::isHdf5(path), "cannot read predictions ", path, ": not an HDF5 file");
    H5::H5File file(path, H5F_ACC_RDONLY);
    TORCH_CHECK(H5Lexists(file.getId(), "preds", H5P_DEFAULT) > 0, "cannot read predictions ", path,
                ": no dataset 'preds' (expected N×J×2 in image pixels)");
    auto ds = file.openDataSet("preds");
    auto space = ds.getSpace();
    const int rank = space.getSimpleExtentNdims();
    TORCH_CHECK(rank == 3 || rank == 4, "cannot read predictions ", path, ": 'preds' has ", rank,
                " dimensions, expected N×J×2 (or N×S×J×2)");
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    space.getSimpleExtentDims(dims.data());
    TORCH_CHECK(dims.back() == 2, "cannot read predictions ", path,
                ": 'preds' must end in 2 (x, y), got ", dims.back());
    uint64_t n = 1;
    for (hsize_t d : dims)
      TORCH_CHECK(!__builtin_mul_overflow(n, d, &n) && n <= limits::kMaxAnnotationValues,
                  "cannot read predictions ", path, ": 'preds' holds more than the limit of ",
                  limits::kMaxAnnotationValues, " values");
    std::vector<int64_t> shape(dims.begin(), dims.end());
    auto out = torch::empty(shape, torch::kDouble);
    ds.read(out.data_ptr<double>(), H5::PredType::NATIVE_DOUBLE);
    return rank == 3 ? out.unsqueeze(1) : out;
  } catch (const H5::Exception& e) {
    throw std::runtime_error("cannot read predictions " + path + ": HDF5 error in " +
                             e.getFuncName() + ": " + e.getDetailMsg());
  }
}

void write_predictions_h5(const std::string& path, const at::Tensor& preds) {
  TORCH_CHECK((preds.dim() == 3 || preds.dim() == 4) && preds.size(-1) == 2,
              "predictions must be N×J×2 or N×S×J×2, got ", preds.sizes());
  const auto data = preds.to(torch::kCPU, torch::kDouble).contiguous();
  H5::Exception::dontPrint();
  // Built in memory (HDF5's core driver, no backing file) and written as bytes: HDF5 writing to a
  // disk that fills up crashed in its destructors (measured: a segfault after "H5Dclose failed").
  std::string bytes;
  try {
    H5::FileAccPropList in_memory;
    in_memory.setCore(1 << 20, /*backing_store=*/false);
    H5::H5File file(path, H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT, in_memory);
    const std::vector<hsize_t> dims(data.sizes().begin(), data.sizes().end());
    H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
    file.createDataSet("preds", H5::PredType::NATIVE_DOUBLE, space)
        .write(data.data_ptr<double>(), H5::PredType::NATIVE_DOUBLE);
    file.flush(H5F_SCOPE_GLOBAL);
    const ssize_t size = H5Fget_file_image(file.getId(), nullptr, 0);
    TORCH_CHECK(size > 0, "cannot write predictions ", path, ": HDF5 gave no file image");
    bytes.resize(static_cast<size_t>(size));
    H5Fget_file_image(file.getId(), bytes.data(), bytes.size());
  } catch (const H5::Exception& e) {
    TORCH_CHECK(false, "cannot write predictions ", path, ": HDF5 error in ", e.getFuncName(), ": ",
                e.getDetailMsg());
  }
  io::write_file_atomic(path, bytes);
}

}  // namespace hg::eval
