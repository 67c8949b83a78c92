#include "hg/model/large_hourglass.h"

#include "hg/runtime/limits.h"
#include "hg/runtime/text.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

namespace hg::model {
namespace {

namespace nn = torch::nn;

// Names the network's own modules take, and those of the input and of the decoded detections
// beside the heads in `forward`'s and the ONNX export's outputs: a head may not take them too.
const std::set<std::string> kReservedNames = {"pre",      "kps",        "cnvs",    "inters",
                                              "inters_",  "cnvs_",      "tl_cnvs", "br_cnvs",
                                              "features", "detections", "image"};

nn::Conv2d conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, bool bias) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, kernel).stride(stride).padding((kernel - 1) / 2).bias(bias));
}

// CenterNet's make_layer: in→out, then out→out; with `stride` on the first (make_hg_layer).
nn::Sequential layer(int64_t in, int64_t out, int64_t count, int64_t stride = 1) {
  nn::Sequential seq;
  for (int64_t i = 0; i < count; ++i)
    seq->push_back(
        BasicResidual(BasicResidualOptions(i == 0 ? in : out, out).stride(i == 0 ? stride : 1)));
  return seq;
}

// CenterNet's make_layer_revr: in→in, then in→out last.
nn::Sequential layer_revr(int64_t in, int64_t out, int64_t count) {
  nn::Sequential seq;
  for (int64_t i = 0; i < count; ++i)
    seq->push_back(BasicResidual(BasicResidualOptions(in, i + 1 == count ? out : in)));
  return seq;
}

std::string joined(const std::vector<int64_t>& values) {
  std::string s;
  for (const auto v : values) s += (s.empty() ? "" : "-") + std::to_string(v);
  return s;
}

// Parameters and multiply-accumulates (at an output of `pixels`) of the layers above.
struct Cost {
  int64_t parameters = 0, macs = 0;
  Cost& operator+=(const Cost& c) {
    parameters += c.parameters;
    macs += c.macs;
    return *this;
  }
};

Cost conv_cost(int64_t in, int64_t out, int64_t kernel, bool bias, bool bn, int64_t pixels) {
  const int64_t weights = in * out * kernel * kernel;
  return {weights + (bias ? out : 0) + (bn ? 2 * out : 0), weights * pixels};
}

Cost residual_cost(int64_t in, int64_t out, bool strided, int64_t pixels) {
  Cost c = conv_cost(in, out, 3, false, true, pixels);
  c += conv_cost(out, out, 3, false, true, pixels);
  if (strided || in != out) c += conv_cost(in, out, 1, false, true, pixels);
  return c;
}

Cost layer_cost(int64_t in, int64_t out, int64_t count, bool strided, int64_t pixels) {
  Cost c;
  for (int64_t i = 0; i < count; ++i)
    c += residual_cost(i == 0 ? in : out, out, strided && i == 0, pixels);
  return c;
}

// CornerNet's `pool` on `dim` maps.
Cost corner_pool_cost(int64_t dim, int64_t pixels) {
  Cost c = conv_cost(dim, kCornerPoolWidth, 3, false, true, pixels);
  c += conv_cost(dim, kCornerPoolWidth, 3, false, true, pixels);
  c += conv_cost(kCornerPoolWidth, dim, 3, false, true, pixels);
  c += conv_cost(dim, dim, 1, false, true, pixels);
  c += conv_cost(dim, dim, 3, false, true, pixels);
  return c;
}

// One level and those below it, at an input of h×w.
Cost level_cost(int64_t levels, const int64_t* dims, const int64_t* modules, int64_t h, int64_t w) {
  const int64_t here = h * w, below = (h / 2) * (w / 2);
  Cost c = layer_cost(dims[0], dims[0], modules[0], false, here);
  c += layer_cost(dims[0], dims[1], modules[0], true, below);
  c += levels > 1 ? level_cost(levels - 1, dims + 1, modules + 1, h / 2, w / 2)
                  : layer_cost(dims[1], dims[1], modules[1], false, below);
  for (int64_t i = 0; i < modules[0]; ++i)
    c += residual_cost(dims[1], i + 1 == modules[0] ? dims[0] : dims[1], false, below);
  return c;
}

