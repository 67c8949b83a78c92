// Loader throughput: samples per second at 256×256 with the original code's full augmentation
// (scale, rotation, flip, colour), 2 worker threads, batches of 16 — from JPEG files (the five
// MPII test images, 1280×720 and smaller, decoded every time) and from the synthetic generator.
// Also the per-core cost of synthetic generation alone and of making a sample from an image.
//
//   build/bench/hg_bench --benchmark_filter=Data

#include "hg/data/loader.h"
#include "hg/data/readers.h"
#include "hg/data/synthetic.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

namespace {

using namespace hg::data;

void run_loader(benchmark::State& state, std::shared_ptr<const Dataset> d, bool reduced = true) {
  torch::set_num_threads(1);
  LoaderOptions o;
  o.batch_size = 16;
  o.threads = static_cast<int>(state.range(0));
  o.sample.augment = AugmentOptions::original();
  o.sample.reduced_decode = reduced;
  Loader loader(d, o);
  int64_t samples = 0, epoch = 0;
  for (auto _ : state) {
    loader.start_epoch(epoch++);
    Batch b;
    while (loader.next(b)) samples += b.input.size(0);
  }
  state.counters["samples/s"] =
      benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
}

std::shared_ptr<const Dataset> mpii_jpegs() {
  const auto mpii = read_mpii_h5(std::string(HG_TEST_DATA) + "/mpii/annot/valid.h5");
  std::vector<Annotation> samples;
  for (int k = 0; k < 64; ++k)
    for (size_t i = 0; i < 5; ++i) samples.push_back(mpii->annotation(i));
  return std::make_shared<FileDataset>(mpii->joints(), samples, "5 MPII images ×64");
}

void BM_DataLoaderJpeg(benchmark::State& state) {
  run_loader(state, mpii_jpegs());
}
BENCHMARK(BM_DataLoaderJpeg)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

// The same with every JPEG decoded in full (the reference path).
void BM_DataLoaderJpegFullDecode(benchmark::State& state) {
  run_loader(state, mpii_jpegs(), false);
}
BENCHMARK(BM_DataLoaderJpegFullDecode)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3);

void BM_DataLoaderSynthetic(benchmark::State& state) {
  run_loader(state, std::make_shared<SyntheticDataset>(1024, 1));
}
BENCHMARK(BM_DataLoaderSynthetic)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

// One core: generating a synthetic 256² image and its annotation.
void BM_DataSyntheticGenerate(benchmark::State& state) {
  SyntheticDataset d(1 << 20, 1);
  size_t i = 0;
  cv::Mat image;
  for (auto _ : state) benchmark::DoNotOptimize(d.load(i++, image));
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(i), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DataSyntheticGenerate)->Unit(benchmark::kMicrosecond);

// One core: crop, colour jitter and 16 heatmaps of one pre-rendered synthetic image (256², the
// original recipe), i.e. the loader's per-sample cost beyond decoding or generation.
void BM_DataMakeSample(benchmark::State& state) {
  cv::setNumThreads(1);
  SyntheticDataset d(1, 1);
  cv::Mat image;
  const Annotation a = d.load(0, image);
  SampleOptions o;
  o.augment = AugmentOptions::original();
  uint64_t i = 0;
  for (auto _ : state) {
    auto rng = sample_rng(0, 0, i++);
    benchmark::DoNotOptimize(make_sample(a, image, d.joints(), o, sample_augment(o.augment, rng)));
  }
  state.counters["samples/s"] =
      benchmark::Counter(static_cast<double>(i), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DataMakeSample)->Unit(benchmark::kMicrosecond);

}  // namespace
