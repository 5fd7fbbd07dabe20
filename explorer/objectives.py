"""Per-example objectives, small composable values in the style of lucent.

Each objective maps a batch of inputs [N, ...] to per-example losses [N]; they add
(``a + b``), scale (``0.5 * a``) and negate, and are what ``optimize`` consumes.

An objective may read named layers of classifiers (``Objective.reading``): it records which
layers of which network it needs, and a composite reads them all through ``read_layers``,
ONE forward pass per network, the way lucent's objectives share one hooked forward. So
``style + content + tv`` on one network costs one pass, not three.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

#: id(network) -> (network, the layer names read from it, in first-requested order).
Reads = dict[int, tuple[object, tuple[str, ...]]]
#: id(network) -> that network's layer outputs by name, for one input batch.
Readings = dict[int, dict[str, torch.Tensor]]


def merge_reads(*reads: Reads) -> Reads:
    """The union of several objectives' reads: per network, every layer once, in first-requested order."""
    out: Reads = {}
    for r in reads:
        for key, (model, layers) in r.items():
            known = out[key][1] if key in out else ()
            out[key] = (model, tuple(dict.fromkeys((*known, *layers))))
    return out


def read_layers(reads: Reads, x: torch.Tensor) -> Readings:
    """The feature accessor: every requested layer of each network from ONE forward pass of it
    (``model.features(x, layers)``, e.g. ``Classifier.features``)."""
    return {key: model.features(x, list(layers)) for key, (model, layers) in reads.items()}


class Objective:
    """A per-example loss ``x -> [N]`` that composes with ``+``, ``-`` and scalars.

    Args:
        fn: ``x -> [N]`` (an objective that reads no layers, or reads them itself).
        name: for ``repr``.
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str = "objective"):
        self.name = name
        self.reads: Reads = {}
        self._of: Callable[[torch.Tensor, Readings], torch.Tensor] = lambda x, _readings: fn(x)

    @classmethod
    def reading(cls, model, layers: Sequence[str],
                fn: Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor], name: str) -> "Objective":
        """An objective of ``model``'s ``layers``: ``fn(outputs by layer name, x) -> [N]``; in a
        composite the outputs come from the one shared forward pass of ``model``."""
        key = id(model)
        return cls._made(name, {key: (model, tuple(dict.fromkeys(layers)))}, lambda x, got: fn(got[key], x))

    @classmethod
    def _made(cls, name: str, reads: Reads, of: Callable[[torch.Tensor, Readings], torch.Tensor]) -> "Objective":
        obj = cls.__new__(cls)
        obj.name, obj.reads, obj._of = name, reads, of
        return obj

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._of(x, read_layers(self.reads, x))

    def __add__(self, other: "Objective") -> "Objective":
        return Objective._made(f"({self.name} + {other.name})", merge_reads(self.reads, other.reads),
                               lambda x, got: self._of(x, got) + other._of(x, got))

    def __sub__(self, other: "Objective") -> "Objective":
        return Objective._made(f"({self.name} - {other.name})", merge_reads(self.reads, other.reads),
                               lambda x, got: self._of(x, got) - other._of(x, got))

    def __mul__(self, k: float) -> "Objective":
        return Objective._made(f"{k} * {self.name}", self.reads, lambda x, got: k * self._of(x, got))

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return Objective._made(f"-{self.name}", self.reads, lambda x, got: -self._of(x, got))

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def evaluate(parts: Mapping[str, Objective], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each named objective of ``parts`` on ``x``, [N] each, all from one read of the layers they
    need (a loss whose terms are kept apart, e.g. for their histories, still costs one pass)."""
    got = read_layers(merge_reads(*(p.reads for p in parts.values())), x)
    return {name: p._of(x, got) for name, p in parts.items()}


def cross_entropy(model: Callable, labels: torch.Tensor) -> Objective:
    """Cross-entropy of ``model(x)`` against ``labels``, per example (maximize to attack,
    minimize toward a target class)."""
    return Objective(lambda x: F.cross_entropy(model(x), labels, reduction="none"), "cross_entropy")


def margin(model: Callable, labels: torch.Tensor) -> Objective:
    """Carlini-Wagner margin: best other logit minus the logit of ``labels``."""

    def fn(x):
        logits = model(x)
        true = logits.gather(1, labels[:, None]).squeeze(1)
        other = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), -torch.inf).amax(1)
        return other - true

    return Objective(fn, "margin")


