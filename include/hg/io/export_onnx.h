#pragma once
/// Export of a stacked hourglass network (and of a CornerNet/CenterNet hourglass) to ONNX (ONNX
/// Runtime, OpenCV's DNN module, TensorRT, OpenVINO). The graph is built from the model's modules
/// with Debian's libonnx and is checked by onnx::checker and strict shape inference before it is
/// written.
///
/// Graph: input `image` N×3×H×W float32 RGB in [0, 1] (N dynamic; H, W too with dynamic_size),
/// output `heatmaps` N×S×J×(H/4)×(W/4), S = stacks (1 with last_stack_only). Operators: Conv,
/// BatchNormalization (the residuals' input batch norms, which a ReLU separates from any conv,
/// and every batch norm without folding), Relu, MaxPool, Resize (nearest, scale 2), Add,
/// Reshape (Unsqueeze with dynamic_size), Concat. Metadata properties (each a string; lists and
/// objects as JSON): "joint_set", "joint_names", "flip_pairs", "skeleton", "input_size",
/// "pixel_grid", "input" (the layout and range), "mean", "std" (per RGB channel; 0 and 1: the
/// network normalises nothing), "output", "architecture", and "meta": the native checkpoint's
/// whole meta (DeploymentInfo::meta; training config and state, inference defaults, ...).

#include "hg/io/deployment.h"
#include "hg/model/hourglass.h"
#include "hg/model/large_hourglass.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace hg::io {

/// The opset written by default: the newest that OpenCV 4.6's DNN importer reads in full.
constexpr int64_t kDefaultOnnxOpset = 13;

struct OnnxExportOptions {
  /// ONNX operator set, 11 to 17 (libonnx 1.12's newest).
  int64_t opset = kDefaultOnnxOpset;
  /// Fold each batch norm that directly follows a convolution into it (exact in real arithmetic;
  /// false keeps every BatchNormalization node).
  bool fold_batch_norm = true;
  /// Output only the last stack's heatmaps (N×1×J×h×w), what a deployment uses.
  bool last_stack_only = false;
  /// Height and width dynamic too (multiples of 4·2^depth); otherwise input_size × input_size.
  bool dynamic_size = false;
};

/// The checked, serialised ONNX model of `model` (eval-mode semantics: batch norm uses its
/// running statistics). Throws if the options are out of range or libonnx rejects the graph.
std::string onnx_model_bytes(model::StackedHourglassImpl& model, const DeploymentInfo& info,
                             const OnnxExportOptions& options = {});

/// Writes onnx_model_bytes(...) to `path` atomically.
void export_onnx(const std::string& path, model::StackedHourglassImpl& model,
                 const DeploymentInfo& info, const OnnxExportOptions& options = {});

/// The checked, serialised ONNX model of a CornerNet/CenterNet hourglass: input `image`
/// N×3×H×W (input_size², or dynamic), one output per head under its name, N×S×C×(H/4)×(W/4)
/// (S = 1 with last_stack_only), the same operators as above less MaxPool (strided convolutions
/// instead). Metadata: "architecture" (io::large_options_to_json), "input_size", "input",
/// "output" and, when not empty, "meta". Throws for a model without heads.
std::string onnx_model_bytes(model::LargeHourglassImpl& model, int64_t input_size,
                             const nlohmann::json& meta, const OnnxExportOptions& options = {});

/// Writes that model to `path` atomically.
void export_onnx(const std::string& path, model::LargeHourglassImpl& model, int64_t input_size,
                 const nlohmann::json& meta, const OnnxExportOptions& options = {});

}  // namespace hg::io
