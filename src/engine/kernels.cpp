// relu(s_c x + t_c) over a blocked activation, optionally rounded to bfloat16.
//
// Hand-written because oneDNN 2.6 has a JIT kernel for this pass (a binary multiply with add and
// ReLU post-ops) only for float32 output: writing bf16 falls back to its reference code, ~100×
// slower, and a float32 pass then needs a reorder to bf16, another pass over the activation, for
// each of the network's residuals.
//
// The same pass can also write the residual's skip accumulator (x, plus the hourglass's upsampled
// lower branch): the value is in registers already, which spares the engine a copy of the trunk
// or an upsampling pass that would read it again. The conversion of a trunk value to bfloat16
// and the 2×2 max-pooling share the pass's split of the work between the threads.
//
// bfloat16 is the top half of a float's bits; rounding to nearest, ties to even, adds
// 0x7fff + (bit 16) before truncating, exact for every finite value and +inf.
#include "hg/engine/kernels.h"

#include <c10/util/Exception.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hg::engine {
namespace {

/// Pixels per OpenMP task: enough tasks for every thread at 4×4, few loop overheads at 64×64.
constexpr int64_t kChunk = 64;

uint16_t to_bf16_bits(float v) {
  if (std::isnan(v)) return 0x7fc0;
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/// Runs `body(group, part)` for every part [0, parts) of every channel block group of `b`, in
/// parallel when `b` holds enough values to pay for the threads. Each thread takes a band of
/// consecutive parts (rows) of each image in all channels, as oneDNN's 1×1 convolutions split
/// their work: a pass then reads what the same core wrote, which matters on machines whose cores
/// have separate caches (measured here with the two cores on separate chiplets, the network's
/// batch norm passes ran 1.7–4.5× faster than split by channels).
template <typename Body>
void for_each_part(const BlockedShape& b, int64_t parts, Body body) {
  const int64_t images = b.groups / b.channel_blocks, total = images * parts;
#pragma omp parallel if (b.groups * b.pixels * b.block >= 16384)
  {
    // The thread's band of (image, part) pairs; per image in it, one channel block after the
    // other, so that each reads and writes long runs of consecutive memory (in the network, the
    // 64×64 passes with the skip output took half the time they took cycling through the blocks
    // at every part).
    const int threads = omp_get_num_threads(), thread = omp_get_thread_num();
    const int64_t per = (total + threads - 1) / threads, last = std::min(total, (thread + 1) * per);
    for (int64_t start = std::min(total, thread * per); start < last;) {
      const int64_t n = start / parts, end = std::min(last, (n + 1) * parts);
      for (int64_t cb = 0; cb < b.channel_blocks; ++cb)
        for (int64_t k = start; k < end; ++k) body(n * b.channel_blocks + cb, k - n * parts);
      start = end;
    }
  }
}

/// Runs `span(channel0, first, last)` over every pixel range [first, last) (in pixels from the
/// start of x) of at most kChunk pixels of one channel block, in parallel (see for_each_part).
template <typename Span>
void for_each_span(const BlockedShape& b, Span span) {
  for_each_part(b, (b.pixels + kChunk - 1) / kChunk, [&](int64_t g, int64_t c) {
    span(g % b.channel_blocks * b.block, g * b.pixels + c * kChunk,
         g * b.pixels + std::min(b.pixels, (c + 1) * kChunk));
  });
}

/// One output row of max_pool_2x2 for `Block` channels: `in` is the first of its two input rows.
template <int64_t Block>
void pool_row(const float* in, int64_t width, float* out) {
  const float* below = in + width * Block;
  for (int64_t x = 0; x < width / 2; ++x)
    for (int64_t l = 0; l < Block; ++l) {
      const int64_t left = 2 * x * Block + l, right = left + Block;
      out[x * Block + l] =
          std::max(std::max(in[left], in[right]), std::max(below[left], below[right]));
    }
}

/// Walks a span's pixels for the SkipOutput: the low-resolution pixel each one upsamples, found
/// by stepping row and column (a division per pixel would cost as much as the pass).
class SkipCursor {
 public:
  /// For the span starting at pixel `first` (from the start of x); inactive without `skip`.
  SkipCursor(const SkipOutput* skip, const BlockedShape& b, int64_t first) : skip_(skip) {
    if (!skip_ || !skip_->low) return;
    const int64_t group = first / b.pixels, pixel = first % b.pixels;
    low_ = skip_->low + group * (b.pixels / 4) * b.block;
    row_ = pixel / skip_->width;
    column_ = pixel % skip_->width;
  }
  float* acc() const { return skip_ ? skip_->acc : nullptr; }
  /// The current pixel's upsampled value (block floats), or nullptr; then moves to the next.
  const float* next_low(int64_t block) {
    if (!low_) return nullptr;
    const float* v = low_ + ((row_ >> 1) * (skip_->width >> 1) + (column_ >> 1)) * block;
    if (++column_ == skip_->width) {
      column_ = 0;
      ++row_;
    }
    return v;
  }

 private:
  const SkipOutput* skip_;
  const float* low_ = nullptr;
  int64_t row_ = 0, column_ = 0;
};

/// The reference on pixels [first, last) of one channel block, `s` and `t` that block's scale
/// and shift. Also the
/// pass on CPUs without AVX-512, so it is written for the compiler to vectorise (no branch in the
/// channel loop) and compiled again for x86-64-v3 (AVX2 with FMA): without FMA instructions
/// std::fma is a library call (a 256×64×64 pass on one thread took 1.5 ms, against 0.35 ms
/// now: `hg_bench --benchmark_filter=BnRelu.*kind:2`).
__attribute__((target_clones("arch=x86-64-v3", "default"))) void span_reference(
    const float* x, const float* s, const float* t, void* y, bool bf16, int64_t block,
    int64_t first, int64_t last, SkipCursor skip) {
  constexpr int64_t kMaxBlock = 16;
  float v[kMaxBlock];
  for (int64_t p = first; p < last; ++p) {
    const float* xp = x + p * block;
    for (int64_t l = 0; l < block; ++l) {
      const float a = std::fma(s[l], xp[l], t[l]);  // one rounding, as the AVX-512 path
      v[l] = a > 0.f ? a : 0.f;
    }
    if (bf16)
      for (int64_t l = 0; l < block; ++l)
        static_cast<uint16_t*>(y)[p * block + l] = to_bf16_bits(v[l]);
    else
      std::memcpy(static_cast<float*>(y) + p * block, v, block * sizeof(float));
    if (float* acc = skip.acc(); acc) {
      const float* low = skip.next_low(block);
      for (int64_t l = 0; l < block; ++l) acc[p * block + l] = low ? xp[l] + low[l] : xp[l];
    }
  }
}

// GCC 12's _mm512_max_ps passes _mm512_undefined_ps() as its mask source, which
// -Wmaybe-uninitialized reports inside its own header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

/// acc = x (+ the upsampled value) for one pixel of 16 channels.
__attribute__((target("avx512f"), always_inline)) inline void store_skip(SkipCursor& skip, __m512 x,
                                                                         int64_t p) {
  if (!skip.acc()) return;
  const float* low = skip.next_low(16);
  _mm512_storeu_ps(skip.acc() + p * 16, low ? _mm512_add_ps(x, _mm512_loadu_ps(low)) : x);
}

__attribute__((target("avx512f"))) void span_f32_avx512(const float* x, const float* s,
                                                        const float* t, float* y, int64_t first,
                                                        int64_t last, SkipCursor skip) {
  const __m512 scale = _mm512_loadu_ps(s), shift = _mm512_loadu_ps(t), zero = _mm512_setzero_ps();
  for (int64_t p = first; p < last; ++p) {
    const __m512 v = _mm512_loadu_ps(x + p * 16);
    _mm512_storeu_ps(y + p * 16, _mm512_max_ps(_mm512_fmadd_ps(scale, v, shift), zero));
    store_skip(skip, v, p);
  }
}

__attribute__((target("avx512f,avx512bf16"))) void span_bf16_avx512(const float* x, const float* s,
                                                                    const float* t, uint16_t* y,
                                                                    int64_t first, int64_t last,
                                                                    SkipCursor skip) {
  const __m512 scale = _mm512_loadu_ps(s), shift = _mm512_loadu_ps(t), zero = _mm512_setzero_ps();
  for (int64_t p = first; p < last; ++p) {
    const __m512 v = _mm512_loadu_ps(x + p * 16);
    const __m512 r = _mm512_max_ps(_mm512_fmadd_ps(scale, v, shift), zero);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + p * 16),
                        reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(r)));
    store_skip(skip, v, p);
  }
}