def class_logit(model: Callable, classes: torch.Tensor) -> Objective:
    """The logit of ``classes`` (class synthesis maximizes it)."""
    return Objective(lambda x: model(x).gather(1, classes[:, None]).squeeze(1), "class_logit")


def nontransferable(model: Callable, targets: torch.Tensor, ensemble, labels: torch.Tensor) -> Objective:
    """Nakkiran's non-transferable targeted attack (Distill discussion of Ilyas et al. 2019,
    "Adversarial Examples are Just Bugs, Too"): ``CE(model(x), targets) + mean_i CE(f_i(x), labels)``
    over the ``ensemble`` f_i; minimize it: ``model`` moves to the target while every other model
    keeps the true label."""
    ensemble = list(ensemble)
    if not ensemble:
        raise ValueError("the non-transferable attack needs at least one ensemble model")
    keep = cross_entropy(ensemble[0], labels)
    for other in ensemble[1:]:
        keep = keep + cross_entropy(other, labels)
    obj = cross_entropy(model, targets) + (1.0 / len(ensemble)) * keep
    obj.name = "nontransferable"
    return obj


def representation_match(features: Callable, target: torch.Tensor) -> Objective:
    """``||g(z) - g(x)||_2 / ||g(x)||_2`` with ``target = g(x)`` (Ilyas et al. 2019, the
    D_R / D_NR construction; minimize it)."""
    target = target.detach().flatten(1)
    denom = target.norm(dim=1).clamp_min(1e-12)
    return Objective(lambda z: (features(z).flatten(1) - target).norm(dim=1) / denom,
                     "representation_match")


def layer_deviation(features: Callable, reference: torch.Tensor) -> Objective:
    """``||f(x') - f(x)||_2`` with ``reference = f(x)`` (the authors' layer-robustness
    numerator; maximize it inside the ball)."""
    reference = reference.detach().flatten(1)
    return Objective(lambda z: (features(z).flatten(1) - reference).norm(dim=1), "layer_deviation")


def activation(features: Callable, unit: int | torch.Tensor) -> Objective:
    """Mean activation of channel (or coordinate) ``unit`` of a layer (feature visualization)."""

    def fn(x):
        out = features(x)
        idx = torch.as_tensor(unit, device=out.device).expand(out.shape[0])
        sel = out[torch.arange(out.shape[0], device=out.device), idx]
        return sel.flatten(1).mean(1) if sel.ndim > 1 else sel

    return Objective(fn, "activation")


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """Gram matrix of [N, C, H, W] features, divided by its element count C*H*W
    (Gatys et al.; Nakano's normalization)."""
    n, c = f.shape[:2]
    flat = f.reshape(n, c, -1)
    return flat @ flat.transpose(1, 2) / flat[0].numel()


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation per example (mean absolute neighbour difference)."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().flatten(1).mean(1)
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().flatten(1).mean(1)
    return dh + dw


def content_distance(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-example mean squared difference of a layer's output from the content image's
    ``target`` (Gatys et al. 2016, Eq. 1, a mean instead of half a sum); [N]."""
    return (features - target.detach()).pow(2).flatten(1).mean(1)


def style_distance(features: dict[str, torch.Tensor], target_grams: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over the layers of ``target_grams`` of the per-example mean squared difference
    between ``gram_matrix(features[layer])`` and the style image's Gram matrix (Gatys et al.
    2016, Eqs. 3-5, with equal layer weights; Grams divided by their element count, as Nakano
    does); [N]."""
    if not target_grams:
        raise ValueError("style_distance needs at least one layer")
    total = 0
    for layer, target in target_grams.items():
        total = total + (gram_matrix(features[layer]) - target.detach()).pow(2).flatten(1).mean(1)
    return total


def content(model, layer: str, target: torch.Tensor) -> Objective:
    """``content_distance`` of ``model``'s ``layer`` from ``target``: the style-transfer content
    loss (minimize it)."""
    return Objective.reading(model, [layer], lambda out, _x: content_distance(out[layer], target), "content")


def style(model, target_grams: dict[str, torch.Tensor]) -> Objective:
    """``style_distance`` of ``model``'s layers (the keys of ``target_grams``) from the style
    image's Gram matrices: the style loss (minimize it)."""
    return Objective.reading(model, list(target_grams), lambda out, _x: style_distance(out, target_grams), "style")


def tv() -> Objective:
    """``total_variation`` of the input itself (a smoothness prior; minimize it)."""
    return Objective(total_variation, "tv")
