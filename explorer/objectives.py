"""Per-example objectives, small composable values in the style of lucent.

Each objective maps a batch of inputs [N, ...] to per-example losses [N]; they add
(``a + b``), scale (``0.5 * a``) and negate, and are what ``optimize`` consumes.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


class Objective:
    """A per-example loss ``x -> [N]`` that composes with ``+``, ``-`` and scalars."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str = "objective"):
        self.fn = fn
        self.name = name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def __add__(self, other: "Objective") -> "Objective":
        return Objective(lambda x: self(x) + other(x), f"({self.name} + {other.name})")

    def __sub__(self, other: "Objective") -> "Objective":
        return Objective(lambda x: self(x) - other(x), f"({self.name} - {other.name})")

    def __mul__(self, k: float) -> "Objective":
        return Objective(lambda x: k * self(x), f"{k} * {self.name}")

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return Objective(lambda x: -self(x), f"-{self.name}")

    def __repr__(self) -> str:
        return f"Objective({self.name})"


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


def content(features: Callable, target: torch.Tensor) -> Objective:
    """``content_distance(features(x), target)``: the style-transfer content loss (minimize it)."""
    return Objective(lambda x: content_distance(features(x), target), "content")


def style(features: Callable[[torch.Tensor], dict[str, torch.Tensor]],
          target_grams: dict[str, torch.Tensor]) -> Objective:
    """``style_distance(features(x), target_grams)`` where ``features(x)`` returns the layers'
    outputs by name (``Classifier.features``): the style loss (minimize it)."""
    return Objective(lambda x: style_distance(features(x), target_grams), "style")
