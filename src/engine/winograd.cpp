// 3×3 convolution (stride 1, padding 1) by Winograd's F(4×4, 3×3) on nChw16c activations.
//
// Each 4×4 output tile Y comes from the 6×6 input window d around it (zero outside the image):
//   Y = Aᵀ [ Σ_ic (G g Gᵀ) ⊙ (Bᵀ d B) ] A,
// 36 multiplications per output channel and input channel instead of 144 (Lavin & Gray 2016,
// interpolation points 0, ±1, ±2, ∞):
//   Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G  = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// The sum over input channels, for each of the 36 positions ξ of the 6×6 transform, is a matrix
// product M_ξ[tile][oc] = Σ_ic V_ξ[tile][ic] U_ξ[ic][oc], computed by a register-blocked kernel
// (6 tiles × 64 output channels). U = G g Gᵀ is computed from the plain weights on every call.
// Each thread computes its share of the tiles (a band of rows, or for layers of few tiles its
// share of the output channels) from the input to the output in its own scratch memory, so that
// no transformed value passes between the threads (see winograd_thread). Large layers run fused:
// the thread computes all of U, then takes blocks of 12 tiles and computes their V = Bᵀ d B, the
// 36 products and Y = Aᵀ M A + bias (+ dst, ReLU), so that V and M stay in its L2 cache. Small layers:
// V of all the thread's tiles, then per 64 output channels and row a of ξ just the part of U it
// multiplies by (in its L2 cache), the products, and Y.
//
// Hand-written because oneDNN 2.6's Winograd convolution, measured here inside the network, ran
// 32×32 and 16×16 layers at half the speed it reaches when timed alone, and keeps transformed
// weights 4× the size of the plain ones, which --algorithm winograd could not afford for every
// layer within hourglass predict's memory budget. Transforming the weights on every call costs
// a few percent of a layer and keeps only the plain weights.
#include "hg/engine/kernels.h"

#include <c10/util/Exception.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace hg::engine {
namespace {

constexpr int64_t kBlock = 16;  // channels per nChw16c block, one AVX-512 register of floats

}  // namespace

bool winograd_applicable(const WinogradShape& s) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && s.in % kBlock == 0 && s.out % kBlock == 0 &&
         s.height % 4 == 0 && s.width % 4 == 0 && s.height > 0 && s.width > 0 && s.batch > 0;
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bf16")
// GCC 12's _mm512_max_ps passes _mm512_undefined_ps() as its mask source, which
// -Wmaybe-uninitialized reports inside its own header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

/// out[k·so] = Bᵀ in (6 values, strides si and so, in registers of 16 channels).
inline void input_1d(const __m512* in, int si, __m512* out, int so) {
  const __m512 d0 = in[0], d1 = in[si], d2 = in[2 * si], d3 = in[3 * si], d4 = in[4 * si],
               d5 = in[5 * si];
  const __m512 four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f), two = _mm512_set1_ps(2.f);
  // Shared terms: t1 = d4 - 4 d2, t2 = d3 - 4 d1, t3 = d4 - d2, t4 = 2 (d3 - d1).
  const __m512 t1 = _mm512_fnmadd_ps(four, d2, d4), t2 = _mm512_fnmadd_ps(four, d1, d3);
  const __m512 t3 = _mm512_sub_ps(d4, d2), t4 = _mm512_mul_ps(two, _mm512_sub_ps(d3, d1));
  out[0] = _mm512_fnmadd_ps(five, d2, _mm512_fmadd_ps(four, d0, d4));
  out[so] = _mm512_add_ps(t1, t2);
  out[2 * so] = _mm512_sub_ps(t1, t2);
  out[3 * so] = _mm512_add_ps(t3, t4);
  out[4 * so] = _mm512_sub_ps(t3, t4);
  out[5 * so] = _mm512_fnmadd_ps(five, d3, _mm512_fmadd_ps(four, d1, d5));
}

