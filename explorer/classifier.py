"""Classifier: the one model type every experiment uses.

[0, 1] NCHW float images in, logits out; normalization lives inside. Frozen at
construction (``eval()``, ``requires_grad_(False)``) and never mutated afterwards, so
many sessions can share one instance. ``features(x, layers)`` returns named layer
outputs: from the network itself when it provides ``forward_intermediates``, else
through forward hooks that exist only inside the call, record only for the calling
thread, and are always removed.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from torch import nn


@dataclass(frozen=True)
class ClassifierInfo:
    """What a Classifier knows about itself (a view of its zoo record)."""

    name: str
    dataset: str
    class_names: tuple[str, ...]
    input_size: tuple[int, int, int]  # C, H, W
    robust: bool = False
    train_norm: str | None = None  # "l2" / "linf" for robust models
    train_eps: float | None = None
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        if not self.robust:
            return "standard"
        return f"robust ({self.train_norm} eps {self.train_eps:g})"


class Classifier(nn.Module):
    """A frozen image classifier.

    Args:
        net: the network; takes normalized inputs.
        info: name, dataset, class names, input size, standard/robust.
        mean, std: per-channel normalization applied inside ``forward``.
        layers: public layer name -> module path inside ``net``, in network order.
            For nets with ``forward_intermediates`` the names are passed through.
        device: where to put it.
        channels_last: use channels-last memory format (faster convs on CPU and GPU).
    """

    def __init__(self, net: nn.Module, info: ClassifierInfo, mean: Sequence[float], std: Sequence[float],
                 layers: Mapping[str, str] | None = None, device: torch.device | str = "cpu",
                 channels_last: bool = False):
        super().__init__()
        c = info.input_size[0]
        if len(mean) != c or len(std) != c:
            raise ValueError(f"mean/std need {c} channels, got {len(mean)}/{len(std)}")
        self.net = net
        self.info = info
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1))
        self._native = hasattr(net, "forward_intermediates") and hasattr(net, "stage_names")
        if layers is None:
            layers = {n: n for n in net.stage_names} if self._native else {}
        self.layers: dict[str, str] = dict(layers)
        modules = dict(net.named_modules())
        for name, path in self.layers.items():
            if not self._native and path not in modules:
                raise KeyError(f"layer {name!r} -> {path!r} is not a module of {type(net).__name__}")
        self.channels_last = channels_last
        self.to(device)
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.eval()
        self.requires_grad_(False)

    # --- frozen ---------------------------------------------------------------
    def train(self, mode: bool = True):
        if mode:
            raise RuntimeError("a Classifier is frozen: it never switches to train mode")
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    @property
    def layer_names(self) -> list[str]:
        """Named layers in network order (the layer-robustness page plots these)."""
        return list(self.layers)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(f"{self.name} expects [N, {self.mean.shape[1]}, H, W] images, got {tuple(x.shape)}")
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))

    def features(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Outputs of ``layers`` (public names) for the [0, 1] images ``x``.

        Runs only as far into the network as needed when the network supports it.
        """
        layers = list(layers)
        unknown = [l for l in layers if l not in self.layers]
        if unknown:
            raise KeyError(f"{self.name} has no layer(s) {unknown}; it has {self.layer_names}")
        if self._native:
            out = self.net.forward_intermediates(self.normalize(x), [self.layers[l] for l in layers])
            return {l: out[self.layers[l]] for l in layers}
        with self._capture(layers) as store:
            self.net(self.normalize(x))
        missing = [l for l in layers if l not in store]
        if missing:
            raise RuntimeError(f"layers {missing} did not run in the forward pass of {self.name}")
        return {l: store[l] for l in layers}

    def feature_fn(self, layer: str):
        """``x -> features(x, [layer])[layer]``, handy for objectives."""
        return lambda x: self.features(x, [layer])[layer]

    @contextlib.contextmanager
    def _capture(self, layers: Sequence[str]):
        owner = threading.get_ident()
        store: dict[str, torch.Tensor] = {}
        modules = dict(self.net.named_modules())
        handles = []

        def make_hook(public: str):
            def hook(_module, _inp, output):
                if threading.get_ident() == owner:  # other threads' forwards are not ours
                    store[public] = output

            return hook

        try:
            for l in layers:
                handles.append(modules[self.layers[l]].register_forward_hook(make_hook(l)))
            yield store
        finally:
            for h in handles:
                h.remove()

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Softmax probabilities, in batches, on the classifier's device; CPU out."""
        outs = []
        for i in range(0, x.shape[0], batch_size):
            outs.append(self(x[i:i + batch_size].to(self.device)).float().softmax(1).cpu())
        return torch.cat(outs) if outs else torch.empty(0, len(self.class_names))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, dataset={self.info.dataset!r}, {self.info.kind}"
