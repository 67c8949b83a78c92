#pragma once
/// Autocast to bfloat16, over LibTorch's versions (its calls were renamed in 2.4).

#include <c10/core/DeviceType.h>

namespace hg::runtime {

/// Runs the operations of its scope (on this thread) under autocast to bfloat16 on `type`'s
/// devices when `on`; at its end autocast is off again and its cache of cast weights cleared.
/// With `on` false it does nothing.
class Bf16Autocast {
 public:
  Bf16Autocast(bool on, c10::DeviceType type);
  ~Bf16Autocast();
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_;
  c10::DeviceType type_;
};

/// True when autocast is on for `type`'s devices on this thread.
bool autocast_enabled(c10::DeviceType type);

}  // namespace hg::runtime
