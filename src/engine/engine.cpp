// Builds and runs the oneDNN plan of a stacked hourglass network.
//
// Batch-norm folding. Inference batch norm is an affine map per channel c:
//   BN(y)_c = gamma_c (y_c - mean_c) / sqrt(var_c + eps) + beta_c = s_c y_c + t_c,
//   s_c = gamma_c / sqrt(var_c + eps),  t_c = beta_c - s_c mean_c.
// A BN after a convolution y = W * x + b folds into it exactly:
//   BN(W * x + b) = (s ⊙ W) * x + (s ⊙ b + t),   s scaling W's output channels,
// which covers pre_bn after pre_conv, fc_bn after fc_conv and, inside each pre-activation
// residual, bn2 after conv1 and bn3 after conv2 (their ReLU becomes the convolution's post-op).
// The residual's bn1 + ReLU act on the trunk, which the identity path needs unnormalised, so it
// stays one pass, relu(s ⊙ x + t), written in the precision of the convolution that reads it (see
// scale_shift_relu). Folding is computed in double and rounded once to float.
//
// The plan. Every activation lives in oneDNN's blocked layout (nChw16c with AVX-512, nChw8c below).
// The trunk (residual inputs and outputs, pooled and upsampled values, heatmaps) is float32; values
// inside a residual or a head use the convolutions' precision. A residual's conv3 accumulates into
// the trunk in place (sum post-op). Where the trunk value is needed afterwards, the residual's
// batch norm pass also copies it, and in the hourglass's upper branch that pass adds the upsampled
// lower branch (so conv3 adds onto upper input + upsampled lower). Each stack's merge (one folded
// convolution, see fold_merge) accumulates into the next stack's input. Buffers are taken from and
// returned to a pool in execution order, so values that are never alive together share memory. A
// 3×3 convolution runs as a oneDNN primitive (direct) or on the engine's Winograd kernel
// (winograd.cpp), whichever Builder::choose picks; that kernel, the batch norm pass, the
// max-pooling and the conversion of the trunk to bf16 (kernels.cpp) are steps the plan runs
// itself. All of them give each thread a band of
// rows, as oneDNN's 1×1 convolutions do, so that a thread mostly reads what it wrote itself.
#include "hg/engine/engine.h"

#include "hg/engine/kernels.h"

#include "hg/model/hourglass.h"
#include "hg/model/large_hourglass.h"
#include "hg/runtime/machine_cache.h"
#include "hg/runtime/runtime.h"

#include <malloc.h>
#include <omp.h>
#include <sys/mman.h>
#include <torch/torch.h>
#include <dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <tuple>
#include <unordered_map>

