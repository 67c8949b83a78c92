#include "hg/infer/center_decode.h"

#include <torch/torch.h>

#include <algorithm>

namespace hg::infer {
namespace {

using torch::indexing::Slice;

// Keeps the maxima of 3×3 windows: heat where it equals its window's maximum, else 0.
at::Tensor peaks_only(const at::Tensor& heat) {
  const auto hmax = torch::max_pool2d(heat, {3, 3}, {1, 1}, {1, 1});
  return heat * (hmax == heat).to(heat.scalar_type());
}

// feat: N×C×H×W, ind: N×M indices into H·W → N×M×C.
at::Tensor gather_at(const at::Tensor& feat, const at::Tensor& ind) {
  const auto f = feat.permute({0, 2, 3, 1}).reshape({feat.size(0), -1, feat.size(1)});
  return f.gather(1, ind.unsqueeze(2).expand({ind.size(0), ind.size(1), f.size(2)}));
}

struct TopK {
  at::Tensor scores, inds, classes, ys, xs;  // N×K each
};

// The k highest of every channel (inds into H·W, and their rows and columns as floats).
TopK top_per_channel(const at::Tensor& scores, int64_t k) {
  const int64_t n = scores.size(0), c = scores.size(1), w = scores.size(3);
  auto [s, inds] = torch::topk(scores.reshape({n, c, -1}), k);
  // CenterNet writes (inds / width).int().float(): a true division then a truncation, which is
  // the floor for these non-negative indices.
  return {s,
          inds,
          {},
          torch::div(inds, w, "floor").to(torch::kFloat),
          torch::remainder(inds, w).to(torch::kFloat)};
}

// The k highest over every channel and position.
TopK top_overall(const at::Tensor& scores, int64_t k) {
  const int64_t n = scores.size(0);
  const auto per = top_per_channel(scores, k);
  const auto best = torch::topk(per.scores.reshape({n, -1}), k);
  const auto& s = std::get<0>(best);
  const auto& ind = std::get<1>(best);
  auto pick = [&](const at::Tensor& t) { return t.reshape({n, -1}).gather(1, ind); };
  return {s, pick(per.inds), torch::div(ind, k, "floor").to(torch::kInt), pick(per.ys),
          pick(per.xs)};
}

// Centres (+ offset) and boxes of the top k: returns {xs, ys (N×K×1), boxes N×K×4}.
std::tuple<at::Tensor, at::Tensor, at::Tensor> boxes_at(const TopK& top, const at::Tensor& wh,
                                                        const at::Tensor& reg) {
  const int64_t n = top.xs.size(0), k = top.xs.size(1);
  auto xs = top.xs.reshape({n, k, 1}), ys = top.ys.reshape({n, k, 1});
  if (reg.defined()) {
    const auto r = gather_at(reg, top.inds);
    xs = xs + r.index({Slice(), Slice(), Slice(0, 1)});
    ys = ys + r.index({Slice(), Slice(), Slice(1, 2)});
  } else {
    xs = xs + 0.5;
    ys = ys + 0.5;
  }
  const auto size = gather_at(wh, top.inds);
  const auto w = size.index({Slice(), Slice(), Slice(0, 1)}),
             h = size.index({Slice(), Slice(), Slice(1, 2)});
  return {xs, ys, torch::cat({xs - w / 2, ys - h / 2, xs + w / 2, ys + h / 2}, 2)};
}

// Throws unless `map` is undefined (an optional head that is absent) or N×channels×H×W like heat.
void check_head(const at::Tensor& map, const char* name, int64_t channels, const at::Tensor& heat,
                const char* what) {
  if (!map.defined()) return;
  TORCH_CHECK(map.dim() == 4 && map.size(0) == heat.size(0) && map.size(2) == heat.size(2) &&
                  map.size(3) == heat.size(3),
              "the '", name, "' head must be N×C×H×W like 'hm' (", heat.sizes(), "), got ",
              map.sizes());
  TORCH_CHECK(map.size(1) == channels, "the '", name, "' head must have ", channels, " channels (",
              what, "), got ", map.size(1));
}

void check_k(const at::Tensor& heat, int64_t k) {
  TORCH_CHECK(heat.dim() == 4, "a centre heatmap must be N×C×H×W, got shape ", heat.sizes());
  TORCH_CHECK(k >= 1 && k <= heat.size(2) * heat.size(3), "top-k must be in 1..",
              heat.size(2) * heat.size(3), " (the output's H·W for a ", heat.size(2), "×",
              heat.size(3), " map), got ", k);
}

// Replaces each regressed joint by the nearest qualifying peak of its own heatmap (see the
// header). kps: N×K×J×2 → the same.
at::Tensor snap_to_peaks(at::Tensor kps, const at::Tensor& boxes, const at::Tensor& hm_hp,
                         const at::Tensor& hp_offset, int64_t k) {
  const int64_t n = kps.size(0), j = kps.size(2);
  constexpr double kThreshold = 0.1;
  kps = kps.permute({0, 2, 1, 3});  // N×J×K×2
  const auto top = top_per_channel(peaks_only(hm_hp), k);
  auto hm_xs = top.xs, hm_ys = top.ys;
  if (hp_offset.defined()) {
    const auto off = gather_at(hp_offset, top.inds.reshape({n, -1})).reshape({n, j, k, 2});
    hm_xs = hm_xs + off.select(3, 0);
    hm_ys = hm_ys + off.select(3, 1);
  } else {
    hm_xs = hm_xs + 0.5;
    hm_ys = hm_ys + 0.5;
  }
  const auto keep = (top.scores > kThreshold).to(torch::kFloat);
  const auto hm_score = (1 - keep) * -1 + keep * top.scores;
  hm_ys = (1 - keep) * -10000 + keep * hm_ys;
  hm_xs = (1 - keep) * -10000 + keep * hm_xs;
  const auto hm_kps = torch::stack({hm_xs, hm_ys}, -1).unsqueeze(2).expand({n, j, k, k, 2});
  const auto dist = (kps.unsqueeze(3).expand({n, j, k, k, 2}) - hm_kps).pow(2).sum(4).pow(0.5);
  auto [min_dist, min_ind] = dist.min(3);
  const auto score = hm_score.gather(2, min_ind).unsqueeze(-1);
  const auto nearest = hm_kps.gather(3, min_ind.reshape({n, j, k, 1, 1}).expand({n, j, k, 1, 2}))
                           .reshape({n, j, k, 2});
  auto side = [&](int64_t c) {
    return boxes.select(2, c).reshape({n, 1, k, 1}).expand({n, j, k, 1});
  };
  const auto l = side(0), t = side(1), r = side(2), b = side(3);
  const auto x = nearest.index({"...", Slice(0, 1)}), y = nearest.index({"...", Slice(1, 2)});
  const auto far = min_dist.unsqueeze(-1) > torch::max(b - t, r - l) * 0.3;
  const auto reject = (x < l)
                          .logical_or(x > r)
                          .logical_or(y < t)
                          .logical_or(y > b)
                          .logical_or(score < kThreshold)
                          .logical_or(far)
                          .to(torch::kFloat)
                          .expand({n, j, k, 2});
  return ((1 - reject) * nearest + reject * kps).permute({0, 2, 1, 3});
}

}  // namespace

at::Tensor ctdet_decode(const at::Tensor& heat, const at::Tensor& wh, const at::Tensor& reg,
                        int64_t k) {
  check_k(heat, k);
  check_head(wh, "wh", 2, heat,
             "width and height; CenterNet's class-specific sizes are not decoded");
  check_head(reg, "reg", 2, heat, "the centre's x and y offsets");
  const auto top = top_overall(peaks_only(heat), k);
  const auto [xs, ys, boxes] = boxes_at(top, wh, reg);
  const int64_t n = heat.size(0);
  return torch::cat(
      {boxes, top.scores.reshape({n, k, 1}), top.classes.reshape({n, k, 1}).to(torch::kFloat)}, 2);
}

at::Tensor multi_pose_decode(const at::Tensor& heat, const at::Tensor& wh, const at::Tensor& kps,
                             const at::Tensor& reg, const at::Tensor& hm_hp,
                             const at::Tensor& hp_offset, int64_t k) {
  check_k(heat, k);
  TORCH_CHECK(
      kps.dim() == 4 && kps.size(1) % 2 == 0,
      "the 'hps' head must have an x and a y offset per joint (an even channel count), got ",
      kps.sizes());
  const int64_t n = heat.size(0), j = kps.size(1) / 2;
  check_head(wh, "wh", 2, heat,
             "width and height; CenterNet's class-specific sizes are not decoded");
  check_head(reg, "reg", 2, heat, "the centre's x and y offsets");
  check_head(kps, "hps", 2 * j, heat, "an x and a y offset per joint");
  check_head(hm_hp, "hm_hp", j, heat, "a heatmap per joint of 'hps'");
  check_head(hp_offset, "hp_offset", 2, heat, "the joints' x and y offsets");
  const auto top = top_overall(peaks_only(heat), k);
  // The offsets are read at the integer centre, before the centre's own sub-pixel offset.
  auto joints = gather_at(kps, top.inds).reshape({n, k, j, 2}) +
                torch::stack({top.xs, top.ys}, -1).reshape({n, k, 1, 2});
  const auto [xs, ys, boxes] = boxes_at(top, wh, reg);
  if (hm_hp.defined()) joints = snap_to_peaks(joints, boxes, hm_hp, hp_offset, k);
  return torch::cat({boxes, top.scores.reshape({n, k, 1}), joints.reshape({n, k, 2 * j}),
                     top.classes.reshape({n, k, 1}).to(torch::kFloat)},
                    2);
}

bool has_detection_heads(const model::LargeHourglassOptions& options) {
  auto has = [&](const std::string& name) {
    return std::any_of(options.heads().begin(), options.heads().end(),
                       [&](const model::HeadSpec& h) { return h.name == name; });
  };
  return has("hm") && has("wh");
}

void require_detection_heads(const model::LargeHourglassOptions& options) {
  TORCH_CHECK(options.head_style() != model::HeadStyle::kCornerNet,
              "a CornerNet model's corner heads are not decoded: corner pooling and grouping are "
              "outside this project, which runs its backbone and writes its features (",
              options.describe(), ")");
  TORCH_CHECK(has_detection_heads(options),
              "detections need CenterNet's 'hm' and 'wh' heads; this model's heads are ",
              options.heads().empty() ? std::string("none") : model::heads_text(options.heads()));
}

at::Tensor decode_detections(const model::HeadOutputs& heads, int64_t k) {
  auto last = [&](const std::string& name) {
    const auto it = heads.find(name);
    return it == heads.end() ? at::Tensor() : it->second.select(1, -1).to(torch::kFloat);
  };
  TORCH_CHECK(heads.count("hm") && heads.count("wh"),
              "detections need CenterNet's 'hm' and 'wh' heads; this model lacks one of them");
  const auto heat = torch::sigmoid(last("hm"));
  if (!heads.count("hps")) return ctdet_decode(heat, last("wh"), last("reg"), k);
  const auto hm_hp = last("hm_hp");
  return multi_pose_decode(heat, last("wh"), last("hps"), last("reg"),
                           hm_hp.defined() ? torch::sigmoid(hm_hp) : hm_hp, last("hp_offset"), k);
}

}  // namespace hg::infer
