"""A plain-PyTorch transcription of MMPose's top-down HourglassNet and its CPMHead, for the
cross-check of hourglass's MMPose import (centernet_crosscheck.py). MMPose itself needs mmcv and
mmengine, which Debian does not package.

Transcribed from open-mmlab/mmpose (main branch, read 2026-12-07):
- mmpose/models/backbones/hourglass.py: HourglassModule, HourglassNet;
- mmpose/models/backbones/resnet.py: BasicBlock, ResLayer (including downsample_first=False, and
  that a ResLayer of 0 blocks still builds one, so a one-stack net holds an unused `inters.0`);
- mmcv's ConvModule as these use it: conv (bias off when a norm follows), bn, ReLU unless
  act_cfg=None;
- mmpose/models/heads/heatmap_heads/cpm_head.py with deconv_out_channels=None: per stage an
  Identity then a 1×1 Conv2d (multi_final_layers);
- TopdownPoseEstimator's attribute names `backbone` and `head`.
Module and attribute names are MMPose's, so state_dict() has MMPose's keys. The one change:
the stem's widths (128 and 256 in MMPose) are arguments, so that the test runs at small widths.
"""
import torch.nn as nn


class ConvModule(nn.Module):
    def __init__(self, inp, out, k, stride=1, padding=0, act=True):
        super().__init__()
        self.conv = nn.Conv2d(inp, out, k, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out)
        self.activate = nn.ReLU(inplace=True) if act else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.activate(x) if self.activate is not None else x


class BasicBlock(nn.Module):
    def __init__(self, inp, out, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResLayer(nn.Sequential):
    def __init__(self, num_blocks, inp, out, stride=1, downsample_first=True):
        downsample = None
        if stride != 1 or inp != out:
            downsample = nn.Sequential(nn.Conv2d(inp, out, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(out))
        layers = []
        if downsample_first:
            layers.append(BasicBlock(inp, out, stride, downsample))
            for _ in range(1, num_blocks):
                layers.append(BasicBlock(out, out))
        else:
            for _ in range(num_blocks - 1):
                layers.append(BasicBlock(inp, inp))
            layers.append(BasicBlock(inp, out, stride, downsample))
        super().__init__(*layers)


class HourglassModule(nn.Module):
    def __init__(self, depth, stage_channels, stage_blocks):
        super().__init__()
        cur_block, next_block = stage_blocks[0], stage_blocks[1]
        cur, nxt = stage_channels[0], stage_channels[1]
        self.up1 = ResLayer(cur_block, cur, cur)
        self.low1 = ResLayer(cur_block, cur, nxt, stride=2)
        self.low2 = HourglassModule(depth - 1, stage_channels[1:], stage_blocks[1:]) \
            if depth > 1 else ResLayer(next_block, nxt, nxt)
        self.low3 = ResLayer(cur_block, nxt, cur, downsample_first=False)
        self.up2 = nn.Upsample(scale_factor=2)

    def forward(self, x):
        return self.up1(x) + self.up2(self.low3(self.low2(self.low1(x))))


class HourglassNet(nn.Module):
    def __init__(self, downsample_times, num_stacks, stage_channels, stage_blocks, feat_channel,
                 stem=128):
        super().__init__()
        self.num_stacks = num_stacks
        cur = stage_channels[0]
        self.stem = nn.Sequential(ConvModule(3, stem, 7, stride=2, padding=3),
                                  ResLayer(1, stem, cur, stride=2))
        self.hourglass_modules = nn.ModuleList([
            HourglassModule(downsample_times, stage_channels, stage_blocks)
            for _ in range(num_stacks)])
        self.inters = ResLayer(num_stacks - 1, cur, cur)
        self.conv1x1s = nn.ModuleList([ConvModule(cur, cur, 1, act=False)
                                       for _ in range(num_stacks - 1)])
        self.out_convs = nn.ModuleList([ConvModule(cur, feat_channel, 3, padding=1)
                                        for _ in range(num_stacks)])
        self.remap_convs = nn.ModuleList([ConvModule(feat_channel, cur, 1, act=False)
                                          for _ in range(num_stacks - 1)])
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        inter = self.stem(x)
        outs = []
        for i in range(self.num_stacks):
            out = self.out_convs[i](self.hourglass_modules[i](inter))
            outs.append(out)
            if i < self.num_stacks - 1:
                inter = self.conv1x1s[i](inter) + self.remap_convs[i](out)
                inter = self.inters[i](self.relu(inter))
        return outs


class CPMHead(nn.Module):
    def __init__(self, in_channels, out_channels, num_stages):
        super().__init__()
        self.multi_deconv_layers = nn.ModuleList([nn.Identity() for _ in range(num_stages)])
        self.multi_final_layers = nn.ModuleList([nn.Conv2d(in_channels, out_channels, 1)
                                                 for _ in range(num_stages)])

    def forward(self, feats):
        return [f(d(x)) for x, d, f in zip(feats, self.multi_deconv_layers,
                                           self.multi_final_layers)]


class TopdownPoseEstimator(nn.Module):
    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x):
        return self.head(self.backbone(x))
