#pragma once
/// The hourglass as CornerNet (Law and Deng, 2018) and CenterNet (Zhou et al., 2019) use it as a
/// backbone: post-activation basic residuals, strided residuals in place of max pooling, widths
/// that change from level to level, a 3×3 conv-BN-ReLU per stack, and named output heads. The
/// topology, and every parameter's name, is that of CenterNet's `large_hourglass.py` (`exkp`), so
/// that its checkpoints load by name.

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include "hg/runtime/names.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hg::model {

/// One output head: `channels` maps per stack, under `name` (CenterNet's "hm", "wh", "reg",
/// "hps", "hm_hp", "hp_offset"). A head whose name contains "hm" is a heatmap: its logits start
/// at -2.19 (a prior of 0.1 after the sigmoid), as in CenterNet.
struct HeadSpec {
  std::string name;
  int64_t channels = 0;
};
bool operator==(const HeadSpec& a, const HeadSpec& b);

/// How each head is built: the layouts of the checkpoints this family is imported from.
enum class HeadStyle {
  kCenterNet,  ///< per stack: 3×3 conv (bias) + ReLU, then 1×1 conv (CenterNet's make_kp_layer)
  kMMPose,     ///< per stack: one 1×1 conv (MMPose's CPMHead, its multi_final_layers)
  /// CornerNet's: per stack, corner pooling modules (tl_cnvs, br_cnvs) and, reading them,
  /// CenterNet-style heads (tl_heats, br_heats, tl_tags, br_tags, tl_regrs, br_regrs). Corner
  /// pooling and grouping are outside this project: the modules and heads are loaded and kept
  /// (convert writes them back) but not run; the network's output is its features.
  kCornerNet,
};
const runtime::NameTable<HeadStyle>& name_table(HeadStyle);

/// Parses "hm:80,wh:2,reg:2", or a named head set: "ctdet" (80 COCO classes, size, offset),
/// "multi_pose" (the person centre, size, offset, 17 joints' offsets, heatmaps and offsets) or
/// "cornernet" (CornerNet's corner heatmaps, embeddings and offsets for 80 classes).
/// Throws naming the text at fault.
std::vector<HeadSpec> parse_heads(const std::string& text);
/// "hm:80,wh:2,reg:2".
std::string heads_text(const std::vector<HeadSpec>& heads);

/// Architecture of a CornerNet/CenterNet hourglass network (CenterNet's `exkp`). The defaults are
/// Hourglass-104 without heads.
struct LargeHourglassOptions {
  /// Throws with a clear message, naming the key and value, if any value is out of range.
  void validate() const;
  /// E.g. "Hourglass, 2 stacks, 5 levels, widths 256-256-384-384-384-512, modules 2-2-2-2-2-4,
  /// cnv 256, stem 128, heads hm:80,wh:2,reg:2".
  std::string describe() const;
  /// Input sides must be positive multiples of 4·2^levels (the stem halves twice, each level
  /// once more).
  int64_t input_multiple() const { return int64_t{4} << levels(); }
  /// Throws, naming `what`, unless height and width are positive multiples of input_multiple().
  void check_input_size(int64_t height, int64_t width, const std::string& what) const;
  /// Trainable parameters of the network these options build, without building it.
  int64_t parameter_count() const;
  /// Multiply-accumulates of one forward pass at h×w for one image (convolutions only; a
  /// CornerNet network's corner modules and heads are not run, so not counted).
  int64_t macs(int64_t h, int64_t w) const;
  /// What the network's forward returns, by name and maps per stack: its heads, or for
  /// HeadStyle::kCornerNet `features` (the cnv_dim maps each stack's heads would read).
  std::vector<HeadSpec> outputs() const;

