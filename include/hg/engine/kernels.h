#pragma once
/// The engine's own kernels: the few passes oneDNN 2.6 has no fast primitive for. Each has a
/// plain reference version beside it, which the tests compare it with.

#include <cstddef>
#include <cstdint>

namespace hg::engine {

/// A blocked activation (oneDNN's nChw16c or nChw8c) seen as `groups` = N × ⌈C/block⌉ channel
/// blocks of `pixels` × `block` values each; group g holds channels (g mod channel_blocks)·block
/// onwards.
struct BlockedShape {
  int64_t groups = 0, channel_blocks = 0, pixels = 0, block = 16;
};

/// The second output a scale_shift_relu pass can write while it reads x: the trunk accumulator
/// of a pre-activation residual, acc = x, plus the nearest-neighbour 2× upsampling of `low` where
/// given (the hourglass adds its lower branch to the upper one's output).
struct SkipOutput {
  float* acc = nullptr;        ///< float32, laid out as x; may be x itself (updated in place)
  const float* low = nullptr;  ///< nullptr, or float32 of x's channel blocks at half x's size
  int64_t width = 0;           ///< x's width in pixels (even, with `low`)
};
/// y = relu(s_c · x + t_c) for every channel c of the float32 blocked activation `x`, with the
/// per-channel scale `s` and shift `t` padded to channel_blocks × block entries. Writes float32
/// to `y`, or with `bf16` the value rounded to the nearest bfloat16 (ties to even) as uint16
/// bits. NaN becomes 0. With `skip`, also writes skip->acc in the same pass. Uses AVX-512 (and
/// AVX512-BF16 for bf16 output) where the CPU has them and block is 16; bf16 output needs
/// AVX512-BF16 or the reference. Multithreaded with OpenMP.
void scale_shift_relu(const BlockedShape& shape, const float* x, const float* s, const float* t,
                      void* y, bool bf16, const SkipOutput* skip = nullptr);
/// The same, one plain loop: the reference scale_shift_relu is tested against.
void scale_shift_relu_reference(const BlockedShape& shape, const float* x, const float* s,
                                const float* t, void* y, bool bf16,
                                const SkipOutput* skip = nullptr);
/// y = x rounded to the nearest bfloat16 (ties to even; NaN stays NaN) as uint16 bits, for every
/// value of the float32 blocked activation `x`: the trunk's copy for a bf16 convolution reading
/// it. Threads split the rows as scale_shift_relu does. Uses AVX512-BF16 where the CPU has it.
void to_bf16(const BlockedShape& shape, const float* x, uint16_t* y);
/// y = 2×2 max-pooling with stride 2 of the float32 blocked activation `x` of `shape` (pixels =
/// height × width, both even): y has the same channel blocks at half the height and width.
/// Threads split the rows as scale_shift_relu does. Plain C++ (the compiler vectorises the
/// channel loop); the tests compare it with LibTorch's max_pool2d.
void max_pool_2x2(const BlockedShape& shape, int64_t width, const float* x, float* y);
/// A 3×3 convolution with stride 1 and padding 1: batch × in channels × height × width in, out
/// channels out, activations in nChw16c layout.
struct WinogradShape {
  int64_t batch = 1, in = 0, out = 0, height = 0, width = 0;
};

/// What a convolution kernel does with each output value v = conv + bias before storing it.
struct ConvEpilogue {
  /// v += the value dst holds (float32 dst only): a residual's sum onto its skip, in place.
  bool accumulate = false;
  bool relu = false;  ///< then v = max(v, 0)
};

/// Whether winograd_conv3x3 can compute `shape` on this CPU: AVX-512, channels in multiples of
/// 16, height and width in multiples of 4.
bool winograd_applicable(const WinogradShape& shape);

/// Floats of scratch memory winograd_conv3x3 needs for `shape` on `threads` threads: per thread,
/// the transformed weights (36·in·out for large layers, one row of them for small ones) and the
/// transformed input and products of its tiles (of one block of tiles at a time for large layers).
size_t winograd_scratch_floats(const WinogradShape& shape, int threads);

/// dst = conv3x3(src, weights) + bias, then the epilogue (+ dst's own value, ReLU), by Winograd's
/// F(4×4, 3×3), computed in float32. src: batch×in×height×width float32 and dst:
/// batch×out×height×width, float32 or with `bf16` bfloat16 bits (rounded to nearest, ties to
/// even; needs AVX512-BF16; not with epilogue.accumulate), both nChw16c; weights: float32
/// [in][3][3][out] (output channels contiguous); bias: [out]; scratch: `scratch_floats` floats, at
/// least winograd_scratch_floats for `threads`, split evenly between the threads (give every layer
/// the same scratch memory and size, and each thread reuses the part its own caches hold). Runs on
/// `threads` OpenMP threads, each on a band of rows. Throws unless winograd_applicable(shape), or
/// with too little scratch memory.
void winograd_conv3x3(const WinogradShape& shape, const float* src, const float* weights,
                      const float* bias, void* dst, bool bf16, float* scratch,
                      size_t scratch_floats, ConvEpilogue epilogue, int threads);

/// The same convolution computed directly, one plain loop in double: the reference
/// winograd_conv3x3 is tested against.
void conv3x3_reference(const WinogradShape& shape, const float* src, const float* weights,
                       const float* bias, float* dst, ConvEpilogue epilogue);

}  // namespace hg::engine