Cost network_cost(const LargeHourglassOptions& o, int64_t h, int64_t w) {
  const int64_t d = o.dims()[0], cnv = o.cnv_dim(), pixels = (h / 4) * (w / 4);
  Cost c = conv_cost(3, o.stem(), 7, false, true, (h / 2) * (w / 2));
  c += residual_cost(o.stem(), d, true, pixels);
  Cost stack = level_cost(o.levels(), o.dims().data(), o.modules().data(), h / 4, w / 4);
  stack += conv_cost(d, cnv, 3, false, true, pixels);
  const bool corner = o.head_style() == HeadStyle::kCornerNet;
  const bool three_by_three = o.head_style() != HeadStyle::kMMPose;
  // CornerNet's corner modules (tl_cnvs, br_cnvs) and heads are kept, not run: parameters
  // without multiply-accumulates.
  Cost heads;
  for (int corner_module = 0; corner && corner_module < 2; ++corner_module)
    heads += corner_pool_cost(cnv, pixels);
  for (const auto& head : o.heads()) {
    if (three_by_three) heads += conv_cost(cnv, d, 3, true, false, pixels);
    heads += conv_cost(three_by_three ? d : cnv, head.channels, 1, true, false, pixels);
  }
  if (corner) heads.macs = 0;
  stack += heads;
  Cost between = conv_cost(d, d, 1, false, true, pixels);
  between += conv_cost(cnv, d, 1, false, true, pixels);
  between += residual_cost(d, d, false, pixels);
  for (int64_t s = 0; s < o.stacks(); ++s) c += stack;
  for (int64_t s = 0; s + 1 < o.stacks(); ++s) c += between;
  return c;
}

}  // namespace

const runtime::NameTable<HeadStyle>& name_table(HeadStyle) {
  static const runtime::NameTable<HeadStyle> table = {{"centernet", HeadStyle::kCenterNet},
                                                      {"mmpose", HeadStyle::kMMPose},
                                                      {"cornernet", HeadStyle::kCornerNet}};
  return table;
}

bool operator==(const HeadSpec& a, const HeadSpec& b) {
  return a.name == b.name && a.channels == b.channels;
}

std::vector<HeadSpec> parse_heads(const std::string& text) {
  if (text == "ctdet") return {{"hm", 80}, {"wh", 2}, {"reg", 2}};
  if (text == "cornernet")
    return {{"tl_heats", 80}, {"br_heats", 80}, {"tl_tags", 1},
            {"br_tags", 1},   {"tl_regrs", 2},  {"br_regrs", 2}};
  if (text == "multi_pose")
    return {{"hm", 1}, {"wh", 2}, {"reg", 2}, {"hps", 34}, {"hm_hp", 17}, {"hp_offset", 2}};
  std::vector<HeadSpec> heads;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    const auto colon = item.find(':');
    const std::string count = colon == std::string::npos ? "" : item.substr(colon + 1);
    TORCH_CHECK(colon != std::string::npos && !count.empty() && count.size() <= 6 &&
                    count.find_first_not_of("0123456789") == std::string::npos,
                "heads '", text, "': each head must be NAME:CHANNELS (e.g. hm:80,wh:2,reg:2), ",
                "or a head set (ctdet, multi_pose, cornernet); got '", item, "'");
    heads.push_back({item.substr(0, colon), std::stoll(count)});
  }
  TORCH_CHECK(!heads.empty(), "heads '", text, "': name at least one head, e.g. hm:80,wh:2,reg:2");
  return heads;
}

std::string heads_text(const std::vector<HeadSpec>& heads) {
  std::string s;
  for (const auto& h : heads)
    s += (s.empty() ? "" : ",") + h.name + ":" + std::to_string(h.channels);
  return s;
}

