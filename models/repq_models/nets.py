"""Small A0-like networks for 1x28x28 Fashion-MNIST, one per block family.

All share one shape: a stem block (stride 1) then three stages whose first
block has stride 2, global average pool, linear 10.

    stage   width  blocks  output
    stem      16      1    16x28x28
    1         24      2    24x14x14
    2         32      4    32x7x7
    3         64      1    64x4x4
"""
import copy

import torch.nn as nn

from .blocks import (ACBlock, DBBBlock, MobileOneBlock, QARepVGGBlock,
                     RepBlockBase, RepVGGBlock)

WIDTHS = (16, 24, 32, 64)
DEPTHS = (1, 2, 4, 1)
STRIDES = (1, 2, 2, 2)
NUM_CLASSES = 10

ARCHS = ("repvgg", "repvgg_l2", "qarepvgg", "qarepvgg_v2", "mobileone", "acdbb")


def _mobileone_unit(cin, cout, stride, branches=2):
    """MobileOne unit: depthwise 3x3 block then pointwise 1x1 block."""
    return nn.Sequential(
        MobileOneBlock(cin, cin, 3, stride, groups=cin, branches=branches),
        MobileOneBlock(cin, cout, 1, 1, groups=1, branches=branches))


def make_block(arch, cin, cout, stride, index):
    if arch in ("repvgg", "repvgg_l2"):
        return RepVGGBlock(cin, cout, stride)
    if arch == "qarepvgg":
        return QARepVGGBlock(cin, cout, stride)
    if arch == "qarepvgg_v2":
        return QARepVGGBlock(cin, cout, stride, avg=True)
    if arch == "mobileone":
        if cin == 1:  # the stem: a dense MobileOne 3x3 block on the grey image
            return MobileOneBlock(cin, cout, 3, stride, groups=1, branches=2)
        return _mobileone_unit(cin, cout, stride)
    if arch == "acdbb":
        # alternate ACNet and DBB blocks: stem AC, then DBB, AC, DBB, ...
        return ACBlock(cin, cout, stride) if index % 2 == 0 else DBBBlock(cin, cout, stride)
    raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")


class RepNet(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.arch = arch
        cin, index = 1, 0
        for s, (width, depth, stride) in enumerate(zip(WIDTHS, DEPTHS, STRIDES)):
            blocks = []
            for d in range(depth):
                blocks.append(make_block(arch, cin, width, stride if d == 0 else 1, index))
                cin, index = width, index + 1
            setattr(self, f"stage{s}", nn.Sequential(*blocks))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(cin, NUM_CLASSES)

    def forward(self, x):
        for s in range(len(WIDTHS)):
            x = getattr(self, f"stage{s}")(x)
        x = self.gap(x)
        return self.linear(x.flatten(1))

    def rep_blocks(self):
        return [(n, m) for n, m in self.named_modules() if isinstance(m, RepBlockBase)]


def build(arch):
    return RepNet(arch)


def to_deploy(model):
    """A fused copy of the model (the original is left untouched)."""
    fused = copy.deepcopy(model).eval()
    for _, m in fused.rep_blocks():
        m.switch_to_deploy()
    return fused