namespace hg::engine {
namespace {

namespace nn = torch::nn;
using dnnl::memory;
using Dt = memory::data_type;
using Tag = memory::format_tag;

constexpr int64_t kInputBuffer = -1;
constexpr int64_t kScratchpadBuffer = -2;
constexpr size_t kAlignment = 64;
constexpr size_t kHugePage = size_t{2} << 20;
/// Weights are packed into chunks of this size (the last one partly used).
constexpr size_t kWeightChunk = size_t{16} << 20;
/// Attributes of every planned primitive: `ops`, and a scratchpad the plan provides (one buffer
/// shared by all steps, as they run one at a time) instead of one oneDNN allocates per call.
dnnl::primitive_attr attributes(const dnnl::post_ops& ops = {}) {
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

bool isa_at_least(dnnl::cpu_isa isa) {
  const auto effective = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  return (effective & static_cast<unsigned>(isa)) == static_cast<unsigned>(isa);
}

/// The activations' layout: channels in blocks of one vector register, the layout oneDNN's JIT
/// kernels are written for (with another, they fall back to reference code).
Tag blocked_layout() {
  return isa_at_least(dnnl::cpu_isa::avx512_core) ? Tag::nChw16c : Tag::nChw8c;
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// A convolution's float32 weights (O×I×kh×kw) and bias (O) after folding.
struct ConvWeights {
  at::Tensor weight, bias;
  int64_t stride = 1;
};

std::pair<at::Tensor, at::Tensor> bn_scale_shift(const nn::BatchNorm2dImpl& bn) {
  const auto mean = bn.running_mean.to(at::kDouble);
  const auto var = bn.running_var.to(at::kDouble);
  const auto gamma = bn.weight.defined() ? bn.weight.to(at::kDouble) : torch::ones_like(mean);
  const auto beta = bn.bias.defined() ? bn.bias.to(at::kDouble) : torch::zeros_like(mean);
  const auto s = gamma / (var + bn.options.eps()).sqrt();
  return {s, beta - s * mean};
}

ConvWeights fold(const nn::Conv2dImpl& conv, const nn::BatchNorm2dImpl* bn) {
  TORCH_CHECK((*conv.options.stride())[0] == (*conv.options.stride())[1] &&
                  conv.weight.size(2) == conv.weight.size(3),
              "the engine supports square kernels and strides only, got ", conv.weight.sizes());
  auto w = conv.weight.to(at::kDouble);
  auto b = conv.bias.defined() ? conv.bias.to(at::kDouble) : torch::zeros({w.size(0)}, at::kDouble);
  if (bn != nullptr) {
    auto [s, t] = bn_scale_shift(*bn);
    w = w * s.view({-1, 1, 1, 1});
    b = b * s + t;
  }
  return {w.to(at::kFloat).contiguous(), b.to(at::kFloat).contiguous(),
          (*conv.options.stride())[0]};
}

/// A Sequential of a convolution and its batch norm (CenterNet's skips and stack merges).
ConvWeights fold_sequential(const nn::SequentialImpl& seq) {
  const auto* conv = seq.size() == 2 ? seq.ptr(0)->as<nn::Conv2dImpl>() : nullptr;
  const auto* bn = seq.size() == 2 ? seq.ptr(1)->as<nn::BatchNorm2dImpl>() : nullptr;
  TORCH_CHECK(conv && bn, "the engine expects a convolution and its batch norm");
  return fold(*conv, bn);
}

/// The stack merge x + merge_features(z) + merge_preds(score(z)) as one convolution of z: all three
/// are 1×1 and linear, so
///   Wf z + bf + Wp (Ws z + bs) + bp = (Wf + Wp Ws) z + (bf + Wp bs + bp).
/// This drops a pass over the heatmaps and a narrow (J→F) convolution per stack.
ConvWeights fold_merge(const ConvWeights& features, const ConvWeights& preds,
                       const ConvWeights& score) {
  TORCH_CHECK(features.weight.size(2) == 1 && preds.weight.size(2) == 1 &&
                  score.weight.size(2) == 1 && features.stride == 1 && preds.stride == 1 &&
                  score.stride == 1,
              "the engine expects 1×1 stride-1 merge and score convolutions");
  const auto flat = [](const ConvWeights& w) {
    return w.weight.to(at::kDouble).flatten(1);  // out × in
  };
  const auto wp = flat(preds);
  const auto w = flat(features) + wp.mm(flat(score));
  const auto b = features.bias.to(at::kDouble) + wp.mv(score.bias.to(at::kDouble)) +
                 preds.bias.to(at::kDouble);
  return {w.view(features.weight.sizes()).to(at::kFloat).contiguous(),
          b.to(at::kFloat).contiguous(), 1};
}

/// An activation: its layout and the pool buffer holding it (kInputBuffer: the caller's input).
/// Internal values (inside a residual or a head) may be stored in the convolutions' precision;
/// the others, the trunk, are float32.
struct Value {
  memory::desc md;
  int64_t buffer = kInputBuffer;
  bool internal = false;
  int64_t channels() const { return md.dims()[1]; }
  int64_t height() const { return md.dims()[2]; }
  int64_t width() const { return md.dims()[3]; }
};

/// A primitive argument: a pool buffer seen through `md`, or a memory object of its own.
struct ArgRef {
  int arg;
  memory::desc md;
  int64_t buffer;
  memory fixed;
};

/// How one convolution is computed: oneDNN's direct convolution in `type`, or, with
/// convolution_winograd, the engine's own Winograd kernel (float32; oneDNN's Winograd is not used).
struct Choice {
  Dt type = Dt::f32;
  dnnl::algorithm algorithm = dnnl::algorithm::convolution_direct;
};

struct ConvShape {
  int64_t batch, in, out, kernel, stride, height, width;
  /// Whether the source is a value this plan can produce in any precision (not the trunk).
  bool internal;
  auto key() const { return std::tie(batch, in, out, kernel, stride, height, width, internal); }
  bool operator<(const ConvShape& o) const { return key() < o.key(); }
  /// Floating-point operations of one pass (padding "same": output size = input / stride).
  double flops() const {
    return 2.0 * batch * in * out * kernel * kernel * (height / stride) * (width / stride);
  }
};

/// Best-fit pool of activation buffers, used in execution order while the plan is built.
class BufferPool {
 public:
  int64_t acquire(size_t bytes) {
    int64_t best = -1;
    for (size_t i = 0; i < sizes_.size(); ++i) {
      if (!free_[i]) continue;
      // Prefer the smallest buffer that fits, else the largest (grown to fit).
      const bool fits = sizes_[i] >= bytes;
      if (best < 0) {
        best = static_cast<int64_t>(i);
        continue;
      }
      const bool best_fits = sizes_[best] >= bytes;
      if ((fits && (!best_fits || sizes_[i] < sizes_[best])) ||
          (!fits && !best_fits && sizes_[i] > sizes_[best]))
        best = static_cast<int64_t>(i);
    }
    if (best < 0) {
      sizes_.push_back(0);
      free_.push_back(true);
      best = static_cast<int64_t>(sizes_.size()) - 1;
    }
    sizes_[best] = std::max(sizes_[best], bytes);
    free_[best] = false;
    return best;
  }
  /// A buffer of its own, never shared.
  int64_t dedicated(size_t bytes) {
    sizes_.push_back(bytes);
    free_.push_back(false);
    return static_cast<int64_t>(sizes_.size()) - 1;
  }
  void release(int64_t buffer) {
    if (buffer >= 0) free_[buffer] = true;
  }
  /// Byte offsets of every buffer in one arena, and the arena's size.
  std::pair<std::vector<size_t>, size_t> layout() const {
    std::vector<size_t> offsets;
    size_t total = 0;
    for (size_t s : sizes_) {
      offsets.push_back(total);
      total += (s + kAlignment - 1) / kAlignment * kAlignment;
    }
    return {offsets, total};
  }

 private:
  std::vector<size_t> sizes_;
  std::vector<bool> free_;
};

using HugeBuffer = std::unique_ptr<void, decltype(&std::free)>;

/// At least `bytes` of memory, in 2 MiB pages where the system allows them (transparent huge
/// pages on request, as Debian configures them): the convolutions stride through activations
/// and weights, which in 4 KiB pages costs TLB misses (about 2% of an f32 pass, measured here).
HugeBuffer huge_alloc(size_t bytes, const char* what) {
  bytes = (std::max<size_t>(bytes, 1) + kHugePage - 1) / kHugePage * kHugePage;
  HugeBuffer buffer(std::aligned_alloc(kHugePage, bytes), &std::free);
  TORCH_CHECK(buffer, "cannot allocate the engine's ", bytes, "-byte ", what);
  madvise(buffer.get(), bytes, MADV_HUGEPAGE);  // advice only: 4 KiB pages if refused
  return buffer;
}

/// A step the plan runs itself instead of a oneDNN primitive, on the step's bound arguments.
using Kernel = std::function<void(const std::unordered_map<int, memory>&)>;

/// A kernel step's bound argument `arg` as `T*`, or nullptr where the step has none.
template <typename T = float>
T* arg_data(const std::unordered_map<int, memory>& args, int arg) {
  const auto it = args.find(arg);
  return it == args.end() ? nullptr : static_cast<T*>(it->second.get_data_handle());
}

struct PendingStep {
  dnnl::primitive primitive;
  std::vector<ArgRef> args;
  Kernel kernel;
  std::string label;
  double flops = 0;
};

}  // namespace

struct Engine::Plan {
  EngineOptions options;
  EngineSummary summary;
  /// One output of the network: `channels` maps per stack, under `name`.
  struct Output {
    std::string name;
    int64_t channels = 0;
    /// Per stack, the output tensor's stack-th slice (set on every forward).
    std::vector<memory> stacks;
  };
  int64_t stacks = 0;
  std::vector<Output> outputs;
  dnnl::engine cpu{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{cpu};
  struct Step {
    dnnl::primitive primitive;
    std::unordered_map<int, memory> args;
    Kernel kernel;
    std::string label;  ///< what the step computes, for Engine::profile
    double flops = 0;   ///< floating-point operations per pass (convolutions only)
  };
  std::vector<Step> steps;
  HugeBuffer arena{nullptr, &std::free};
  /// The weights and biases, packed one after another (see Builder::import).
  std::vector<HugeBuffer> weight_chunks;
  memory input;
};

namespace {

std::string type_name(Dt type) {
  return type == Dt::bf16 ? "bf16" : "f32";
}

std::string choice_name(const Choice& c) {
  return type_name(c.type) +
         (c.algorithm == dnnl::algorithm::convolution_winograd ? " winograd" : " direct");
}

std::string shape_name(const ConvShape& s) {
  std::ostringstream o;
  o << s.in << "->" << s.out << " " << s.kernel << "x" << s.kernel << "/" << s.stride << " @"
    << s.height << "x" << s.width;
  return o.str();
}

/// "C @HxW" of an activation.
std::string value_name(const Value& v) {
  std::ostringstream o;
  o << v.channels() << " @" << v.height() << "x" << v.width();
  return o.str();
}

class Builder {
 public:
  explicit Builder(Engine::Plan& plan)
      : plan_(plan), options_(plan.options), threads_(plan.options.threads) {}

  Value input(const memory::desc& md) {
    plan_.input = memory(md, plan_.cpu, nullptr);
    return {md, kInputBuffer};
  }

  void release(const Value& v) { pool_.release(v.buffer); }

  /// The convolution `w` on `src`; ReLU if `relu`; accumulates into `*sum_into` (and returns it)
  /// if given, else writes a new value of type `dst_type` (f32 for an f32 convolution),
  /// internal or trunk as `internal` says.
  Value conv(const Value& src, const ConvWeights& w, bool relu, Dt dst_type, bool internal,
             const Value* sum_into = nullptr) {
    const ConvShape shape = conv_shape(src, w);
    const Choice c = choose(shape);
    if (c.algorithm == dnnl::algorithm::convolution_winograd)
      return winograd_conv(src, w, relu, dst_type, internal, sum_into);
    Value in = src;
    if (src.md.data_type() != c.type) in = convert(src, c.type);
    if (c.type == Dt::f32) dst_type = Dt::f32;  // oneDNN's f32 kernels write f32 only
    const int64_t oh = src.height() / w.stride, ow = src.width() / w.stride;
    const memory::desc dst_md =
        sum_into ? sum_into->md : blocked({shape.batch, shape.out, oh, ow}, dst_type);
    dnnl::post_ops ops;
    if (sum_into) ops.append_sum(1.f);
    if (relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    auto pd = conv_pd(shape, c, in.md, dst_md, ops);
    Value dst = sum_into ? *sum_into : allocate(dst_md, internal);
    memory weights = import(w.weight, pd.weights_desc());
    memory bias = import(w.bias, pd.bias_desc());
    std::ostringstream label;
    label << "conv " << shape_name(shape) << " " << choice_name(c) << (sum_into ? " +sum" : "")
          << (relu ? " +relu" : "");
    emit(pd, dnnl::convolution_forward(pd),
         {{DNNL_ARG_SRC, in.md, in.buffer, {}},
          {DNNL_ARG_WEIGHTS, {}, 0, weights},
          {DNNL_ARG_BIAS, {}, 0, bias},
          {DNNL_ARG_DST, dst.md, dst.buffer, {}}},
         label.str(), shape.flops());
    if (in.buffer != src.buffer) release(in);
    ++plan_.summary.convolutions;
    plan_.summary.bf16 += c.type == Dt::bf16;
    describe_layer(shape, c, pd.impl_info_str());
    return dst;
  }

  /// The 3×3 convolution `w` of `src` by the engine's Winograd kernel: float32 arithmetic, the
  /// result written as `dst_type` (bf16 for a bf16 convolution reading it), or added onto the
  /// float32 `*sum_into` (then ReLU) where given.
  Value winograd_conv(const Value& src, const ConvWeights& w, bool relu, Dt dst_type, bool internal,
                      const Value* sum_into = nullptr) {
    const ConvShape shape = conv_shape(src, w);
    const WinogradShape ws = winograd_shape(shape);
    const Value in = src.md.data_type() == Dt::f32 ? src : convert(src, Dt::f32);
    if (sum_into) dst_type = Dt::f32;
    const bool bf16 = dst_type == Dt::bf16;
    const memory::desc dst_md =
        blocked({shape.batch, shape.out, shape.height, shape.width}, dst_type);
    const Value dst = sum_into ? *sum_into : allocate(dst_md, internal);
    const ConvEpilogue epilogue{sum_into != nullptr, relu};
    // The kernel's weight layout: [in][3][3][out].
    const at::Tensor weights = w.weight.permute({1, 2, 3, 0}).contiguous();
    const memory wm = import(weights, memory::desc({weights.numel()}, Dt::f32, Tag::a));
    const memory bm = import(w.bias, memory::desc({w.bias.numel()}, Dt::f32, Tag::a));
    scratchpad_bytes_ =
        std::max(scratchpad_bytes_, winograd_scratch_floats(ws, threads_) * sizeof(float));
    std::ostringstream label;
    label << "conv " << shape_name(shape) << " f32 winograd" << (sum_into ? " +sum" : "")
          << (relu ? " +relu" : "") << (bf16 ? " -> bf16" : "");
    pending_.push_back(
        {{},
         {{DNNL_ARG_SRC, in.md, in.buffer, {}},
          {DNNL_ARG_WEIGHTS, {}, 0, wm},
          {DNNL_ARG_BIAS, {}, 0, bm},
          {DNNL_ARG_DST, dst.md, dst.buffer, {}},
          {DNNL_ARG_SCRATCHPAD, {}, kScratchpadBuffer, {}}},
         [ws, epilogue, bf16, threads = threads_](const std::unordered_map<int, memory>& a) {
           const auto data = [&](int arg) { return arg_data(a, arg); };
           winograd_conv3x3(ws, data(DNNL_ARG_SRC), data(DNNL_ARG_WEIGHTS), data(DNNL_ARG_BIAS),
                            data(DNNL_ARG_DST), bf16, data(DNNL_ARG_SCRATCHPAD),
                            a.at(DNNL_ARG_SCRATCHPAD).get_desc().get_size() / sizeof(float),
                            epilogue, threads);
         },
         label.str(),
         shape.flops()});
    if (in.buffer != src.buffer) release(in);
    ++plan_.summary.convolutions;
    ++plan_.summary.winograd;
    describe_layer(shape, {Dt::f32, dnnl::algorithm::convolution_winograd},
                   "the engine's F(4x4,3x3) kernel");
    return dst;
  }

  /// relu(s ⊙ x + t) for the batch norm `bn` of the float32 trunk value `x`, as a new internal
  /// value of type `type` (the type of the convolution that reads it). With `acc`, the same pass
  /// also writes *acc = x, plus the nearest 2× upsampling of `low` if given; *acc may be x.
  Value bn_relu(const Value& x, const nn::BatchNorm2dImpl& bn, Dt type, const Value* acc = nullptr,
                const Value* low = nullptr) {
    TORCH_CHECK(x.md.data_type() == Dt::f32, "the engine's trunk values are float32");
    const BlockedShape shape = blocked_shape(x);
    const int64_t block = shape.block, channel_blocks = shape.channel_blocks;
    auto [s, t] = bn_scale_shift(bn);
    const auto padded = [&](const at::Tensor& v) {
      return at::constant_pad_nd(v.to(at::kFloat), {0, channel_blocks * block - x.channels()});
    };
    const memory::desc channel_md({channel_blocks * block}, Dt::f32, Tag::a);
    const memory scale = import(padded(s), channel_md);
    const memory shift = import(padded(t), channel_md);
    const Value dst = allocate(blocked(x.md.dims(), type), true);
    const bool bf16 = type == Dt::bf16;
    std::vector<ArgRef> args{{DNNL_ARG_SRC, x.md, x.buffer, {}},
                             {DNNL_ARG_SCALE, {}, 0, scale},
                             {DNNL_ARG_SHIFT, {}, 0, shift},
                             {DNNL_ARG_DST, dst.md, dst.buffer, {}}};
    std::string label = "bn+relu " + value_name(x) + " -> " + type_name(type);
    if (acc) {
      args.push_back({DNNL_ARG_DST_1, acc->md, acc->buffer, {}});
      label += low ? " +upsample-add" : " +copy";
    }
    if (low) args.push_back({DNNL_ARG_SRC_1, low->md, low->buffer, {}});
    const int64_t width = x.width();
    pending_.push_back({{},
                        std::move(args),
                        [shape, bf16, width](const std::unordered_map<int, memory>& a) {
                          const auto data = [&](int arg) { return arg_data(a, arg); };
                          const SkipOutput skip{data(DNNL_ARG_DST_1), data(DNNL_ARG_SRC_1), width};
                          scale_shift_relu(shape, data(DNNL_ARG_SRC), data(DNNL_ARG_SCALE),
                                           data(DNNL_ARG_SHIFT), data(DNNL_ARG_DST), bf16,
                                           skip.acc ? &skip : nullptr);
                        },
                        label});
    return dst;
  }

  /// A new float32 value shaped as trunk value `x` (its contents written by a later step).
  Value allocate_like(const Value& x) { return allocate(x.md, x.internal); }

  /// 2×2 max-pooling with stride 2 of the float32 trunk value `x`, as a new value (by the
  /// engine's kernel, whose threads split the rows as the convolutions around it do).
  Value max_pool(const Value& x) {
    TORCH_CHECK(x.md.data_type() == Dt::f32, "the engine's trunk values are float32");
    const auto d = x.md.dims();
    const Value dst = allocate(blocked({d[0], d[1], d[2] / 2, d[3] / 2}, Dt::f32), x.internal);
    const BlockedShape shape = blocked_shape(x);
    const int64_t width = x.width();
    pending_.push_back(
        {{},
         {{DNNL_ARG_SRC, x.md, x.buffer, {}}, {DNNL_ARG_DST, dst.md, dst.buffer, {}}},
         [shape, width](const std::unordered_map<int, memory>& a) {
           max_pool_2x2(shape, width, arg_data(a, DNNL_ARG_SRC), arg_data(a, DNNL_ARG_DST));
         },
         "max-pool " + value_name(x)});
    return dst;
  }

  /// A copy of `x` (converted to `type`) in a new buffer: by the engine's kernel from float32 to
  /// bfloat16 (the trunk read by a bf16 convolution), by a oneDNN reorder otherwise.
  Value convert(const Value& x, Dt type) {
    const memory::desc dst_md = blocked(x.md.dims(), type);
    const Value dst = allocate(dst_md, x.internal);
    const std::string label = "convert " + value_name(x) + " -> " + type_name(type);
    if (x.md.data_type() == Dt::f32 && type == Dt::bf16) {
      const BlockedShape shape = blocked_shape(x);
      pending_.push_back(
          {{},
           {{DNNL_ARG_SRC, x.md, x.buffer, {}}, {DNNL_ARG_DST, dst.md, dst.buffer, {}}},
           [shape](const std::unordered_map<int, memory>& a) {
             to_bf16(shape, arg_data(a, DNNL_ARG_SRC), arg_data<uint16_t>(a, DNNL_ARG_DST));
           },
           label});
      return dst;
    }
    const dnnl::reorder::primitive_desc pd(plan_.cpu, x.md, plan_.cpu, dst_md, attributes());
    emit(pd, dnnl::reorder(pd),
         {{DNNL_ARG_FROM, x.md, x.buffer, {}}, {DNNL_ARG_TO, dst.md, dst.buffer, {}}}, label);
    return dst;
  }

  /// Copies `h` (N×C×h×w) into the slice of stack `stack` of the output tensor `index`.
  void output(const Value& h, size_t index, int64_t stack) {
    auto& out = plan_.outputs.at(index);
    TORCH_CHECK(h.channels() == out.channels, "the engine's output ", out.name, " has ",
                out.channels, " channels, got ", h.channels());
    const auto d = h.md.dims();
    const int64_t plane = d[2] * d[3];
    // With one image the batch stride is never used: a dense one lets oneDNN take its JIT
    // reorder instead of its generic one (~10× slower on these strides).
    const int64_t batch_stride = d[0] == 1 ? d[1] * plane : plan_.stacks * d[1] * plane;
    const memory::desc out_md(d, Dt::f32, {batch_stride, plane, d[3], 1});
    out.stacks.emplace_back(out_md, plan_.cpu, nullptr);
    const dnnl::reorder::primitive_desc pd(plan_.cpu, h.md, plan_.cpu, out_md, attributes());
    emit(pd, dnnl::reorder(pd),
         {{DNNL_ARG_FROM, h.md, h.buffer, {}}, {DNNL_ARG_TO, {}, 0, out.stacks.back()}},
         "output " + value_name(h));
  }

  /// *acc += the nearest-neighbour 2× upsampling of `low` (both float32 trunk values, `low` at
  /// half acc's height and width): oneDNN's resampling with a sum post-op, one pass.
  void upsample_add(const Value& low, const Value& acc) {
    TORCH_CHECK(low.md.data_type() == Dt::f32 && acc.md.data_type() == Dt::f32 &&
                    low.channels() == acc.channels() && 2 * low.height() == acc.height() &&
                    2 * low.width() == acc.width(),
                "the engine upsamples a float32 value 2× onto one of its width, got ",
                value_name(low), " onto ", value_name(acc));
    dnnl::post_ops ops;
    ops.append_sum(1.f);
    const dnnl::resampling_forward::primitive_desc pd(
        dnnl::resampling_forward::desc(dnnl::prop_kind::forward_inference,
                                       dnnl::algorithm::resampling_nearest, low.md, acc.md),
        attributes(ops), plan_.cpu);
    emit(pd, dnnl::resampling_forward(pd),
         {{DNNL_ARG_SRC, low.md, low.buffer, {}}, {DNNL_ARG_DST, acc.md, acc.buffer, {}}},
         "upsample-add " + value_name(low));
  }

  /// The value a convolution `w` of `src` would write (its shape only, in no buffer): for asking
  /// internal_choice about the convolution that will read it.
  static Value output_shape(const Value& src, const ConvWeights& w) {
    return {blocked({src.md.dims()[0], w.weight.size(0), src.height() / w.stride,
                     src.width() / w.stride},
                    Dt::f32),
            kInputBuffer, true};
  }

  /// How `w` will be computed on an internal value of `at`'s batch and size (before that value
  /// exists, so that its producer can write it in the type the convolution reads).
  Choice internal_choice(const Value& at, const ConvWeights& w) {
    ConvShape s = conv_shape(at, w);
    s.internal = true;
    return choose(s);
  }

  /// Allocates the arena and binds every step's arguments to it.
  void finish() {
    const int64_t scratchpad = pool_.dedicated(scratchpad_bytes_);
    const auto [offsets, total] = pool_.layout();
    plan_.arena = huge_alloc(total, "activation arena");
    auto* base = static_cast<char*>(plan_.arena.get());
    for (auto& pending : pending_) {
      Engine::Plan::Step step{pending.primitive, {}, pending.kernel, pending.label, pending.flops};
      for (auto& a : pending.args) {
        if (a.fixed)
          step.args.emplace(a.arg, a.fixed);
        else if (a.buffer == kInputBuffer)
          step.args.emplace(a.arg, plan_.input);
        else if (a.buffer == kScratchpadBuffer)
          step.args.emplace(
              a.arg, memory({{static_cast<int64_t>(scratchpad_bytes_)}, Dt::u8, Tag::x}, plan_.cpu,
                            base + offsets[scratchpad]));
        else
          step.args.emplace(a.arg, memory(a.md, plan_.cpu, base + offsets[a.buffer]));
      }
      plan_.steps.push_back(std::move(step));
    }
    plan_.summary.steps = static_cast<int64_t>(plan_.steps.size());
    plan_.summary.activation_bytes = static_cast<int64_t>(total);
    for (const auto& [_, line] : layers_) plan_.summary.layers += line + "\n";
  }

 private:
  /// A value of layout `md` in a buffer from the pool.
  Value allocate(const memory::desc& md, bool internal) {
    return {md, pool_.acquire(md.get_size()), internal};
  }

  /// `x` as the engine's kernels see it.
  static BlockedShape blocked_shape(const Value& x) {
    const int64_t block = blocked_layout() == Tag::nChw16c ? 16 : 8;
    const int64_t channel_blocks = (x.channels() + block - 1) / block;
    return {x.md.dims()[0] * channel_blocks, channel_blocks, x.height() * x.width(), block};
  }

  static memory::desc blocked(const memory::dims& dims, Dt type) {
    return memory::desc(dims, type, blocked_layout());
  }

  static ConvShape conv_shape(const Value& src, const ConvWeights& w) {
    return {src.md.dims()[0], w.weight.size(1), w.weight.size(0), w.weight.size(2),
            w.stride,         src.height(),     src.width(),      src.internal};
  }

  dnnl::convolution_forward::primitive_desc conv_pd(const ConvShape& s, const Choice& c,
                                                    const memory::desc& src_md,
                                                    const memory::desc& dst_md,
                                                    const dnnl::post_ops& ops) const {
    const memory::desc weights_md({s.out, s.in, s.kernel, s.kernel}, c.type, Tag::any);
    const memory::desc bias_md({s.out}, Dt::f32, Tag::x);
    const int64_t pad = s.kernel / 2;
    try {
      return dnnl::convolution_forward::primitive_desc(
          dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, c.algorithm, src_md,
                                          weights_md, bias_md, dst_md, {s.stride, s.stride},
                                          {pad, pad}, {pad, pad}),
          attributes(ops), plan_.cpu);
    } catch (const dnnl::error& e) {
      TORCH_CHECK(false, "oneDNN has no ", type_name(c.type), " direct convolution ", s.in, "->",
                  s.out, " ", s.kernel, "x", s.kernel, "/", s.stride, " on ", s.batch, "x",
                  s.height, "x", s.width, " (", e.what(), "); try another precision or algorithm");
    }
  }

  /// Fastest of the allowed choices for `s`, timed once per distinct shape.
  Choice choose(const ConvShape& s) {
    if (auto it = choices_.find(s); it != choices_.end()) return it->second;
    // A layer reading the f32 trunk computes in bf16 on a converted copy, except for narrow
    // inputs (the stem's RGB): too little work to repay it.
    const bool bf16_fits = s.internal || s.in >= 64;
    const bool winograd = options_.algorithm != Algorithm::kDirect && s.kernel == 3 &&
                          s.stride == 1 && winograd_supported() &&
                          winograd_applicable(winograd_shape(s));
    std::vector<ConvMethod> methods{options_.precision == Precision::kBf16 && bf16_fits
                                        ? ConvMethod::kBf16Direct
                                        : ConvMethod::kF32Direct};
    if (winograd) methods.push_back(ConvMethod::kF32Winograd);
    if (options_.precision == Precision::kAuto && bf16_fits && bf16_supported())
      methods.push_back(ConvMethod::kBf16Direct);
    ConvMethod best = methods.front();
    if (winograd && options_.algorithm == Algorithm::kWinograd) {
      best = ConvMethod::kF32Winograd;
    } else if (methods.size() > 1) {
      const LayerCandidates candidates = candidate_runs(s, methods);
      best = pick_method(methods,
                         (options_.timer ? options_.timer
                                         : process_layer_timer(options_.choice_cache))(candidates));
    }
    const Choice c = best == ConvMethod::kF32Winograd
                         ? Choice{Dt::f32, dnnl::algorithm::convolution_winograd}
                         : Choice{best == ConvMethod::kBf16Direct ? Dt::bf16 : Dt::f32,
                                  dnnl::algorithm::convolution_direct};
    choices_.emplace(s, c);
    return c;
  }

  static WinogradShape winograd_shape(const ConvShape& s) {
    return {s.batch, s.in, s.out, s.height, s.width};
  }

  /// A pass of each of `methods` for `s` on zeroed data (no NaNs or denormals), with a ReLU as
  /// most layers have; each pass owns its primitive and buffers.
  LayerCandidates candidate_runs(const ConvShape& s, const std::vector<ConvMethod>& methods) const {
    LayerCandidates c{
        shape_name(s), shape_name(s) + (s.internal ? " internal" : " trunk"), methods, {}};
    for (const ConvMethod m : methods) {
      if (m == ConvMethod::kF32Winograd) {
        c.runs.push_back(winograd_run(s));
        continue;
      }
      const Choice direct{m == ConvMethod::kBf16Direct ? Dt::bf16 : Dt::f32,
                          dnnl::algorithm::convolution_direct};
      dnnl::post_ops ops;
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      const auto pd = conv_pd(
          s, direct, blocked({s.batch, s.in, s.height, s.width}, direct.type),
          blocked({s.batch, s.out, s.height / s.stride, s.width / s.stride}, direct.type), ops);
      std::unordered_map<int, memory> args;
      for (auto [arg, md] : {std::pair{DNNL_ARG_SRC, pd.src_desc()},
                             {DNNL_ARG_WEIGHTS, pd.weights_desc()},
                             {DNNL_ARG_BIAS, pd.bias_desc()},
                             {DNNL_ARG_DST, pd.dst_desc()},
                             {DNNL_ARG_SCRATCHPAD, pd.scratchpad_desc()}}) {
        memory mem(md, plan_.cpu);
        std::memset(mem.get_data_handle(), 0, md.get_size());
        args.emplace(arg, mem);
      }
      c.runs.push_back([primitive = dnnl::convolution_forward(pd), args, stream = plan_.stream] {
        auto st = stream;
        primitive.execute(st, args);
        st.wait();
      });
    }
    return c;
  }

  /// A pass of the engine's Winograd kernel for `s`, writing bf16 in bf16 mode (where a bf16
  /// convolution reads its output).
  std::function<void()> winograd_run(const ConvShape& s) const {
    struct Buffers {
      std::vector<float> src, weights, bias, dst, scratch;
    };
    const WinogradShape ws = winograd_shape(s);
    auto b = std::make_shared<Buffers>(
        Buffers{std::vector<float>(s.batch * s.in * s.height * s.width),
                std::vector<float>(s.in * 9 * s.out), std::vector<float>(s.out),
                std::vector<float>(s.batch * s.out * s.height * s.width),
                std::vector<float>(winograd_scratch_floats(ws, threads_))});
    const bool bf16_out = options_.precision == Precision::kBf16;
    return [b, ws, bf16_out, threads = threads_] {
      winograd_conv3x3(ws, b->src.data(), b->weights.data(), b->bias.data(), b->dst.data(),
                       bf16_out, b->scratch.data(), b->scratch.size(), {false, true}, threads);
    };
  }

  /// A memory in layout `md` holding the contiguous float32 tensor `t`, of md's element count.
  memory import(const at::Tensor& t, const memory::desc& md) {
    const memory::dims dims = md.dims();
    const Tag plain = dims.size() == 1 ? Tag::a : Tag::abcd;
    memory src({dims, Dt::f32, plain}, plan_.cpu, t.data_ptr());
    memory dst(md, plan_.cpu, weight_space(md.get_size()));
    dnnl::reorder(src, dst).execute(plan_.stream, src, dst);
    plan_.stream.wait();
    plan_.summary.weight_bytes += static_cast<int64_t>(md.get_size());
    return dst;
  }

  /// `bytes` of weight memory owned by the plan, packed into large chunks.
  void* weight_space(size_t bytes) {
    bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    if (plan_.weight_chunks.empty() || chunk_used_ + bytes > chunk_size_) {
      chunk_size_ = std::max(kWeightChunk, bytes);
      plan_.weight_chunks.push_back(huge_alloc(chunk_size_, "weights"));
      chunk_used_ = 0;
    }
    void* p = static_cast<char*>(plan_.weight_chunks.back().get()) + chunk_used_;
    chunk_used_ += bytes;
    return p;
  }

  template <typename PrimitiveDesc>
  void emit(const PrimitiveDesc& pd, const dnnl::primitive& p, std::vector<ArgRef> args,
            std::string label, double flops = 0) {
    const size_t scratchpad = pd.scratchpad_desc().get_size();
    if (scratchpad > 0) {
      scratchpad_bytes_ = std::max(scratchpad_bytes_, scratchpad);
      args.push_back({DNNL_ARG_SCRATCHPAD, {}, kScratchpadBuffer, {}});
    }
    pending_.push_back({p, std::move(args), {}, std::move(label), flops});
  }

  void describe_layer(const ConvShape& s, const Choice& c, const std::string& impl) {
    auto& line = layers_[shape_name(s)];
    if (line.empty()) line = shape_name(s) + ": " + choice_name(c) + " (" + impl + ")";
  }

  Engine::Plan& plan_;
  const EngineOptions& options_;
  const int threads_;  ///< resolved: at least 1
  BufferPool pool_;
  std::vector<PendingStep> pending_;
  size_t scratchpad_bytes_ = 0;
  size_t chunk_size_ = 0, chunk_used_ = 0;
  std::map<ConvShape, Choice> choices_;
  std::map<std::string, std::string> layers_;
};

/// What lowers a network into the Builder's steps, in execution order. With `consume`, each
/// module's tensors are freed as soon as the plan has its own copy of them.
class Emitter {
 public:
  Emitter(Builder& b, bool consume) : b_(b), consume_(consume) {}

 protected:
  /// Frees the storage of `m`'s parameters and buffers (in place, so that every handle on them
  /// lets go) when consuming the model.
  void done(const nn::Module& m) const {
    if (!consume_) return;
    for (auto t : m.parameters()) t.set_();
    for (auto t : m.buffers()) t.set_();
  }

  /// After a stack: freed tensors stay in the heap's free lists, scattered between newer blocks;
  /// hand the whole free pages back to the system, or the resident memory would not go down.
  void trim() const {
    if (consume_) malloc_trim(0);
  }

  Builder& b_;
  const bool consume_;
};

/// Newell's network. `keep` says whether a value passed in is still needed afterwards (then it
/// is not overwritten in place).
class NetworkEmitter : public Emitter {
 public:
  using Emitter::Emitter;

  /// A pre-activation residual of trunk value `x`; with `low`, its output also gets the nearest
  /// 2× upsampling of `low` added (an hourglass's upper branch plus its lower one).
  Value residual(const model::ResidualImpl& r, const Value& x, bool keep,
                 const Value* low = nullptr) {
    const ConvWeights w1 = fold(*r.conv1, r.bn2.get()), w2 = fold(*r.conv2, r.bn3.get()),
                      w3 = fold(*r.conv3, nullptr);
    const Choice c1 = b_.internal_choice(x, w1), c2 = b_.internal_choice(x, w2),
                 c3 = b_.internal_choice(x, w3);
    Value a, acc;
    if (r.has_skip()) {
      TORCH_CHECK(!low, "the engine expects an hourglass's upper branch to keep its width");
      a = b_.bn_relu(x, *r.bn1, c1.type);
      acc = b_.conv(x, fold(*r.skip, nullptr), false, Dt::f32, false);
      if (!keep) b_.release(x);
    } else {
      // conv3 accumulates into x itself unless x is kept; the pass writes acc where it is not x
      // or gets the upsampled lower branch.
      acc = keep ? b_.allocate_like(x) : x;
      a = b_.bn_relu(x, *r.bn1, c1.type, keep || low ? &acc : nullptr, low);
    }
    const Value t1 = b_.conv(a, w1, true, c2.type, true);
    b_.release(a);
    const Value t2 = b_.conv(t1, w2, true, c3.type, true);
    b_.release(t1);
    b_.conv(t2, w3, false, Dt::f32, false, &acc);
    b_.release(t2);
    done(r);
    return acc;
  }

  /// The residuals of `seq` in turn; `low` (see residual) goes to the last.
  Value residuals(const nn::SequentialImpl& seq, Value x, bool keep, const Value* low = nullptr) {
    const auto children = seq.children();
    for (size_t i = 0; i < children.size(); ++i) {
      x = residual(*children[i]->as<model::ResidualImpl>(), x, keep,
                   i + 1 == children.size() ? low : nullptr);
      keep = false;
    }
    return x;
  }

  Value hourglass(const model::HourglassImpl& h, const Value& x, bool keep) {
    Value low = b_.max_pool(x);
    low = residuals(*h.low1, low, false);
    low = h.low2 ? hourglass(*h.low2, low, false) : residuals(*h.low2_res, low, false);
    low = residuals(*h.low3, low, false);
    const Value up = residuals(*h.up1, x, keep, &low);
    b_.release(low);
    return up;
  }

  void network(const model::StackedHourglassImpl& net, const Value& input) {
    Value x = b_.conv(input, fold(*net.pre_conv, net.pre_bn.get()), true, Dt::f32, false);
    done(*net.pre_conv);
    done(*net.pre_bn);
    x = residual(*net.pre_res1, x, false);
    const Value pooled = b_.max_pool(x);
    b_.release(x);
    x = residual(*net.pre_res3, residual(*net.pre_res2, pooled, false), false);
    const int64_t stacks = net.options.stacks();
    for (int64_t s = 0; s < stacks; ++s) {
      const bool last = s + 1 == stacks;
      Value y = hourglass(net.hourglasses->at<model::HourglassImpl>(s), x, !last);
      y = residuals(net.res->at<nn::SequentialImpl>(s), y, false);
      const ConvWeights fc =
          fold(net.fc_conv->at<nn::Conv2dImpl>(s), &net.fc_bn->at<nn::BatchNorm2dImpl>(s));
      const ConvWeights score = fold(net.score->at<nn::Conv2dImpl>(s), nullptr);
      const Value z = b_.conv(y, fc, true, b_.internal_choice(y, score).type, true);
      b_.release(y);
      const Value h = b_.conv(z, score, false, Dt::f32, false);
      b_.output(h, 0, s);
      if (!last)
        b_.conv(z,
                fold_merge(fold(net.merge_features->at<nn::Conv2dImpl>(s), nullptr),
                           fold(net.merge_preds->at<nn::Conv2dImpl>(s), nullptr), score),
                false, Dt::f32, false, &x);
      b_.release(z);
      b_.release(h);
      for (const auto* list :
           {&net.fc_conv, &net.fc_bn, &net.score, &net.merge_features, &net.merge_preds})
        if (s < static_cast<int64_t>((*list)->size())) done(*(*list)->ptr(s));
      trim();
    }
  }
};

/// The CornerNet/CenterNet hourglass (model::LargeHourglassImpl). Its residuals are
/// post-activation: relu(BN(conv2(relu(BN(conv1(x))))) + skip(x)) is conv1 with its ReLU, then
/// conv2 accumulating onto the skip (x itself, or a folded 1×1 convolution of it) with the ReLU
/// after the sum, so every batch norm folds into a convolution and no separate pass is left. A
/// value passed in with `keep` is still needed afterwards: it is not accumulated into in place.
class LargeEmitter : public Emitter {
 public:
  using Emitter::Emitter;

  Value residual(const model::BasicResidualImpl& r, const Value& x, bool keep) {
    const ConvWeights w1 = fold(*r.conv1, r.bn1.get()), w2 = fold(*r.conv2, r.bn2.get());
    const Dt mid = b_.internal_choice(Builder::output_shape(x, w1), w2).type;
    const Value t = b_.conv(x, w1, true, mid, true);
    Value acc;
    if (r.has_skip()) {
      acc = b_.conv(x, fold_sequential(*r.skip), false, Dt::f32, false);
      if (!keep) b_.release(x);
    } else {
      acc = keep ? b_.convert(x, Dt::f32) : x;
    }
    b_.conv(t, w2, true, Dt::f32, false, &acc);
    b_.release(t);
    done(r);
    return acc;
  }

  Value residuals(const nn::SequentialImpl& seq, Value x, bool keep) {
    for (const auto& child : seq.children()) {
      x = residual(*child->as<model::BasicResidualImpl>(), x, keep);
      keep = false;
    }
    return x;
  }

  /// up1(x) + upsample(low3(low2(low1(x)))). The lower branch runs first (its strided first
  /// residual only reads x), then up1 accumulates into x unless x is kept.
  Value level(const model::HourglassLevelImpl& h, const Value& x, bool keep) {
    Value low = residuals(*h.low1, x, true);
    low = h.low2 ? level(*h.low2, low, false) : residuals(*h.low2_res, low, false);
    low = residuals(*h.low3, low, false);
    const Value up = residuals(*h.up1, x, keep);
    b_.upsample_add(low, up);
    b_.release(low);
    return up;
  }

  /// The convolution of a conv-BN-ReLU (or conv-bias-ReLU) with its batch norm folded in.
  static ConvWeights fold_conv_bn_relu(const model::ConvBnReluImpl& c) {
    return fold(*c.conv, c.bn ? c.bn.get() : nullptr);
  }

  /// A conv-BN-ReLU (or conv-bias-ReLU) of `x`, written as `type` for the convolution reading it.
  Value conv_bn_relu(const model::ConvBnReluImpl& c, const Value& x, Dt type, bool internal) {
    const Value y = b_.conv(x, fold_conv_bn_relu(c), true, type, internal);
    done(c);
    return y;
  }

  /// Every head of stack `s` on the stack's features `cnv`, each copied to its output; for
  /// CornerNet, whose heads are not run, the features themselves.
  void heads(const model::LargeHourglassImpl& net, const Value& cnv, int64_t s) {
    if (net.options.head_style() == model::HeadStyle::kCornerNet) {
      b_.output(cnv, 0, s);
      done(*net.tl_cnvs->ptr(s));
      done(*net.br_cnvs->ptr(s));
      for (const auto& head : net.heads) done(*head->ptr(s));
      return;
    }
    for (size_t k = 0; k < net.heads.size(); ++k) {
      const auto& module = net.heads[k]->ptr(s);
      Value out;
      if (const auto* seq = module->as<nn::SequentialImpl>()) {
        const ConvWeights last = fold(seq->at<nn::Conv2dImpl>(1), nullptr);
        const auto& first = seq->at<model::ConvBnReluImpl>(0);
        const ConvWeights w = fold_conv_bn_relu(first);
        const Value mid = b_.conv(
            cnv, w, true, b_.internal_choice(Builder::output_shape(cnv, w), last).type, true);
        done(first);
        out = b_.conv(mid, last, false, Dt::f32, false);
        b_.release(mid);
      } else {
        out = b_.conv(cnv, fold(*module->as<nn::Conv2dImpl>(), nullptr), false, Dt::f32, false);
      }
      b_.output(out, k, s);
      b_.release(out);
      done(*module);
    }
  }

  void network(const model::LargeHourglassImpl& net, const Value& input) {
    const auto& stem = net.pre->at<model::ConvBnReluImpl>(0);
    Value inter = residual(net.pre->at<model::BasicResidualImpl>(1),
                           conv_bn_relu(stem, input, Dt::f32, false), false);
    const int64_t stacks = net.options.stacks();
    for (int64_t s = 0; s < stacks; ++s) {
      const bool last = s + 1 == stacks;
      // The merge's first term, before the hourglass overwrites inter: relu(BN(1×1(inter)) +
      // BN(1×1(cnv))) is a convolution of inter, then one of cnv accumulating onto it.
      Value merge;
      if (!last) {
        const auto& seq = net.inters_->at<nn::SequentialImpl>(s);
        merge = b_.conv(inter, fold_sequential(seq), false, Dt::f32, false);
        done(seq);
      }
      const Value kp = level(net.kps->at<model::HourglassLevelImpl>(s), inter, false);
      const auto& cnv_module = net.cnvs->at<model::ConvBnReluImpl>(s);
      const Value cnv = conv_bn_relu(cnv_module, kp, Dt::f32, false);
      done(net.kps->at<model::HourglassLevelImpl>(s));
      b_.release(kp);
      heads(net, cnv, s);
      if (!last) {
        const auto& seq = net.cnvs_->at<nn::SequentialImpl>(s);
        b_.conv(cnv, fold_sequential(seq), true, Dt::f32, false, &merge);
        done(seq);
        inter = residual(net.inters->at<model::BasicResidualImpl>(s), merge, false);
      }
      b_.release(cnv);
      trim();
    }
  }
};

}  // namespace

std::string method_name(ConvMethod m) {
  return m == ConvMethod::kF32Winograd  ? "f32 winograd"
         : m == ConvMethod::kBf16Direct ? "bf16 direct"
                                        : "f32 direct";
}

std::vector<double> time_layer_candidates(const LayerCandidates& candidates) {
  const size_t n = candidates.runs.size();
  std::vector<double> best(n, 1e30);
  // Each round starts one candidate later: a pass runs slower after one that filled the caches
  // with its own buffers (an f32 pass before the Winograd kernel's: up to 1.5× measured), so no
  // candidate may always follow the same one.
  for (size_t round = 0; round < 6; ++round) {
    for (size_t i = 0; i < n; ++i) {
      const size_t k = (round + i) % n;
      const double start = now_ms();
      candidates.runs[k]();
      if (round > 0) best[k] = std::min(best[k], now_ms() - start);  // round 0 warms up
    }
  }
  return best;
}

LayerTimer remembering(LayerTimer timer, const std::string& cache) {
  struct Memory {
    std::mutex mutex;
    std::map<std::string, std::vector<double>> answers;
    std::optional<nlohmann::json> file;  // the cache file's entries, read at the first question
  };
  const std::string machine =
      runtime::cpu_identity() + " | oneDNN " + std::to_string(dnnl_version()->major) + "." +
      std::to_string(dnnl_version()->minor) + "." + std::to_string(dnnl_version()->patch);
  return [timer = std::move(timer), cache, machine,
          memory = std::make_shared<Memory>()](const LayerCandidates& c) {
    std::string key =
        machine + " | " + std::to_string(omp_get_max_threads()) + " threads | " + c.key + " |";
    for (const ConvMethod m : c.methods) key += " " + method_name(m);
    // Held while timing: two threads building at once then time in turn, not against each other.
    const std::lock_guard<std::mutex> lock(memory->mutex);
    if (auto it = memory->answers.find(key); it != memory->answers.end()) return it->second;
    if (!memory->file) memory->file = runtime::cached_entries(cache);
    std::vector<double> ms;
    if (memory->file->contains(key)) {
      try {
        ms = memory->file->at(key).get<std::vector<double>>();
      } catch (const nlohmann::json::exception&) {
        ms.clear();  // an entry of another version: time again and replace it
      }
    }
    if (ms.size() != c.methods.size()) {
      ms = timer(c);
      runtime::store_entry(cache, key, ms, "engine choice",
                           "the engine times its layers again in the next process");
    }
    memory->answers.emplace(key, ms);
    return ms;
  };
}

const LayerTimer& process_layer_timer(const std::string& cache) {
  static std::mutex mutex;
  static std::map<std::string, LayerTimer> timers;
  const std::lock_guard<std::mutex> lock(mutex);
  auto it = timers.find(cache);
  if (it == timers.end())
    it = timers.emplace(cache, remembering(time_layer_candidates, cache)).first;
  return it->second;
}

std::string default_choice_cache() {
  return runtime::default_cache_file("engine.json");
}

ConvMethod pick_method(const std::vector<ConvMethod>& methods, const std::vector<double>& ms,
                       double gain) {
  TORCH_CHECK(!methods.empty() && ms.size() == methods.size(), "pick_method: ", ms.size(),
              " times for ", methods.size(), " methods");
  size_t best = 0;
  for (size_t k = 1; k < methods.size(); ++k)
    if (ms[k] * gain <= ms[0] && ms[k] < ms[best]) best = k;
  return methods[best];
}

bool bf16_supported() {
  return isa_at_least(dnnl::cpu_isa::avx512_core_bf16);
}

bool winograd_supported() {
  // The kernel reads and writes nChw16c, the layout the engine takes with avx512_core.
  return isa_at_least(dnnl::cpu_isa::avx512_core);
}

Engine::Engine(std::unique_ptr<Plan> plan) : plan_(std::move(plan)) {}
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;
Engine::~Engine() = default;

namespace {

/// Checks what every plan needs of `options` and builds one: `emit` lowers the network, from
/// the input value, into steps that write `outputs` (each with every one of `stacks` stacks).
std::unique_ptr<Engine::Plan> make_plan(const EngineOptions& options, int64_t stacks,
                                        std::vector<Engine::Plan::Output> outputs,
                                        const std::function<void(Builder&, const Value&)>& emit) {
  const double start = now_ms();
  TORCH_CHECK(options.batch >= 1, "engine batch must be at least 1, got ", options.batch);
  TORCH_CHECK(options.threads >= 0, "engine threads must be >= 0 (0 = all cores), got ",
              options.threads);
  TORCH_CHECK(options.precision != Precision::kBf16 || bf16_supported(),
              "bf16 precision needs a CPU with AVX512-BF16 (avx512_core_bf16), which this one "
              "lacks (or ONEDNN_MAX_CPU_ISA forbids); use precision f32");
  auto plan = std::make_unique<Engine::Plan>();
  plan->options = options;
  plan->options.threads = runtime::resolve_threads(options.threads);
  plan->stacks = stacks;
  plan->outputs = std::move(outputs);
  omp_set_num_threads(plan->options.threads);
  torch::NoGradGuard no_grad;
  Builder builder(*plan);
  emit(builder, builder.input(memory::desc({options.batch, 3, options.height, options.width},
                                           Dt::f32, Tag::nchw)));
  builder.finish();
  plan->summary.build_ms = now_ms() - start;
  return plan;
}

std::unique_ptr<Engine::Plan> stacked_plan(const model::StackedHourglassImpl& model,
                                           const EngineOptions& options, bool consume) {
  model.options.check_input_size(options.height, options.width,
                                 "the engine's input height and width");
  return make_plan(
      options, model.options.stacks(), {{"output", model.options.joints(), {}}},
      [&](Builder& b, const Value& in) { NetworkEmitter(b, consume).network(model, in); });
}

std::unique_ptr<Engine::Plan> large_plan(const model::LargeHourglassImpl& model,
                                         const EngineOptions& options, bool consume) {
  model.options.check_input_size(options.height, options.width,
                                 "the engine's input height and width");
  TORCH_CHECK(!model.options.outputs().empty(),
              "the engine needs a network with at least one head, got ", model.options.describe());
  std::vector<Engine::Plan::Output> outputs;
  for (const auto& out : model.options.outputs()) outputs.push_back({out.name, out.channels, {}});
  return make_plan(
      options, model.options.stacks(), std::move(outputs),
      [&](Builder& b, const Value& in) { LargeEmitter(b, consume).network(model, in); });
}

}  // namespace

Engine Engine::build(const model::StackedHourglassImpl& model, const EngineOptions& options) {
  return Engine(stacked_plan(model, options, false));
}

Engine Engine::build_consuming(model::StackedHourglassImpl& model, const EngineOptions& options) {
  return Engine(stacked_plan(model, options, true));
}

Engine Engine::build(const model::LargeHourglassImpl& model, const EngineOptions& options) {
  return Engine(large_plan(model, options, false));
}

Engine Engine::build_consuming(model::LargeHourglassImpl& model, const EngineOptions& options) {
  return Engine(large_plan(model, options, true));
}

at::Tensor Engine::forward(const at::Tensor& input) {
  TORCH_CHECK(plan_->outputs.size() == 1, "this engine's network has ", plan_->outputs.size(),
              " outputs (", c10::Join(", ", output_names()), "): use forward_all");
  return run(input, nullptr).front();
}

std::map<std::string, at::Tensor> Engine::forward_all(const at::Tensor& input) {
  auto tensors = run(input, nullptr);
  std::map<std::string, at::Tensor> out;
  for (size_t k = 0; k < tensors.size(); ++k) out.emplace(plan_->outputs[k].name, tensors[k]);
  return out;
}

std::vector<std::string> Engine::output_names() const {
  std::vector<std::string> names;
  for (const auto& o : plan_->outputs) names.push_back(o.name);
  return names;
}

std::vector<StepProfile> Engine::profile(const at::Tensor& input, int runs) {
  TORCH_CHECK(runs >= 1, "profile needs at least one run, got ", runs);
  run(input, nullptr);  // warm-up
  std::vector<double> step_ms(plan_->steps.size(), 0.0);
  for (int r = 0; r < runs; ++r) run(input, &step_ms);
  std::map<std::string, StepProfile> by_label;
  for (size_t i = 0; i < plan_->steps.size(); ++i) {
    const auto& step = plan_->steps[i];
    auto& p = by_label[step.label];
    p.label = step.label;
    p.count += 1;
    p.ms += step_ms[i] / runs;
    p.gflop += step.flops / 1e9;
  }
  std::vector<StepProfile> result;
  for (auto& [_, p] : by_label) result.push_back(p);
  std::sort(result.begin(), result.end(),
            [](const StepProfile& a, const StepProfile& b) { return a.ms > b.ms; });
  return result;
}

std::vector<at::Tensor> Engine::run(const at::Tensor& input, std::vector<double>* step_ms) {
  const auto& o = plan_->options;
  TORCH_CHECK(input.dim() == 4 && input.size(0) == o.batch && input.size(1) == 3 &&
                  input.size(2) == o.height && input.size(3) == o.width,
              "this engine was built for input ", o.batch, "×3×", o.height, "×", o.width, ", got ",
              input.sizes(), "; build an engine for that shape");
  TORCH_CHECK(input.scalar_type() == at::kFloat && input.device().is_cpu(),
              "engine input must be a float32 CPU tensor, got ", input.scalar_type(), " on ",
              input.device());
  const auto x = input.contiguous();
  std::vector<at::Tensor> outs;
  for (auto& output : plan_->outputs) {
    outs.push_back(at::empty({o.batch, plan_->stacks, output.channels, o.height / 4, o.width / 4}));
    const int64_t slice = output.channels * (o.height / 4) * (o.width / 4);
    for (size_t s = 0; s < output.stacks.size(); ++s)
      output.stacks[s].set_data_handle(outs.back().data_ptr<float>() + s * slice);
  }
  omp_set_num_threads(o.threads);
  plan_->input.set_data_handle(x.data_ptr());
  for (size_t i = 0; i < plan_->steps.size(); ++i) {
    auto& step = plan_->steps[i];
    const double start = step_ms ? now_ms() : 0;
    if (step.kernel)
      step.kernel(step.args);
    else
      step.primitive.execute(plan_->stream, step.args);
    if (step_ms) {
      plan_->stream.wait();
      (*step_ms)[i] += now_ms() - start;
    }
  }
  plan_->stream.wait();
  return outs;
}

const EngineOptions& Engine::options() const {
  return plan_->options;
}
const EngineSummary& Engine::summary() const {
  return plan_->summary;
}

}  // namespace hg::engine