void LargeHourglassOptions::validate() const {
  TORCH_CHECK(levels() >= 1 && levels() <= 8, "levels must be in 1..8, got ", levels());
  TORCH_CHECK(int64_t(dims().size()) == levels() + 1, "dims must have levels + 1 = ", levels() + 1,
              " entries, got ", dims().size(), " (", joined(dims()), ")");
  TORCH_CHECK(int64_t(modules().size()) == levels() + 1,
              "modules must have levels + 1 = ", levels() + 1, " entries, got ", modules().size(),
              " (", joined(modules()), ")");
  for (const auto d : dims())
    TORCH_CHECK(d >= 1 && d <= limits::kMaxFeatures, "dims must be in 1..", limits::kMaxFeatures,
                ", got ", joined(dims()));
  for (const auto m : modules())
    TORCH_CHECK(m >= 1 && m <= 16, "modules must be in 1..16, got ", joined(modules()));
  TORCH_CHECK(stacks() >= 1 && stacks() <= 16, "stacks must be in 1..16, got ", stacks());
  TORCH_CHECK(cnv_dim() >= 1 && cnv_dim() <= limits::kMaxFeatures, "cnv_dim must be in 1..",
              limits::kMaxFeatures, ", got ", cnv_dim());
  TORCH_CHECK(stem() >= 1 && stem() <= limits::kMaxStemWidth, "stem must be in 1..",
              limits::kMaxStemWidth, ", got ", stem());
  std::set<std::string> seen;
  for (const auto& h : heads()) {
    const bool identifier = !h.name.empty() && h.name.size() <= 64 &&
                            !std::isdigit(static_cast<unsigned char>(h.name[0])) &&
                            std::all_of(h.name.begin(), h.name.end(), [](char c) {
                              return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                            });
    TORCH_CHECK(identifier && !kReservedNames.count(h.name), "head name '", h.name,
                "' must be an identifier (letters, digits, _) other than pre, kps, cnvs, "
                "inters, inters_, cnvs_, tl_cnvs, br_cnvs, features, detections and image");
    TORCH_CHECK(seen.insert(h.name).second, "head '", h.name, "' is named twice");
    TORCH_CHECK(h.channels >= 1 && h.channels <= limits::kMaxJoints, "head '", h.name,
                "' must have 1..", limits::kMaxJoints, " channels, got ", h.channels);
  }
}

std::string LargeHourglassOptions::describe() const {
  std::ostringstream s;
  s << "Hourglass, " << stacks() << (stacks() == 1 ? " stack, " : " stacks, ") << levels()
    << " levels, widths " << joined(dims()) << ", modules " << joined(modules()) << ", cnv "
    << cnv_dim() << ", stem " << stem() << ", heads "
    << (heads().empty() ? std::string("none") : heads_text(heads()))
    << (head_style() == HeadStyle::kMMPose      ? " (MMPose's)"
        : head_style() == HeadStyle::kCornerNet ? " (CornerNet's, not run: output features)"
                                                : "");
  return s.str();
}

std::vector<HeadSpec> LargeHourglassOptions::outputs() const {
  if (head_style() == HeadStyle::kCornerNet) return {{"features", cnv_dim()}};
  return heads();
}

void LargeHourglassOptions::check_input_size(int64_t height, int64_t width,
                                             const std::string& what) const {
  const int64_t m = input_multiple();
  const std::string got = height == width ? std::to_string(height)
                                          : std::to_string(height) + "×" + std::to_string(width);
  TORCH_CHECK(height <= limits::kMaxInputSize && width <= limits::kMaxInputSize, what,
              " must be at most ", limits::kMaxInputSize, " pixels a side (the limit), got ", got);
  TORCH_CHECK(height > 0 && height % m == 0 && width > 0 && width % m == 0, what,
              " must be a positive multiple of ", m, " (4·2^levels for ", levels(),
              " levels), got ", got);
}

int64_t LargeHourglassOptions::parameter_count() const {
  validate();
  return network_cost(*this, input_multiple(), input_multiple()).parameters;
}

int64_t LargeHourglassOptions::macs(int64_t h, int64_t w) const {
  validate();
  return network_cost(*this, h, w).macs;
}

bool operator==(const LargeHourglassOptions& a, const LargeHourglassOptions& b) {
  return a.levels() == b.levels() && a.dims() == b.dims() && a.modules() == b.modules() &&
         a.stacks() == b.stacks() && a.cnv_dim() == b.cnv_dim() && a.stem() == b.stem() &&
         a.heads() == b.heads() && a.head_style() == b.head_style();
}

LargeHourglassOptions hourglass104(std::vector<HeadSpec> heads) {
  return LargeHourglassOptions().heads(std::move(heads));
}

LargeHourglassOptions hourglass52(std::vector<HeadSpec> heads) {
  return LargeHourglassOptions().stacks(1).heads(std::move(heads)).head_style(HeadStyle::kMMPose);
}

LargeHourglassOptions cornernet(std::vector<HeadSpec> heads) {
  return LargeHourglassOptions().heads(std::move(heads)).head_style(HeadStyle::kCornerNet);
}

