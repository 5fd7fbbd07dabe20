"""Pieces the Distill-discussion experiments share (not an experiment itself).

The settings their Configs share (image counts, the D_det attack, per-dataset defaults), small
in-memory training (``explorer.train``'s optimizers and training step, ``train.fit_epoch``, without
its files: cosine learning rate, one seeded permutation per epoch), the dataset subsets every
experiment draws (Fashion-MNIST, CIFAR-10 ...), accuracy, D_det construction through
``construct.construct_batch``, progress split into phases, what a result rests on (dataset, image
and weights sha256), and the JSON form of a Result.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Callable, ClassVar, Optional, Sequence

import numpy as np
import torch

from explorer import construct, data, zoo
from explorer.attacks import choose_targets, pgd
from explorer.classifier import Classifier, ClassifierInfo
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.threat import make_threat
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


def source_dataset(source: str) -> str:
    """The dataset a zoo model was trained on (its record's ``dataset``)."""
    return zoo.get_spec(source).dataset


class DatasetDefaults:
    """For discussion Configs whose dataset-dependent settings may be left at None: ``resolved()``
    fills them from ``DEFAULTS[dataset]`` (a ``-bundled`` suffix is ignored). The dataset is the
    Config's ``dataset`` field, else its ``source`` model's. ``step_size`` comes from the table
    only when ``eps`` and ``steps`` do too; a user's own eps or steps get 2.5 eps / steps."""

    DEFAULTS: ClassVar[dict[str, dict]] = {}

    def dataset_id(self) -> str:
        """The dataset the experiment runs on."""
        return getattr(self, "dataset", "") or source_dataset(self.source)

    def defaults(self, dataset: str) -> Optional[dict]:
        """The table's settings for ``dataset`` (None: none there)."""
        return self.DEFAULTS.get(dataset.removesuffix("-bundled"))

    def resolved(self):
        """This Config with every setting left at None set to its dataset's default."""
        table = self.defaults(self.dataset_id())
        fields = next(iter(self.DEFAULTS.values()), {})
        unset = [k for k in fields if getattr(self, k) is None and not (k == "step_size" and table is None)]
        if table is None:
            if unset:
                raise ValueError(f"no default {', '.join(unset)} for dataset {self.dataset_id()!r} (defaults for "
                                 f"{', '.join(self.DEFAULTS)}): give them explicitly")
            return self
        fill = {k: v for k, v in table.items() if getattr(self, k) is None}
        if "step_size" in fill and not {"eps", "steps"} <= set(fill):
            fill["step_size"] = None  # the user's own eps or steps: 2.5 eps / steps
        return dataclasses.replace(self, **fill) if fill else self


@dataclass(frozen=True)
class AttackSettings(ImageCounts, DatasetDefaults):
    """The settings shared by the experiments that attack a source model's test images and
    build its D_det (the targeted attack of Ilyas et al. Section 3.2), optionally with
    Nakkiran's non-transferable attack kept off an ensemble.

    The dataset is the source model's. ``norm``, ``eps``, ``steps`` and ``step_size`` left at
    None take the dataset's row of ``DEFAULTS`` (``resolved``): on CIFAR-10 Nakkiran's own
    settings, on Fashion-MNIST the ones measured here (``nontransferable``).

    Attributes:
        source: zoo model attacked; its dataset is the experiment's.
        n_train: clean training images (the images D_det is built from; None: all).
        n_attack: test images attacked for the success and transfer rates.
        n_test: real test images (None: all).
        norm: ``l2`` or ``linf``: the attack's ball (None: ``l2``).
        eps, steps, step_size: the attack (step default 2.5 eps / steps).
        epochs: training epochs of the models trained here.
        ensemble_arch, ensemble_size: the non-transferable attack's ensemble (his: 10).
        seed: image draws and training seeds.
        device: torch device ("" for the best one).
    """

    FULL: ClassVar[dict] = {"n_attack": 2000}
    #: Per dataset and norm: eps, steps, step size (None: 2.5 eps / steps). CIFAR-10: Nakkiran's
    #: (L2 2.5, 10 steps of 0.5; Linf 8/255, 10 steps of 2/255). Fashion-MNIST L2: eps 2.0, measured
    #: (``nontransferable``); Linf: the bundled robust model's training radius, 0.1.
    NORM_DEFAULTS: ClassVar[dict[str, dict[str, dict]]] = {
        "fashion-mnist": {"l2": {"eps": 2.0, "steps": 10, "step_size": None},
                          "linf": {"eps": 0.1, "steps": 10, "step_size": None}},
        "cifar10": {"l2": {"eps": 2.5, "steps": 10, "step_size": 0.5},
                    "linf": {"eps": 8 / 255, "steps": 10, "step_size": 2 / 255}},
    }
    DEFAULTS: ClassVar[dict[str, dict]] = {k: v["l2"] for k, v in NORM_DEFAULTS.items()}

    source: str = "fmnist-standard"
    n_train: Optional[int] = 2000
    n_attack: int = 500
    n_test: Optional[int] = 2000
    norm: Optional[str] = None
    eps: Optional[float] = None
    steps: Optional[int] = None
    step_size: Optional[float] = None
    epochs: int = 5
    ensemble_arch: str = "stage_cnn_tiny"
    ensemble_size: int = 3
    seed: int = 0
    device: str = ""

    def check_attack_settings(self) -> None:
        self.check_counts()
        C.check_int("n_attack", self.n_attack, 1, 10000)
        if self.norm is not None:
            C.check_norm(self.norm)
        C.check_positive("eps", self.eps, allow_none=True)
        if self.steps is not None:
            C.check_int("steps", self.steps, 1, 10000)
        C.check_positive("step_size", self.step_size, allow_none=True)
        C.check_int("epochs", self.epochs, 1, 1000)

    def defaults(self, dataset: str) -> Optional[dict]:
        table = self.NORM_DEFAULTS.get(dataset.removesuffix("-bundled"))
        return None if table is None else table[self.norm or "l2"]

    def resolved(self):
        out = super().resolved()
        return out if out.norm else dataclasses.replace(out, norm="l2")

    @property
    def step(self) -> float:
        return self.step_size or 2.5 * self.eps / self.steps

    def load(self) -> tuple[torch.device, Classifier, tuple[torch.Tensor, torch.Tensor, tuple[str, ...]],
                            tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], dict]:
        """(device, the source model, (training images, labels, class names), (test images,
        labels), (the first ``n_attack`` test images in reading order, labels), ``provenance`` of the images and
        the source) on the source's dataset."""
        device = C.resolve_device(self.device or None)
        source = zoo.load(self.source, device=device)
        dataset = self.dataset_id()
        x_tr, y_tr, names, where_tr = images(dataset, "train", self.n_train, self.seed)
        x_te, y_te, _, where_te = images(dataset, "test", self.n_test, self.seed)
        prov = provenance(dataset, {"train": (where_tr, x_tr, y_tr), "test": (where_te, x_te, y_te)}, [self.source])
        attack = data.reading_order(y_te)[:self.n_attack]  # an image-folder set's draw is class by class
        return (device, source, (x_tr, y_tr, names), (x_te, y_te), (x_te[attack], y_te[attack]), prov)


