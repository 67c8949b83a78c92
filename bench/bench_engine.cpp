// Micro-benchmarks of the oneDNN engine: the primitives its plans are made of, configured as the
// engine configures them (nChw16c activations, weights in the primitive's own layout, fused
// post-ops), on the 8-stack network's shapes; and whole plans per precision and algorithm.
// Rates are per wall-clock second (UseRealTime): the work runs on oneDNN's threads.
#include "hg/engine/engine.h"
#include "hg/engine/kernels.h"
#include "hg/model/hourglass.h"
#include "hg/runtime/runtime.h"

#include <benchmark/benchmark.h>
#include <omp.h>
#include <torch/torch.h>
#include <dnnl.hpp>

#include <cstring>
#include <thread>
#include <unordered_map>

namespace {

using dnnl::memory;
using Dt = memory::data_type;
using Tag = memory::format_tag;

dnnl::engine& cpu() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

/// Zero-filled memories for every argument a primitive descriptor asks for.
std::unordered_map<int, memory> zeroed(const std::vector<std::pair<int, memory::desc>>& mds) {
  std::unordered_map<int, memory> args;
  for (const auto& [arg, md] : mds) {
    memory m(md, cpu());
    std::memset(m.get_data_handle(), 0, md.get_size());
    args.emplace(arg, m);
  }
  return args;
}

void run(benchmark::State& state, const dnnl::primitive& p,
         const std::unordered_map<int, memory>& args, double flops) {
  omp_set_num_threads(hg::runtime::cores());
  dnnl::stream s(cpu());
  for (auto _ : state) {
    p.execute(s, args);
    s.wait();
  }
  if (flops > 0)
    state.counters["GFLOP/s"] =
        benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

/// Args: in, out, kernel, side, kind (0 f32 direct, 1 f32 Winograd, 2 bf16 direct, 3 the
/// engine's own f32 Winograd, 3×3 only); ReLU post-op.
void BM_Convolution(benchmark::State& state) {
  const int64_t in = state.range(0), out = state.range(1), k = state.range(2),
                side = state.range(3);
  if (state.range(4) == 3) {
    const hg::engine::WinogradShape shape{1, in, out, side, side};
    if (k != 3 || !hg::engine::winograd_applicable(shape)) {
      state.SkipWithError("the engine's Winograd needs a 3x3 kernel and AVX-512");
      return;
    }
    std::vector<float> src(in * side * side, 0.5f), w(in * 9 * out, 0.01f), b(out, 0.f),
        dst(out * side * side),
        scratch(hg::engine::winograd_scratch_floats(shape, hg::runtime::cores()));
    omp_set_num_threads(hg::runtime::cores());
    for (auto _ : state)
      hg::engine::winograd_conv3x3(shape, src.data(), w.data(), b.data(), dst.data(), false,
                                   scratch.data(), scratch.size(), {false, true},
                                   hg::runtime::cores());
    state.SetLabel("the engine's winograd");
    state.counters["GFLOP/s"] = benchmark::Counter(2.0 * in * out * k * k * side * side,
                                                   benchmark::Counter::kIsIterationInvariantRate);
    return;
  }
  const Dt type = state.range(4) == 2 ? Dt::bf16 : Dt::f32;
  const auto alg = state.range(4) == 1 ? dnnl::algorithm::convolution_winograd
                                       : dnnl::algorithm::convolution_direct;
  if (type == Dt::bf16 && !hg::engine::bf16_supported()) {
    state.SkipWithError("this CPU lacks AVX512-BF16");
    return;
  }
  dnnl::post_ops ops;
  ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  const memory::desc src({1, in, side, side}, type, Tag::nChw16c),
      dst({1, out, side, side}, type, Tag::nChw16c), w({out, in, k, k}, type, Tag::any),
      b({out}, Dt::f32, Tag::x);
  dnnl::convolution_forward::primitive_desc pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, alg, src, w, b, dst,
                                      {1, 1}, {k / 2, k / 2}, {k / 2, k / 2}),
      attr, cpu());
  state.SetLabel(pd.impl_info_str());
  run(state, dnnl::convolution_forward(pd),
      zeroed({{DNNL_ARG_SRC, src},
              {DNNL_ARG_WEIGHTS, pd.weights_desc()},
              {DNNL_ARG_BIAS, b},
              {DNNL_ARG_DST, dst}}),
      2.0 * in * out * k * k * side * side);
}
BENCHMARK(BM_Convolution)
    ->ArgNames({"in", "out", "k", "side", "kind"})
    ->ArgsProduct({{128}, {128}, {3}, {64, 32, 16}, {0, 1, 2, 3}})
    ->ArgsProduct({{256}, {128}, {1}, {64}, {0, 2}})
    ->ArgsProduct({{128}, {256}, {1}, {64}, {0, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

/// The pre-activation pass of a residual input, relu(s ⊙ x + t) per channel. Args: channels,
/// side, kind: 0 the engine's kernel writing f32, 1 writing bf16, 2 its plain reference (f32),
/// 3 oneDNN's binary primitive (f32; with bf16 output it falls back to reference code), 4 the
/// engine's kernel writing f32 and the skip output x + upsampled low (the hourglass's upper
/// branch) into a second buffer.
void BM_BnRelu(benchmark::State& state) {
  const int64_t c = state.range(0), side = state.range(1), kind = state.range(2);
  if (kind == 1 && !hg::engine::bf16_supported()) {
    state.SkipWithError("this CPU lacks AVX512-BF16");
    return;
  }
  const memory::desc x({1, c, side, side}, Dt::f32, Tag::nChw16c),
      ch({1, c, 1, 1}, Dt::f32, Tag::nChw16c);
  auto args = zeroed({{DNNL_ARG_SRC_0, x},
                      {DNNL_ARG_SRC_1, ch},
                      {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, ch},
                      {DNNL_ARG_DST, x}});
  if (kind == 3) {
    dnnl::post_ops ops;
    ops.append_binary(dnnl::algorithm::binary_add, ch);
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    dnnl::binary::primitive_desc pd(dnnl::binary::desc(dnnl::algorithm::binary_mul, x, ch, x), attr,
                                    cpu());
    state.SetLabel(pd.impl_info_str());
    run(state, dnnl::binary(pd), args, 3.0 * c * side * side);
    return;
  }
  const hg::engine::BlockedShape shape{(c + 15) / 16, (c + 15) / 16, side * side, 16};
  const auto data = [&](int arg) { return static_cast<float*>(args.at(arg).get_data_handle()); };
  const auto* scale = data(DNNL_ARG_SRC_1);
  const auto* shift = data(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1);
  std::vector<float> low(kind == 4 ? c * side * side / 4 : 0), acc(kind == 4 ? c * side * side : 0);
  const hg::engine::SkipOutput skip{acc.data(), low.data(), side};
  omp_set_num_threads(hg::runtime::cores());
  for (auto _ : state) {
    if (kind == 2)
      hg::engine::scale_shift_relu_reference(shape, data(DNNL_ARG_SRC_0), scale, shift,
                                             data(DNNL_ARG_DST), false);
    else
      hg::engine::scale_shift_relu(shape, data(DNNL_ARG_SRC_0), scale, shift, data(DNNL_ARG_DST),
                                   kind == 1, kind == 4 ? &skip : nullptr);
  }
  // Bytes read and written per value: x and y, and with the skip output acc and a quarter of low.
  const double bytes = kind == 1 ? 6.0 : kind == 4 ? 13.0 : 8.0;
  state.counters["GB/s"] =
      benchmark::Counter(c * side * side * bytes, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BnRelu)
    ->ArgNames({"c", "side", "kind"})
    ->ArgsProduct({{256}, {64, 16}, {0, 1, 2, 3, 4}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

/// The hourglass's 2×2 max-pool. Args: channels, side, kind: 0 the engine's kernel, 1 oneDNN's
/// pooling primitive.
void BM_MaxPool(benchmark::State& state) {
  const int64_t c = state.range(0), side = state.range(1);
  const memory::desc big({1, c, side, side}, Dt::f32, Tag::nChw16c),
      small({1, c, side / 2, side / 2}, Dt::f32, Tag::nChw16c);
  auto args = zeroed({{DNNL_ARG_SRC, big}, {DNNL_ARG_DST, small}});
  if (state.range(2) == 1) {
    dnnl::pooling_forward::primitive_desc pool(
        dnnl::pooling_forward::desc(dnnl::prop_kind::forward_inference,
                                    dnnl::algorithm::pooling_max, big, small, {2, 2}, {2, 2},
                                    {0, 0}, {0, 0}),
        cpu());
    state.SetLabel(pool.impl_info_str());
    run(state, dnnl::pooling_forward(pool), args, 0);
  } else {
    const hg::engine::BlockedShape shape{c / 16, c / 16, side * side, 16};
    omp_set_num_threads(hg::runtime::cores());
    for (auto _ : state)
      hg::engine::max_pool_2x2(shape, side,
                               static_cast<const float*>(args.at(DNNL_ARG_SRC).get_data_handle()),
                               static_cast<float*>(args.at(DNNL_ARG_DST).get_data_handle()));
    state.SetLabel("the engine's kernel");
  }
  state.SetBytesProcessed(state.iterations() * (big.get_size() + small.get_size()));
}
BENCHMARK(BM_MaxPool)
    ->ArgNames({"c", "side", "kind"})
    ->ArgsProduct({{256}, {64, 32}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

/// A whole plan. Args: stacks, precision (0 f32, 1 bf16), algorithm (0 auto, 1 direct, 2 Winograd).
void BM_EngineForward(benchmark::State& state) {
  hg::engine::EngineOptions o;
  o.precision = state.range(1) ? hg::engine::Precision::kBf16 : hg::engine::Precision::kF32;
  o.algorithm = state.range(2) == 1   ? hg::engine::Algorithm::kDirect
                : state.range(2) == 2 ? hg::engine::Algorithm::kWinograd
                                      : hg::engine::Algorithm::kAuto;
  if (o.precision == hg::engine::Precision::kBf16 && !hg::engine::bf16_supported()) {
    state.SkipWithError("this CPU lacks AVX512-BF16");
    return;
  }
  hg::model::StackedHourglass net(hg::model::StackedHourglassOptions().stacks(state.range(0)));
  net->eval();
  auto engine = hg::engine::Engine::build(*net, o);
  const auto x = torch::rand({1, 3, 256, 256});
  for (auto _ : state) benchmark::DoNotOptimize(engine.forward(x));
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * net->macs(256, 256), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_EngineForward)
    ->ArgNames({"stacks", "bf16", "alg"})
    ->ArgsProduct({{2}, {0, 1}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0)
    ->UseRealTime();

}  // namespace
