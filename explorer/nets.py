"""The architectures we define: our own small nets (the bundled models) and MadryLab's CIFAR ResNet.

Our own nets return their named stages themselves (``forward_intermediates``-style), so
the Classifier needs no hooks for them. The MadryLab CIFAR ResNets keep the ``robustness``
library's parameter names exactly, so its checkpoints load strictly.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class StagedNet(nn.Module):
    """A net whose named stages run in order: each ``stage_names`` entry is a child module of
    that name, except ``penultimate`` (global average pool, flattened) and ``logits`` (the
    linear ``head``). ``forward_intermediates`` returns the named stages' outputs itself
    (timm's way), so the Classifier needs no hooks."""

    stage_names: tuple[str, ...] = ()

    def _stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name == "penultimate":
            return self.pool(x).flatten(1)
        if name == "logits":
            return self.head(x)
        return getattr(self, name)(x)

    def forward_intermediates(self, x: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Outputs of the named stages, stopping after the last one asked for."""
        wanted = set(self.stage_names if names is None else names)
        unknown = wanted - set(self.stage_names)
        if unknown:
            raise KeyError(f"unknown layers {sorted(unknown)}; this net has {list(self.stage_names)}")
        out: dict[str, torch.Tensor] = {}
        for name in self.stage_names:
            x = self._stage(name, x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out


class StageCNN(StagedNet):
    """A small CNN of four conv stages, a penultimate representation and a linear head.

    ``stage1`` keeps the input resolution; stages 2-4 halve it. ``penultimate`` is the
    global average pool of ``stage4`` (the representation inversion and D_R use).
    """

    stage_names = ("stage1", "stage2", "stage3", "stage4", "penultimate", "logits")

    def __init__(self, in_chans: int = 1, num_classes: int = 10, widths: Sequence[int] = (32, 64, 128, 256)):
        super().__init__()
        chans = [in_chans, *widths]
        for i in range(4):
            block = nn.Sequential(
                nn.Conv2d(chans[i], chans[i + 1], 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=True),
            )
            setattr(self, f"stage{i + 1}", block)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(chans[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, 5):
            x = getattr(self, f"stage{i}")(x)
        return self.head(self.pool(x).flatten(1))


class MLP(nn.Module):
    """A plain MLP with named hidden layers (for transferability comparisons and tests); no hidden layer: a
    linear model (``linear``)."""

    def __init__(self, in_features: int = 784, num_classes: int = 10, hidden: Sequence[int] = (256, 128)):
        super().__init__()
        dims = [in_features, *hidden]
        self.stage_names = tuple(f"fc{i + 1}" for i in range(len(hidden))) + ("logits",)
        for i in range(len(hidden)):
            setattr(self, f"fc{i + 1}", nn.Sequential(nn.Linear(dims[i], dims[i + 1]), nn.ReLU(inplace=True)))
        self.head = nn.Linear(dims[-1], num_classes)

    def forward_intermediates(self, x, names=None):
        wanted = set(self.stage_names if names is None else names)
        unknown = wanted - set(self.stage_names)
        if unknown:
            raise KeyError(f"unknown layers {sorted(unknown)}; this net has {list(self.stage_names)}")
        out = {}
        x = x.flatten(1)
        for name in self.stage_names:
            x = self.head(x) if name == "logits" else getattr(self, name)(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out

    def forward(self, x):
        return self.forward_intermediates(x, ["logits"])["logits"]


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch norm and an identity (or 1x1 projection) shortcut (He et al. 2016)."""

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, out_chans, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chans)
        self.conv2 = nn.Conv2d(out_chans, out_chans, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chans)
        self.shortcut = nn.Identity() if stride == 1 and in_chans == out_chans else nn.Sequential(
            nn.Conv2d(in_chans, out_chans, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chans))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(StagedNet):
    """A CIFAR-style ResNet (He et al. 2016, Section 4.2) with one basic block per stage:
    a 3x3 stem, three stages of ``widths`` channels (stride 1, 2, 2), global average pool
    and a linear head. With (16, 32, 64) it is ResNet-8; the third architecture family of
    the transferability-vs-learnability plot, next to ``mlp`` and ``stage_cnn``."""

    stage_names = ("stem", "layer1", "layer2", "layer3", "penultimate", "logits")

    def __init__(self, in_chans: int = 1, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        chans = [widths[0], *widths]
        for i in range(3):
            setattr(self, f"layer{i + 1}", BasicBlock(chans[i], chans[i + 1], stride=1 if i == 0 else 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.head(self.pool(x).flatten(1))


def _conv_bn(in_chans: int, out_chans: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_chans, out_chans, 3, padding=1, bias=False), nn.BatchNorm2d(out_chans),
                         nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, chans: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(chans, chans), _conv_bn(chans, chans))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(StagedNet):
    """Page's ResNet-9 (the DAWNBench CIFAR-10 network): a 3x3 ``prep`` conv, ``layer1``
    (conv, max-pool, residual pair), ``layer2`` (conv, max-pool), ``layer3`` (conv, max-pool,
    residual pair), a global-average-pooled ``penultimate`` representation and a linear head.
    Fully convolutional up to the pool, so it runs on images of any size (style transfer).
    ``widths`` (64, 128, 256, 512) is Page's; the bundled CIFAR-10 models use half of it."""

    stage_names = ("prep", "layer1", "layer2", "layer3", "penultimate", "logits")

    def __init__(self, in_chans: int = 3, num_classes: int = 10, widths: Sequence[int] = (32, 64, 128, 256)):
        super().__init__()
        a, b, c, d = widths
        self.prep = _conv_bn(in_chans, a)
        self.layer1 = nn.Sequential(_conv_bn(a, b), nn.MaxPool2d(2), _Residual(b))
        self.layer2 = nn.Sequential(_conv_bn(b, c), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(_conv_bn(c, d), nn.MaxPool2d(2), _Residual(d))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(d, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return self.head(self.pool(x).flatten(1))


ARCHITECTURES = {
    "stage_cnn": lambda in_chans=1, num_classes=10, input_size=28: StageCNN(in_chans, num_classes),
    "stage_cnn_tiny": lambda in_chans=1, num_classes=10, input_size=28: StageCNN(in_chans, num_classes, widths=(8, 16, 16, 32)),
    "mlp": lambda in_chans=1, num_classes=10, input_size=28: MLP(in_chans * input_size * input_size, num_classes),
    "linear": lambda in_chans=1, num_classes=10, input_size=28: MLP(in_chans * input_size * input_size, num_classes,
                                                                    hidden=()),
    "resnet_small": lambda in_chans=1, num_classes=10, input_size=28: SmallResNet(in_chans, num_classes),
    "resnet9": lambda in_chans=3, num_classes=10, input_size=32: ResNet9(in_chans, num_classes),
}


# --- MadryLab's CIFAR ResNet (the ``robustness`` library's ``cifar_models/resnet.py``) -----------

class MadryCifarBasicBlock(nn.Module):
    """The robustness library's CIFAR BasicBlock (ResNet-18/34); skip named ``shortcut``."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _madry_shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class MadryCifarBottleneck(nn.Module):
    """The robustness library's CIFAR Bottleneck (ResNet-50): 1x1, 3x3 (strided), 1x1 x4."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _madry_shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


def _madry_shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()  # identity; an empty Sequential has no keys, as in the library
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes))


class MadryCifarResNet(nn.Module):
    """The CIFAR ResNet of the MadryLab ``robustness`` library (``cifar_models/resnet.py``).

    Differs from torchvision's: a 3x3 stride-1 ``conv1``, no max-pool, skips named
    ``shortcut``, a 4x4 average pool and a classifier named ``linear``. Parameter and
    buffer names match the library's exactly, so its checkpoints load strictly. The
    parameter-free ``relu`` and ``avgpool`` modules exist only so layers can be named
    (``stem``, ``penultimate``); they add no keys.

    Args:
        block: ``MadryCifarBasicBlock`` or ``MadryCifarBottleneck``.
        num_blocks: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50.
        num_classes: outputs of ``linear``.
    """

    def __init__(self, block: type, num_blocks: Sequence[int], num_classes: int = 10):
        super().__init__()
        widths = (64, 128, 256, 512)
        self.in_planes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        for i, (width, n) in enumerate(zip(widths, num_blocks)):
            setattr(self, f"layer{i + 1}", self._make_layer(block, width, n, stride=1 if i == 0 else 2))
        self.avgpool = nn.AvgPool2d(4)
        self.linear = nn.Linear(widths[3] * block.expansion, num_classes)

    def _make_layer(self, block: type, planes: int, n: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(self.avgpool(x).flatten(1))


# 3-channel only, so they take ``num_classes`` alone (``zoo.build_architecture`` checks the channels).
MADRY_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "madry_cifar_resnet18": lambda num_classes=10: MadryCifarResNet(MadryCifarBasicBlock, (2, 2, 2, 2), num_classes),
    "madry_cifar_resnet50": lambda num_classes=10: MadryCifarResNet(MadryCifarBottleneck, (3, 4, 6, 3), num_classes),
}
