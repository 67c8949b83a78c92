#include "hg/model/hourglass.h"

#include "hg/runtime/limits.h"

#include <torch/torch.h>

#include <sstream>

namespace hg::model {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
}

int64_t conv_macs(const nn::Conv2d& c, int64_t h, int64_t w) {
  return c->weight.numel() * h * w;
}

nn::Sequential residuals(int64_t count, int64_t in, int64_t out) {
  nn::Sequential seq;
  for (int64_t i = 0; i < count; ++i)
    seq->push_back(Residual(ResidualOptions(i == 0 ? in : out, out)));
  return seq;
}

int64_t sequence_macs(const nn::SequentialImpl& seq, int64_t h, int64_t w) {
  int64_t total = 0;
  for (const auto& m : seq.children()) total += m->as<ResidualImpl>()->macs(h, w);
  return total;
}

}  // namespace

ResidualImpl::ResidualImpl(const ResidualOptions& o)
    : options(o),
      bn1(register_module("bn1", nn::BatchNorm2d(o.in_channels()))),
      bn2(register_module("bn2", nn::BatchNorm2d(o.out_channels() / 2))),
      bn3(register_module("bn3", nn::BatchNorm2d(o.out_channels() / 2))),
      conv1(register_module("conv1", conv(o.in_channels(), o.out_channels() / 2, 1))),
      conv2(register_module("conv2", conv(o.out_channels() / 2, o.out_channels() / 2, 3))),
      conv3(register_module("conv3", conv(o.out_channels() / 2, o.out_channels(), 1))) {
  TORCH_CHECK(o.in_channels() > 0 && o.out_channels() >= 2 && o.out_channels() % 2 == 0,
              "residual widths must be positive and the output width even, got ", o.in_channels(),
              "->", o.out_channels());
  if (o.in_channels() != o.out_channels())
    skip = register_module("skip", conv(o.in_channels(), o.out_channels(), 1));
}

torch::Tensor ResidualImpl::forward(const torch::Tensor& x) {
  auto y = conv1(torch::relu(bn1(x)));
  y = torch::relu(bn2(y));
  y = conv3x3_ ? conv3x3_(y, conv2->weight, conv2->bias) : conv2(y);
  y = conv3(torch::relu(bn3(y)));
  return y + (skip ? skip(x) : x);
}

int64_t ResidualImpl::macs(int64_t h, int64_t w) const {
  return conv_macs(conv1, h, w) + conv_macs(conv2, h, w) + conv_macs(conv3, h, w) +
         (skip ? conv_macs(skip, h, w) : 0);
}

HourglassImpl::HourglassImpl(const HourglassOptions& o)
    : options(o),
      up1(register_module("up1", residuals(o.residuals(), o.features(), o.features()))),
      low1(register_module("low1", residuals(o.residuals(), o.features(), o.features()))),
      low3(register_module("low3", residuals(o.residuals(), o.features(), o.features()))) {
  TORCH_CHECK(o.depth() >= 1, "hourglass depth must be at least 1, got ", o.depth());
  if (o.depth() > 1) {
    low2 = register_module(
        "low2", std::make_shared<HourglassImpl>(
                    HourglassOptions(o.depth() - 1, o.features()).residuals(o.residuals())));
  } else {
    low2_res = register_module("low2", residuals(o.residuals(), o.features(), o.features()));
  }
}

torch::Tensor HourglassImpl::forward(const torch::Tensor& x) {
  auto low = low1->forward(torch::max_pool2d(x, 2, 2));
  low = low2 ? low2->forward(low) : low2_res->forward(low);
  low = low3->forward(low);
  return up1->forward(x) + torch::upsample_nearest2d(low, {x.size(2), x.size(3)});
}

int64_t HourglassImpl::macs(int64_t h, int64_t w) const {
  const int64_t lh = h / 2, lw = w / 2;
  return sequence_macs(*up1, h, w) + sequence_macs(*low1, lh, lw) + sequence_macs(*low3, lh, lw) +
         (low2 ? low2->macs(lh, lw) : sequence_macs(*low2_res, lh, lw));
}