  /// Levels of each hourglass (CenterNet's n).
  TORCH_ARG(int64_t, levels) = 5;
  /// Width at each level, outermost first, and at the bottom: levels + 1 entries.
  TORCH_ARG(std::vector<int64_t>, dims) = std::vector<int64_t>({256, 256, 384, 384, 384, 512});
  /// Residuals per block at each level, and at the bottom: levels + 1 entries.
  TORCH_ARG(std::vector<int64_t>, modules) = std::vector<int64_t>({2, 2, 2, 2, 2, 4});
  TORCH_ARG(int64_t, stacks) = 2;
  /// Width of each stack's 3×3 conv after its hourglass, which the heads read.
  TORCH_ARG(int64_t, cnv_dim) = 256;
  /// Width of the stem's 7×7 convolution (128 in CenterNet).
  TORCH_ARG(int64_t, stem) = 128;
  TORCH_ARG(std::vector<HeadSpec>, heads);
  TORCH_ARG(HeadStyle, head_style) = HeadStyle::kCenterNet;
};
bool operator==(const LargeHourglassOptions& a, const LargeHourglassOptions& b);

/// Hourglass-104 (CenterNet's and CornerNet's backbone: 2 stacks) with `heads`.
LargeHourglassOptions hourglass104(std::vector<HeadSpec> heads);
/// Hourglass-52: the same with one stack and MMPose's heads (its top-down "hourglass52";
/// MMPose's COCO model has one head of 17 heatmaps).
LargeHourglassOptions hourglass52(std::vector<HeadSpec> heads);
/// CornerNet: Hourglass-104 with its corner modules and `heads` (HeadStyle::kCornerNet).
LargeHourglassOptions cornernet(std::vector<HeadSpec> heads);
/// The presets by name, "hourglass104", "hourglass52" or "cornernet", with heads parsed from
/// `heads` (parse_heads; "" = the preset's own: "ctdet" for hourglass104, MMPose's "heatmaps:17"
/// for hourglass52, "cornernet" for cornernet). Throws naming an unknown `arch` and the names
/// there are.
LargeHourglassOptions large_hourglass_preset(const std::string& arch, const std::string& heads);
/// The names large_hourglass_preset takes.
std::vector<std::string> large_hourglass_presets();

/// A k×k convolution, then batch norm (or, without it, a bias), then ReLU (CenterNet's
/// `convolution`; parameters conv.*, bn.*).
struct ConvBnReluOptions {
  ConvBnReluOptions(int64_t kernel, int64_t in, int64_t out)
      : kernel_(kernel), in_(in), out_(out) {}
  TORCH_ARG(int64_t, kernel);
  TORCH_ARG(int64_t, in);
  TORCH_ARG(int64_t, out);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(bool, with_bn) = true;
};

class ConvBnReluImpl : public torch::nn::Module {
 public:
  explicit ConvBnReluImpl(const ConvBnReluOptions& options);
  /// x: N×in×H×W → N×out×H/stride×W/stride.
  torch::Tensor forward(const torch::Tensor& x);

  ConvBnReluOptions options;
  torch::nn::Conv2d conv;
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvBnRelu);

/// A post-activation basic residual (CenterNet's `residual`): ReLU(BN(3×3(ReLU(BN(3×3/s(x))))) +
/// skip(x)), the skip a 1×1/s conv and BN when the stride or the width changes.
struct BasicResidualOptions {
  BasicResidualOptions(int64_t in, int64_t out) : in_(in), out_(out) {}
  TORCH_ARG(int64_t, in);
  TORCH_ARG(int64_t, out);
  TORCH_ARG(int64_t, stride) = 1;
};

class BasicResidualImpl : public torch::nn::Module {
 public:
  explicit BasicResidualImpl(const BasicResidualOptions& options);
  /// x: N×in×H×W → N×out×H/stride×W/stride.
  torch::Tensor forward(const torch::Tensor& x);
  bool has_skip() const { return !skip.is_empty(); }

  BasicResidualOptions options;
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  /// The 1×1 conv ("0") and BN ("1") of the skip; empty: the identity.
  torch::nn::Sequential skip{nullptr};
};
TORCH_MODULE(BasicResidual);

