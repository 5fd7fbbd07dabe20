"""Threat models: the set of allowed perturbations around a clean input x0.

As in the MadryLab ``robustness`` library (``attack_steps.py``): a threat model is a
small object with ``random_start``, ``step`` and ``project``. Every iterate is
clamped to the image box [0, 1]. ``eps`` may be a number or a per-example tensor.

* ``LinfBall``: step ``x + a * sign(g)``; project ``x - x0`` into [-eps, eps].
* ``L2Ball``: step ``x + a * g / ||g||_2`` per example; project each ``x - x0`` into
  the L2 ball of radius eps; random start on the sphere of radius eps.
* ``Unconstrained``: the normalized L2 step with no ball (representation inversion,
  feature visualization); only the [0, 1] clamp.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

_TINY = 1e-12


def _per_example(value: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a number or an [N] tensor to shape [N, 1, 1, ...] of ``like``."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(like.shape[0])
    if t.shape != (like.shape[0],):
        raise ValueError(f"per-example value must have shape ({like.shape[0]},), got {tuple(t.shape)}")
    return t.view(-1, *([1] * (like.ndim - 1)))


def _l2_norm(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.ndim - 1)))


class Threat:
    """Base class. Subclasses set ``name`` and implement the three operations."""

    name = "base"
    eps: float | torch.Tensor

    def random_start(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def step(self, x: torch.Tensor, grad: torch.Tensor, step_size: float | torch.Tensor) -> torch.Tensor:
        """One ascent step on the objective whose gradient is ``grad``."""
        raise NotImplementedError

    def project(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def distance(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Per-example size of ``x - x0`` in this threat model's norm."""
        raise NotImplementedError

    def default_step_size(self, steps: int) -> float | torch.Tensor:
        """The evaluation convention of the released models: 2.5 * eps / steps."""
        return 2.5 * self.eps / max(int(steps), 1)


class LinfBall(Threat):
    """L-infinity ball of radius ``eps`` (Madry et al., 2018)."""

    name = "linf"

    def __init__(self, eps: float | torch.Tensor):
        _check_eps(eps)
        self.eps = eps

    def random_start(self, x0, generator=None):
        eps = _per_example(self.eps, x0)
        noise = torch.rand(x0.shape, generator=generator, dtype=x0.dtype, device="cpu").to(x0.device)
        return (x0 + (2 * noise - 1) * eps).clamp(0, 1)

    def step(self, x, grad, step_size):
        return x + _per_example(step_size, x) * grad.sign()

    def project(self, x, x0):
        eps = _per_example(self.eps, x0)
        delta = torch.maximum(torch.minimum(x - x0, eps), -eps)
        return (x0 + delta).clamp(0, 1)

    def distance(self, x, x0):
        return (x - x0).flatten(1).abs().amax(dim=1)


class L2Ball(Threat):
    """L2 ball of radius ``eps`` with normalized-gradient steps (Madry et al., 2018)."""

    name = "l2"

    def __init__(self, eps: float | torch.Tensor):
        _check_eps(eps)
        self.eps = eps

    def random_start(self, x0, generator=None):
        eps = _per_example(self.eps, x0)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device="cpu").to(x0.device)
        direction = noise / _l2_norm(noise).clamp_min(_TINY)
        return (x0 + direction * eps).clamp(0, 1)

    def step(self, x, grad, step_size):
        return x + _per_example(step_size, x) * grad / _l2_norm(grad).clamp_min(_TINY)

    def project(self, x, x0):
        eps = _per_example(self.eps, x0)
        delta = x - x0
        scale = (eps / _l2_norm(delta).clamp_min(_TINY)).clamp(max=1.0)
        return (x0 + delta * scale).clamp(0, 1)

    def distance(self, x, x0):
        return (x - x0).flatten(1).norm(dim=1)


class Unconstrained(L2Ball):
    """No ball: normalized L2 steps, clamped to [0, 1] (inversion, visualization)."""

    name = "unconstrained"

    def __init__(self, eps: float | torch.Tensor = math.inf):
        self.eps = math.inf

    def random_start(self, x0, generator=None):
        return x0.clone()

    def project(self, x, x0):
        return x.clamp(0, 1)

    def default_step_size(self, steps):
        return 0.1


def _check_eps(eps: float | torch.Tensor) -> None:
    t = torch.as_tensor(eps)
    if t.numel() == 0 or not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"eps must be finite and >= 0, got {eps!r}")


THREATS: dict[str, Callable[..., Threat]] = {
    "linf": LinfBall,
    "l2": L2Ball,
    "unconstrained": Unconstrained,
}


BALLS = ("linf", "l2")


def _canonical(norm: str) -> str:
    key = str(norm).lower().replace("-", "").replace("_", "")
    return {"inf": "linf", "linfinity": "linf", "2": "l2"}.get(key, key)


def ball_norm(norm: str) -> str:
    """``linf`` or ``l2`` (accepts ``inf``, ``L-inf``, ``2``...); anything else is a ValueError."""
    key = _canonical(norm)
    if key not in BALLS:
        raise ValueError(f"norm must be one of {BALLS}, got {norm!r}")
    return key


def make_threat(norm: str, eps: float | torch.Tensor = math.inf) -> Threat:
    """Build a threat model by name: ``linf``, ``l2`` or ``unconstrained``."""
    key = _canonical(norm)
    if key not in THREATS:
        raise ValueError(f"unknown threat model {norm!r}; choose one of {sorted(THREATS)}")
    return THREATS[key](eps)


def eps_text(norm: str | None, eps: float | None) -> str:
    """A radius for people: ``4/255`` for Linf radii on the 1/255 grid (to 1e-4 of a step, so a radius
    typed as 0.0313725 reads 8/255) unless it is a round hundredth (Fashion-MNIST's 0.2 is 51/255 too,
    and reads 0.2), else 3 significant digits; ``-`` for no eps. The one formatting of eps (charts,
    pages, the zoo's model list)."""
    if eps is None:
        return "-"
    hundredth = abs(eps * 100 - round(eps * 100)) < 1e-9
    if norm == "linf" and eps > 0 and not hundredth and abs(eps * 255 - round(eps * 255)) < 1e-4:
        return f"{round(eps * 255)}/255"
    return f"{eps:.3g}"
