"""Robust feature leakage (Goh's Distill comment).

Gabriel Goh, "Robust Feature Leakage", in the Distill discussion of Ilyas et al. (2019).
D_rand and D_det were meant to carry only non-robust features: their labels are the attack's
targets, so any robust feature should be useless for them. Goh checks how much robust
features leak anyway: a linear classifier restricted to robust features (the 10 weight
vectors of a robust linear CIFAR-10 classifier, L2 eps 0.25) trained on D_rand reaches 23.5%
on the real test set (above chance: some leakage), and on D_det 6.81% (below chance: the
robust features point to the true class, which D_det's labels shift).

Here: the robust features are the 10 weight vectors of a linear Fashion-MNIST classifier
adversarially trained here (L2 PGD through ``attacks.pgd``, eps ``robust_eps``); features
f(x) = W x + b, standardized; a linear head on f is trained on D_rand, D_det and, for
reference, the clean images, and tested on the real test set. The control trains the same head
on the unperturbed images with D_rand's (D_det's) labels: what it scores with no leakage at
all; leakage shows as accuracy above the control. D_rand draws t uniformly over all classes,
independent of y, as the paper does (``targets="uniform"``), so about 1/C of its labels equal y;
with ``targets="other"`` (the other classes only, our first shipped run) a head that sees only
the true class learns "anything but y" and its control sits near 0%, not at chance. The same with the weight vectors
of a standard linear classifier is the contrast. Each weight vector's usefulness and robust
usefulness (one class against the rest) come from ``linear_features.feature_numbers``, Goh's
closed form. D_rand / D_det are built from the zoo's standard model with the D_det recipe
(L2 eps 1.0), or read from folders that ``python -m explorer construct`` wrote.

The data are the source model's dataset. With ``cifar10-standard`` it runs on CIFAR-10, Goh's
own data, with the paper's D_rand / D_det (L2 eps 0.5, 100 steps of 0.1) and Goh's robust
linear classifier (L2 eps 0.25): ``Config.DEFAULTS``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import numpy as np
import torch
from torch import nn

from explorer import construct, zoo
from explorer.attacks import pgd
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.experiments import _discussion as D
from explorer.experiments.linear_features import feature_numbers
from explorer.train import fit_epoch

#: Goh's CIFAR-10 numbers (percent).
COMMENTER = {"rand": 23.5, "det": 6.81}
SETS = ("clean", "rand", "det")
NAMES = {"clean": "D (clean)", "rand": "D_rand", "det": "D_det"}


@dataclass(frozen=True)
class Config(D.ImageCounts, D.DatasetDefaults):
    """``eps``, ``steps``, ``step_size`` and ``robust_eps`` left at None take the source's
    dataset's row of ``DEFAULTS`` (``resolved``).

    Attributes:
        source: zoo model D_rand and D_det are built from; its dataset is the experiment's.
        n_train: training images D_rand / D_det are built from (None: all).
        eps, steps, step_size: their targeted L2 attack (step default 2.5 eps / steps).
        targets: D_rand's target rule: ``uniform`` over all classes (the paper's) or ``other``
            (the other classes only); see ``construct.Recipe.targets``.
        rand_path, det_path: prebuilt constructed datasets to use instead ("" builds them here).
        robust_eps: the robust linear model's L2 training eps.
        robust_images, linear_epochs: the linear models' training images and epochs.
        head_steps: full-batch Adam steps of the head on the 10 features.
        n_test: real test images (None: all).
        seed, device: as everywhere.
    """

    COUNTS: ClassVar[tuple[str, ...]] = ("n_train", "n_test", "robust_images")
    #: Per dataset. Fashion-MNIST: our D_det recipe (L2 1.0, 20 steps of 2.5 eps / steps) and the
    #: robust linear model at 0.5. CIFAR-10: the paper's D_rand / D_det (L2 0.5, 100 steps of 0.1)
    #: and Goh's robust linear classifier (L2 0.25).
    DEFAULTS: ClassVar[dict[str, dict]] = {
        "fashion-mnist": {"eps": 1.0, "steps": 20, "step_size": None, "robust_eps": 0.5},
        "cifar10": {"eps": 0.5, "steps": 100, "step_size": 0.1, "robust_eps": 0.25},
    }

    source: str = "fmnist-standard"
    n_train: Optional[int] = 2000
    eps: Optional[float] = None
    steps: Optional[int] = None
    step_size: Optional[float] = None
    targets: str = "uniform"
    rand_path: str = ""
    det_path: str = ""
    robust_eps: Optional[float] = None
    robust_images: Optional[int] = 10000
    linear_epochs: int = 10
    head_steps: int = 300
    n_test: Optional[int] = 2000
    seed: int = 0
    device: str = ""

    def __post_init__(self):
        self.check_counts()
        C.check_positive("eps", self.eps, allow_none=True)
        if self.steps is not None:
            C.check_int("steps", self.steps, 1, 10000)
        C.check_positive("step_size", self.step_size, allow_none=True)
        if self.targets not in construct.TARGETS:
            raise ValueError(f"targets must be one of {construct.TARGETS}, got {self.targets!r}")
        C.check_positive("robust_eps", self.robust_eps, allow_none=True)
        C.check_int("linear_epochs", self.linear_epochs, 1, 1000)
        C.check_int("head_steps", self.head_steps, 1, 100000)


@dataclass(frozen=True)
class Row:
    """A head on one feature set, trained on one dataset: real test accuracy (fraction), the
    control (the same labels on the unperturbed images: what the head gets with no leakage at
    all; None for clean or prebuilt sets) and the commenter's percent (None where Goh has none)."""

    features: str
    trained_on: str
    accuracy: float
    control: Optional[float]
    commenter: Optional[float]


