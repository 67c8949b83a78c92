// Micro-benchmarks of the LibTorch network's building blocks (batch 1, 2 threads by default).
#include "hg/model/hourglass.h"
#include "hg/runtime/runtime.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

namespace {

void set_threads() {
  torch::set_num_threads(hg::runtime::cores());
}

void BM_Residual(benchmark::State& state) {
  set_threads();
  const int64_t f = state.range(0), side = state.range(1);
  hg::model::Residual res(hg::model::ResidualOptions(f, f));
  res->eval();
  auto x = torch::randn({1, f, side, side});
  torch::InferenceMode guard;
  for (auto _ : state) benchmark::DoNotOptimize(res->forward(x));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * res->macs(side, side),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Residual)->Args({256, 64})->Args({256, 16})->Unit(benchmark::kMillisecond);

void BM_StackedHourglass(benchmark::State& state) {
  set_threads();
  auto net =
      hg::model::StackedHourglass(hg::model::StackedHourglassOptions().stacks(state.range(0)));
  net->eval();
  auto x = torch::rand({1, 3, 256, 256});
  torch::InferenceMode guard;
  for (auto _ : state) benchmark::DoNotOptimize(net->forward(x));
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * net->macs(256, 256), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_StackedHourglass)->Arg(2)->Arg(8)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace
