#pragma once
/// The stacked hourglass network of Newell, Yang and Deng (ECCV 2016), with the topology of the
/// original Torch code: pre-activation bottleneck residuals, recursive hourglasses, a head per
/// stack and the merge of features and predictions into the next stack's input.

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hg::model {

/// Computes a residual's 3×3 convolution, y = conv3x3(x, weight) + bias with stride 1 and padding
/// 1, in place of its Conv2d: x N×C×H×W, weight O×C×3×3, bias O → N×O×H×W. Differentiable where
/// training uses it (e.g. engine::TrainConv3x3). Empty: the Conv2d.
using Conv3x3 = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& weight,
                                            const torch::Tensor& bias)>;

/// Options of a pre-activation bottleneck residual:
/// BN-ReLU-1x1(out/2)-BN-ReLU-3x3(out/2)-BN-ReLU-1x1(out), plus a 1x1 conv skip when in != out.
struct ResidualOptions {
  ResidualOptions(int64_t in_channels, int64_t out_channels)
      : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
};

class ResidualImpl : public torch::nn::Module {
 public:
  explicit ResidualImpl(const ResidualOptions& options);
  /// x: N×in×H×W → N×out×H×W.
  torch::Tensor forward(const torch::Tensor& x);
  /// Multiply-accumulates of one forward pass on an h×w input (batch 1).
  int64_t macs(int64_t h, int64_t w) const;
  bool has_skip() const { return !skip.is_empty(); }
  /// Computes conv2 by `conv` from now on (empty: by conv2 itself).
  void set_conv3x3(Conv3x3 conv) { conv3x3_ = std::move(conv); }

  ResidualOptions options;
  torch::nn::BatchNorm2d bn1, bn2, bn3;
  torch::nn::Conv2d conv1, conv2, conv3;
  torch::nn::Conv2d skip{nullptr};

 private:
  Conv3x3 conv3x3_;
};
TORCH_MODULE(Residual);

/// Options of one recursive hourglass of `depth` levels at `features` channels, with
/// `residuals` residual modules in each of its blocks (the original code's nModules).
struct HourglassOptions {
  HourglassOptions(int64_t depth, int64_t features) : depth_(depth), features_(features) {}
  TORCH_ARG(int64_t, depth);
  TORCH_ARG(int64_t, features);
  TORCH_ARG(int64_t, residuals) = 1;
};

class HourglassImpl : public torch::nn::Module {
 public:
  explicit HourglassImpl(const HourglassOptions& options);
  /// x: N×F×H×W (H, W divisible by 2^depth) → N×F×H×W.
  torch::Tensor forward(const torch::Tensor& x);
  int64_t macs(int64_t h, int64_t w) const;

  HourglassOptions options;
  torch::nn::Sequential up1, low1, low3;
  /// The next level (depth > 1) or, at the lowest level, residuals (`low2_res`).
  std::shared_ptr<HourglassImpl> low2{nullptr};
  torch::nn::Sequential low2_res{nullptr};
};
TORCH_MODULE(Hourglass);

/// Architecture of a stacked hourglass network. Defaults are the paper's 8-stack model minus the
/// stack count, which defaults to 8 as well.
struct StackedHourglassOptions {
  /// Throws with a clear message if any value is out of its range.
  void validate() const;
  /// A one-line description, e.g. "8 stacks, 256 features, depth 4, 1 residual/block, 16 joints".
  std::string describe() const;
  /// The input sides this network takes are the positive multiples of 4·2^depth (the stem
  /// halves the side twice, every hourglass level once more).
  int64_t input_multiple() const { return int64_t{4} << depth(); }
  /// Throws, naming `what` (e.g. "--size", "input_size"), unless height and width are positive
  /// multiples of input_multiple().
  void check_input_size(int64_t height, int64_t width, const std::string& what) const;
  /// Trainable parameters of the network these options build (StackedHourglassImpl's
  /// parameter_count), computed without building it: what a checkpoint's declared architecture
  /// would allocate is known before it is allocated.
  int64_t parameter_count() const;

  TORCH_ARG(int64_t, stacks) = 8;
  /// Channels inside the hourglasses (F).
  TORCH_ARG(int64_t, features) = 256;
  /// Levels of each hourglass; the input side must be a multiple of 4·2^depth.
  TORCH_ARG(int64_t, depth) = 4;
  /// Residual modules per block (the original code's nModules).
  TORCH_ARG(int64_t, residuals) = 1;
  /// Output heatmaps per stack.
  TORCH_ARG(int64_t, joints) = 16;
  /// Output widths of the stem's first two residuals (64→stem1, pool, stem1→stem2, stem2→F).
  TORCH_ARG(int64_t, stem1) = 128;
  TORCH_ARG(int64_t, stem2) = 128;
};

bool operator==(const StackedHourglassOptions& a, const StackedHourglassOptions& b);

class StackedHourglassImpl : public torch::nn::Module {
 public:
  explicit StackedHourglassImpl(const StackedHourglassOptions& options = {});

  /// Runs the network. x: N×3×H×W, RGB in [0,1], H and W multiples of 4·2^depth.
  /// Returns every stack's heatmaps: N×S×J×(H/4)×(W/4).
  torch::Tensor forward(const torch::Tensor& x);

  /// Throws unless x is a N×3×H×W float tensor with H, W multiples of 4·2^depth.
  void check_input(const torch::Tensor& x) const;
  /// Number of trainable parameters (running statistics of batch norm excluded).
  int64_t parameter_count() const;
  /// Multiply-accumulates of one forward pass at h×w input for one image (convolutions only).
  int64_t macs(int64_t h, int64_t w) const;
  /// Computes every residual's 3×3 convolution by `conv` from now on (empty: by its Conv2d).
  void set_conv3x3(const Conv3x3& conv);

  StackedHourglassOptions options;
  torch::nn::Conv2d pre_conv;
  torch::nn::BatchNorm2d pre_bn;
  Residual pre_res1, pre_res2, pre_res3;
  torch::nn::ModuleList hourglasses;
  /// Per stack: residuals after the hourglass, then 1×1 conv-BN-ReLU, then 1×1 conv to heatmaps.
  torch::nn::ModuleList res, fc_conv, fc_bn, score;
  /// Per stack but the last: 1×1 convs mapping features and heatmaps back to F channels.
  torch::nn::ModuleList merge_features, merge_preds;
};
TORCH_MODULE(StackedHourglass);

}  // namespace hg::model