/// y[i] = x[i] rounded to bfloat16 for i in [first, last) (floats).
__attribute__((target("avx512f,avx512bf16"))) void to_bf16_avx512(const float* x, uint16_t* y,
                                                                  int64_t first, int64_t last) {
  int64_t i = first;
  for (; i + 16 <= last; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i))));
  for (; i < last; ++i) y[i] = to_bf16_bits(x[i]);
}

#pragma GCC diagnostic pop

/// Checks `b`'s channel block and, with `halves` (a kernel that halves or doubles the image),
/// that `width` and the height are even.
void check_shape(const BlockedShape& b, const char* kernel, bool halves = false,
                 int64_t width = 0) {
  TORCH_CHECK(b.block == 16 || b.block == 8, kernel, ": channel blocks of 8 or 16, got ", b.block);
  TORCH_CHECK(!halves || (width > 0 && width % 2 == 0 && b.pixels % (2 * width) == 0), kernel,
              " needs an even width and height, got ", b.pixels, " pixels of width ", width);
}

void check_shape(const BlockedShape& b, const SkipOutput* skip) {
  const bool upsamples = skip && skip->low;
  check_shape(b, "scale_shift_relu", upsamples, upsamples ? skip->width : 0);
}

}  // namespace

void scale_shift_relu_reference(const BlockedShape& b, const float* x, const float* s,
                                const float* t, void* y, bool bf16, const SkipOutput* skip) {
  check_shape(b, skip);
  for (int64_t g = 0; g < b.groups; ++g) {
    const int64_t c0 = g % b.channel_blocks * b.block;
    span_reference(x, s + c0, t + c0, y, bf16, b.block, g * b.pixels, (g + 1) * b.pixels,
                   SkipCursor(skip, b, g * b.pixels));
  }
}

