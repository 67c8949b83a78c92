#pragma once
/// Checkpoints: the native format (weights + architecture in one file) and loading of any
/// supported checkpoint, native or imported from PyTorch implementations.

#include "hg/model/hourglass.h"
#include "hg/model/large_hourglass.h"

#include <nlohmann/json.hpp>

#include <map>
#include <string>

namespace hg::io {

/// Where a loaded model came from.
enum class CheckpointFormat {
  kNative,     ///< this project's own file (`hourglass convert`, training)
  kPoseNet,    ///< the official PyTorch re-implementation (princeton-vl), state_dict or checkpoint
  kBearpaw,    ///< bearpaw's pytorch-pose HourglassNet training checkpoint
  kCenterNet,  ///< CenterNet's hourglass checkpoint (model::LargeHourglass)
  kMMPose,     ///< MMPose's top-down HourglassNet with its CPMHead (model::LargeHourglass)
  kCornerNet,  ///< CornerNet's checkpoint (model::LargeHourglass with HeadStyle::kCornerNet)
};
std::string format_name(CheckpointFormat format);

/// The contents of a native checkpoint file. It is a `torch.save`-compatible dict:
/// {"format": "hourglass", "version": 1, "config": <json text>, "meta": <json text>,
///  "state_dict": {name: tensor}, "extra": {name: tensor}}, so Python can torch.load it too.
struct Checkpoint {
  model::StackedHourglassOptions options;
  /// Parameters and buffers by their native names (StackedHourglassImpl::named_parameters()).
  std::map<std::string, at::Tensor> state;
  /// Free-form metadata (training config, epoch, metrics...).
  nlohmann::json meta = nlohmann::json::object();
  /// Additional named tensors (optimizer state, RNG state...).
  std::map<std::string, at::Tensor> extra;
};

/// A model ready to run (eval mode), and what its file said about it.
struct LoadedModel {
  model::StackedHourglass model{nullptr};
  CheckpointFormat format = CheckpointFormat::kNative;
  nlohmann::json meta = nlohmann::json::object();
  std::string source;  ///< the file it was read from (for messages)
};

nlohmann::json options_to_json(const model::StackedHourglassOptions& options);
/// Reads options from JSON; missing keys take their defaults, unknown keys are an error.
model::StackedHourglassOptions options_from_json(const nlohmann::json& j);

/// The model's parameters and buffers by name, detached and on the CPU.
std::map<std::string, at::Tensor> state_of(torch::nn::Module& model);

/// Copies `state` into `model`. Every parameter and buffer must be present with its shape,
/// except batch norm's `num_batches_tracked`; tensors the model lacks are an error. `source`
/// names the file in error messages.
void load_state(model::StackedHourglassImpl& model, const std::map<std::string, at::Tensor>& state,
                const std::string& source);

/// Builds the model `options` declare for `state`, once the declaration is checked against what
/// is present: throws, naming `source`, when the architecture has more parameters than
/// limits::kMaxParameters or than `state` holds values (a small file must not make it allocate
/// gigabytes). Then load_state fills it.
model::StackedHourglass build_model_for(const model::StackedHourglassOptions& options,
                                        const std::map<std::string, at::Tensor>& state,
                                        const std::string& source);

/// Writes a native checkpoint atomically (temporary file + rename).
void write_checkpoint(const std::string& path, const Checkpoint& checkpoint);
/// Reads a native checkpoint. Throws, naming the file and key, on anything malformed.
Checkpoint read_checkpoint(const std::string& path);

/// Saves `model`'s weights and architecture as a native checkpoint.
void save_model(const std::string& path, model::StackedHourglassImpl& model,
                const nlohmann::json& meta = nlohmann::json::object());

/// Loads any supported checkpoint, detecting its format, and returns the model in eval mode.
LoadedModel load_model(const std::string& path);

// ---- The CornerNet/CenterNet hourglass family (model::LargeHourglass)
// ---------------------------- Its native checkpoint is the same file as above, its config carrying
// "family": "large_hourglass" (large_options_to_json). The commands that run Newell's networks only
// (predict, eval, show, serve, train) refuse it by name.

/// A CornerNet/CenterNet hourglass ready to run (eval mode), and what its file said about it.
struct LoadedLargeHourglass {
  model::LargeHourglass model{nullptr};
  CheckpointFormat format = CheckpointFormat::kNative;
  nlohmann::json meta = nlohmann::json::object();
  std::string source;  ///< the file it was read from (for messages)
};

/// {"family": "large_hourglass", "levels", "dims", "modules", "stacks", "cnv_dim", "stem",
/// "heads": [{"name", "channels"}, ...]}.
nlohmann::json large_options_to_json(const model::LargeHourglassOptions& options);
/// The inverse; every key is required and unknown keys are an error, each named.
model::LargeHourglassOptions large_options_from_json(const nlohmann::json& j);

/// Whether `path` holds a model of this family: a CenterNet or MMPose checkpoint, or a native
/// checkpoint of the family. Reads keys and shapes only; false for anything else, readable or not.
bool holds_large_hourglass(const std::string& path);

/// Loads a CenterNet, MMPose or native checkpoint of the family (architecture inferred from a
/// CenterNet or MMPose file's names and shapes: io::large_hourglass_options). Throws, naming the
/// file, on anything malformed.
LoadedLargeHourglass load_large_hourglass(const std::string& path);

/// Saves `model`'s weights and architecture as a native checkpoint.
void save_large_hourglass(const std::string& path, model::LargeHourglassImpl& model,
                          const nlohmann::json& meta = nlohmann::json::object());

}  // namespace hg::io
