#pragma once
/// Import of CenterNet's hourglass checkpoints (xingyizhou/CenterNet, `large_hourglass.py`): the
/// architecture (levels, widths, residuals per block, stacks, cnv width, stem width and every
/// head) is inferred from the tensors' names and shapes, which are already this project's names
/// (model::LargeHourglassImpl keeps CenterNet's).

#include "hg/model/large_hourglass.h"

#include <ATen/Tensor.h>

#include <map>
#include <string>

namespace hg::io {

/// Whether a state dict (prefixes `module.` removed) has CenterNet's hourglass layout:
/// `pre.0.conv.weight` and `kps.0.up1.0.conv1.weight`.
bool is_centernet_state(const std::map<std::string, at::Tensor>& state);

/// The architecture of a CenterNet state dict. Throws, naming `source` and the key, when a key
/// the architecture needs is missing or the inferred values are out of range, and when the file
/// is a CornerNet checkpoint (its corner pooling modules are not supported).
model::LargeHourglassOptions centernet_options(const std::map<std::string, at::Tensor>& state,
                                               const std::string& source);

/// A CornerNet/CenterNet hourglass ready to run (eval mode).
struct LoadedLargeHourglass {
  model::LargeHourglass model{nullptr};
  std::string source;  ///< the file it was read from (for messages)
};

/// Whether the file at `path` is a CenterNet checkpoint (`{'epoch', 'state_dict'}` or a bare
/// state dict; DataParallel's `module.` prefix or not). Reads its keys and shapes only; false for
/// any file that is not a readable checkpoint.
bool holds_centernet(const std::string& path);

/// Loads a CenterNet checkpoint, its architecture inferred. Throws, naming the file, on anything
/// malformed or a tensor the architecture does not have.
LoadedLargeHourglass load_centernet(const std::string& path);

}  // namespace hg::io
