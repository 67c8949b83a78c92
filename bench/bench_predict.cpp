// Per-image time of the predictor on one 256×256 crop (whole 256×256 image): crop, network
// (random weights), flip test, decoding and the inverse transform; 2 and 8 stacks, flip on/off.
#include "hg/infer/predictor.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <thread>

namespace {

void BM_Predict(benchmark::State& state) {
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const auto net =
      hg::model::StackedHourglass(hg::model::StackedHourglassOptions().stacks(state.range(0)));
  hg::infer::PredictorOptions o;
  o.flip = state.range(1) != 0;
  const hg::infer::Predictor predictor(hg::infer::torch_backend(net, torch::kCPU),
                                       hg::data::mpii_joints(), o);
  cv::Mat image(256, 256, CV_8UC3);
  cv::randu(image, 0, 255);
  const hg::infer::PersonCrop person{
      hg::infer::crop_of_image(image.size()), hg::infer::PersonSource::kWholeImage, {}, 0};
  for (auto _ : state) benchmark::DoNotOptimize(predictor.predict(image, {person}));
  state.SetLabel(std::to_string(state.range(0)) + " stacks, flip " + (o.flip ? "on" : "off"));
}
BENCHMARK(BM_Predict)
    ->ArgsProduct({{2, 8}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0)
    ->UseRealTime();

}  // namespace
