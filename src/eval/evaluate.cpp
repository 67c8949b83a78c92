#include "hg/eval/evaluate.h"

#include "hg/data/loader.h"
#include "hg/eval/pck.h"

#include <torch/torch.h>

namespace hg::eval {

StackPredictions predict_dataset(const infer::Predictor& predictor,
                                 std::shared_ptr<const data::Dataset> dataset,
                                 const DatasetRunOptions& options,
                                 const std::function<void(int64_t, int64_t)>& progress) {
  if (options.limit > 0) dataset = data::first_n(dataset, static_cast<size_t>(options.limit));
  TORCH_CHECK(options.shards >= 1 && options.shard >= 0 && options.shard < options.shards,
              "dataset part ", options.shard, " of ", options.shards, " does not exist");
  const size_t whole = dataset->size(), shards = static_cast<size_t>(options.shards);
  const size_t begin = whole * static_cast<size_t>(options.shard) / shards;
  dataset =
      data::sample_range(dataset, begin, whole * static_cast<size_t>(options.shard + 1) / shards);
  if (dataset->size() == 0) return {};  // more parts than samples
  data::LoaderOptions lo;
  lo.batch_size = predictor.options().batch;
  lo.threads = std::max(1, options.loader_threads);
  lo.shuffle = false;
  lo.sample.res = predictor.options().input_size;
  lo.sample.grid = *predictor.options().grid;
  // Crops of the full image, as `hourglass predict` makes them, so that a score does not depend
  // on the path that produced it.
  lo.sample.reduced_decode = false;
  data::Loader loader(dataset, lo);
  const int64_t total = static_cast<int64_t>(dataset->size());
  const int64_t j = dataset->joints().size();
  StackPredictions out;
  std::vector<std::vector<at::Tensor>> per_stack;
  std::vector<at::Tensor> truth, present, normalize;
  loader.start_epoch(0);
  data::Batch batch;
  int64_t done = 0;
  while (loader.next(batch)) {
    std::vector<data::CropParams> crops;
    for (const auto& meta : batch.meta) crops.push_back(meta.crop);
    const auto joints = predictor.predict_crops(batch.input, crops);  // N×S×J×3
    const int64_t n = joints.size(0), s = joints.size(1);
    if (per_stack.empty()) per_stack.resize(static_cast<size_t>(s));
    for (int64_t i = 0; i < n; ++i) {
      const auto& meta = batch.meta[static_cast<size_t>(i)];
      for (int64_t k = 0; k < s; ++k) per_stack[static_cast<size_t>(k)].push_back(joints[i][k]);
      auto t = torch::zeros({j, 2}, torch::kDouble);
      auto p = torch::zeros({j}, torch::kBool);
      for (int64_t q = 0; q < j; ++q) {
        t[q][0] = meta.joints[q].pos.x;
        t[q][1] = meta.joints[q].pos.y;
        p[q] = meta.joints[q].present;
      }
      truth.push_back(t);
      present.push_back(p);
      normalize.push_back(torch::full({1}, meta.normalize, torch::kDouble));
      out.samples.push_back(begin + meta.sample);
    }
    done = std::min(total, (batch.number + 1) * lo.batch_size);
    if (progress) progress(done, total);
  }
  if (truth.empty() && options.shards > 1) return out;  // this part's every image failed
  TORCH_CHECK(!truth.empty(), "no sample of ", dataset->describe(),
              " could be evaluated (every image failed to load?)");
  for (auto& stack : per_stack) out.joints.push_back(torch::stack(stack));
  out.truth = torch::stack(truth);
  out.present = torch::stack(present);
  out.normalize = torch::cat(normalize);
  return out;
}

std::vector<at::Tensor> stack_errors(const StackPredictions& p) {
  std::vector<at::Tensor> errors;
  for (const auto& joints : p.joints)
    errors.push_back(normalized_errors(joints.slice(2, 0, 2), p.truth, p.present, p.normalize));
  return errors;
}

}  // namespace hg::eval
