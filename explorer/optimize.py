"""THE projected-gradient loop. PGD, representation inversion, feature visualization,
layer robustness and dataset construction all optimize inputs through ``optimize``.

The loop follows the MadryLab ``robustness`` attacker: per-example losses, a threat
model that steps and projects, random restarts, and keep-the-best (``use_best``):
per example it returns the iterate with the best loss seen, including one evaluation
after the last step. Across restarts the best loss wins, unless the caller gives a
``success`` test (PGD: the example is misclassified, or a targeted attack reached its
target): then, as in MadryLab's attacker, a restart whose result succeeds replaces the one
kept (a later success replaces an earlier one) and the best loss decides only among
examples where no restart succeeded. Gradients are taken only for the input with
``torch.autograd.grad``; nothing is ever written into a model's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from explorer.threat import Threat

LossFn = Callable[[torch.Tensor], torch.Tensor]
#: ``progress(step, total, metrics)``: called after each step of a loop or job.
Progress = Callable[[int, int, dict], None]
#: ``cancel()``: checked between steps; True stops the run with ``Cancelled``.
Cancel = Optional[Callable[[], bool]]


class Cancelled(RuntimeError):
    """Raised when the cancel check asks the loop to stop."""


@dataclass
class OptimizeResult:
    """What the loop found.

    Attributes:
        x: best iterate per example, [N, ...].
        loss: the loss of that iterate, [N].
        history: loss of every evaluated iterate, [restarts, steps + 1, N] (CPU).
        steps_run: steps taken over all restarts.
    """

    x: torch.Tensor
    loss: torch.Tensor
    history: torch.Tensor
    steps_run: int


def optimize(
    loss_fn: LossFn,
    x0: torch.Tensor,
    threat: Threat,
    steps: int,
    step_size: float | torch.Tensor | None = None,
    *,
    maximize: bool = True,
    random_start: bool = False,
    restarts: int = 1,
    keep_best: bool = True,
    success: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    x_init: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    progress: Optional[Progress] = None,
    cancel: Cancel = None,
) -> OptimizeResult:
    """Maximize (or minimize) a per-example loss over the threat model around ``x0``.

    Args:
        loss_fn: maps a batch [N, ...] to per-example losses [N].
        x0: the clean inputs in [0, 1]; the ball is centred on them.
        threat: the threat model (step / project / random start).
        steps: gradient steps per restart (>= 0).
        step_size: a number or [N] tensor; default ``threat.default_step_size(steps)``.
        maximize: ascend the loss (an attack) or descend it (targeted, inversion).
        random_start: start each restart at ``threat.random_start(x0)``.
        restarts: independent runs; per example the best over all of them is kept (see ``success``).
        keep_best: return the best iterate per example of each restart; otherwise its last one.
        success: across restarts, a per-example test [N] bool of a restart's result (e.g. "the
            model misclassifies it"): a restart whose result succeeds replaces the one kept, a later
            success an earlier one (MadryLab's rule); where no restart succeeds the best loss wins.
            None (inversion, feature visualization, layer robustness): the best loss always wins.
            Evaluated once per restart, and only when ``restarts > 1``.
        x_init: a start point other than ``x0`` (projected first), e.g. another image.
        generator: RNG for the random starts, for reproducible runs.
        progress: called as ``progress(step, total, {"loss": mean loss})`` after each step (the
            only host-device sync inside the loop, and only when given).
        cancel: checked between steps; when it returns True the loop raises ``Cancelled``.

    Returns:
        The best (or last) iterate and its loss, and the full loss history.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    if step_size is None:
        step_size = threat.default_step_size(steps)
    x0 = x0.detach()
    sign = 1.0 if maximize else -1.0
    total = steps * restarts
    shape = (-1, *([1] * (x0.ndim - 1)))
    kept_x, kept_score, kept_ok = x0.clone(), None, None  # over restarts; score = sign * loss
    # on the device: one copy to the host at the end, not a host-device sync per step
    history = torch.empty(restarts, steps + 1, x0.shape[0], device=x0.device)
    done = 0

    for r in range(restarts):
        best_x = x0.clone()  # this restart's best (or last) iterate and its score
        best_loss = torch.full((x0.shape[0],), -torch.inf, device=x0.device)
        if x_init is not None:
            x = threat.project(x_init.detach().to(x0), x0)
        elif random_start:
            x = threat.random_start(x0, generator)
        else:
            x = x0.clone()
        for t in range(steps + 1):
            last = t == steps
            x = x.detach().requires_grad_(not last)
            with torch.set_grad_enabled(not last):
                loss = loss_fn(x)
                if loss.shape != (x0.shape[0],):
                    raise ValueError(f"loss_fn must return one loss per example, got shape {tuple(loss.shape)}")
                if not last:
                    (grad,) = torch.autograd.grad(loss.sum() * sign, x)
            loss = loss.detach().float()
            history[r, t] = loss
            score = sign * loss
            better = score > best_loss if keep_best else torch.ones_like(score, dtype=torch.bool)
            if keep_best or last:
                if r == 0 and t == 0:
                    better = torch.ones_like(better)
                best_loss = torch.where(better, score, best_loss)
                best_x = torch.where(better.view(shape), x.detach(), best_x)
            if last:
                break
            with torch.no_grad():
                x = threat.project(threat.step(x.detach(), grad, step_size), x0)
            done += 1
            if progress is not None:
                progress(done, total, {"loss": float(loss.mean())})
            if cancel is not None and cancel():
                raise Cancelled(f"cancelled after {done} of {total} steps")
        if kept_score is None:  # the first restart
            kept_x, kept_score = best_x, best_loss
            if success is not None and restarts > 1:
                with torch.no_grad():
                    kept_ok = success(best_x).to(torch.bool).view(-1)
            continue
        if success is not None:
            with torch.no_grad():
                ok = success(best_x).to(torch.bool).view(-1)
            take = ok | (~kept_ok & (best_loss > kept_score))
            kept_ok = kept_ok | ok
        else:  # keep_best: the best loss over restarts (the first of equals); else the last restart
            take = best_loss > kept_score if keep_best else torch.ones_like(best_loss, dtype=torch.bool)
        kept_score = torch.where(take, best_loss, kept_score)
        kept_x = torch.where(take.view(shape), best_x, kept_x)
    return OptimizeResult(x=kept_x.detach(), loss=sign * kept_score, history=history.cpu(), steps_run=done)
