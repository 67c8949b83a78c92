#pragma once
/// Export of a model to the two PyTorch implementations that import_pytorch.h reads: a plain
/// `state_dict` under their key names, in `torch.save`'s zip format, which their own modules load
/// with `load_state_dict` after `torch.load(path, weights_only=True)`.
///
/// Both implementations hard-code parts of the architecture: depth-4 hourglasses and the stem
/// (posenet 64→128→128→F, bearpaw 64→128→256→F); posenet (princeton-vl/pytorch_stacked_hourglass
/// `PoseNet(nstack, inp_dim=F, oup_dim=J)`) also one residual per block, bearpaw (pytorch-pose
/// `HourglassNet(Bottleneck, num_stacks, num_blocks=residuals, num_classes=J)`, num_feats = F/2).

#include "hg/io/checkpoint.h"

#include <map>
#include <string>

namespace hg::io {

/// Throws, naming the option at fault and the value the implementation needs, unless `format`'s
/// implementation (kPoseNet or kBearpaw) can build `options`.
void check_exportable(const model::StackedHourglassOptions& options, CheckpointFormat format);

/// `model`'s parameters and buffers under `format`'s key names (inverse of import_state_dict).
/// posenet also gets the skip convolutions its residuals keep when unused (zeros).
std::map<std::string, at::Tensor> foreign_state_dict(model::StackedHourglassImpl& model,
                                                     CheckpointFormat format);

/// Writes foreign_state_dict(model, format) to `path` as a `torch.save` file (atomically).
void export_pytorch(const std::string& path, model::StackedHourglassImpl& model,
                    CheckpointFormat format);

}  // namespace hg::io
