#include "cli/cli.h"
#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"
#include "hg/io/deployment.h"
#include "hg/io/export_onnx.h"
#include "hg/io/export_pytorch.h"
#include "hg/io/safetensors.h"

#include <iostream>
#include <map>
#include <memory>

namespace hg::cli {
namespace {

enum class ExportFormat { kAuto, kOnnx, kSafetensors, kPoseNet, kBearpaw };

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

ExportFormat format_of(const std::string& out) {
  if (ends_with(out, ".onnx")) return ExportFormat::kOnnx;
  if (ends_with(out, ".safetensors")) return ExportFormat::kSafetensors;
  TORCH_CHECK(false, "cannot tell the export format of '", out,
              "' from its extension: name it .onnx or .safetensors, or give --format "
              "onnx|safetensors|posenet|bearpaw");
}

// A CornerNet/CenterNet hourglass, to ONNX only (its heads as named outputs).
void export_large_hourglass(const std::string& weights, const std::string& out, int64_t size,
                            const io::OnnxExportOptions& options) {
  auto loaded = io::load_large_hourglass(weights);
  auto meta = loaded.meta;
  meta["exported_from"] = {{"path", weights}, {"format", io::format_name(loaded.format)}};
  const int64_t side = size > 0 ? size : 512;
  io::export_onnx(out, *loaded.model, side, meta, options);
  const std::string input =
      options.dynamic_size ? "H×W" : std::to_string(side) + "×" + std::to_string(side);
  std::cout << "wrote " << out << " (ONNX opset " << options.opset << ", input N×3×" << input
            << ", outputs " << model::heads_text(loaded.model->options.outputs())
            << "): " << loaded.model->options.describe() << ", "
            << with_commas(loaded.model->parameter_count()) << " parameters\n";
}

}  // namespace

void add_export_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string weights, out;
    ExportFormat format = ExportFormat::kAuto;
    io::OnnxExportOptions onnx;
    bool no_fold = false;
    int64_t size = 0;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "export", "export a model to ONNX, safetensors or a PyTorch implementation's state_dict");
  cmd->add_option("WEIGHTS,--weights,-w", args->weights,
                  "checkpoint to export (any supported format; positional or --weights)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("OUT,--output,-o", args->out, "file to write (positional or --output)")
      ->required();
  const std::map<std::string, ExportFormat> formats = {{"onnx", ExportFormat::kOnnx},
                                                       {"safetensors", ExportFormat::kSafetensors},
                                                       {"posenet", ExportFormat::kPoseNet},
                                                       {"bearpaw", ExportFormat::kBearpaw}};
  cmd->add_option_function<std::string>(
         "--format,-f", [args, formats](const std::string& f) { args->format = formats.at(f); },
         "onnx, safetensors, posenet (pytorch_stacked_hourglass) or bearpaw (pytorch-pose); "
         "default: by OUT's extension")
      ->check(CLI::IsMember({"onnx", "safetensors", "posenet", "bearpaw"}));
  auto* last = cmd->add_flag("--last-stack-only", args->onnx.last_stack_only,
                             "ONNX: output only the last stack's heatmaps (N×1×J×h×w)");
  auto* no_fold =
      cmd->add_flag("--no-fold", args->no_fold, "ONNX: keep every batch norm as its own node");
  auto* opset = cmd->add_option("--opset", args->onnx.opset, "ONNX: operator set (11..17)")
                    ->default_str(std::to_string(io::kDefaultOnnxOpset));
  auto* dynamic = cmd->add_flag("--dynamic-size", args->onnx.dynamic_size,
                                "ONNX: height and width dynamic too (else --size, batch always)");
  auto* size =
      cmd->add_option("--size", args->size,
                      "ONNX: input side; default the checkpoint's meta, else 256 (512 for a "
                      "CornerNet/CenterNet hourglass)");
  cmd->callback([args, &global, last, no_fold, opset, dynamic, size] {
    apply_threads(global);
    const auto format = args->format == ExportFormat::kAuto ? format_of(args->out) : args->format;
    if (format != ExportFormat::kOnnx)
      for (const CLI::Option* o : {last, no_fold, opset, dynamic, size})
        TORCH_CHECK(o->count() == 0, o->get_name(), " applies to --format onnx only");
    if (io::holds_large_hourglass(args->weights)) {
      TORCH_CHECK(format == ExportFormat::kOnnx, args->weights,
                  " holds a CornerNet/CenterNet hourglass, which exports to ONNX only (convert "
                  "writes it as a native checkpoint)");
      args->onnx.fold_batch_norm = !args->no_fold;
      return export_large_hourglass(args->weights, args->out, args->size, args->onnx);
    }
    auto loaded = io::load_model(args->weights);
    auto& net = *loaded.model;
    std::string what;
    switch (format) {
      case ExportFormat::kOnnx: {
        io::DeploymentInfo info{infer::model_joints(loaded, args->weights),
                                args->size > 0 ? args->size : infer::model_input_size(loaded),
                                infer::model_grid(loaded),
                                infer::deployment_meta(loaded, args->weights)};
        args->onnx.fold_batch_norm = !args->no_fold;
        io::export_onnx(args->out, net, info, args->onnx);
        const std::string side = args->onnx.dynamic_size ? "H×W"
                                                         : std::to_string(info.input_size) + "×" +
                                                               std::to_string(info.input_size);
        what = "ONNX opset " + std::to_string(args->onnx.opset) + ", input N×3×" + side;
        break;
      }
      case ExportFormat::kSafetensors:
        io::export_safetensors(args->out, net, infer::model_joints(loaded, args->weights),
                               infer::deployment_meta(loaded, args->weights));
        what = "safetensors";
        break;
      case ExportFormat::kPoseNet:
      case ExportFormat::kBearpaw: {
        const auto f = format == ExportFormat::kPoseNet ? io::CheckpointFormat::kPoseNet
                                                        : io::CheckpointFormat::kBearpaw;
        io::export_pytorch(args->out, net, f);
        what = io::format_name(f) + " state_dict";
        break;
      }
      case ExportFormat::kAuto:
        break;
    }
    std::cout << "wrote " << args->out << " (" << what << "): " << net.options.describe() << ", "
              << with_commas(net.parameter_count()) << " parameters\n";
  });
}

}  // namespace hg::cli
