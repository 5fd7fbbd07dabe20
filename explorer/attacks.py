"""PGD (Madry et al., 2018) and robust-accuracy evaluation, on top of ``optimize``.

Conventions of the MadryLab ``robustness`` library: untargeted PGD maximizes the
cross-entropy of the true label; targeted PGD minimizes the cross-entropy of the
target; keep-the-best on by default; over random restarts, per example, a restart that
misclassifies (targeted: reaches the target) is kept, else the highest loss; evaluation uses
20 (or 100) steps of size 2.5 * eps / steps with a random start.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import torch

from explorer import devices, folding, objectives
from explorer.optimize import Progress, optimize
from explorer.threat import Threat, make_threat

# torch >= 2.5 has torch.OutOfMemoryError; torch.cuda.OutOfMemoryError is the same class
OutOfMemory = getattr(torch, "OutOfMemoryError", getattr(torch.cuda, "OutOfMemoryError", RuntimeError))


#: images per pass on a CPU: a PGD-20 of the bundled CNN on 256 images ran ~1.2x faster as two
#: passes of 128 (the activations stay in cache; bench/ measures it)
CPU_CHUNK = 128


class BatchHalved(RuntimeWarning):
    """Out of device memory during an attack: the batch was halved and the attack retried."""


@dataclass
class AttackResult:
    """Outcome of one PGD run.

    Attributes:
        x_adv: adversarial images [N, C, H, W] in [0, 1].
        perturbation: ``x_adv - x`` [N, C, H, W].
        target: the labels the attack pushed toward (targeted) or away from (untargeted), [N].
        loss_history: cross-entropy per evaluated iterate, [restarts, steps + 1, N].
        success: per example, did the prediction flip (untargeted) / reach the target.
        logits_adv: logits on ``x_adv``, [N, classes].
        targeted: whether the attack was targeted.
    """

    x_adv: torch.Tensor
    perturbation: torch.Tensor
    target: torch.Tensor
    loss_history: torch.Tensor
    success: torch.Tensor
    logits_adv: torch.Tensor
    targeted: bool


#: The D_rand target rules: ``uniform`` draws t uniformly over all C classes, independent of y
#: (Ilyas et al. 2019, Section 3.2: about 1/C of the targets equal y; the paper's argument that
#: robust features become uncorrelated with the label needs it); ``other`` draws t uniformly
#: over the C - 1 other classes (never y; what this repository used before, and what its first
#: shipped D_rand results were built with).
RANDOM_TARGETS = ("uniform", "other")


def choose_targets(labels: torch.Tensor, num_classes: int, mode: str | int | torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Target classes: ``"uniform"`` (uniform over all C classes, independent of y: the paper's
    D_rand; ``"random"`` is the same), ``"other"`` (uniform over the C - 1 other classes),
    ``"next"`` ((y + 1) mod C, the D_det rule), a class index, or a tensor of classes.

    ``"other"`` draws (y + k) mod C with k uniform in 1..C-1 from ``generator``, ``"uniform"``
    t uniform in 0..C-1: one draw per label either way."""
    if isinstance(mode, torch.Tensor):
        return mode.to(labels.device, torch.long).expand_as(labels).clone()
    if isinstance(mode, int):
        if not 0 <= mode < num_classes:
            raise ValueError(f"target class {mode} out of range 0..{num_classes - 1}")
        return torch.full_like(labels, mode)
    if mode == "next":
        return (labels + 1) % num_classes
    if mode in ("uniform", "random"):
        return torch.randint(0, num_classes, labels.shape, generator=generator).to(labels.device)
    if mode == "other":
        shift = torch.randint(1, num_classes, labels.shape, generator=generator).to(labels.device)
        return (labels + shift) % num_classes
    raise ValueError(f"unknown target mode {mode!r}: use 'uniform' (or 'random'), 'other', 'next', a class index "
                     "or a tensor")


