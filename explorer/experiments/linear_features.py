"""Linear features: usefulness and robustness in closed form (Goh's Distill comment).

Gabriel Goh, "Two Examples of Useful, Non-Robust Features", in the Distill discussion
of Ilyas et al. (2019). For a class pair with labels y in {-1, +1} (y = +1 for
``class_a``) and centred data x (the pair's mean removed), a linear feature is

    f_a(x) = a^T x / ||a||_Sigma,    ||a||_Sigma = sqrt(a^T Sigma a),  Sigma = E[x x^T],

so E[f_a(x)^2] = 1. Its usefulness is E[y f_a(x)] (at most 1), and its robust
usefulness against perturbations ||delta|| <= eps is

    E[min_delta y f_a(x + delta)] = E[y f_a(x)] - eps ||a||_* / ||a||_Sigma,

with the dual norm ||.||_*: L2 for an L2 ball, L1 for an Linf ball (the clamp to the
image box is ignored, as in Goh's analysis; ``pgd_robust_usefulness`` checks the
formula with the one loop on images scaled into the box's interior, where the clamp is
inactive). The basis is the data's principal directions a_i (eigenvectors of Sigma,
the right singular vectors of the centred data), each signed so that its usefulness is
>= 0: high-variance directions are robust, low-variance ones are useful but not robust.

Two constructions of useful, non-robust features:

* ensemble: the normalized sum of sign(E[y a_i^T x]) a_i over the useful but non-robust
  directions (robust usefulness < 0 in the chosen norm);
* containment: normalized (1 - alpha) a_nonrobust + alpha a_robust, a robust-useful feature
  (the most robust-useful direction) with a *useless* non-robust direction added (the least
  useful of the non-robust directions, usefulness ~ 0): all of the usefulness comes from the
  robust part, while the non-robust part, which carries no information about y, makes the
  feature brittle. A non-robust feature "contains" a robust one.

Goh's plot puts each feature at (usefulness, non-robustness eps ||a||_* / ||a||_Sigma);
robust usefulness is the first minus the second. The Pareto frontier is the set of
basis directions that no other direction beats in both: more useful and less non-robust.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from explorer import data, objectives
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.optimize import optimize
from explorer.threat import make_threat

DATASETS = ("fashion-mnist", "cifar10")
DUAL = {"l2": "L2", "linf": "L1"}
ALPHAS = tuple(round(0.05 * i, 2) for i in range(21))


@dataclass(frozen=True)
class Config:
    """One class pair.

    Attributes:
        class_a, class_b: the pair; y = +1 for ``class_a``, -1 for ``class_b``.
        dataset: ``fashion-mnist`` (full training set when installed, else the bundled
            subset) or ``cifar10`` (Goh's truck vs frog is 9 vs 6).
        split: ``train`` or ``test``.
        per_class: at most this many images of each class (in order); None for all.
        n_directions: principal directions kept (largest variance first).
        eps_l2, eps_linf: the balls of the two robust usefulnesses.
        norm: the ball that decides robust / non-robust for the constructions and the frontier.
        alpha: the containment mixture shown as a feature.
        scale: images are mapped to 0.5 + scale * (x - 0.5) first (scale < 1 keeps the box's
            clamp inactive for small eps, for comparing with PGD).
    """

    class_a: int = 7
    class_b: int = 9
    dataset: str = "fashion-mnist"
    split: str = "train"
    per_class: Optional[int] = None
    n_directions: int = 100
    eps_l2: float = 0.5
    eps_linf: float = 0.02
    norm: str = "l2"
    alpha: float = 0.05
    scale: float = 1.0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {self.split!r}")
        C.check_int("class_a", self.class_a, 0, 9)
        C.check_int("class_b", self.class_b, 0, 9)
        if self.class_a == self.class_b:
            raise ValueError("class_a and class_b must differ")
        if self.per_class is not None:
            C.check_int("per_class", self.per_class, 2, 1_000_000)
        C.check_int("n_directions", self.n_directions, 1, 1 << 14)
        C.check_positive("eps_l2", self.eps_l2)
        C.check_positive("eps_linf", self.eps_linf)
        object.__setattr__(self, "norm", C.check_norm(self.norm))
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha!r}")
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must lie in (0, 1], got {self.scale!r}")

    def eps(self, norm: str | None = None) -> float:
        return self.eps_l2 if C.check_norm(norm or self.norm) == "l2" else self.eps_linf


@dataclass(frozen=True)
class Feature:
    """A linear feature f_a and its numbers.

    Attributes:
        direction: a / ||a||_2 as an image, [C, H, W] float32.
        usefulness: E[y f_a(x)].
        robust_l2, robust_linf: E[y f_a(x)] - eps ||a||_* / ||a||_Sigma for each ball.
        sigma_norm: ||a||_Sigma of the unit-L2 direction (the feature's standard deviation).
    """

    name: str
    direction: np.ndarray
    usefulness: float
    robust_l2: float
    robust_linf: float
    sigma_norm: float

    def robust(self, norm: str) -> float:
        return self.robust_l2 if C.check_norm(norm) == "l2" else self.robust_linf


@dataclass(frozen=True)
class Result:
    """The basis directions' numbers, the frontier and the two constructions.

    Attributes:
        directions: [n, C, H, W] principal directions (unit L2), signed to be useful.
        variance: [n] eigenvalues of Sigma (= ||a_i||_Sigma^2).
        usefulness, robust_l2, robust_linf: [n] for each direction.
        l1: [n] ||a_i||_1 (the Linf ball's dual norm).
        pareto: indices of the frontier directions (most useful for their non-robustness), by
            increasing usefulness.
        nonrobust: indices of the useful, non-robust directions (in ``norm``), the ensemble's members.
        ensemble: the ensemble feature (None when no direction is non-robust).
        containment: the mixture at ``alpha`` (None without both kinds of direction).
        containment_curve: rows alpha, usefulness, robust_l2, robust_linf for ALPHAS.
        robust_index, nonrobust_index: the two directions the containment mixes: the most
            robust-useful direction, and the least useful of the non-robust ones.
        mean: the pair's mean image, [C, H, W].
    """

    class_a: int
    class_b: int
    class_names: tuple[str, str]
    n_images: int
    images: str
    mean: np.ndarray
    directions: np.ndarray
    variance: np.ndarray
    usefulness: np.ndarray
    robust_l2: np.ndarray
    robust_linf: np.ndarray
    l1: np.ndarray
    pareto: np.ndarray
    nonrobust: np.ndarray
    ensemble: Optional[Feature]
    containment: Optional[Feature]
    containment_curve: tuple[dict, ...]
    robust_index: Optional[int]
    nonrobust_index: Optional[int]
    eps_l2: float
    eps_linf: float
    norm: str
    alpha: float
    scale: float
    seconds: float

    def robust(self, norm: Optional[str] = None) -> np.ndarray:
        """Robust usefulness of every basis direction in ``norm`` (default: the config's)."""
        return self.robust_l2 if C.check_norm(norm or self.norm) == "l2" else self.robust_linf

    def non_robustness(self, norm: Optional[str] = None) -> np.ndarray:
        """eps ||a_i||_* / ||a_i||_Sigma, what the ball takes off the usefulness."""
        return self.usefulness - self.robust(norm)

    def rows(self) -> list[dict]:
        """One plain dict per basis direction (the scatter's points)."""
        front = set(int(i) for i in self.pareto)
        members = set(int(i) for i in self.nonrobust)
        return [{"feature": f"a{i + 1}", "index": i, "variance": float(self.variance[i]),
                 "usefulness": float(self.usefulness[i]), "robust_l2": float(self.robust_l2[i]),
                 "robust_linf": float(self.robust_linf[i]), "robust": float(self.robust()[i]),
                 "non_robustness": float(self.usefulness[i] - self.robust()[i]),
                 "pareto": i in front, "non_robust": i in members}
                for i in range(len(self.usefulness))]

    def feature(self, index: int) -> Feature:
        """Basis direction ``index`` as a Feature."""
        return Feature(name=f"a{index + 1}", direction=self.directions[index],
                       usefulness=float(self.usefulness[index]), robust_l2=float(self.robust_l2[index]),
                       robust_linf=float(self.robust_linf[index]), sigma_norm=float(np.sqrt(self.variance[index])))


# --- data -------------------------------------------------------------------------------------

def pair_data(config: Config) -> tuple[torch.Tensor, torch.Tensor, tuple[str, str], str]:
    """The pair's images, scaled by ``config.scale`` around 0.5: (x [N, C, H, W] float32,
    y [N] in {-1, +1}, the two class names, where they came from)."""
    ds = C.offline_split(config.dataset, config.split)
    idx = []
    for c in (config.class_a, config.class_b):
        where = torch.nonzero(ds.labels == c).squeeze(1)
        idx.append(where if config.per_class is None else where[:config.per_class])
    if min(len(i) for i in idx) < 2:
        raise data.DataError(f"{ds.name} has fewer than 2 images of class {config.class_a} or {config.class_b}")
    order = torch.cat(idx).sort().values
    x = ds.float_images(order)
    x = 0.5 + config.scale * (x - 0.5)
    y = torch.where(ds.labels[order] == config.class_a, 1.0, -1.0)
    names = (ds.class_names[config.class_a], ds.class_names[config.class_b])
    return x, y, names, f"{len(order)} images of {ds.name}"


# --- the closed forms -----------------------------------------------------------------------

def feature_numbers(a: np.ndarray, sigma: np.ndarray, mean_yx: np.ndarray, eps_l2: float,
                    eps_linf: float) -> tuple[float, float, float, float]:
    """(usefulness, robust L2, robust Linf, ||a||_Sigma) of f_a, for flat ``a``.

    ``sigma`` is E[x x^T] of the centred data and ``mean_yx`` is E[y x].
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    s = float(np.sqrt(a @ sigma @ a))
    useful = float(a @ mean_yx) / s
    return useful, useful - eps_l2 * float(np.linalg.norm(a)) / s, useful - eps_linf * float(np.abs(a).sum()) / s, s


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of points that no other point beats in both x and y (maximizing both),
    ordered by increasing x."""
    order = np.lexsort((-y, -x))  # by x descending, ties by y descending
    front, best = [], -np.inf
    for i in order:
        if y[i] > best:
            front.append(int(i))
            best = y[i]
    return np.array(front[::-1], dtype=np.int64)


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Closed-form usefulness and robust usefulness of the principal directions and the constructions."""
    t0 = time.perf_counter()
    x, y, names, where = pair_data(config)
    shape = tuple(x.shape[1:])
    flat = x.flatten(1).double().numpy()
    yy = y.double().numpy()
    mean = flat.mean(0)
    xc = flat - mean
    sigma = xc.T @ xc / len(xc)
    mean_yx = (yy[:, None] * xc).mean(0)
    variance, vectors = np.linalg.eigh(sigma)
    order = np.argsort(variance)[::-1]
    # keep only directions with real variance (the numerical rank); the rest would divide by ~0
    keep = [i for i in order if variance[i] > 1e-9 * max(variance.max(), 1e-30)][:config.n_directions]
    variance, vectors = variance[keep], vectors[:, keep].T.copy()
    signs = np.where(vectors @ mean_yx < 0, -1.0, 1.0)
    vectors *= signs[:, None]
    sd = np.sqrt(variance)
    usefulness = vectors @ mean_yx / sd
    l1 = np.abs(vectors).sum(1)
    robust_l2 = usefulness - config.eps_l2 / sd
    robust_linf = usefulness - config.eps_linf * l1 / sd
    robust = robust_l2 if config.norm == "l2" else robust_linf
    if progress is not None:
        progress(1, 2, {})

    def make(name: str, a: np.ndarray) -> Feature:
        a = a / np.linalg.norm(a)
        u, r2, ri, s = feature_numbers(a, sigma, mean_yx, config.eps_l2, config.eps_linf)
        return Feature(name, a.reshape(shape).astype(np.float32), u, r2, ri, s)

    nonrobust = np.flatnonzero((usefulness > 0) & (robust < 0))
    ensemble = make("ensemble", vectors[nonrobust].sum(0)) if len(nonrobust) else None
    robust_ok = np.flatnonzero(robust >= 0)
    robust_index = int(robust_ok[np.argmax(robust[robust_ok])]) if len(robust_ok) else None
    # containment adds a useless non-robust direction to a robust one (Goh): the least useful direction
    # that is not robust (every direction is signed so that its usefulness is >= 0)
    brittle = np.flatnonzero(robust < 0)
    nonrobust_index = int(brittle[np.argmin(usefulness[brittle])]) if len(brittle) else None
    containment, curve = None, ()
    if robust_index is not None and nonrobust_index is not None:
        a_r, a_nr = vectors[robust_index], vectors[nonrobust_index]
        containment = make(f"containment (alpha {config.alpha:g})",
                           (1 - config.alpha) * a_nr + config.alpha * a_r)
        rows = []
        for alpha in ALPHAS:
            f = make("", (1 - alpha) * a_nr + alpha * a_r)
            rows.append({"alpha": alpha, "usefulness": f.usefulness, "robust_l2": f.robust_l2,
                         "robust_linf": f.robust_linf})
        curve = tuple(rows)
    if progress is not None:
        progress(2, 2, {})
    return Result(class_a=config.class_a, class_b=config.class_b, class_names=names, n_images=len(yy),
                  images=where, mean=mean.reshape(shape).astype(np.float32),
                  directions=vectors.reshape(-1, *shape).astype(np.float32), variance=variance,
                  usefulness=usefulness, robust_l2=robust_l2, robust_linf=robust_linf, l1=l1,
                  pareto=pareto_front(usefulness, robust - usefulness), nonrobust=nonrobust, ensemble=ensemble,
                  containment=containment, containment_curve=curve, robust_index=robust_index,
                  nonrobust_index=nonrobust_index, eps_l2=float(config.eps_l2), eps_linf=float(config.eps_linf),
                  norm=config.norm, alpha=float(config.alpha), scale=float(config.scale),
                  seconds=time.perf_counter() - t0)


# --- the check with the one loop ----------------------------------------------------------------

def linear_feature(direction: np.ndarray, mean: np.ndarray, sigma_norm: float):
    """f_a as a torch function of [N, C, H, W] images: a^T (x - mean) / ||a||_Sigma, [N]."""
    a = torch.as_tensor(np.asarray(direction, dtype=np.float32)).flatten()
    mu = torch.as_tensor(np.asarray(mean, dtype=np.float32)).flatten()
    return lambda x: (x.flatten(1) - mu.to(x)) @ a.to(x) / sigma_norm


def pgd_robust_usefulness(feature: Feature, mean: np.ndarray, x: torch.Tensor, y: torch.Tensor, norm: str,
                          eps: float, steps: int = 10) -> float:
    """E[min_{||delta|| <= eps} y f_a(x + delta)] estimated with PGD (the one loop, the
    threat model's [0, 1] clamp included): the number the closed form predicts when
    the clamp is inactive."""
    f = linear_feature(feature.direction, mean, feature.sigma_norm)
    y = y.to(x)
    loss = objectives.Objective(lambda z: y * f(z), "y * f_a")
    res = optimize(loss, x, make_threat(norm, eps), steps, maximize=False, keep_best=True)
    return float(res.loss.double().mean())
