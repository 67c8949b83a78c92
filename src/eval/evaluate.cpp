#include "hg/eval/evaluate.h"

#include "hg/eval/pck.h"
#include "hg/infer/decode.h"

#include <torch/torch.h>

namespace hg::eval {

StackPredictions predict_stacks(const Network& network, data::Loader& loader,
                                const std::vector<int>& flip_perm,
                                const std::function<void(int64_t, int64_t)>& progress) {
  StackPredictions out;
  std::vector<std::vector<at::Tensor>> per_stack;
  std::vector<at::Tensor> truth, present, normalize;
  loader.start_epoch(0);
  data::Batch batch;
  const int64_t total = loader.batches_per_epoch();
  while (loader.next(batch)) {
    auto heatmaps = network(batch.input);
    if (!flip_perm.empty())
      heatmaps = infer::average_with_mirror(heatmaps, network(batch.input.flip({-1})), flip_perm);
    const auto peaks = infer::decode_peaks(heatmaps.cpu());  // N×S×J×3
    const int side = static_cast<int>(heatmaps.size(-1));
    const int64_t n = peaks.size(0), s = peaks.size(1), j = peaks.size(2);
    if (per_stack.empty()) per_stack.resize(s);
    for (int64_t i = 0; i < n; ++i) {
      const auto& meta = batch.meta[i];
      const auto img = infer::peaks_to_image(peaks[i], meta.crop, side);  // S×J×3
      for (int64_t k = 0; k < s; ++k) per_stack[k].push_back(img[k]);
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
      out.samples.push_back(meta.sample);
    }
    if (progress) progress(batch.number + 1, total);
  }
  TORCH_CHECK(!truth.empty(), "no sample could be evaluated (every image failed to load?)");
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
