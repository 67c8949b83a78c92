#pragma once
/// 3×3 convolutions for LibTorch training on the CPU by the engine's Winograd kernel: a
/// differentiable winograd_conv3x3_train, and TrainConv3x3, which times it against LibTorch's
/// convolution per layer shape and keeps the faster (model::StackedHourglassImpl::set_conv3x3
/// takes it).

#include "hg/engine/engine.h"

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>

namespace hg::engine {

/// Whether winograd_conv3x3_train can compute the 3×3 convolution of float32 CPU `x` [N,C,H,W]
/// to `out` channels here: winograd_supported(), C and `out` in multiples of 16, H and W in
/// multiples of 4.
bool winograd_trainable(const at::Tensor& x, int64_t out);

/// y = conv3x3(x, weight) + bias (stride 1, padding 1), differentiable. The forward pass and the
/// input's gradient (the convolution of the output's gradient with the weights flipped and
/// transposed) run on the engine's Winograd F(4×4, 3×3) kernel, the gradients of the weights and
/// bias on oneDNN's Winograd backward-weights primitive, all through nChw16c copies of the
/// activations. x: float32 [N,C,H,W], any
/// memory format; weight: [O,C,3,3]; bias: [O]. Returns [N,O,H,W] in x's memory format. Agrees
/// with LibTorch's convolution within Winograd's rounding (about 1e-5 of the largest |value| in
/// float32). Throws unless winograd_trainable(x, O).
at::Tensor winograd_conv3x3_train(const at::Tensor& x, const at::Tensor& weight,
                                  const at::Tensor& bias);

/// The Algorithm named `name` (algorithm_name's inverse: "auto", "direct", "winograd"); throws on
/// another name, naming it.
Algorithm parse_algorithm(const std::string& name);

/// A residual's 3×3 convolution during training, callable as (x, weight, bias) -> y. LibTorch's
/// convolution under autocast, for input other than float32 on the CPU, where winograd_trainable
/// is false and with Algorithm::kDirect; otherwise winograd_conv3x3_train, with kAuto (per layer
/// shape, Winograd where a timed forward pass of it is kAutoGain faster) only for shapes where
/// `timer`, asked once per shape on the first input of that shape, finds it faster (pick_method).
/// The default timer is the engine's process_layer_timer(default_choice_cache()): the first run
/// on a machine times each shape and keeps the answer, so that later runs (a resumed one among
/// them) choose alike without timing. Copies share their choices. Thread-safe.
class TrainConv3x3 {
 public:
  explicit TrainConv3x3(Algorithm algorithm, LayerTimer timer = {});

  at::Tensor operator()(const at::Tensor& x, const at::Tensor& weight,
                        const at::Tensor& bias) const;

  /// What each shape seen so far computes, e.g. "128->128 3x3 @64x64 batch 8" -> "f32 winograd"
  /// (method_name), with kAuto's timed milliseconds per method.
  struct Choice {
    ConvMethod method;
    std::vector<double> ms;  ///< kAuto: direct, then Winograd; else empty
  };
  std::map<std::string, Choice> choices() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace hg::engine