void StackedHourglassOptions::validate() const {
  TORCH_CHECK(stacks() >= 1 && stacks() <= 16, "stacks must be in 1..16, got ", stacks());
  TORCH_CHECK(features() >= 2 && features() % 2 == 0 && features() <= limits::kMaxFeatures,
              "features must be even and in 2..", limits::kMaxFeatures, ", got ", features());
  TORCH_CHECK(depth() >= 1 && depth() <= 8, "depth must be in 1..8, got ", depth());
  TORCH_CHECK(residuals() >= 1 && residuals() <= 8, "residuals per block must be in 1..8, got ",
              residuals());
  TORCH_CHECK(joints() >= 1 && joints() <= limits::kMaxJoints, "joints must be in 1..",
              limits::kMaxJoints, ", got ", joints());
  TORCH_CHECK(stem1() >= 2 && stem1() % 2 == 0 && stem2() >= 2 && stem2() % 2 == 0 &&
                  stem1() <= limits::kMaxStemWidth && stem2() <= limits::kMaxStemWidth,
              "stem widths must be even and in 2..", limits::kMaxStemWidth, ", got ", stem1(), "/",
              stem2());
}

std::string StackedHourglassOptions::describe() const {
  std::ostringstream s;
  s << stacks() << (stacks() == 1 ? " stack, " : " stacks, ") << features() << " features, depth "
    << depth() << ", " << residuals() << " residual" << (residuals() == 1 ? "" : "s") << "/block, "
    << joints() << " joints, stem 64-" << stem1() << "-" << stem2() << "-" << features();
  return s.str();
}

bool operator==(const StackedHourglassOptions& a, const StackedHourglassOptions& b) {
  return a.stacks() == b.stacks() && a.features() == b.features() && a.depth() == b.depth() &&
         a.residuals() == b.residuals() && a.joints() == b.joints() && a.stem1() == b.stem1() &&
         a.stem2() == b.stem2();
}

StackedHourglassImpl::StackedHourglassImpl(const StackedHourglassOptions& o)
    : options((o.validate(), o)),
      pre_conv(register_module("pre_conv", conv(3, 64, 7, 2))),
      pre_bn(register_module("pre_bn", nn::BatchNorm2d(64))),
      pre_res1(register_module("pre_res1", Residual(ResidualOptions(64, o.stem1())))),
      pre_res2(register_module("pre_res2", Residual(ResidualOptions(o.stem1(), o.stem2())))),
      pre_res3(register_module("pre_res3", Residual(ResidualOptions(o.stem2(), o.features())))),
      hourglasses(register_module("hourglasses", nn::ModuleList())),
      res(register_module("res", nn::ModuleList())),
      fc_conv(register_module("fc_conv", nn::ModuleList())),
      fc_bn(register_module("fc_bn", nn::ModuleList())),
      score(register_module("score", nn::ModuleList())),
      merge_features(register_module("merge_features", nn::ModuleList())),
      merge_preds(register_module("merge_preds", nn::ModuleList())) {
  const int64_t f = o.features();
  for (int64_t s = 0; s < o.stacks(); ++s) {
    hourglasses->push_back(Hourglass(HourglassOptions(o.depth(), f).residuals(o.residuals())));
    res->push_back(residuals(o.residuals(), f, f));
    fc_conv->push_back(conv(f, f, 1));
    fc_bn->push_back(nn::BatchNorm2d(f));
    score->push_back(conv(f, o.joints(), 1));
    if (s + 1 < o.stacks()) {
      merge_features->push_back(conv(f, f, 1));
      merge_preds->push_back(conv(o.joints(), f, 1));
    }
  }
}

namespace {

// Parameters of a Conv2d (with bias), a BatchNorm2d (weight and bias) and a Residual.
int64_t conv_parameters(int64_t in, int64_t out, int64_t kernel) {
  return in * out * kernel * kernel + out;
}

int64_t residual_parameters(int64_t in, int64_t out) {
  const int64_t mid = out / 2;
  return 2 * in + conv_parameters(in, mid, 1) + 2 * mid + conv_parameters(mid, mid, 3) + 2 * mid +
         conv_parameters(mid, out, 1) + (in != out ? conv_parameters(in, out, 1) : 0);
}

}  // namespace