@dataclass(frozen=True)
class Result:
    """Attributes:
        rows: (robust, standard) features x (clean, D_rand, D_det).
        linear: per linear model (robust, standard): clean and L2-robust test accuracy, and the
            mean usefulness / robust usefulness of its weight vectors (one class vs the rest).
        attack_success: D_rand / D_det targeted success on the source.
        targets: D_rand's target rule (a prebuilt D_rand's own); results saved before the rule
            was a choice lack it and were built with ``other``.
        provenance: ``D.provenance``: the dataset, the images' (train, test, the linear models'
            training images, prebuilt sets) and the source's sha256.
    """

    rows: tuple[Row, ...]
    linear: dict
    attack_success: dict
    n_train: dict
    n_test: int
    robust_eps: float
    seconds: float
    targets: str = "uniform"
    provenance: dict = field(default_factory=dict)


def train_linear(x: torch.Tensor, y: torch.Tensor, num_classes: int, eps: float, epochs: int, seed: int,
                 cancel: Cancel = None) -> nn.Linear:
    """A linear classifier on flat [0, 1] images; adversarially trained (L2 PGD, 7 steps) when eps > 0."""
    torch.manual_seed(seed)
    lin = nn.Linear(x[0].numel(), num_classes)
    model = nn.Sequential(nn.Flatten(), lin)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2)

    def adversary(xb, yb, _i):
        return pgd(model, xb, yb, "l2", eps, steps=7, random_start=True, keep_best=False, seed=None).x_adv

    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 1000003 + epoch))
        batches = ((x[perm[i:i + 128]], y[perm[i:i + 128]]) for i in range(0, len(x), 128))
        fit_epoch(model, opt, batches, lr_at=lambda _i: 1e-2, device=x.device,
                  adversary=adversary if eps > 0 else None, cancel=cancel, what="the linear model")
    lin.requires_grad_(False)
    return lin


def head_accuracy(feats_train: torch.Tensor, labels: torch.Tensor, feats_test: torch.Tensor, y_test: torch.Tensor,
                  num_classes: int, steps: int, seed: int) -> float:
    """A linear head on standardized features, full-batch Adam; accuracy on the test features."""
    mu, sd = feats_train.mean(0), feats_train.std(0).clamp_min(1e-6)
    a, b = (feats_train - mu) / sd, (feats_test - mu) / sd
    torch.manual_seed(seed)
    head = nn.Linear(a.shape[1], num_classes)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    fit_epoch(head, opt, itertools.repeat((a, labels), steps), lr_at=lambda _i: 0.05, device=a.device)
    with torch.no_grad():
        return float((head(b).argmax(1) == y_test).float().mean())


