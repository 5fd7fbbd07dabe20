"""Our own small architectures (the bundled Fashion-MNIST models).

Each returns its named stages itself (``forward_intermediates``-style), so the
Classifier needs no hooks for them.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class StageCNN(nn.Module):
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

    def forward_intermediates(self, x: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Outputs of the named stages, stopping after the last one asked for."""
        wanted = set(self.stage_names if names is None else names)
        unknown = wanted - set(self.stage_names)
        if unknown:
            raise KeyError(f"unknown layers {sorted(unknown)}; this net has {list(self.stage_names)}")
        out: dict[str, torch.Tensor] = {}
        for name in self.stage_names:
            if name.startswith("stage"):
                x = getattr(self, name)(x)
            elif name == "penultimate":
                x = self.pool(x).flatten(1)
            else:
                x = self.head(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, 5):
            x = getattr(self, f"stage{i}")(x)
        return self.head(self.pool(x).flatten(1))


class MLP(nn.Module):
    """A plain MLP with named hidden layers (for transferability comparisons and tests)."""

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


ARCHITECTURES = {
    "stage_cnn": lambda in_chans=1, num_classes=10, input_size=28: StageCNN(in_chans, num_classes),
    "stage_cnn_tiny": lambda in_chans=1, num_classes=10, input_size=28: StageCNN(in_chans, num_classes, widths=(8, 16, 16, 32)),
    "mlp": lambda in_chans=1, num_classes=10, input_size=28: MLP(in_chans * input_size * input_size, num_classes),
}
