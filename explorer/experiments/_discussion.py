"""Pieces the Distill-discussion experiments share (not an experiment itself).

The settings their Configs share (image counts, the D_det attack), small in-memory
training (``explorer.train``'s optimizers and training step, ``train.fit_epoch``, without
its files: cosine learning rate, one seeded permutation per epoch), the Fashion-MNIST
subsets every experiment draws, accuracy, D_det construction through
``construct.construct_batch``, progress split into phases, and the JSON form of a Result.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
import json
import math
import os
from pathlib import Path
from typing import Callable, ClassVar, Optional, Sequence

import numpy as np
import torch

from explorer import construct, data, zoo
from explorer.attacks import choose_targets
from explorer.classifier import Classifier, ClassifierInfo
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.train import Normalized, fit_epoch, make_optimizer
from explorer.zoo import build_architecture

# --- data -------------------------------------------------------------------------------------

def fmnist(split: str, n: Optional[int], seed: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...], str]:
    """``n`` images of the Fashion-MNIST ``split`` drawn by ``seed`` (None: all), in index order:
    (float images [n, 1, 28, 28], labels [n], class names, where they came from)."""
    ds = data.fashion_mnist(split)
    idx = construct.subset_indices(len(ds), n, seed)
    return ds.float_images(idx), ds.labels[idx].clone(), tuple(ds.class_names), f"{len(idx)} of {ds.name}"


def images(dataset: str, split: str, n: Optional[int], seed: int
           ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...], str]:
    """``fmnist`` for any dataset ``data.load_dataset`` takes (``fashion-mnist``, ``cifar10``,
    ``folder:ROOT`` ...): ``n`` images of ``split`` drawn by ``seed``, in index order."""
    if dataset == "fashion-mnist":
        return fmnist(split, n, seed)
    ds = data.load_dataset(dataset, split, progress=False)
    idx = construct.subset_indices(len(ds), n, seed)
    return ds.float_images(idx), ds.labels[idx].clone(), tuple(ds.class_names), f"{len(idx)} of {ds.name}"


class ImageCounts:
    """For discussion Configs whose ``COUNTS`` fields are image counts (None: every image):
    their check and the full-size variant (every image, and the ``FULL`` settings)."""

    COUNTS: ClassVar[tuple[str, ...]] = ("n_train", "n_test")
    FULL: ClassVar[dict] = {}

    def check_counts(self) -> None:
        for name in self.COUNTS:
            if getattr(self, name) is not None:
                C.check_int(name, getattr(self, name), 10, 60000)

    @classmethod
    def full(cls, **kw):
        """Every training and test image."""
        return cls(**{**{name: None for name in cls.COUNTS}, **cls.FULL, **kw})


@dataclass(frozen=True)
class AttackSettings(ImageCounts):
    """The settings shared by the experiments that attack a source model's test images and
    build its D_det (the targeted L2 attack, Ilyas et al. Section 3.2), optionally with
    Nakkiran's non-transferable attack kept off an ensemble.

    Attributes:
        source: zoo model attacked.
        n_train: clean training images (the images D_det is built from; None: all 60,000).
        n_attack: test images attacked for the success and transfer rates.
        n_test: real test images (None: all).
        eps, steps, step_size: the L2 attack (step default 2.5 eps / steps).
        epochs: training epochs of the models trained here.
        ensemble_arch, ensemble_size: the non-transferable attack's ensemble (his: 10).
        seed: image draws and training seeds.
        device: torch device ("" for the best one).
    """

    FULL: ClassVar[dict] = {"n_attack": 2000}

    source: str = "fmnist-standard"
    n_train: Optional[int] = 2000
    n_attack: int = 500
    n_test: Optional[int] = 2000
    eps: float = 2.0
    steps: int = 10
    step_size: Optional[float] = None
    epochs: int = 5
    ensemble_arch: str = "stage_cnn_tiny"
    ensemble_size: int = 3
    seed: int = 0
    device: str = ""

    def check_attack_settings(self) -> None:
        self.check_counts()
        C.check_int("n_attack", self.n_attack, 1, 10000)
        C.check_positive("eps", self.eps)
        C.check_int("steps", self.steps, 1, 10000)
        C.check_positive("step_size", self.step_size, allow_none=True)
        C.check_int("epochs", self.epochs, 1, 1000)

    @property
    def step(self) -> float:
        return self.step_size or 2.5 * self.eps / self.steps

    def load(self) -> tuple[torch.device, Classifier, tuple[torch.Tensor, torch.Tensor, tuple[str, ...]],
                            tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """(device, the source model, (training images, labels, class names), (test images,
        labels), (the first ``n_attack`` test images, labels))."""
        device = C.resolve_device(self.device or None)
        source = zoo.load(self.source, device=device)
        x_tr, y_tr, names, _ = fmnist("train", self.n_train, self.seed)
        x_te, y_te, _, _ = fmnist("test", self.n_test, self.seed)
        return device, source, (x_tr, y_tr, names), (x_te, y_te), (x_te[:self.n_attack], y_te[:self.n_attack])


# --- training ---------------------------------------------------------------------------------

def fit(arch: str, x: torch.Tensor, y: torch.Tensor, *, class_names: Sequence[str], epochs: int,
        seed: int, batch_size: int = 64, lr: float = 0.05, optimizer: str = "sgd", weight_decay: float = 5e-4,
        mean: Sequence[float] = data.FASHION_MNIST_MEAN, std: Sequence[float] = data.FASHION_MNIST_STD, name: str = "",
        keep: Sequence[int] = (), device: torch.device | str = "cpu", progress: Optional[Progress] = None,
        cancel: Cancel = None, schedule: str = "cosine",
        stop: Optional[Callable[[int, Classifier], bool]] = None, dataset: str = "fashion-mnist"
        ) -> dict[int, Classifier]:
    """Train a fresh ``arch`` on (x, y) in memory; the frozen Classifiers after the epochs in
    ``keep`` and after the last one, by epoch.

    ``explorer.train``'s optimizers and training step (``train.fit_epoch``), no augmentation:
    SGD (momentum 0.9, Nesterov) or Adam, cosine learning rate per step (``schedule="constant"``:
    ``lr`` throughout), weights seeded by ``seed``, one permutation per epoch from (seed, epoch).
    ``progress(step, total, {"loss", "acc"})`` after each batch, with that batch's loss and
    accuracy. ``stop(epoch, model)``, asked after every epoch, ends the run early when it returns
    True (that epoch is then the last one returned). ``mean``/``std`` (the normalization inside
    the model) and ``dataset`` (the Classifier's info) default to Fashion-MNIST's.
    """
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be cosine or constant, got {schedule!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if len(x) == 0:
        raise ValueError(f"{name or arch}: no training images")
    device = torch.device(device)
    c, h, w = (int(s) for s in x.shape[1:])
    torch.manual_seed(seed)
    net = build_architecture(arch, len(class_names), c, h)
    model = Normalized(net, mean, std).to(device)
    opt = make_optimizer(model.parameters(), optimizer, lr, momentum=0.9, weight_decay=weight_decay)
    per_epoch = math.ceil(len(x) / batch_size)
    total = epochs * per_epoch
    info = ClassifierInfo(name=name or arch, dataset=dataset, class_names=tuple(class_names),
                          input_size=(c, h, w))
    out: dict[int, Classifier] = {}
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 1000003 + epoch))
        batches = ((x[perm[i:i + batch_size]], y[perm[i:i + batch_size]]) for i in range(0, len(x), batch_size))
        first = epoch * per_epoch  # the step number of this epoch's first batch

        def after_batch(i, totals, first=first):
            if progress is not None:
                progress(first + i + 1, total, {"loss": totals.batch_loss, "acc": totals.batch_acc})

        def lr_at(i, first=first):  # cosine per step over the whole run, or constant
            if schedule == "constant":
                return lr
            return lr * 0.5 * (1 + math.cos(math.pi * (first + i) / total))

        fit_epoch(model, opt, batches, lr_at=lr_at, device=device, after_batch=after_batch, cancel=cancel,
                  what=name or arch)
        wanted = epoch + 1 in keep or epoch + 1 == epochs
        snapshot = Classifier(copy.deepcopy(net), info, mean, std, device=device) \
            if wanted or stop is not None else None  # frozen: a copy of the net, which trains on
        done = stop is not None and stop(epoch + 1, snapshot)
        if wanted or done:
            out[epoch + 1] = snapshot
        if done:
            break
    return out


def train(arch: str, x: torch.Tensor, y: torch.Tensor, **kw) -> Classifier:
    """``fit`` and return the model after the last epoch."""
    models = fit(arch, x, y, **kw)
    return models[max(models)]


# --- measuring --------------------------------------------------------------------------------

@torch.no_grad()
def predict(model: Callable, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted classes of ``model`` on ``x`` (on the CPU), [N]."""
    device = getattr(model, "device", torch.device("cpu"))
    return torch.cat([model(x[i:i + batch_size].to(device)).argmax(1).cpu()
                      for i in range(0, len(x), batch_size)]) if len(x) else torch.zeros(0, dtype=torch.long)


def accuracy(model: Callable, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` that ``model`` puts in class ``y``."""
    return float((predict(model, x) == y).float().mean()) if len(y) else float("nan")


# --- D_det ------------------------------------------------------------------------------------

def det_pgd(source: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int,
            step_size: Optional[float] = None, kind: str = "det", seed: int = 0, batch_size: int = 250,
            targets: str = "uniform", progress: Optional[Progress] = None, cancel: Cancel = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """D_det (or D_rand) of Ilyas et al. (Section 3.2) on (x, y) with ``construct.construct_batch``:
    targeted L2 PGD on ``source`` toward t = (y + 1) mod C (``det``) or, for ``rand``, t drawn by
    ``seed`` under the rule ``targets``: ``uniform`` over all C classes, independent of y (the
    paper's), or ``other`` (the other classes only); no random start, keep the best.
    Returns (images, targets t, whether ``source`` predicts t)."""
    step_size = step_size or 2.5 * eps / steps
    rule = targets if kind == "rand" else None
    recipe = construct.Recipe(kind=kind, source=getattr(source, "name", "source"), steps=steps,
                              step_sizes=(step_size,), eps=eps, targets=rule)
    num_classes = len(source.class_names)
    targets = choose_targets(y, num_classes, "next" if kind == "det" else recipe.targets,
                             torch.Generator().manual_seed(int(seed)))
    parts = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        built = construct.construct_batch(recipe, source, xb, yb, targets=targets[i:i + batch_size], cancel=cancel)
        parts.append(built)
        if progress is not None:
            progress(min(i + batch_size, len(x)), len(x), {})
    return (torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]),
            torch.cat([p.metric for p in parts]).bool())


# --- progress over phases ---------------------------------------------------------------------

class Phases:
    """Maps each phase's own ``progress(done, total)`` onto one bar of ``count`` phases."""

    def __init__(self, progress: Optional[Progress], count: int):
        self.progress, self.count, self.index = progress, max(int(count), 1), 0

    def next(self, label: str) -> Optional[Progress]:
        """The callback of the next phase, named ``label``."""
        k = self.index
        self.index += 1
        if self.progress is None:
            return None

        def cb(done: int, total: int, metrics: Optional[dict] = None) -> None:
            frac = min(done / max(total, 1), 1.0)
            self.progress(min(int((k + frac) * 1000), self.count * 1000), self.count * 1000, {"model": label})

        if k:  # a first call at 0 of 0 would start a CLI bar at -1
            cb(0, 1)
        return cb


# --- results as JSON --------------------------------------------------------------------------

def jsonable(value):
    """A Result (or any nest of dataclasses, numpy and tuples) as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    return value


# --- saved results ----------------------------------------------------------------------------

def results_dir():
    """Where the CLI writes and the page reads results: ``$EXPLORER_DISCUSSION_RESULTS``
    (default ``results/discussion`` under the working folder)."""
    return Path(os.environ.get("EXPLORER_DISCUSSION_RESULTS", "results/discussion"))


def read_results(module_name: str) -> Optional[dict]:
    """The JSON the CLI wrote for ``module_name`` (experiment, command, config, commenter, result),
    or None when there is none or it cannot be read."""
    path = results_dir() / f"{module_name}.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("result"), dict) else None