def weight_numbers(lin: nn.Linear, x: torch.Tensor, y: torch.Tensor, eps: float) -> tuple[float, float]:
    """Mean over classes of Goh's usefulness and L2 robust usefulness of each weight vector,
    class k against the rest (``linear_features.feature_numbers``)."""
    flat = x.flatten(1).double().numpy()
    xc = flat - flat.mean(0)
    sigma = xc.T @ xc / len(xc)
    useful, robust = [], []
    for k in range(lin.out_features):
        yy = np.where(y.numpy() == k, 1.0, -1.0)
        yy = yy - yy.mean()  # balance the one-vs-rest labels so usefulness is a correlation
        mean_yx = (yy[:, None] * xc).mean(0)
        u, r2, _, _ = feature_numbers(lin.weight[k].double().numpy(), sigma, mean_yx, eps, eps)
        useful.append(u)
        robust.append(r2)
    return float(np.mean(useful)), float(np.mean(robust))


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Build (or read) D_rand and D_det, train the robust and standard linear models, train a head
    on each model's 10 features for each dataset, test on the real test set."""
    t0 = time.perf_counter()
    config = config.resolved()
    device = C.resolve_device(config.device or None)
    dataset = config.dataset_id()
    x_tr, y_tr, names, where_tr = D.images(dataset, "train", config.n_train, config.seed)
    x_te, y_te, _, where_te = D.images(dataset, "test", config.n_test, config.seed)
    x_lin, y_lin, _, where_lin = D.images(dataset, "train", config.robust_images, config.seed + 1)
    image_sets = {"train": (where_tr, x_tr, y_tr), "test": (where_te, x_te, y_te), "linear": (where_lin, x_lin, y_lin)}
    phases = D.Phases(progress, 4)
    sets = {"clean": (x_tr, y_tr)}
    success, built_from = {}, {}
    targets = config.targets
    for kind in ("rand", "det"):
        path = config.rand_path if kind == "rand" else config.det_path
        built_from[kind] = path
        cb = phases.next(f"building {NAMES[kind]}")
        if path:
            ds = construct.load(path)
            sets[kind] = (ds.float_images(), ds.labels)
            m = construct.manifest(path)
            success[kind] = m.get("statistics", {}).get("attack_success_rate")
            if kind == "rand":
                targets = m["recipe"].get("targets") or targets
            image_sets[kind] = (path, *sets[kind])
            continue
        source = zoo.load(config.source, device=device)
        adv, t, ok = D.det_pgd(source, x_tr, y_tr, eps=config.eps, steps=config.steps, step_size=config.step_size,
                               kind=kind, seed=config.seed, targets=config.targets, progress=cb, cancel=cancel)
        sets[kind], success[kind] = (adv, t), float(ok.float().mean())
    rows, linear = [], {}
    for label, eps in (("robust", config.robust_eps), ("standard", 0.0)):
        lin = train_linear(x_lin, y_lin, len(names), eps, config.linear_epochs, config.seed, cancel=cancel)
        model = lambda z, lin=lin: lin(z.flatten(1))  # noqa: E731
        with torch.no_grad():
            correct = model(x_te).argmax(1) == y_te
            f_test = model(x_te)
            feats = {kind: model(sets[kind][0]) for kind in SETS}
            f_clean = model(x_tr)
        broken = pgd(model, x_te, y_te, "l2", config.robust_eps, steps=20, seed=config.seed).success
        useful, robust_useful = weight_numbers(lin, x_lin, y_lin, config.robust_eps)
        linear[label] = {"clean": float(correct.float().mean()), "robust": float((correct & ~broken).float().mean()),
                         "usefulness": useful, "robust_usefulness": robust_useful, "train_eps": float(eps)}
        for kind in SETS:
            acc = head_accuracy(feats[kind], sets[kind][1], f_test, y_te, len(names), config.head_steps, config.seed)
            control = None
            if kind != "clean" and len(sets[kind][1]) == len(y_tr) and not built_from[kind]:
                control = head_accuracy(f_clean, sets[kind][1], f_test, y_te, len(names), config.head_steps,
                                        config.seed)
            rows.append(Row(features=f"{label} linear features", trained_on=NAMES[kind], accuracy=acc, control=control,
                            commenter=COMMENTER.get(kind) if label == "robust" else None))
        cb = phases.next(f"{label} features")
        if cb is not None:
            cb(1, 1)
    return Result(rows=tuple(rows), linear=linear, attack_success=success,
                  n_train={k: len(v[1]) for k, v in sets.items()}, n_test=len(y_te),
                  robust_eps=config.robust_eps, seconds=time.perf_counter() - t0, targets=targets,
                  provenance=D.provenance(dataset, image_sets,
                                          [] if config.rand_path and config.det_path else [config.source]))