LargeHourglassOptions large_hourglass_preset(const std::string& arch, const std::string& heads) {
  if (arch == "hourglass104") return hourglass104(parse_heads(heads.empty() ? "ctdet" : heads));
  if (arch == "cornernet") return cornernet(parse_heads(heads.empty() ? "cornernet" : heads));
  TORCH_CHECK(arch == "hourglass52", "arch: '", arch, "' is not a CornerNet/CenterNet preset",
              runtime::did_you_mean(arch, large_hourglass_presets()),
              "; the presets are hourglass104, hourglass52 and cornernet");
  return hourglass52(parse_heads(heads.empty() ? "heatmaps:17" : heads));
}

std::vector<std::string> large_hourglass_presets() {
  return {"hourglass104", "hourglass52", "cornernet"};
}

ConvBnReluImpl::ConvBnReluImpl(const ConvBnReluOptions& o)
    : options(o),
      conv(register_module("conv", conv2d(o.in(), o.out(), o.kernel(), o.stride(), !o.with_bn()))) {
  if (o.with_bn()) bn = register_module("bn", nn::BatchNorm2d(o.out()));
}

torch::Tensor ConvBnReluImpl::forward(const torch::Tensor& x) {
  auto y = conv(x);
  return torch::relu(bn ? bn(y) : y);
}

BasicResidualImpl::BasicResidualImpl(const BasicResidualOptions& o)
    : options(o),
      conv1(register_module("conv1", conv2d(o.in(), o.out(), 3, o.stride(), false))),
      bn1(register_module("bn1", nn::BatchNorm2d(o.out()))),
      conv2(register_module("conv2", conv2d(o.out(), o.out(), 3, 1, false))),
      bn2(register_module("bn2", nn::BatchNorm2d(o.out()))) {
  if (o.stride() != 1 || o.in() != o.out())
    skip = register_module("skip", nn::Sequential(conv2d(o.in(), o.out(), 1, o.stride(), false),
                                                  nn::BatchNorm2d(o.out())));
}

torch::Tensor BasicResidualImpl::forward(const torch::Tensor& x) {
  auto y = torch::relu(bn1(conv1(x)));
  y = bn2(conv2(y));
  return torch::relu(y + (skip ? skip->forward(x) : x));
}

CornerPoolImpl::CornerPoolImpl(int64_t dim)
    : p1_conv1(
          register_module("p1_conv1", ConvBnRelu(ConvBnReluOptions(3, dim, kCornerPoolWidth)))),
      p2_conv1(
          register_module("p2_conv1", ConvBnRelu(ConvBnReluOptions(3, dim, kCornerPoolWidth)))),
      p_conv1(register_module("p_conv1", conv2d(kCornerPoolWidth, dim, 3, 1, false))),
      p_bn1(register_module("p_bn1", nn::BatchNorm2d(dim))),
      conv1(register_module("conv1", conv2d(dim, dim, 1, 1, false))),
      bn1(register_module("bn1", nn::BatchNorm2d(dim))),
      conv2(register_module("conv2", ConvBnRelu(ConvBnReluOptions(3, dim, dim)))) {}

HourglassLevelImpl::HourglassLevelImpl(int64_t levels, const std::vector<int64_t>& dims,
                                       const std::vector<int64_t>& modules)
    : up1(register_module("up1", layer(dims[0], dims[0], modules[0]))),
      low1(register_module("low1", layer(dims[0], dims[1], modules[0], 2))) {
  if (levels > 1) {
    low2 =
        register_module("low2", std::make_shared<HourglassLevelImpl>(
                                    levels - 1, std::vector<int64_t>(dims.begin() + 1, dims.end()),
                                    std::vector<int64_t>(modules.begin() + 1, modules.end())));
  } else {
    low2_res = register_module("low2", layer(dims[1], dims[1], modules[1]));
  }
  low3 = register_module("low3", layer_revr(dims[1], dims[0], modules[0]));
}

torch::Tensor HourglassLevelImpl::forward(const torch::Tensor& x) {
  auto low = low1->forward(x);
  low = low2 ? low2->forward(low) : low2_res->forward(low);
  low = low3->forward(low);
  return up1->forward(x) + torch::upsample_nearest2d(low, {x.size(2), x.size(3)});
}

