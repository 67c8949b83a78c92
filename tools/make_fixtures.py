#!/usr/bin/env python3
"""Writes random-weight checkpoints in the layouts of the two most used PyTorch implementations of
the stacked hourglass network, with reference outputs, for hourglass's import tests.

The two architectures below are re-typed from their published descriptions (the official PyTorch
re-implementation, princeton-vl/pytorch_stacked_hourglass, and bearpaw/pytorch-pose's
HourglassNet) so that parameter names and the computation match theirs. Batch-norm statistics are
randomised so that a wrong eval-mode computation cannot hide.

Usage: tools/make_fixtures.py OUT_DIR      (needs Debian's python3-torch)
Each configuration writes NAME.pt (or .pth.tar) and NAME.io.pt = {'input': N×3×H×W,
'output': N×S×J×H/4×W/4}.
"""
import os
import sys

import torch
from torch import nn
import torch.nn.functional as F


# ---- posenet (official PyTorch re-implementation) -------------------------------------------
class Conv(nn.Module):
    def __init__(self, inp, out, k=3, stride=1, bn=False, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(inp, out, k, stride, padding=(k - 1) // 2, bias=True)
        self.relu = nn.ReLU() if relu else None
        self.bn = nn.BatchNorm2d(out) if bn else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class Residual(nn.Module):
    def __init__(self, inp, out):
        super().__init__()
        self.relu = nn.ReLU()
        self.bn1 = nn.BatchNorm2d(inp)
        self.conv1 = Conv(inp, out // 2, 1, relu=False)
        self.bn2 = nn.BatchNorm2d(out // 2)
        self.conv2 = Conv(out // 2, out // 2, 3, relu=False)
        self.bn3 = nn.BatchNorm2d(out // 2)
        self.conv3 = Conv(out // 2, out, 1, relu=False)
        self.skip_layer = Conv(inp, out, 1, relu=False)  # kept even when unused, as upstream
        self.need_skip = inp != out

    def forward(self, x):
        r = self.skip_layer(x) if self.need_skip else x
        y = self.conv1(self.relu(self.bn1(x)))
        y = self.conv2(self.relu(self.bn2(y)))
        y = self.conv3(self.relu(self.bn3(y)))
        return y + r


class Hourglass(nn.Module):
    def __init__(self, n, f):
        super().__init__()
        self.up1 = Residual(f, f)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.low1 = Residual(f, f)
        self.low2 = Hourglass(n - 1, f) if n > 1 else Residual(f, f)
        self.low3 = Residual(f, f)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x):
        return self.up1(x) + self.up2(self.low3(self.low2(self.low1(self.pool1(x)))))


class Merge(nn.Module):
    def __init__(self, x, y):
        super().__init__()
        self.conv = Conv(x, y, 1, relu=False, bn=False)

    def forward(self, x):
        return self.conv(x)


class PoseNet(nn.Module):
    def __init__(self, nstack, f, joints, depth=4):
        super().__init__()
        self.nstack = nstack
        self.pre = nn.Sequential(Conv(3, 64, 7, 2, bn=True, relu=True), Residual(64, 128),
                                 nn.MaxPool2d(2, 2), Residual(128, 128), Residual(128, f))
        self.hgs = nn.ModuleList([nn.Sequential(Hourglass(depth, f)) for _ in range(nstack)])
        self.features = nn.ModuleList([nn.Sequential(Residual(f, f), Conv(f, f, 1, bn=True, relu=True))
                                       for _ in range(nstack)])
        self.outs = nn.ModuleList([Conv(f, joints, 1, relu=False, bn=False) for _ in range(nstack)])
        self.merge_features = nn.ModuleList([Merge(f, f) for _ in range(nstack - 1)])
        self.merge_preds = nn.ModuleList([Merge(joints, f) for _ in range(nstack - 1)])

    def forward(self, x):  # NCHW here (upstream permutes from NHWC first)
        x = self.pre(x)
        preds = []
        for i in range(self.nstack):
            feature = self.features[i](self.hgs[i](x))
            p = self.outs[i](feature)
            preds.append(p)
            if i < self.nstack - 1:
                x = x + self.merge_preds[i](p) + self.merge_features[i](feature)
        return torch.stack(preds, 1)


# ---- bearpaw pytorch-pose HourglassNet --------------------------------------------------------
class Bottleneck(nn.Module):
    expansion = 2

    def __init__(self, inplanes, planes, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=True)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=True)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 2, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        y = self.conv1(self.relu(self.bn1(x)))
        y = self.conv2(self.relu(self.bn2(y)))
        y = self.conv3(self.relu(self.bn3(y)))
        return y + (self.downsample(x) if self.downsample is not None else x)


class BpHourglass(nn.Module):
    def __init__(self, num_blocks, planes, depth):
        super().__init__()
        self.depth = depth

        def seq():
            return nn.Sequential(*[Bottleneck(planes * 2, planes) for _ in range(num_blocks)])

        self.hg = nn.ModuleList([nn.ModuleList([seq() for _ in range(4 if i == 0 else 3)])
                                 for i in range(depth)])

    def _forward(self, n, x):
        up1 = self.hg[n - 1][0](x)
        low1 = self.hg[n - 1][1](F.max_pool2d(x, 2, stride=2))
        low2 = self._forward(n - 1, low1) if n > 1 else self.hg[n - 1][3](low1)
        low3 = self.hg[n - 1][2](low2)
        return up1 + F.interpolate(low3, scale_factor=2)

    def forward(self, x):
        return self._forward(self.depth, x)


class HourglassNet(nn.Module):
    def __init__(self, num_stacks, num_blocks, num_classes, num_feats=128, depth=4):
        super().__init__()
        self.inplanes = 64
        self.num_stacks = num_stacks
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=True)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_residual(self.inplanes, 1)
        self.layer2 = self._make_residual(self.inplanes, 1)
        self.layer3 = self._make_residual(num_feats, 1)
        self.maxpool = nn.MaxPool2d(2, stride=2)
        ch = num_feats * 2
        hg, res, fc, score, fc_, score_ = [], [], [], [], [], []
        for i in range(num_stacks):
            hg.append(BpHourglass(num_blocks, num_feats, depth))
            res.append(self._make_residual(num_feats, num_blocks))
            fc.append(nn.Sequential(nn.Conv2d(ch, ch, 1, bias=True), nn.BatchNorm2d(ch), self.relu))
            score.append(nn.Conv2d(ch, num_classes, 1, bias=True))
            if i < num_stacks - 1:
                fc_.append(nn.Conv2d(ch, ch, 1, bias=True))
                score_.append(nn.Conv2d(num_classes, ch, 1, bias=True))
        self.hg, self.res, self.fc = nn.ModuleList(hg), nn.ModuleList(res), nn.ModuleList(fc)
        self.score, self.fc_, self.score_ = nn.ModuleList(score), nn.ModuleList(fc_), nn.ModuleList(score_)

    def _make_residual(self, planes, blocks):
        down = None
        if self.inplanes != planes * 2:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * 2, 1, bias=True))
        layers = [Bottleneck(self.inplanes, planes, down)]
        self.inplanes = planes * 2
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.maxpool(self.layer1(x))))
        out = []
        for i in range(self.num_stacks):
            y = self.fc[i](self.res[i](self.hg[i](x)))
            s = self.score[i](y)
            out.append(s)
            if i < self.num_stacks - 1:
                x = x + self.fc_[i](y) + self.score_[i](s)
        return torch.stack(out, 1)


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))
    model.eval()