int64_t StackedHourglassOptions::parameter_count() const {
  const int64_t f = features(), j = joints(), r = residuals();
  const int64_t stem = conv_parameters(3, 64, 7) + 2 * 64 + residual_parameters(64, stem1()) +
                       residual_parameters(stem1(), stem2()) + residual_parameters(stem2(), f);
  // Each level of an hourglass has up1, low1 and low3 blocks; the lowest adds low2's.
  const int64_t hourglass = (3 * depth() + 1) * r * residual_parameters(f, f);
  const int64_t stack = hourglass + r * residual_parameters(f, f) + conv_parameters(f, f, 1) +
                        2 * f + conv_parameters(f, j, 1);
  const int64_t merge = conv_parameters(f, f, 1) + conv_parameters(j, f, 1);
  return stem + stacks() * stack + (stacks() - 1) * merge;
}

void StackedHourglassOptions::check_input_size(int64_t height, int64_t width,
                                               const std::string& what) const {
  const int64_t m = input_multiple();
  TORCH_CHECK(height <= limits::kMaxInputSize && width <= limits::kMaxInputSize, what,
              " must be at most ", limits::kMaxInputSize, " pixels a side (the limit), got ",
              height == width ? std::to_string(height)
                              : std::to_string(height) + "×" + std::to_string(width));
  TORCH_CHECK(height > 0 && height % m == 0 && width > 0 && width % m == 0, what,
              " must be a positive multiple of ", m, " (4·2^depth for depth ", depth(), "), got ",
              height == width ? std::to_string(height)
                              : std::to_string(height) + "×" + std::to_string(width));
}

void StackedHourglassImpl::check_input(const torch::Tensor& x) const {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3, "network input must be N×3×H×W (RGB), got shape ",
              x.sizes());
  TORCH_CHECK(x.scalar_type() == torch::kFloat, "network input must be float32, got ",
              x.scalar_type());
  options.check_input_size(x.size(2), x.size(3), "the input height and width");
}

torch::Tensor StackedHourglassImpl::forward(const torch::Tensor& input) {
  check_input(input);
  auto x = torch::relu(pre_bn(pre_conv(input)));
  x = pre_res1(x);
  x = torch::max_pool2d(x, 2, 2);
  x = pre_res3(pre_res2(x));
  std::vector<torch::Tensor> heatmaps;
  for (int64_t s = 0; s < options.stacks(); ++s) {
    auto y = hourglasses[s]->as<HourglassImpl>()->forward(x);
    y = res[s]->as<nn::SequentialImpl>()->forward(y);
    y = torch::relu(
        fc_bn[s]->as<nn::BatchNorm2dImpl>()->forward(fc_conv[s]->as<nn::Conv2dImpl>()->forward(y)));
    auto h = score[s]->as<nn::Conv2dImpl>()->forward(y);
    heatmaps.push_back(h);
    if (s + 1 < options.stacks()) {
      x = x + merge_features[s]->as<nn::Conv2dImpl>()->forward(y) +
          merge_preds[s]->as<nn::Conv2dImpl>()->forward(h);
    }
  }
  return torch::stack(heatmaps, 1);
}

void StackedHourglassImpl::set_conv3x3(const Conv3x3& conv) {
  for (const auto& m : modules())
    if (auto* residual = m->as<ResidualImpl>()) residual->set_conv3x3(conv);
}

int64_t StackedHourglassImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

int64_t StackedHourglassImpl::macs(int64_t h, int64_t w) const {
  const int64_t h2 = h / 2, w2 = w / 2, h4 = h / 4, w4 = w / 4;
  int64_t total = conv_macs(pre_conv, h2, w2) + pre_res1->macs(h2, w2) + pre_res2->macs(h4, w4) +
                  pre_res3->macs(h4, w4);
  auto conv1x1 = [&](const nn::ModuleList& list, int64_t s) {
    return list->at<nn::Conv2dImpl>(s).weight.numel() * h4 * w4;
  };
  for (int64_t s = 0; s < options.stacks(); ++s) {
    total += hourglasses->at<HourglassImpl>(s).macs(h4, w4);
    total += sequence_macs(res->at<nn::SequentialImpl>(s), h4, w4);
    total += conv1x1(fc_conv, s) + conv1x1(score, s);
    if (s + 1 < options.stacks()) total += conv1x1(merge_features, s) + conv1x1(merge_preds, s);
  }
  return total;
}

}  // namespace hg::model
