// Training's 3×3 convolutions on the engine's Winograd kernel.
//
// For y = conv(x, w) + b with stride 1 and padding 1 (w: [O][C][3][3]),
//   y[o](p) = b[o] + Σ_c Σ_{k∈{-1,0,1}²} w[o][c][1+k] x[c](p+k),
// the input's gradient is again such a convolution, of the output's gradient with the weights
// flipped in space and with input and output channels swapped:
//   ∂L/∂x[c](p) = Σ_o Σ_k w[o][c][1-k] ∂L/∂y[o](p+k),
// so both run on winograd_conv3x3, whose weights are [in][3][3][out]: w.permute(1,2,3,0) for the
// forward pass and w.flip(2,3).permute(0,2,3,1) for the gradient. The weights' gradient, the
// correlation ∂L/∂w[o][c][1+k] = Σ_p ∂L/∂y[o](p) x[c](p+k), and the bias's, Σ_p ∂L/∂y[o](p), come
// from oneDNN's Winograd backward-weights primitive (jit_wino_4x3), which at these sizes takes a
// third of the time of the direct one LibTorch calls (8×128×64×64: 18 against 61 ms here).
//
// LibTorch keeps training activations as NCHW or NHWC (channels_last); the kernel reads and writes
// nChw16c, so each pass copies its input into that layout and its output back (a few percent of a
// layer's time at these sizes).
#include "hg/engine/train_conv.h"

#include "hg/engine/kernels.h"
#include "hg/runtime/autocast.h"

#include <torch/torch.h>

#include <dnnl.hpp>

#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

