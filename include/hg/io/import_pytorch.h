#pragma once
/// Import of stacked hourglass weights saved by the two most used PyTorch implementations. The
/// architecture (stacks, features, depth, residuals per block, joints, stem widths) is inferred
/// from the tensors' names and shapes, and every tensor is renamed to this project's layout.

#include "hg/io/checkpoint.h"

#include <ATen/Tensor.h>

#include <map>
#include <string>

namespace hg::io {

/// A foreign state dict translated to native names, with the inferred architecture.
struct ImportedState {
  CheckpointFormat format = CheckpointFormat::kPoseNet;
  model::StackedHourglassOptions options;
  std::map<std::string, at::Tensor> state;  ///< native names
};

/// Recognises a foreign state dict (prefixes `module.` / `model.module.` already removed or not)
/// and translates it. Throws, naming `source`, when the format is unknown, a key the architecture
/// needs is missing, or a key cannot be placed.
ImportedState import_state_dict(const std::map<std::string, at::Tensor>& state,
                                const std::string& source);

}  // namespace hg::io
