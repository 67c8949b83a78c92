#include "hg/runtime/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

// LibTorch 2.4 renamed the calls (one per device type before, one taking the type since).
#define HG_AUTOCAST_BY_TYPE \
  (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))

namespace hg::runtime {
namespace {

void set_bf16_autocast(c10::DeviceType type, bool enabled) {
#if HG_AUTOCAST_BY_TYPE
  at::autocast::set_autocast_dtype(type, at::kBFloat16);
  at::autocast::set_autocast_enabled(type, enabled);
#else
  if (type == at::kCPU) {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(enabled);
  } else {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(enabled);
  }
#endif
}

}  // namespace

Bf16Autocast::Bf16Autocast(bool on, c10::DeviceType type) : on_(on), type_(type) {
  if (on_) set_bf16_autocast(type_, true);
}

Bf16Autocast::~Bf16Autocast() {
  if (!on_) return;
  set_bf16_autocast(type_, false);
  at::autocast::clear_cache();
}

bool autocast_enabled(c10::DeviceType type) {
#if HG_AUTOCAST_BY_TYPE
  return at::autocast::is_autocast_enabled(type);
#else
  return type == at::kCPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

}  // namespace hg::runtime