def write(out_dir, name, model, wrap, side, seed):
    randomise(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(2, 3, side, side, generator=g)
    with torch.no_grad():
        y = model(x)
    path = os.path.join(out_dir, name)
    torch.save(wrap(model), path)
    stem = name.split(".")[0]
    torch.save({"input": x, "output": y}, os.path.join(out_dir, stem + ".io.pt"))
    print(f"{path}: output {tuple(y.shape)}")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)

    def posenet_ckpt(m):
        sd = {"model.module." + k: v for k, v in m.state_dict().items()}
        return {"state_dict": sd, "epoch": 3}

    def bearpaw_ckpt(m):
        from collections import OrderedDict
        sd = OrderedDict(("module." + k, v) for k, v in m.state_dict().items())
        opt = torch.optim.RMSprop(m.parameters(), lr=2.5e-4)
        return {"epoch": 1, "arch": "hg", "state_dict": sd, "best_acc": 0.5,
                "optimizer": opt.state_dict()}

    write(out_dir, "posenet_s3_f32_j11_state_dict.pt", PoseNet(3, 32, 11), lambda m: m.state_dict(), 128, 10)
    write(out_dir, "posenet_s1_f16_d3_checkpoint.pt", PoseNet(1, 16, 16, depth=3), posenet_ckpt, 64, 11)
    write(out_dir, "bearpaw_s1_b2_f32.pth.tar", HourglassNet(1, 2, 16, num_feats=16), bearpaw_ckpt, 64, 12)
    write(out_dir, "bearpaw_s3_b1_f16_j7.pth.tar", HourglassNet(3, 1, 7, num_feats=8), bearpaw_ckpt, 128, 13)


if __name__ == "__main__":
    main()