namespace hg::engine {
namespace {

constexpr int64_t kBlock = 16;  // channels per nChw16c block

/// [N,C,H,W] in any memory format -> contiguous [N,C/16,H,W,16].
at::Tensor to_blocked(const at::Tensor& x) {
  const auto s = x.sizes();
  return x.reshape({s[0], s[1] / kBlock, kBlock, s[2], s[3]}).permute({0, 1, 3, 4, 2}).contiguous();
}

/// [N,O/16,H,W,16] -> [N,O,H,W] in `format` (channels_last or contiguous).
at::Tensor from_blocked(const at::Tensor& y, at::MemoryFormat format) {
  const auto s = y.sizes();
  const int64_t n = s[0], o = s[1] * kBlock, h = s[2], w = s[3];
  if (format == at::MemoryFormat::ChannelsLast)
    return y.permute({0, 2, 3, 1, 4}).contiguous().view({n, h, w, o}).permute({0, 3, 1, 2});
  return y.permute({0, 1, 4, 2, 3}).reshape({n, o, h, w});
}

/// conv3x3(src, weights) + bias on the Winograd kernel, src [N,C/16,H,W,16] and weights
/// [in][3][3][out] contiguous; the result as [N,O,H,W] in `format`.
at::Tensor winograd_blocked(const at::Tensor& src, const at::Tensor& weights,
                            const at::Tensor& bias, at::MemoryFormat format) {
  const WinogradShape shape{src.size(0), src.size(1) * kBlock, weights.size(3), src.size(2),
                            src.size(3)};
  const int threads = at::get_num_threads();
  auto dst = at::empty({shape.batch, shape.out / kBlock, shape.height, shape.width, kBlock},
                       src.options());
  auto scratch =
      at::empty({static_cast<int64_t>(winograd_scratch_floats(shape, threads))}, src.options());
  const auto b = bias.contiguous();
  winograd_conv3x3(shape, src.data_ptr<float>(), weights.data_ptr<float>(), b.data_ptr<float>(),
                   dst.data_ptr(), false, scratch.data_ptr<float>(),
                   static_cast<size_t>(scratch.numel()), {}, threads);
  return from_blocked(dst, format);
}

/// conv3x3(x, weights) + bias on the Winograd kernel; weights [in][3][3][out], contiguous.
at::Tensor winograd_pass(const at::Tensor& x, const at::Tensor& weights, const at::Tensor& bias) {
  return winograd_blocked(to_blocked(x), weights, bias, x.suggest_memory_format());
}

/// oneDNN's Winograd backward-weights primitive for `shape` (nChw16c activations), made once per
/// shape.
struct BackwardWeights {
  dnnl::convolution_backward_weights::primitive_desc pd;
  dnnl::convolution_backward_weights primitive;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

const BackwardWeights& backward_weights(const WinogradShape& shape) {
  using Tag = dnnl::memory::format_tag;
  using Dt = dnnl::memory::data_type;
  static std::mutex mutex;
  static std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>, BackwardWeights> made;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::tuple(shape.batch, shape.in, shape.out, shape.height, shape.width);
  auto it = made.find(key);
  if (it != made.end()) return it->second;
  const dnnl::memory::desc src({shape.batch, shape.in, shape.height, shape.width}, Dt::f32,
                               Tag::nChw16c),
      dst({shape.batch, shape.out, shape.height, shape.width}, Dt::f32, Tag::nChw16c),
      weights({shape.out, shape.in, 3, 3}, Dt::f32, Tag::any), bias({shape.out}, Dt::f32, Tag::x);
  const auto alg = dnnl::algorithm::convolution_winograd;
  const dnnl::convolution_forward::primitive_desc hint(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src, weights, bias,
                                      dst, {1, 1}, {1, 1}, {1, 1}),
      cpu_engine());
  dnnl::convolution_backward_weights::primitive_desc pd(
      dnnl::convolution_backward_weights::desc(alg, src, weights, bias, dst, {1, 1}, {1, 1},
                                               {1, 1}),
      cpu_engine(), hint);
  return made.emplace(key, BackwardWeights{pd, dnnl::convolution_backward_weights(pd)})
      .first->second;
}

/// The gradients of the weights (in `weight`'s memory format) and of the bias from nChw16c copies
/// of the input and of the output's gradient.
std::pair<at::Tensor, at::Tensor> weight_gradients(const at::Tensor& x_blocked,
                                                   const at::Tensor& grad_blocked,
                                                   const at::Tensor& weight,
                                                   const WinogradShape& shape) {
  const BackwardWeights& bw = backward_weights(shape);
  auto& engine = cpu_engine();
  dnnl::stream stream(engine);
  auto grad_w = at::empty_like(weight);
  auto grad_b = at::empty({shape.out}, weight.options());
  dnnl::memory src(bw.pd.src_desc(), engine, x_blocked.data_ptr()),
      diff_dst(bw.pd.diff_dst_desc(), engine, grad_blocked.data_ptr()),
      diff_w(bw.pd.diff_weights_desc(), engine),
      diff_b(bw.pd.diff_bias_desc(), engine, grad_b.data_ptr());
  bw.primitive.execute(stream, {{DNNL_ARG_SRC, src},
                                {DNNL_ARG_DIFF_DST, diff_dst},
                                {DNNL_ARG_DIFF_WEIGHTS, diff_w},
                                {DNNL_ARG_DIFF_BIAS, diff_b}});
  const dnnl::memory::dims dims(weight.sizes().begin(), weight.sizes().end()),
      strides(weight.strides().begin(), weight.strides().end());
  dnnl::memory out({dims, dnnl::memory::data_type::f32, strides}, engine, grad_w.data_ptr());
  dnnl::reorder(diff_w, out).execute(stream, diff_w, out);
  stream.wait();
  return {grad_w, grad_b};
}

at::Tensor forward_weights(const at::Tensor& weight) {
  return weight.permute({1, 2, 3, 0}).contiguous();
}

struct WinogradConv3x3 : torch::autograd::Function<WinogradConv3x3> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight, const at::Tensor& bias) {
    ctx->save_for_backward({x, weight});
    return winograd_pass(x, forward_weights(weight), bias);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1];
    const auto grad_blocked = to_blocked(grads[0]);
    at::Tensor grad_x;
    if (ctx->needs_input_grad(0))
      grad_x = winograd_blocked(
          grad_blocked, weight.flip({2, 3}).permute({0, 2, 3, 1}).contiguous(),
          at::zeros({weight.size(1)}, weight.options()), x.suggest_memory_format());
    const WinogradShape shape{x.size(0), x.size(1), weight.size(0), x.size(2), x.size(3)};
    auto [grad_w, grad_b] = weight_gradients(to_blocked(x), grad_blocked, weight, shape);
    return {grad_x, grad_w, grad_b};
  }
};

