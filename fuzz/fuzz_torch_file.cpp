// The torch.save zip and pickle reader (.pt, .pth.tar, .hg), reading tensors now and deferred.
#include "fuzz_util.h"
#include "hg/io/torch_file.h"

#include <c10/util/Exception.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = hg::fuzz::as_file(data, size, ".pt");
  try {
    hg::io::read_torch_file(path);
  } catch (const c10::Error&) {
  }
  try {
    const auto root = hg::io::read_torch_file(path, hg::io::TensorData::kDeferred);
    if (root->is_dict()) hg::io::tensor_entries(*root);
  } catch (const c10::Error&) {
  }
  return 0;
}
