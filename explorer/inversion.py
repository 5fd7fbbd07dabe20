"""Representation inversion: find z whose representation g(z) matches g(x).

Ilyas et al. (2019), "Adversarial Examples Are Not Bugs, They Are Features", Section 3.1
and Appendix C: the robustified dataset D_R (and the non-robust D_NR) is built by
solving, for each training image x from a start z0 (another image, or noise),

    min_z ||g(z) - g(x)||_2 / ||g(x)||_2,

with g the penultimate representation of a robust (D_R) or standard (D_NR) model,
normalized L2 gradient steps and no ball (``threat.Unconstrained``; only the [0, 1]
clamp). Here that is ``objectives.representation_match`` through the one loop
(``optimize``), in stages of decreasing step size, each stage starting from the best
point of the one before. ``construct`` builds D_R / D_NR with it and the inversion view
(``experiments.inversion``) shows one image's inversion through each model.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from explorer import objectives
from explorer.optimize import Cancel, Progress, optimize
from explorer.threat import Unconstrained

__all__ = ["stage_steps", "invert"]


def stage_steps(steps: int, stages: int) -> tuple[int, ...]:
    """``steps`` split over ``stages`` as evenly as possible (earlier stages take the remainder)."""
    base, extra = divmod(steps, max(stages, 1))
    return tuple(base + (1 if k < extra else 0) for k in range(stages))


def invert(model, x: torch.Tensor, z0: torch.Tensor, layer: str, steps: Sequence[int],
           step_sizes: Sequence[float], progress: Optional[Progress] = None,
           cancel: Cancel = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Minimize ||g(z) - g(x)|| / ||g(x)|| over z from ``z0`` with normalized L2 steps and the
    [0, 1] clamp: ``steps[k]`` steps of ``step_sizes[k]`` per stage, each stage through
    ``optimize`` from the best point of the previous one.

    Args:
        model: a Classifier; g is its layer ``layer``.
        x: the images whose representation is matched, [N, C, H, W] on the model's device.
        z0: the start points, like ``x``.
        layer: a name in ``model.layer_names`` (``penultimate`` is the paper's).
        steps, step_sizes: one entry per stage (see ``stage_steps``).
        progress: ``progress(step, sum(steps), metrics)`` over all stages.
        cancel: checked between steps (raises ``optimize.Cancelled``).

    Returns:
        (best z [N, ...], its relative distance [N], history [sum(steps) + 1, N]).
    """
    if layer not in model.layer_names:
        raise ValueError(f"{model.name} has no layer {layer!r}; it has {model.layer_names}")
    g = model.feature_fn(layer)
    with torch.no_grad():
        target = g(x)
    loss = objectives.representation_match(g, target)
    total, done = sum(steps), 0
    z, best, history = z0, None, []
    for n, size in zip(steps, step_sizes):
        def stage_progress(step, _total, metrics, done=done):
            if progress is not None:
                progress(done + step, total, metrics)

        res = optimize(loss, z0, Unconstrained(), n, size, maximize=False, keep_best=True, x_init=z,
                       progress=stage_progress, cancel=cancel)
        history.append(res.history[0] if not history else res.history[0, 1:])
        z, best = res.x, res.loss
        done += n
    return z, best, torch.cat(history)