/// One level of a large hourglass and, recursively, those below it (CenterNet's `kp_module`):
/// up1(x) + upsample2(low3(low2(low1(x)))), low1 starting with a stride-2 residual.
class HourglassLevelImpl : public torch::nn::Module {
 public:
  /// The level with widths dims[0] (here) and dims[1] (below), modules[0] and modules[1]
  /// residuals per block; `levels` - 1 levels below it.
  HourglassLevelImpl(int64_t levels, const std::vector<int64_t>& dims,
                     const std::vector<int64_t>& modules);
  /// x: N×dims[0]×H×W (H, W multiples of 2^levels) → the same shape.
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Sequential up1, low1, low3;
  /// The next level, or at the lowest level the bottom residuals (`low2_res`).
  std::shared_ptr<HourglassLevelImpl> low2{nullptr};
  torch::nn::Sequential low2_res{nullptr};
};
TORCH_MODULE(HourglassLevel);

/// The width of CornerNet's corner pooling branches (its `pool`: p1_conv1 and p2_conv1).
inline constexpr int64_t kCornerPoolWidth = 128;

/// CornerNet's corner pooling module (`pool` in its CornerNet.py: tl_pool or br_pool), weights
/// only: relu(BN(3×3(pool1(a) + pool2(b))) + BN(1×1(x))) then a 3×3 conv-BN-ReLU, where a and b
/// are 3×3 conv-BN-ReLUs of x to kCornerPoolWidth maps. Corner pooling is outside this project, so
/// the module has no forward: it keeps a CornerNet checkpoint's tensors under their names.
class CornerPoolImpl : public torch::nn::Module {
 public:
  /// The module on `dim` maps (CornerNet's cnv_dim).
  explicit CornerPoolImpl(int64_t dim);

  ConvBnRelu p1_conv1, p2_conv1;
  torch::nn::Conv2d p_conv1;
  torch::nn::BatchNorm2d p_bn1;
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  ConvBnRelu conv2;
};
TORCH_MODULE(CornerPool);

/// Every head's output, by name: N×S×C×H/4×W/4 (every stack, like the pose network's output).
using HeadOutputs = std::map<std::string, torch::Tensor>;

/// The CornerNet/CenterNet hourglass network (CenterNet's `exkp`) with its heads.
class LargeHourglassImpl : public torch::nn::Module {
 public:
  explicit LargeHourglassImpl(const LargeHourglassOptions& options = hourglass104({}));
  /// x: N×3×H×W, normalised as the checkpoint expects (CenterNet: BGR-order mean/std), H and W
  /// multiples of 4·2^levels. Returns every output of every stack (options.outputs()).
  HeadOutputs forward(const torch::Tensor& x);
  /// Throws unless x is a N×3×H×W float tensor of a size the network takes.
  void check_input(const torch::Tensor& x) const;
  /// Number of trainable parameters (batch norm's running statistics excluded).
  int64_t parameter_count() const;

  LargeHourglassOptions options;
  /// The stem: 7×7/2 conv-BN-ReLU, then a stride-2 residual to dims[0].
  torch::nn::Sequential pre;
  torch::nn::ModuleList kps, cnvs;
  /// Between stacks: ReLU(inters_(x) + cnvs_(cnv)) then the residual inters.
  torch::nn::ModuleList inters, inters_, cnvs_;
  /// Per head (in options.heads order), per stack: a Sequential of ConvBnRelu (3×3, bias, no
  /// BN) and a 1×1 Conv2d (HeadStyle::kCenterNet, kCornerNet), or a 1×1 Conv2d (kMMPose).
  std::vector<torch::nn::ModuleList> heads;
  /// HeadStyle::kCornerNet only: per stack, the corner pooling modules (CornerPool) the heads
  /// read; null otherwise.
  torch::nn::ModuleList tl_cnvs{nullptr}, br_cnvs{nullptr};
};
TORCH_MODULE(LargeHourglass);

}  // namespace hg::model
