"""Single-image inspector: one image through several models at once.

For every model: the top-5 classes, the input gradient (saliency map) of the loss of
its own prediction, and the smallest eps (L2 and Linf) at which PGD flips that
prediction, found by bisection on eps.

The saliency map is the gradient of the cross-entropy of the model's clean prediction
with respect to the input pixels. Tsipras et al. (2019), "Robustness May Be at Odds
with Accuracy" (Figure 2), and Ilyas et al. (2019), Section 4, show that a robust
model's input gradients line up with the object's edges while a standard model's look
like noise. ``edge_alignment`` puts a number on it: the Pearson correlation between
|gradient| and the Sobel edge magnitude of the image.

The smallest flipping eps: PGD (``explorer.attacks.pgd``, the one loop underneath) is
run at eps_max first; where it finds no flip there, the answer is inf ("PGD found no flip up to
eps_max": a failed search, not proof of robustness).
Otherwise the interval (lo, hi] = (0, eps_max] is halved ``iterations`` times, keeping
``hi`` at an eps that flips. The answer is ``hi``, within eps_max / 2**iterations of the
smallest flipping eps, provided PGD's success grows with eps (it does not have to: PGD
is a heuristic, and ``tests/test_inspector.py`` checks the answer against a brute-force
eps grid). Every image of a batch bisects at once with per-example eps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from explorer import attacks, objectives
from explorer.devices import device_lock
from explorer.experiments import Cancel, Progress
from explorer.experiments._common import (bytes_to_image, check_image_bytes, check_int, check_models, check_norm,
                                          image_to_bytes, load_models, resolve_device)
from explorer.experiments.attack_lab import eps_range

NORMS = ("l2", "linf")
MAX_ITERATIONS = 20
MAX_STEPS = 500
TOP_K = 5


def flips(model, x: torch.Tensor, reference: torch.Tensor, norm: str, eps: torch.Tensor, steps: int,
          seed: int = 0, cancel: Cancel = None) -> torch.Tensor:
    """Per example, does untargeted PGD (no random start, step 2.5 eps / steps) at radius
    ``eps`` [N] move the prediction off ``reference`` [N]?"""
    res = attacks.pgd(model, x, reference, norm, eps, steps, random_start=False, seed=seed, cancel=cancel)
    return res.success.cpu()


def minimal_eps(model, x: torch.Tensor, reference: torch.Tensor, norm: str, eps_max: float, steps: int = 20,
                iterations: int = 8, seed: int = 0, progress: Optional[Progress] = None,
                cancel: Cancel = None) -> torch.Tensor:
    """The smallest eps at which PGD flips each prediction, by bisection on eps.

    Args:
        model: [0, 1] images -> logits.
        x: images [N, C, H, W] in [0, 1].
        reference: the predictions to flip [N] (usually the model's own clean ones).
        norm: ``l2`` or ``linf``.
        eps_max: the largest radius tried; an image not flipped there gets ``inf``.
        steps: PGD steps per try.
        iterations: halvings of (0, eps_max]: the answer is within eps_max / 2**iterations.
        progress: called as ``progress(done, iterations + 1, {})`` after each PGD run.

    Returns:
        [N] float64 on the CPU: the smallest eps found to flip, or inf.
    """
    n = x.shape[0]
    hi = torch.full((n,), float(eps_max), dtype=torch.float64)
    lo = torch.zeros(n, dtype=torch.float64)
    flipped = flips(model, x, reference, norm, hi.to(x.device, x.dtype), steps, seed, cancel)
    if progress is not None:
        progress(1, iterations + 1, {})
    for i in range(iterations):
        mid = (lo + hi) / 2
        ok = flips(model, x, reference, norm, mid.to(x.device, x.dtype), steps, seed, cancel)
        hi = torch.where(ok, mid, hi)
        lo = torch.where(ok, lo, mid)
        if progress is not None:
            progress(i + 2, iterations + 1, {})
    return torch.where(flipped, hi, torch.full_like(hi, math.inf))


def input_gradient(model, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d CE(model(x), labels) / dx, [N, C, H, W] (no parameter gradients are taken)."""
    x = x.detach().requires_grad_(True)
    loss = objectives.cross_entropy(model, labels)(x)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return grad.detach()


def sobel_magnitude(image: np.ndarray) -> np.ndarray:
    """Edge magnitude of a [C, H, W] image (channel mean), [H, W], with the Sobel filter."""
    g = np.asarray(image, dtype=np.float64).mean(0)
    p = np.pad(g, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return np.hypot(gx, gy)


def edge_alignment(saliency: np.ndarray, image: np.ndarray) -> float:
    """Pearson correlation of |saliency| (summed over channels) with the image's Sobel edges."""
    a = np.abs(np.asarray(saliency, dtype=np.float64)).sum(0).ravel()
    b = sobel_magnitude(image).ravel()
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


@dataclass(frozen=True)
class Config:
    """One inspection.

    Attributes:
        models: zoo names of one dataset (one input size and label space).
        image, image_shape: the image as float32 bytes of shape (C, H, W) in [0, 1]
            (build with ``Config.for_image``).
        label: the true class when known (shown, not used: each model's own clean
            prediction is what PGD flips and what the saliency map explains).
        norms: ``l2`` and/or ``linf``.
        eps_max: the largest radius per norm, in the order of ``norms``; None for the
            top of the attack lab's eps slider for the dataset.
        steps: PGD steps per try.
        iterations: bisection halvings.
        seed, device: as elsewhere.
    """

    models: tuple[str, ...]
    image: bytes
    image_shape: tuple[int, int, int]
    label: Optional[int] = None
    norms: tuple[str, ...] = NORMS
    eps_max: Optional[tuple[float, ...]] = None
    steps: int = 20
    iterations: int = 8
    seed: int = 0
    device: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "models", check_models(self.models))
        object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        norms = (self.norms,) if isinstance(self.norms, str) else tuple(self.norms)
        norms = tuple(check_norm(n) for n in norms)
        if len(set(norms)) != len(norms):
            raise ValueError(f"norms must not repeat, got {norms!r}")
        object.__setattr__(self, "norms", norms)
        check_image_bytes("image", self.image, self.image_shape)
        if self.eps_max is not None:
            eps = tuple(float(e) for e in self.eps_max)
            if len(eps) != len(norms) or not all(math.isfinite(e) and e > 0 for e in eps):
                raise ValueError(f"eps_max must be one finite number > 0 per norm {norms}, got {self.eps_max!r}")
            object.__setattr__(self, "eps_max", eps)
        check_int("steps", self.steps, 1, MAX_STEPS)
        check_int("iterations", self.iterations, 0, MAX_ITERATIONS)
        if self.label is not None:
            check_int("label", self.label, 0, 100_000)

    @classmethod
    def for_image(cls, image, models, **kwargs) -> "Config":
        image_bytes, shape = image_to_bytes(image)
        return cls(models=tuple(models) if not isinstance(models, str) else (models,), image=image_bytes,
                   image_shape=shape, **kwargs)

    def image_array(self) -> np.ndarray:
        return bytes_to_image(self.image, self.image_shape)

    def eps_limits(self, dataset: str) -> tuple[float, ...]:
        """eps_max per norm: the config's, or the attack lab's slider maximum for ``dataset``."""
        return self.eps_max if self.eps_max is not None else tuple(eps_range(dataset, n).maximum
                                                                   for n in self.norms)


@dataclass(frozen=True)
class ModelView:
    """One model's view of the image.

    Attributes:
        probs: softmax over all classes, [K] float32.
        saliency: input gradient of CE(own prediction), [C, H, W] float32.
        edge_alignment: correlation of |saliency| with the image's Sobel edges.
        min_eps: smallest flipping eps per norm (order of ``Result.norms``); inf = PGD found no flip up to eps_max.
        flipped_to: the class PGD reaches at ``min_eps`` per norm (None where it found none).
        norms: the norms of ``min_eps``.
    """

    model: str
    kind: str
    robust: bool
    class_names: tuple[str, ...]
    probs: np.ndarray
    saliency: np.ndarray
    edge_alignment: float
    min_eps: tuple[float, ...]
    flipped_to: tuple[Optional[int], ...]
    seconds: float

    @property
    def prediction(self) -> int:
        return int(self.probs.argmax())

    def top_k(self, k: int = TOP_K) -> list[tuple[int, float]]:
        idx = np.argsort(-self.probs, kind="stable")[:k]
        return [(int(i), float(self.probs[i])) for i in idx]

    norms: tuple[str, ...] = NORMS

    def eps(self, norm: str) -> float:
        """The smallest flipping eps for ``norm`` (inf: PGD found no flip up to eps_max)."""
        return self.min_eps[self.norms.index(norm)]


@dataclass(frozen=True)
class Result:
    original: np.ndarray
    label: Optional[int]
    views: tuple[ModelView, ...]
    norms: tuple[str, ...]
    eps_max: tuple[float, ...]
    steps: int
    iterations: int
    device: str
    seconds: float

    @property
    def precision(self) -> tuple[float, ...]:
        """The bisection's resolution per norm: eps_max / 2**iterations."""
        return tuple(e / 2 ** self.iterations for e in self.eps_max)

    def edge_summary(self) -> str:
        """Whether the robust models' input gradients follow the image's edges more than the standard
        ones' (Tsipras et al. 2019), in the edge alignments of this run (empty without one of each)."""
        standard = [v for v in self.views if not v.robust]
        robust = [v for v in self.views if v.robust]
        if not standard or not robust:
            return ""
        more = min(v.edge_alignment for v in robust) > max(v.edge_alignment for v in standard)
        listed = ", ".join(f"{v.model} {v.edge_alignment:.2f}" for v in self.views)
        return (f"Edge alignment here: {listed}; every robust model's gradient "
                f"{'follows the edges more than' if more else 'does not follow the edges more than'} every "
                f"standard model's.")

    def view(self, model: str) -> ModelView:
        for v in self.views:
            if v.model == model:
                return v
        raise KeyError(f"no view of {model!r}; models: {[v.model for v in self.views]}")

    def rows(self) -> list[dict]:
        """One row per model: prediction, edge alignment and the smallest flipping eps per norm."""
        out = []
        for v in self.views:
            row = {"model": v.model, "kind": v.kind, "prediction": v.class_names[v.prediction],
                   "confidence": float(v.probs.max()), "edge alignment": v.edge_alignment}
            for n, e in zip(self.norms, v.min_eps):
                row[f"min eps {n}"] = e
            out.append(row)
        return out


def work(config: Config) -> float:
    """Image-steps of the run (``explorer.experiments``' cost contract): a PGD run per bisection step and norm."""
    return float(len(config.models) * len(config.norms) * config.steps * (config.iterations + 1))


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Every model of ``config.models`` on the image: top classes, saliency, smallest flipping eps."""
    t_start = time.perf_counter()
    device = resolve_device(config.device)
    models = load_models(config.models, device, config.image_shape)
    eps_max = config.eps_limits(models[0].info.dataset)
    per_model = len(config.norms) * (config.iterations + 1)
    total = per_model * len(models)
    image = config.image_array()
    views = []
    with device_lock(device):
        x = torch.from_numpy(image)[None].to(device)
        for i, model in enumerate(models):
            t0 = time.perf_counter()
            with torch.no_grad():
                probs = model(x).float().softmax(1)[0]
            pred = probs.argmax()[None]
            grad = input_gradient(model, x, pred)[0].float().cpu().numpy()
            min_eps, flipped_to = [], []
            for j, norm in enumerate(config.norms):
                def norm_progress(step, _total, _metrics, offset=i * per_model + j * (config.iterations + 1),
                                  name=model.name):
                    if progress is not None:
                        progress(offset + step, total, {"model": name})

                e = float(minimal_eps(model, x, pred, norm, eps_max[j], config.steps, config.iterations,
                                      config.seed, norm_progress, cancel)[0])
                to = None
                if math.isfinite(e):
                    res = attacks.pgd(model, x, pred, norm, e, config.steps, random_start=False, seed=config.seed)
                    to = int(res.logits_adv.argmax(1)[0])
                min_eps.append(e)
                flipped_to.append(to)
            views.append(ModelView(
                model=model.name, kind=model.info.kind, robust=bool(model.info.robust),
                class_names=tuple(model.class_names), probs=probs.cpu().numpy().astype(np.float32),
                saliency=grad, edge_alignment=edge_alignment(grad, image), min_eps=tuple(min_eps),
                flipped_to=tuple(flipped_to), seconds=time.perf_counter() - t0, norms=config.norms))
    return Result(original=image, label=config.label, views=tuple(views), norms=config.norms,
                  eps_max=tuple(eps_max), steps=config.steps, iterations=config.iterations, device=str(device),
                  seconds=time.perf_counter() - t_start)
