#pragma once
/// The engine's own kernels: the few passes oneDNN 2.6 has no fast primitive for. Each has a
/// plain reference version beside it, which the tests compare it with.

#include <cstdint>

namespace hg::engine {

/// A blocked activation (oneDNN's nChw16c or nChw8c) seen as `groups` = N × ⌈C/block⌉ channel
/// blocks of `pixels` × `block` values each; group g holds channels (g mod channel_blocks)·block
/// onwards.
struct BlockedShape {
  int64_t groups = 0, channel_blocks = 0, pixels = 0, block = 16;
};

/// y = relu(s_c · x + t_c) for every channel c of the float32 blocked activation `x`, with the
/// per-channel scale `s` and shift `t` padded to channel_blocks × block entries. Writes float32
/// to `y`, or with `bf16` the value rounded to the nearest bfloat16 (ties to even) as uint16
/// bits. NaN becomes 0. Uses AVX-512 (and AVX512-BF16 for bf16 output) where the CPU has them
/// and block is 16; bf16 output needs AVX512-BF16 or the reference. Multithreaded with OpenMP.
void scale_shift_relu(const BlockedShape& shape, const float* x, const float* s, const float* t,
                      void* y, bool bf16);

/// The same, one plain loop: the reference scale_shift_relu is tested against.
void scale_shift_relu_reference(const BlockedShape& shape, const float* x, const float* s,
                                const float* t, void* y, bool bf16);

}  // namespace hg::engine