at::Tensor direct(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  return at::conv2d(x, weight, bias, 1, 1);
}

std::string shape_key(const at::Tensor& x, int64_t out) {
  std::ostringstream s;
  s << x.size(1) << "->" << out << " 3x3 @" << x.size(2) << "x" << x.size(3) << " batch "
    << x.size(0)
    << (x.suggest_memory_format() == at::MemoryFormat::ChannelsLast ? " channels_last" : "");
  return s.str();
}

}  // namespace

bool winograd_trainable(const at::Tensor& x, int64_t out) {
  return winograd_supported() && x.dim() == 4 && x.is_cpu() && x.scalar_type() == at::kFloat &&
         winograd_applicable({x.size(0), x.size(1), out, x.size(2), x.size(3)});
}

at::Tensor winograd_conv3x3_train(const at::Tensor& x, const at::Tensor& weight,
                                  const at::Tensor& bias) {
  TORCH_CHECK(weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3 && x.dim() == 4 &&
                  weight.size(1) == x.size(1) && bias.numel() == weight.size(0),
              "winograd_conv3x3_train needs x [N,C,H,W], weight [O,C,3,3] and bias [O], got ",
              x.sizes(), ", ", weight.sizes(), " and ", bias.sizes());
  TORCH_CHECK(winograd_trainable(x, weight.size(0)),
              "the engine's Winograd kernel cannot compute a 3x3 convolution of ", x.sizes(), " (",
              x.scalar_type(), ") to ", weight.size(0),
              " channels here: it needs AVX-512, float32 on the CPU, channels in multiples of 16 "
              "and sides in multiples of 4");
  return WinogradConv3x3::apply(x, weight, bias);
}

Algorithm parse_algorithm(const std::string& name) {
  return runtime::parse_in(name_table(Algorithm{}), name, "the 3x3 convolution algorithm");
}

struct TrainConv3x3::State {
  Algorithm algorithm;
  LayerTimer timer;
  mutable std::mutex mutex;
  std::map<std::string, Choice> choices;
};

TrainConv3x3::TrainConv3x3(Algorithm algorithm, LayerTimer timer)
    : state_(std::make_shared<State>()) {
  state_->algorithm = algorithm;
  state_->timer = timer ? std::move(timer) : process_layer_timer(default_choice_cache());
}

at::Tensor TrainConv3x3::operator()(const at::Tensor& x, const at::Tensor& weight,
                                    const at::Tensor& bias) const {
  State& s = *state_;
  if (s.algorithm == Algorithm::kDirect || runtime::autocast_enabled(at::kCPU) ||
      !winograd_trainable(x, weight.size(0)))
    return direct(x, weight, bias);
  const std::string key = shape_key(x, weight.size(0));
  std::unique_lock<std::mutex> lock(s.mutex);
  auto it = s.choices.find(key);
  if (it == s.choices.end()) {
    Choice choice{ConvMethod::kF32Winograd, {}};
    if (s.algorithm == Algorithm::kAuto) {
      torch::NoGradGuard no_grad;
      const std::vector<ConvMethod> methods{ConvMethod::kF32Direct, ConvMethod::kF32Winograd};
      const LayerCandidates candidates{key,
                                       "train " + key,
                                       methods,
                                       {[&] { direct(x, weight, bias); },
                                        [&] { winograd_pass(x, forward_weights(weight), bias); }}};
      choice.ms = s.timer(candidates);
      choice.method = pick_method(methods, choice.ms);
    }
    it = s.choices.emplace(key, choice).first;
  }
  const ConvMethod method = it->second.method;
  lock.unlock();
  return method == ConvMethod::kF32Winograd ? winograd_conv3x3_train(x, weight, bias)
                                            : direct(x, weight, bias);
}

std::map<std::string, TrainConv3x3::Choice> TrainConv3x3::choices() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->choices;
}

}  // namespace hg::engine
