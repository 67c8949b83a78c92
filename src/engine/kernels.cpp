// relu(s_c x + t_c) over a blocked activation, optionally rounded to bfloat16.
//
// Hand-written because oneDNN 2.6 has a JIT kernel for this pass (a binary multiply with add and
// ReLU post-ops) only for float32 output: writing bf16 falls back to its reference code, ~100×
// slower, and a float32 pass then needs a reorder to bf16, another pass over the activation, for
// each of the network's residuals.
//
// bfloat16 is the top half of a float's bits; rounding to nearest, ties to even, adds
// 0x7fff + (bit 16) before truncating, exact for every finite value and +inf.
#include "hg/engine/kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hg::engine {
namespace {

/// Pixels per OpenMP task: enough tasks for every thread at 4×4, few loop overheads at 64×64.
constexpr int64_t kChunk = 64;

uint16_t to_bf16_bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/// Runs `span(channel0, first, last)` over every pixel range [first, last) (in pixels from the
/// start of x) of at most kChunk pixels of one channel block, in parallel.
template <typename Span>
void for_each_span(const BlockedShape& b, Span span) {
  const int64_t chunks = (b.pixels + kChunk - 1) / kChunk;
#pragma omp parallel for collapse(2) schedule(static) if (b.groups * b.pixels * b.block >= 16384)
  for (int64_t g = 0; g < b.groups; ++g)
    for (int64_t c = 0; c < chunks; ++c)
      span(g % b.channel_blocks * b.block, g * b.pixels + c * kChunk,
           g * b.pixels + std::min(b.pixels, (c + 1) * kChunk));
}

// GCC 12's _mm512_max_ps passes _mm512_undefined_ps() as its mask source, which
// -Wmaybe-uninitialized reports inside its own header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

__attribute__((target("avx512f"))) void span_f32_avx512(const float* x, const float* s,
                                                        const float* t, float* y, int64_t first,
                                                        int64_t last) {
  const __m512 scale = _mm512_loadu_ps(s), shift = _mm512_loadu_ps(t), zero = _mm512_setzero_ps();
  for (int64_t p = first; p < last; ++p)
    _mm512_storeu_ps(
        y + p * 16,
        _mm512_max_ps(_mm512_fmadd_ps(scale, _mm512_loadu_ps(x + p * 16), shift), zero));
}

__attribute__((target("avx512f,avx512bf16"))) void span_bf16_avx512(const float* x, const float* s,
                                                                    const float* t, uint16_t* y,
                                                                    int64_t first, int64_t last) {
  const __m512 scale = _mm512_loadu_ps(s), shift = _mm512_loadu_ps(t), zero = _mm512_setzero_ps();
  for (int64_t p = first; p < last; ++p) {
    const __m512 v =
        _mm512_max_ps(_mm512_fmadd_ps(scale, _mm512_loadu_ps(x + p * 16), shift), zero);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + p * 16),
                        reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
  }
}

#pragma GCC diagnostic pop

}  // namespace

void scale_shift_relu_reference(const BlockedShape& b, const float* x, const float* s,
                                const float* t, void* y, bool bf16) {
  for (int64_t g = 0; g < b.groups; ++g)
    for (int64_t p = g * b.pixels; p < (g + 1) * b.pixels; ++p)
      for (int64_t l = 0; l < b.block; ++l) {
        const int64_t c = g % b.channel_blocks * b.block + l, i = p * b.block + l;
        const float a = std::fma(s[c], x[i], t[c]);  // one rounding, as the AVX-512 path
        const float v = a > 0.f ? a : 0.f;
        if (bf16)
          static_cast<uint16_t*>(y)[i] = to_bf16_bits(v);
        else
          static_cast<float*>(y)[i] = v;
      }
}

void scale_shift_relu(const BlockedShape& b, const float* x, const float* s, const float* t,
                      void* y, bool bf16) {
  __builtin_cpu_init();
  const bool avx512 = b.block == 16 && __builtin_cpu_supports("avx512f");
  if (avx512 && !bf16) {
    for_each_span(b, [&](int64_t c0, int64_t first, int64_t last) {
      span_f32_avx512(x, s + c0, t + c0, static_cast<float*>(y), first, last);
    });
  } else if (avx512 && __builtin_cpu_supports("avx512bf16")) {
    for_each_span(b, [&](int64_t c0, int64_t first, int64_t last) {
      span_bf16_avx512(x, s + c0, t + c0, static_cast<uint16_t*>(y), first, last);
    });
  } else {
    // Split the way the fast paths are: the reference on one channel block's pixel range.
    for_each_span(b, [&](int64_t c0, int64_t first, int64_t last) {
      const BlockedShape one{1, 1, last - first, b.block};
      const int64_t offset = first * b.block;
      scale_shift_relu_reference(one, x + offset, s + c0, t + c0,
                                 bf16 ? static_cast<void*>(static_cast<uint16_t*>(y) + offset)
                                      : static_cast<void*>(static_cast<float*>(y) + offset),
                                 bf16);
    });
  }
}

}  // namespace hg::engine