void scale_shift_relu(const BlockedShape& b, const float* x, const float* s, const float* t,
                      void* y, bool bf16, const SkipOutput* skip) {
  check_shape(b, skip);
  __builtin_cpu_init();
  const bool avx512 = b.block == 16 && __builtin_cpu_supports("avx512f");
  if (avx512 && !bf16) {
    for_each_span(b, [&](int64_t c0, int64_t first, int64_t last) {
      span_f32_avx512(x, s + c0, t + c0, static_cast<float*>(y), first, last,
                      SkipCursor(skip, b, first));
    });
  } else if (avx512 && __builtin_cpu_supports("avx512bf16")) {
    for_each_span(b, [&](int64_t c0, int64_t first, int64_t last) {
      span_bf16_avx512(x, s + c0, t + c0, static_cast<uint16_t*>(y), first, last,
                       SkipCursor(skip, b, first));
    });
  } else {
    // Split the way the fast paths are: the reference on one channel block's pixel range.
    for_each_span(b, [&](int64_t c0, int64_t first, int64_t last) {
      span_reference(x, s + c0, t + c0, y, bf16, b.block, first, last, SkipCursor(skip, b, first));
    });
  }
}

void to_bf16(const BlockedShape& b, const float* x, uint16_t* y) {
  check_shape(b, "to_bf16");
  __builtin_cpu_init();
  const bool fast = __builtin_cpu_supports("avx512bf16");
  for_each_span(b, [&](int64_t, int64_t first, int64_t last) {
    if (fast)
      to_bf16_avx512(x, y, first * b.block, last * b.block);
    else
      for (int64_t i = first * b.block; i < last * b.block; ++i) y[i] = to_bf16_bits(x[i]);
  });
}

void max_pool_2x2(const BlockedShape& b, int64_t width, const float* x, float* y) {
  check_shape(b, "max_pool_2x2", true, width);
  const int64_t rows = b.pixels / width / 2, out_plane = b.pixels / 4 * b.block;
  for_each_part(b, rows, [&](int64_t g, int64_t r) {
    const float* in = x + g * b.pixels * b.block + 2 * r * width * b.block;
    float* out = y + g * out_plane + r * (width / 2) * b.block;
    if (b.block == 16)
      pool_row<16>(in, width, out);
    else
      pool_row<8>(in, width, out);
  });
}

}  // namespace hg::engine