LargeHourglassImpl::LargeHourglassImpl(const LargeHourglassOptions& o)
    : options((o.validate(), o)),
      pre(register_module(
          "pre",
          nn::Sequential(ConvBnRelu(ConvBnReluOptions(7, 3, o.stem()).stride(2)),
                         BasicResidual(BasicResidualOptions(o.stem(), o.dims()[0]).stride(2))))),
      kps(register_module("kps", nn::ModuleList())),
      cnvs(register_module("cnvs", nn::ModuleList())),
      inters(register_module("inters", nn::ModuleList())),
      inters_(register_module("inters_", nn::ModuleList())),
      cnvs_(register_module("cnvs_", nn::ModuleList())) {
  const int64_t d = o.dims()[0];
  for (int64_t s = 0; s < o.stacks(); ++s) {
    kps->push_back(HourglassLevel(o.levels(), o.dims(), o.modules()));
    cnvs->push_back(ConvBnRelu(ConvBnReluOptions(3, d, o.cnv_dim())));
    if (s + 1 < o.stacks()) {
      inters->push_back(BasicResidual(BasicResidualOptions(d, d)));
      inters_->push_back(nn::Sequential(conv2d(d, d, 1, 1, false), nn::BatchNorm2d(d)));
      cnvs_->push_back(nn::Sequential(conv2d(o.cnv_dim(), d, 1, 1, false), nn::BatchNorm2d(d)));
    }
  }
  if (o.head_style() == HeadStyle::kCornerNet) {
    tl_cnvs = register_module("tl_cnvs", nn::ModuleList());
    br_cnvs = register_module("br_cnvs", nn::ModuleList());
    for (int64_t s = 0; s < o.stacks(); ++s) {
      tl_cnvs->push_back(CornerPool(o.cnv_dim()));
      br_cnvs->push_back(CornerPool(o.cnv_dim()));
    }
  }
  torch::NoGradGuard no_grad;
  const bool three_by_three = o.head_style() != HeadStyle::kMMPose;
  for (const auto& head : o.heads()) {
    nn::ModuleList per_stack;
    for (int64_t s = 0; s < o.stacks(); ++s) {
      auto last = conv2d(three_by_three ? d : o.cnv_dim(), head.channels, 1, 1, true);
      if (head.name.find("hm") != std::string::npos) last->bias.fill_(-2.19);
      if (three_by_three)
        per_stack->push_back(
            nn::Sequential(ConvBnRelu(ConvBnReluOptions(3, o.cnv_dim(), d).with_bn(false)), last));
      else
        per_stack->push_back(last);
    }
    heads.push_back(register_module(head.name, per_stack));
  }
}

void LargeHourglassImpl::check_input(const torch::Tensor& x) const {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3, "network input must be N×3×H×W, got shape ",
              x.sizes());
  TORCH_CHECK(x.scalar_type() == torch::kFloat, "network input must be float32, got ",
              x.scalar_type());
  options.check_input_size(x.size(2), x.size(3), "the input height and width");
}

HeadOutputs LargeHourglassImpl::forward(const torch::Tensor& image) {
  check_input(image);
  auto inter = pre->forward(image);
  const auto outputs = options.outputs();
  const bool features = options.head_style() == HeadStyle::kCornerNet;
  std::vector<std::vector<torch::Tensor>> per_output(outputs.size());
  for (int64_t s = 0; s < options.stacks(); ++s) {
    const auto kp = kps->at<HourglassLevelImpl>(s).forward(inter);
    const auto cnv = cnvs->at<ConvBnReluImpl>(s).forward(kp);
    if (features) per_output[0].push_back(cnv);
    for (size_t h = 0; h < heads.size() && !features; ++h) {
      const auto& head = heads[h]->ptr(s);
      per_output[h].push_back(options.head_style() == HeadStyle::kCenterNet
                                  ? head->as<nn::SequentialImpl>()->forward(cnv)
                                  : head->as<nn::Conv2dImpl>()->forward(cnv));
    }
    if (s + 1 < options.stacks()) {
      inter = torch::relu(inters_->at<nn::SequentialImpl>(s).forward(inter) +
                          cnvs_->at<nn::SequentialImpl>(s).forward(cnv));
      inter = inters->at<BasicResidualImpl>(s).forward(inter);
    }
  }
  HeadOutputs out;
  for (size_t h = 0; h < outputs.size(); ++h)
    out.emplace(outputs[h].name, torch::stack(per_output[h], 1));
  return out;
}

int64_t LargeHourglassImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace hg::model