# --- what a result rests on -------------------------------------------------------------------

def images_sha256(x: torch.Tensor, y: torch.Tensor) -> str:
    """sha256 of [0, 1] images as the 8-bit pixels they were read as, then their int64 labels."""
    h = hashlib.sha256()
    h.update((x * 255).round().clamp(0, 255).to(torch.uint8).contiguous().numpy().tobytes())
    h.update(y.to(torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()


def provenance(dataset: str, image_sets: dict[str, tuple[str, torch.Tensor, torch.Tensor]],
               models: Sequence[str] = ()) -> dict:
    """What a result rests on: the dataset, per image set (``train``, ``test`` ...) where it came
    from (``images``' fourth value), its size and ``images_sha256``, and the zoo models' weights
    sha256 (``zoo.weights_sha256``)."""
    return {"dataset": dataset,
            "images": {k: {"from": where, "n": int(len(y)), "sha256": images_sha256(x, y)}
                       for k, (where, x, y) in image_sets.items()},
            "models": {name: zoo.weights_sha256(name) for name in models}}


# --- training ---------------------------------------------------------------------------------

def fit(arch: str, x: torch.Tensor, y: torch.Tensor, *, class_names: Sequence[str], epochs: int,
        seed: int, batch_size: int = 64, lr: float = 0.05, optimizer: str = "sgd", weight_decay: float = 5e-4,
        mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None, name: str = "",
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
    the model; None: ``dataset``'s, from ``data.dataset_facts``) and ``dataset`` (the Classifier's
    info) default to Fashion-MNIST's.
    """
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be cosine or constant, got {schedule!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if len(x) == 0:
        raise ValueError(f"{name or arch}: no training images")
    device = torch.device(device)
    if mean is None or std is None:
        facts = data.dataset_facts(dataset)
        mean, std = mean or facts.mean, std or facts.std
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
            targets: str = "uniform", norm: str = "l2", progress: Optional[Progress] = None, cancel: Cancel = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """D_det (or D_rand) of Ilyas et al. (Section 3.2) on (x, y): targeted PGD on ``source`` toward
    t = (y + 1) mod C (``det``) or, for ``rand``, t drawn by ``seed`` under the rule ``targets``:
    ``uniform`` over all C classes, independent of y (the paper's), or ``other`` (the other classes
    only); no random start, keep the best. L2 (the paper's) goes through
    ``construct.construct_batch``; ``norm="linf"`` (Nakkiran's second setting) through
    ``attacks.pgd`` with the same options. Returns (images, targets t, whether ``source`` predicts t)."""
    step_size = step_size or 2.5 * eps / steps
    norm = C.check_norm(norm)
    rule = targets if kind == "rand" else None
    recipe = construct.Recipe(kind=kind, source=getattr(source, "name", "source"), steps=steps,
                              step_sizes=(step_size,), eps=eps, targets=rule)
    num_classes = len(source.class_names)
    targets = choose_targets(y, num_classes, "next" if kind == "det" else recipe.targets,
                             torch.Generator().manual_seed(int(seed)))
    images, reached = [], []
    for i in range(0, len(x), batch_size):
        xb, yb, tb = x[i:i + batch_size], y[i:i + batch_size], targets[i:i + batch_size]
        if norm == "l2":
            built = construct.construct_batch(recipe, source, xb, yb, targets=tb, cancel=cancel)
            images.append(built.images)
            reached.append(built.metric.bool())
        else:
            device = source.device
            res = pgd(source, xb.to(device), yb.to(device), make_threat(norm, eps), steps=steps, step_size=step_size,
                      target=tb.to(device), random_start=False, keep_best=True, seed=None, cancel=cancel)
            images.append(res.x_adv.detach().float().cpu())
            reached.append(res.success.bool().cpu())
        if progress is not None:
            progress(min(i + batch_size, len(x)), len(x), {})
    if not images:
        return x.clone(), targets, torch.zeros(0, dtype=torch.bool)
    return torch.cat(images), targets, torch.cat(reached)


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


def results_path(module_name: str, dataset: str = "fashion-mnist") -> Path:
    """The results file of ``module_name`` on ``dataset``: ``results_dir()/<module>.json`` for
    Fashion-MNIST (where they have always been), ``results_dir()/<dataset>/<module>.json`` for any
    other (``cifar10/``; a ``-bundled`` suffix is dropped, a ``folder:ROOT`` name made safe)."""
    base = dataset.removesuffix("-bundled")
    if base == "fashion-mnist":
        return results_dir() / f"{module_name}.json"
    return results_dir() / (re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "other") / f"{module_name}.json"


def read_results(module_name: str, dataset: str = "fashion-mnist") -> Optional[dict]:
    """The JSON the CLI wrote for ``module_name`` on ``dataset`` (experiment, command, config,
    commenter, result), or None when there is none or it cannot be read."""
    path = results_path(module_name, dataset)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("result"), dict) else None
