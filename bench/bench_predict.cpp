// Per-image time of the predictor on one 256×256 crop (whole 256×256 image): crop, network
// (random weights), flip test, decoding and the inverse transform; 2 and 8 stacks, flip on/off,
// on 1 thread and on all cores.
#include "hg/infer/predictor.h"
#include "hg/runtime/runtime.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <string>

namespace {

void BM_Predict(benchmark::State& state) {
  const int threads = hg::runtime::resolve_threads(static_cast<int>(state.range(2)));
  torch::set_num_threads(threads);
  const auto net =
      hg::model::StackedHourglass(hg::model::StackedHourglassOptions().stacks(state.range(0)));
  hg::infer::PredictorOptions o;
  o.flip = state.range(1) != 0;
  const hg::infer::Predictor predictor(hg::infer::torch_backend(net), hg::data::mpii_joints(), o);
  cv::Mat image(256, 256, CV_8UC3);
  cv::randu(image, 0, 255);
  const hg::infer::PersonCrop person{
      hg::infer::crop_of_image(image.size()), hg::infer::PersonSource::kWholeImage, {}, 0};
  predictor.predict(image, {person});  // warm-up: first-call allocations stay out of the timing
  for (auto _ : state) benchmark::DoNotOptimize(predictor.predict(image, {person}));
  state.SetLabel(std::to_string(state.range(0)) + " stacks, flip " + (*o.flip ? "on" : "off") +
                 ", " + std::to_string(threads) + " thread(s)");
}
BENCHMARK(BM_Predict)
    ->ArgsProduct({{2, 8}, {0, 1}, {1, 0}})  // threads: 1, all cores (0)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();

}  // namespace