/// out = G in (3 values in, 6 out).
inline void weight_1d(const __m512 in[3], __m512 out[6]) {
  const __m512 g0 = in[0], g1 = in[1], g2 = in[2];
  const __m512 sum02 = _mm512_add_ps(g0, g2);
  const __m512 a = _mm512_mul_ps(_mm512_set1_ps(-1.f / 6), _mm512_add_ps(sum02, g1));
  const __m512 b = _mm512_mul_ps(_mm512_set1_ps(-1.f / 6), _mm512_sub_ps(sum02, g1));
  const __m512 c =
      _mm512_fmadd_ps(_mm512_set1_ps(1.f / 24), g0, _mm512_mul_ps(_mm512_set1_ps(1.f / 6), g2));
  const __m512 e = _mm512_mul_ps(_mm512_set1_ps(1.f / 12), g1);
  out[0] = _mm512_mul_ps(_mm512_set1_ps(0.25f), g0);
  out[1] = a;
  out[2] = b;
  out[3] = _mm512_add_ps(c, e);
  out[4] = _mm512_sub_ps(c, e);
  out[5] = g2;
}

/// out[k·so] = Aᵀ in (6 values in, 4 out).
inline void output_1d(const __m512* in, int si, __m512* out, int so) {
  const __m512 m0 = in[0], m1 = in[si], m2 = in[2 * si], m3 = in[3 * si], m4 = in[4 * si],
               m5 = in[5 * si];
  const __m512 p12 = _mm512_add_ps(m1, m2), d12 = _mm512_sub_ps(m1, m2);
  const __m512 p34 = _mm512_add_ps(m3, m4), d34 = _mm512_sub_ps(m3, m4);
  out[0] = _mm512_add_ps(_mm512_add_ps(m0, p12), p34);
  out[so] = _mm512_fmadd_ps(_mm512_set1_ps(2.f), d34, d12);
  out[2 * so] = _mm512_fmadd_ps(_mm512_set1_ps(4.f), p34, p12);
  out[3 * so] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.f), d34, d12), m5);
}

/// Strides (in floats) of the three operands of one ξ's product.
struct ProductStrides {
  int64_t v_tile, u_row, m_tile;
};

/// The product block m[t][o] = Σ_i v[t][i] u[i][o] for RT tiles × RO·16 output channels.
template <int RT, int RO>
inline void product_block(const float* v, const float* u, float* m, int64_t in,
                          const ProductStrides& st) {
  __m512 acc[RT][RO];
#pragma GCC unroll 8
  for (int t = 0; t < RT; ++t)
#pragma GCC unroll 4
    for (int o = 0; o < RO; ++o) acc[t][o] = _mm512_setzero_ps();
  for (int64_t i = 0; i < in; ++i) {
    __m512 b[RO];
#pragma GCC unroll 4
    for (int o = 0; o < RO; ++o) b[o] = _mm512_loadu_ps(u + i * st.u_row + o * kBlock);
#pragma GCC unroll 8
    for (int t = 0; t < RT; ++t) {
      const __m512 a = _mm512_set1_ps(v[t * st.v_tile + i]);
#pragma GCC unroll 4
      for (int o = 0; o < RO; ++o) acc[t][o] = _mm512_fmadd_ps(a, b[o], acc[t][o]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < RT; ++t)
#pragma GCC unroll 4
    for (int o = 0; o < RO; ++o) _mm512_storeu_ps(m + t * st.m_tile + o * kBlock, acc[t][o]);
}

/// Tiles per register block of the products: 6 tiles × 64 channels keep 24 accumulators, 4
/// weight vectors and a broadcast in AVX-512's 32 registers.
constexpr int kTileBlock = 6;

/// Output-channel vectors per product block.
constexpr int kOutBlock = 4;

/// product_block<RT, RO> for the run-time `tiles` (< kTileBlock) and `vectors` (≤ kOutBlock):
/// the template whose parameters equal them, found by counting down.
template <int RT, int RO>
void product_tail(const float* v, const float* u, float* m, int64_t tiles, int64_t vectors,
                  int64_t in, const ProductStrides& st) {
  if constexpr (RO > 1) {
    if (vectors < RO) return product_tail<RT, RO - 1>(v, u, m, tiles, vectors, in, st);
  }
  if constexpr (RT > 1) {
    if (tiles < RT) return product_tail<RT - 1, RO>(v, u, m, tiles, vectors, in, st);
  }
  product_block<RT, RO>(v, u, m, in, st);
}

template <int RO>
void product_rows(const float* v, const float* u, float* m, int64_t tiles, int64_t in,
                  const ProductStrides& st) {
  int64_t t = 0;
  for (; t + kTileBlock <= tiles; t += kTileBlock)
    product_block<kTileBlock, RO>(v + t * st.v_tile, u, m + t * st.m_tile, in, st);
  if (t < tiles)
    product_tail<kTileBlock - 1, RO>(v + t * st.v_tile, u, m + t * st.m_tile, tiles - t, RO, in,
                                     st);
}

/// M_ξ[t][o] = Σ_i V_ξ[t][i] U_ξ[i][o] for `tiles` tiles and the `vectors` (≤ kOutBlock) output
/// channel vectors starting at u and m.
void products(const float* v, const float* u, float* m, int64_t tiles, int64_t in, int64_t vectors,
              const ProductStrides& st) {
  if (vectors == kOutBlock)
    product_rows<kOutBlock>(v, u, m, tiles, in, st);
  else
    for (int64_t t = 0; t < tiles; t += kTileBlock)
      product_tail<kTileBlock, kOutBlock - 1>(v + t * st.v_tile, u, m + t * st.m_tile,
                                              std::min<int64_t>(kTileBlock, tiles - t), vectors, in,
                                              st);
}

/// Where the tiles are: tile t = (n·th + ty)·tw + tx has its top-left output at (4·ty, 4·tx).
struct Tiling {
  int64_t th, tw, tiles;
  explicit Tiling(const WinogradShape& s)
      : th(s.height / 4), tw(s.width / 4), tiles(s.batch * th * tw) {}
};

/// G's rows, for (G g)_a = G[a][0] g_0 + G[a][1] g_1 + G[a][2] g_2.
constexpr float kG[6][3] = {{0.25f, 0, 0},
                            {-1.f / 6, -1.f / 6, -1.f / 6},
                            {-1.f / 6, 1.f / 6, -1.f / 6},
                            {1.f / 24, 1.f / 12, 1.f / 6},
                            {1.f / 24, -1.f / 12, 1.f / 6},
                            {0, 0, 1}};

/// Row A of the weight transform, U_(A,b) for b = 0…5, of input channel i and the 16 output
/// channels at weights[i][·][·][o0], stored at u[b·row_stride]: (G g)_A, then · Gᵀ. A is a
/// template parameter so that G's zeros and constants fold away (a 32×32 layer, timed alone,
/// took 288 instead of 296 µs).
template <int A>
inline void transform_weight_row(const WinogradShape& s, const float* weights, int64_t i,
                                 int64_t o0, float* u, int64_t row_stride) {
  const float* g = weights + i * 9 * s.out + o0;
  __m512 t[3], r[6];
  for (int l = 0; l < 3; ++l) {
    __m512 acc = _mm512_setzero_ps();
    for (int k = 0; k < 3; ++k)
      if (kG[A][k] != 0.f)
        acc = _mm512_fmadd_ps(_mm512_set1_ps(kG[A][k]), _mm512_loadu_ps(g + (k * 3 + l) * s.out),
                              acc);
    t[l] = acc;
  }
  weight_1d(t, r);
  for (int b = 0; b < 6; ++b) _mm512_storeu_ps(u + b * row_stride, r[b]);
}

/// v[ξ·in + cb·16 …] = (Bᵀ d B)_ξ for channel block cb of `tile`, d the 6×6 window at
/// (4·ty - 1, 4·tx - 1), zero outside the image.
inline void transform_input(const WinogradShape& s, const Tiling& tl, const float* src,
                            int64_t tile, int64_t cb, float* v) {
  const int64_t n = tile / (tl.th * tl.tw), ty = tile / tl.tw % tl.th, tx = tile % tl.tw;
  const int64_t h = s.height, w = s.width;
  const float* plane = src + (n * (s.in / kBlock) + cb) * h * w * kBlock;
  __m512 d[36], t[36], r[36];
  for (int y = 0; y < 6; ++y) {
    const int64_t row = ty * 4 - 1 + y;
    for (int x = 0; x < 6; ++x) {
      const int64_t col = tx * 4 - 1 + x;
      d[y * 6 + x] = row >= 0 && row < h && col >= 0 && col < w
                         ? _mm512_loadu_ps(plane + (row * w + col) * kBlock)
                         : _mm512_setzero_ps();
    }
  }
  for (int col = 0; col < 6; ++col) input_1d(d + col, 6, t + col, 6);          // Bᵀ d
  for (int row = 0; row < 6; ++row) input_1d(t + row * 6, 1, r + row * 6, 1);  // · B
  for (int x = 0; x < 36; ++x) _mm512_storeu_ps(v + x * s.in + cb * kBlock, r[x]);
}

/// Stores the 16 floats `v` at `p`, as float32 or rounded to bfloat16 (nearest, ties to even).
template <bool Bf16>
inline void store(void* p, __m512 v) {
  if constexpr (Bf16)
    _mm256_storeu_si256(static_cast<__m256i*>(p), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
  else
    _mm512_storeu_ps(static_cast<float*>(p), v);
}

/// The 4×4 outputs of channel block ob of `tile`: Aᵀ M A + bias (+ dst, ReLU), M_ξ at
/// m[ξ·m_stride]; float32 or bfloat16 into dst.
template <bool Bf16>
inline void transform_output(const WinogradShape& s, const Tiling& tl, const float* m,
                             int64_t m_stride, int64_t tile, int64_t ob, const float* bias,
                             ConvEpilogue epilogue, void* dst) {
  using T = std::conditional_t<Bf16, uint16_t, float>;
  const int64_t n = tile / (tl.th * tl.tw), ty = tile / tl.tw % tl.th, tx = tile % tl.tw;
  const int64_t w = s.width;
  T* plane = static_cast<T*>(dst) + (n * (s.out / kBlock) + ob) * s.height * w * kBlock;
  const __m512 b = _mm512_loadu_ps(bias + ob * kBlock), zero = _mm512_setzero_ps();
  __m512 mm[36], t[24], y[16];
  for (int x = 0; x < 36; ++x) mm[x] = _mm512_loadu_ps(m + x * m_stride);
  for (int col = 0; col < 6; ++col) output_1d(mm + col, 6, t + col, 6);  // Aᵀ M: 4×6
  for (int row = 0; row < 4; ++row) output_1d(t + row * 6, 1, y + row * 4, 1);
  for (int yy = 0; yy < 4; ++yy)
    for (int xx = 0; xx < 4; ++xx) {
      T* out = plane + ((ty * 4 + yy) * w + tx * 4 + xx) * kBlock;
      __m512 val = _mm512_add_ps(y[yy * 4 + xx], b);
      if constexpr (!Bf16)
        if (epilogue.accumulate) val = _mm512_add_ps(val, _mm512_loadu_ps(out));
      if (epilogue.relu) val = _mm512_max_ps(val, zero);
      store<Bf16>(out, val);
    }
}

/// Tiles per block of the fused schedule (a multiple of kTileBlock). Measured here in the network
/// (128 channels at 64×64): 12 ran 0.90 ms a layer, 6 1.10 ms (U read too often), 24 0.95 ms.
constexpr int64_t kFusedTiles = 12;
/// Bytes of transformed input and products above which a layer runs fused (see fused).
constexpr int64_t kFusedAbove = int64_t{4} << 20;

/// Whether `s` runs fused: when the transformed input and products of all tiles, 36·tiles·(in +
/// out) floats, would not stay in the caches (measured here with 128 channels, against the
/// kernel's earlier schedule for small layers: 2.4 MB at 32×32 ran 20% faster unfused, 9.4 MB at
/// 64×64 15% faster fused), and every thread can take two blocks or more.
bool fused(const WinogradShape& s, int threads) {
  const int64_t tiles = Tiling(s).tiles;
  return 36 * tiles * (s.in + s.out) * int64_t{sizeof(float)} > kFusedAbove &&
         tiles >= 2 * threads * kFusedTiles;
}

/// [first, last) of part `part` of `n` items cut into `parts` nearly equal ranges.
std::pair<int64_t, int64_t> share(int64_t n, int64_t parts, int64_t part) {
  const int64_t per = (n + parts - 1) / parts, first = std::min(n, part * per);
  return {first, std::min(n, first + per)};
}

/// Tiles per thread below which a small layer's threads split its output channels rather than
/// its tiles. Splitting tiles repeats the weight transform on every thread, splitting channels the
/// input transform; only the first keeps each thread on the rows it computes before and after.
/// Measured here in the network (128 channels), 32×32 (32 tiles a thread) ran faster split by
/// tiles, 16×16 (8 tiles a thread) by channels.
constexpr int64_t kMinBandTiles = 16;

/// 64-channel product columns of `s`'s output channels (the last one possibly narrower).
int64_t product_columns(const WinogradShape& s) {
  return (s.out / kBlock + kOutBlock - 1) / kOutBlock;
}

/// How the threads split a small layer: `column_groups` ways by 64-channel product columns and
/// threads / column_groups ways by tiles.
struct Grid {
  int64_t column_groups = 1, tile_groups = 1;
  Grid(const WinogradShape& s, const Tiling& tl, int threads) {
    if (tl.tiles < threads * kMinBandTiles)
      column_groups = std::min<int64_t>(threads, product_columns(s));
    tile_groups = std::min<int64_t>(threads / column_groups, tl.tiles);
  }
  /// Tiles of the largest share.
  int64_t max_tiles(const Tiling& tl) const { return (tl.tiles + tile_groups - 1) / tile_groups; }
};

/// Floats of one thread's scratch memory for `s`.
int64_t thread_scratch_floats(const WinogradShape& s, int threads) {
  const Tiling tl(s);
  if (fused(s, threads)) return 36 * s.in * s.out + 36 * kFusedTiles * (s.in + kOutBlock * kBlock);
  return 36 * Grid(s, tl, threads).max_tiles(tl) * (s.in + kOutBlock * kBlock) +
         6 * s.in * kOutBlock * kBlock;
}

/// Vectors of 16 output channels in 64-channel product column pc.
int64_t column_vectors(const WinogradShape& s, int64_t pc) {
  return std::min<int64_t>(kOutBlock, s.out / kBlock - pc * kOutBlock);
}

/// V[tile][ξ][i] of `tiles` tiles from `first`.
void transform_inputs(const WinogradShape& s, const Tiling& tl, const float* src, int64_t first,
                      int64_t tiles, float* v) {
  for (int64_t t = 0; t < tiles; ++t)
    for (int64_t cb = 0; cb < s.in / kBlock; ++cb)
      transform_input(s, tl, src, first + t, cb, v + t * 36 * s.in);
}

/// U_(A,b) of product column pc, b = 0…5, as [in][width] matrices at u + b·u_xi.
template <int A>
void transform_weight_rows(const WinogradShape& s, const float* weights, int64_t pc, float* u,
                           int64_t u_xi) {
  const int64_t vectors = column_vectors(s, pc);
  for (int64_t i = 0; i < s.in; ++i)
    for (int64_t k = 0; k < vectors; ++k)
      transform_weight_row<A>(s, weights, i, (pc * kOutBlock + k) * kBlock,
                              u + i * vectors * kBlock + k * kBlock, u_xi);
}

/// U_ξ of product column pc for the ξ rows a ∈ [a0, a1), as [i][width] matrices at
/// u + ((a - a0)·6 + b)·u_xi.
void transform_weights(const WinogradShape& s, const float* weights, int64_t pc, int a0, int a1,
                       float* u, int64_t u_xi) {
  using Rows = void (*)(const WinogradShape&, const float*, int64_t, float*, int64_t);
  static constexpr Rows kRows[6] = {transform_weight_rows<0>, transform_weight_rows<1>,
                                    transform_weight_rows<2>, transform_weight_rows<3>,
                                    transform_weight_rows<4>, transform_weight_rows<5>};
  for (int a = a0; a < a1; ++a) kRows[a](s, weights, pc, u + (a - a0) * 6 * u_xi, u_xi);
}

/// The outputs of product column pc for `tiles` tiles from `first`, from their M at m
/// (M[tile][ξ][64]).
template <bool Bf16>
void transform_outputs(const WinogradShape& s, const Tiling& tl, const float* m, int64_t first,
                       int64_t tiles, int64_t pc, const float* bias, ConvEpilogue epilogue,
                       void* dst) {
  const int64_t vectors = column_vectors(s, pc), width = vectors * kBlock;
  for (int64_t t = 0; t < tiles; ++t)
    for (int64_t k = 0; k < vectors; ++k)
      transform_output<Bf16>(s, tl, m + t * 36 * width + k * kBlock, width, first + t,
                             pc * kOutBlock + k, bias, epilogue, dst);
}

/// One thread's share of the convolution, computed alone from its transformed input to its
/// outputs in its own scratch memory: no value passes between the threads, which matters where
/// the cores have separate caches (this machine's two cores sometimes sit on separate chiplets;
/// there, sharing U and splitting the products by ξ, as before, left the network's 64×64 layers
/// 21% and its 32×32 layers 34% slower). The threads split the tiles into bands of rows, as
/// oneDNN's 1×1 convolutions before and after split theirs, so that each reads what its own core
/// wrote. Large layers: the thread transforms all weights (U, once), then takes blocks of 12
/// tiles and computes their V, the 36 products and the outputs, so that V and M stay in its L2
/// cache. Small layers: per 64-channel column and row a of ξ, the thread transforms just the
/// weights it multiplies by (in L2) and multiplies all its tiles.
template <bool Bf16>
void winograd_thread(const WinogradShape& s, const float* src, const float* weights,
                     const float* bias, void* dst, float* scratch, ConvEpilogue epilogue,
                     int threads,
                     int thread) {
  const Tiling tl(s);
  const int64_t in = s.in, columns = product_columns(s);
  if (fused(s, threads)) {
    // Per product column, U_ξ as 36 contiguous [in][width] matrices, the order the products
    // read them in (only the last column can be narrower than 64).
    const auto column_u = [&](float* u, int64_t pc) {
      return u + pc * 36 * kOutBlock * kBlock * in;
    };
    float* const u = scratch;
    float* const v = u + 36 * in * s.out;
    float* const m = v + 36 * kFusedTiles * in;
    for (int64_t pc = 0; pc < columns; ++pc)
      transform_weights(s, weights, pc, 0, 6, column_u(u, pc), column_vectors(s, pc) * kBlock * in);
    const auto [first_block, last_block] =
        share((tl.tiles + kFusedTiles - 1) / kFusedTiles, threads, thread);
    for (int64_t blk = first_block; blk < last_block; ++blk) {
      const int64_t first = blk * kFusedTiles, count = std::min(kFusedTiles, tl.tiles - first);
      transform_inputs(s, tl, src, first, count, v);
      for (int64_t pc = 0; pc < columns; ++pc) {
        const int64_t width = column_vectors(s, pc) * kBlock;
        for (int64_t x = 0; x < 36; ++x)
          products(v + x * in, column_u(u, pc) + x * width * in, m + x * width, count, in,
                   column_vectors(s, pc), {36 * in, width, 36 * width});
        transform_outputs<Bf16>(s, tl, m, first, count, pc, bias, epilogue, dst);
      }
    }
    return;
  }
  const Grid grid(s, tl, threads);
  if (thread >= grid.tile_groups * grid.column_groups) return;
  const auto [first, last] = share(tl.tiles, grid.tile_groups, thread / grid.column_groups);
  const auto [first_column, last_column] =
      share(columns, grid.column_groups, thread % grid.column_groups);
  const int64_t tiles = last - first;
  float* const v = scratch;
  float* const m = v + 36 * tiles * in;
  float* const u = m + 36 * tiles * kOutBlock * kBlock;
  transform_inputs(s, tl, src, first, tiles, v);
  for (int64_t pc = first_column; pc < last_column; ++pc) {
    const int64_t width = column_vectors(s, pc) * kBlock;
    for (int a = 0; a < 6; ++a) {
      transform_weights(s, weights, pc, a, a + 1, u, width * in);
      for (int b = 0; b < 6; ++b)
        products(v + (a * 6 + b) * in, u + b * width * in, m + (a * 6 + b) * width, tiles, in,
                 column_vectors(s, pc), {36 * in, width, 36 * width});
    }
    transform_outputs<Bf16>(s, tl, m, first, tiles, pc, bias, epilogue, dst);
  }
}

template <bool Bf16>
void winograd(const WinogradShape& s, const float* src, const float* weights, const float* bias,
              void* dst, float* scratch, size_t scratch_floats, ConvEpilogue epilogue,
              int threads) {
  // Each thread's scratch memory is the same every call (its share of the whole), so that it stays
  // in that thread's caches from one layer to the next.
  const auto stride = static_cast<int64_t>(scratch_floats / threads / kBlock * kBlock);
  TORCH_CHECK(stride >= thread_scratch_floats(s, threads), "winograd_conv3x3: ", scratch_floats,
              " floats of scratch memory for ", threads,
              " threads, fewer than winograd_scratch_floats");
#pragma omp parallel num_threads(threads)
  {
    const int thread = omp_get_thread_num();
    winograd_thread<Bf16>(s, src, weights, bias, dst, scratch + thread * stride, epilogue, threads,
                          thread);
  }
}

}  // namespace

size_t winograd_scratch_floats(const WinogradShape& s, int threads) {
  const int64_t per_thread = (thread_scratch_floats(s, threads) + kBlock - 1) / kBlock * kBlock;
  return static_cast<size_t>(threads * per_thread);
}

void winograd_conv3x3(const WinogradShape& s, const float* src, const float* weights,
                      const float* bias, void* dst, bool bf16, float* scratch,
                      size_t scratch_floats, ConvEpilogue epilogue, int threads) {
  TORCH_CHECK(winograd_applicable(s),
              "winograd_conv3x3 needs AVX-512, channels in multiples of 16 and a size in "
              "multiples of 4, got ",
              s.in, "->", s.out, " at ", s.height, "x", s.width);
  TORCH_CHECK(threads >= 1, "winograd_conv3x3 needs at least one thread, got ", threads);
  __builtin_cpu_init();
  TORCH_CHECK(!bf16 || __builtin_cpu_supports("avx512bf16"),
              "winograd_conv3x3: bfloat16 output needs AVX512-BF16, which this CPU lacks");
  TORCH_CHECK(!bf16 || !epilogue.accumulate,
              "winograd_conv3x3 accumulates into float32 output only, not bfloat16");
  if (bf16)
    winograd<true>(s, src, weights, bias, dst, scratch, scratch_floats, epilogue, threads);
  else
    winograd<false>(s, src, weights, bias, dst, scratch, scratch_floats, epilogue, threads);
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

void conv3x3_reference(const WinogradShape& s, const float* src, const float* weights,
                       const float* bias, float* dst, ConvEpilogue epilogue) {
  const int64_t icb = s.in / kBlock, ocb = s.out / kBlock, h = s.height, w = s.width;
  const auto at = [&](int64_t n, int64_t c, int64_t y, int64_t x, int64_t blocks) {
    return ((n * blocks + c / kBlock) * h + y) * w * kBlock + x * kBlock + c % kBlock;
  };
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t o = 0; o < s.out; ++o)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          double acc = bias[o] + (epilogue.accumulate ? dst[at(n, o, y, x, ocb)] : 0.0);
          for (int64_t i = 0; i < s.in; ++i)
            for (int64_t ky = 0; ky < 3; ++ky)
              for (int64_t kx = 0; kx < 3; ++kx) {
                const int64_t yy = y + ky - 1, xx = x + kx - 1;
                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                acc +=
                    double(src[at(n, i, yy, xx, icb)]) * weights[(i * 9 + ky * 3 + kx) * s.out + o];
              }
          dst[at(n, o, y, x, ocb)] = static_cast<float>(epilogue.relu && acc < 0 ? 0.0 : acc);
        }
}

}  // namespace hg::engine
