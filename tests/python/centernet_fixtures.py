"""Small CornerNet/CenterNet networks for the cross-checks, built by CenterNet's own `exkp`
(centernet/large_hourglass.py) with random weights and random batch-norm statistics."""
import torch
import torch.nn as nn

from centernet import large_hourglass as lh


def small_exkp(levels, dims, modules, stacks, cnv_dim, stem, heads):
    # HourglassNet's own arguments (strided make_hg_layer, no pooling), at small widths; `pre`
    # given because exkp's default stem is fixed at 128→256.
    pre = nn.Sequential(lh.convolution(7, 3, stem, stride=2),
                        lh.residual(3, stem, dims[0], stride=2))
    return lh.exkp(levels, stacks, dims, modules, heads, pre=pre, cnv_dim=cnv_dim,
                   make_pool_layer=lh.make_pool_layer, make_hg_layer=lh.make_hg_layer,
                   kp_layer=lh.residual)


def randomise(model, seed):
    """Random batch-norm statistics (the weights are exkp's own random initialisation after
    torch.manual_seed(seed)); eval mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()
