#include "hg/runtime/runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/cuda.h>

#include <algorithm>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace hg::runtime {

int cores() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int resolve_threads(int requested) {
  return requested > 0 ? requested : cores();
}

void apply_threads(int requested) {
  at::set_num_threads(resolve_threads(requested));
  // Small weights and near-zero heatmaps produce denormal floats, which run 3-4× slower on x86
  // (seen here: training fell from 40 to 12 samples/s once the loss settled).
  at::globalContext().setFlushDenormal(true);
}

void serial_tensor_ops_in_this_thread() {
  // LibTorch sets the thread's OpenMP thread count on its first parallel call; set it first, then
  // lower it, so that LibTorch's parallel loops see one thread and run inline.
  at::internal::lazy_init_num_threads();
#ifdef _OPENMP
  omp_set_num_threads(1);
#endif
}

void release_thread_team() {
#ifdef _OPENMP
  if (!omp_in_parallel()) omp_pause_resource_all(omp_pause_soft);
#endif
}

c10::Device parse_device(const std::string& name) {
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const c10::Error&) {
    TORCH_CHECK(false, "unknown device '", name, "': use cpu, cuda or cuda:N");
  }
  TORCH_CHECK(!device.is_cuda() || torch::cuda::is_available(), "device '", name,
              "' asked for, but this LibTorch has no CUDA support or sees no GPU; run on the CPU "
              "(device cpu)");
  return device;
}

}  // namespace hg::runtime