def pgd(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    threat: Threat | str,
    eps: float | torch.Tensor | None = None,
    steps: int = 20,
    step_size: float | torch.Tensor | None = None,
    *,
    target: str | int | torch.Tensor | None = None,
    random_start: bool = True,
    restarts: int = 1,
    keep_best: bool = True,
    num_classes: int | None = None,
    seed: int | None = 0,
    progress: Optional[Progress] = None,
    cancel: Optional[Callable[[], bool]] = None,
    fold_batchnorm: bool = True,
    bf16: bool = False,
    max_batch: int | None = None,
) -> AttackResult:
    """Projected gradient descent in an L2 or Linf ball (Madry et al., 2018).

    Out of device memory (CUDA), the batch is halved and retried, half by half, as often
    as needed down to one image; each halving is announced with a ``BatchHalved`` warning
    (the halves' random starts and targets are drawn per half).

    Args:
        model: [0, 1] images -> logits (a Classifier, or any module in eval mode).
        x: clean images [N, C, H, W] in [0, 1].
        y: true labels [N].
        threat: a Threat, or ``"l2"`` / ``"linf"`` together with ``eps``.
        eps: radius (number or [N]) when ``threat`` is a name.
        steps: PGD steps (20 for evaluation).
        step_size: default 2.5 * eps / steps.
        target: None (untargeted) or ``"uniform"`` / ``"random"`` (all classes), ``"other"`` (the other
            classes), ``"next"``, a class, or a tensor (``choose_targets``).
        random_start, restarts, keep_best: as in ``optimize``. Across restarts, per example, a restart
            whose result is misclassified (targeted: reaches its target) replaces the one kept, a
            later one an earlier one (MadryLab's rule); where none is, the highest loss (targeted:
            the lowest) is kept.
        num_classes: needed for random/next targets when the model is not a Classifier.
        seed: seeds the random start and random targets (None: global RNG).
        fold_batchnorm: run the gradient passes on a twin of the model with BatchNorm folded
            into its convolutions (``folding.folded``: same logits, less work); the returned
            logits come from the same twin.
        bf16: bfloat16 autocast for the model's passes on CUDA or the CPU (``devices.autocast``;
            off by default: it may weaken the attack; bench/ states what it changes).
        max_batch: images per pass; None: ``CPU_CHUNK`` on a CPU, the whole batch elsewhere.
            Results do not depend on it, except that each pass after the first draws its
            random start from its own generator (seeded ``seed + first index``).
    """
    if isinstance(threat, str):
        if eps is None:
            raise ValueError("eps is required when the threat model is given by name")
        threat = make_threat(threat, eps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x = x.detach()
    y = y.to(x.device)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    targeted = target is not None
    if targeted:
        if num_classes is None:
            num_classes = len(model.class_names) if hasattr(model, "class_names") else None
        if num_classes is None and not isinstance(target, (torch.Tensor, int)):
            raise ValueError("num_classes is needed for random or next targets")
        labels = choose_targets(y, num_classes or 0, target, generator)
    else:
        labels = y
    fast = folding.folded(model) if fold_batchnorm else model
    if bf16 and x.device.type in ("cuda", "cpu"):
        net = fast

        def fast(z):
            with devices.autocast(z.device, True):
                return net(z).float()
    n = x.shape[0]
    if max_batch is not None and max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    chunk = max_batch or (CPU_CHUNK if x.device.type == "cpu" else n) or 1
    passes = -(-n // chunk)

    def attack(lo: int, hi: int) -> AttackResult:
        idx = slice(lo, hi)
        gen = generator if lo == 0 or seed is None else torch.Generator().manual_seed(seed + lo)
        step = step_size[idx] if isinstance(step_size, torch.Tensor) and step_size.ndim else step_size
        report = progress
        if progress is not None and passes > 1:  # one count over all passes
            k = lo // chunk
            report = lambda s, total, m: progress(k * total + s, passes * total, m)  # noqa: E731
        lab, true = labels[idx], y[idx]

        def fooled(z: torch.Tensor) -> torch.Tensor:  # across restarts, a restart that succeeds is kept
            pred = fast(z).argmax(1)
            return pred == lab if targeted else pred != true

        res = optimize(objectives.cross_entropy(fast, lab), x[idx], _threat_subset(threat, idx), steps,
                       step, maximize=not targeted, random_start=random_start, restarts=restarts,
                       keep_best=keep_best, success=fooled, generator=gen, progress=report, cancel=cancel)
        with torch.no_grad():
            logits = fast(res.x)
        pred = logits.argmax(1)
        success = pred == labels[idx] if targeted else pred != y[idx]
        return AttackResult(x_adv=res.x, perturbation=res.x - x[idx], target=labels[idx],
                            loss_history=res.history, success=success, logits_adv=logits, targeted=targeted)

    return _concat([_halving(attack, lo, min(lo + chunk, n)) for lo in range(0, n, chunk)])


def _threat_subset(threat: Threat, idx: slice) -> Threat:
    """The threat model of a slice of the batch (a per-example eps is sliced with it)."""
    eps = threat.eps
    if isinstance(eps, torch.Tensor) and eps.ndim > 0:
        threat = copy.copy(threat)
        threat.eps = eps[idx]
    return threat


def _halving(attack: Callable[[int, int], AttackResult], lo: int, hi: int) -> AttackResult:
    """``attack(lo, hi)``; out of device memory, the two halves one after the other (recursively)."""
    try:
        return attack(lo, hi)
    except OutOfMemory:
        if hi - lo <= 1:
            raise
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mid = lo + (hi - lo + 1) // 2
    note = f"out of device memory attacking {hi - lo} images: halved the batch to {mid - lo} and retried"
    warnings.warn(note, BatchHalved, stacklevel=3)
    return _concat([_halving(attack, lo, mid), _halving(attack, mid, hi)])


def _concat(parts: list[AttackResult]) -> AttackResult:
    """One result from the results of consecutive slices of a batch."""
    if len(parts) == 1:
        return parts[0]
    cat = lambda name, dim=0: torch.cat([getattr(p, name) for p in parts], dim=dim)  # noqa: E731
    return AttackResult(x_adv=cat("x_adv"), perturbation=cat("perturbation"), target=cat("target"),
                        loss_history=cat("loss_history", 2), success=cat("success"), logits_adv=cat("logits_adv"),
                        targeted=parts[0].targeted)


def robust_accuracy(
    model: Callable[[torch.Tensor], torch.Tensor],
    data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    threat: str,
    eps_list: Sequence[float],
    steps: int = 20,
    *,
    restarts: int = 1,
    random_start: bool = True,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: Optional[Callable[[int], None]] = None,
) -> dict[float, float]:
    """Accuracy under PGD for every eps in ``eps_list`` (eps 0 is clean accuracy).

    ``data`` yields (images, labels) batches. An example is robust at eps when its
    clean prediction is correct and PGD at eps does not flip it. The eps are attacked
    in increasing order and only the survivors of the smaller ball are attacked at
    the next one: an example broken inside a smaller ball is broken inside a larger
    one, so this is exact bookkeeping (and never weaker than attacking all).
    Returns {eps: accuracy in [0, 1]} and the count in ``n`` via ``robust_counts``.
    """
    counts, total = robust_counts(model, data, threat, eps_list, steps, restarts=restarts,
                                  random_start=random_start, device=device, seed=seed, progress=progress)
    if total == 0:
        raise ValueError("no data to evaluate")
    return {e: c / total for e, c in counts.items()}


def robust_counts(model, data, threat, eps_list, steps=20, *, restarts=1, random_start=True, device=None,
                  seed=0, progress=None) -> tuple[dict[float, int], int]:
    """Like ``robust_accuracy`` but returns ({eps: number robust}, number evaluated)
    so shards (e.g. DDP ranks) can be summed."""
    if any(e < 0 for e in eps_list):
        raise ValueError(f"eps must be >= 0, got {list(eps_list)}")
    device = torch.device(device) if device is not None else getattr(model, "device", torch.device("cpu"))
    order = sorted({float(e) for e in eps_list})
    correct = {e: 0 for e in order}
    total = 0
    for b, (xb, yb) in enumerate(data):
        xb, yb = xb.to(device), yb.to(device)
        with torch.no_grad():
            alive = model(xb).argmax(1) == yb
        for e in order:
            if e > 0 and alive.any():
                idx = alive.nonzero().squeeze(1)
                res = pgd(model, xb[idx], yb[idx], threat, e, steps, restarts=restarts,
                          random_start=random_start, seed=seed + b)
                alive = alive.clone()
                alive[idx] = ~res.success
            correct[e] += int(alive.sum())
        total += len(yb)
        if progress is not None:
            progress(len(yb))
    return correct, total
