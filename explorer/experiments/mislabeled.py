"""Learning from mislabeled data (Wallace's Distill comment).

Eric Wallace, "Learning from Incorrectly Labeled Data", in the Distill discussion of Ilyas et
al. (2019): train a model briefly, keep only the training images it gets wrong, each relabelled
with the model's (wrong) prediction, and train a fresh model on those alone. Every label it
sees is wrong, yet it generalizes to the real test set: the weak model's mistakes carry its
features, the way D_det's labels carry a standard model's non-robust features. Wallace on
CIFAR-10 (ResNet-18): the weak model reached 63.1% after 2 epochs; its 18,768 wrong training
predictions taught a fresh ResNet-18 49.7% on the real test set.

Here the weak model is the same architecture trained for ``weak_epochs`` on ``weak_images``
of the training images (few, so that it stays weak); its predictions are taken on the
``n_train`` images. The default (one epoch on 2,000 images) was picked from three tries on
1,000 test images: 1,000 images x 1 epoch 19.5%, x 2 epochs 58.5%, 2,000 x 1 epoch 63.4%,
the one closest to Wallace's 63.1% (Fashion-MNIST). ``--dataset cifar10`` runs it on Wallace's own
data; there the weak model gets his 2 epochs (``Config.DEFAULTS``; not tuned here).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import torch

from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.experiments import _discussion as D

#: Wallace's CIFAR-10 numbers.
COMMENTER = {"weak_accuracy": 63.1, "kept": 18768, "of": 50000, "learned": 49.7}
#: Datasets by name (``data.load_dataset``); ``folder:ROOT`` is taken too.
DATASETS = ("fashion-mnist", "cifar10")


@dataclass(frozen=True)
class Config(D.ImageCounts, D.DatasetDefaults):
    """``weak_images`` and ``weak_epochs`` left at None take ``dataset``'s row of ``DEFAULTS``.

    Attributes:
        dataset: ``fashion-mnist``, ``cifar10`` or ``folder:ROOT`` (``data.load_dataset``).
        arch: the weak and the fresh model's architecture.
        n_train: training images the weak model labels (None: all).
        weak_images, weak_epochs: what the weak model is trained on, briefly.
        epochs: the fresh model's training epochs.
        n_test: real test images (None: all).
        seed, device: as everywhere.
    """

    #: Fashion-MNIST: the measured default (module docstring); CIFAR-10: Wallace's 2 epochs.
    DEFAULTS: ClassVar[dict[str, dict]] = {
        "fashion-mnist": {"weak_images": 2000, "weak_epochs": 1},
        "cifar10": {"weak_images": 2000, "weak_epochs": 2},
    }

    dataset: str = "fashion-mnist"
    arch: str = "resnet_small"
    n_train: Optional[int] = 6000
    weak_images: Optional[int] = None
    weak_epochs: Optional[int] = None
    epochs: int = 5
    n_test: Optional[int] = 2000
    seed: int = 0
    device: str = ""

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not (self.dataset in DATASETS or self.dataset.startswith("folder:")):
            raise ValueError(f"dataset must be one of {DATASETS} or folder:ROOT, got {self.dataset!r}")
        self.check_counts()
        if self.weak_images is not None:
            C.check_int("weak_images", self.weak_images, 10, 60000)
        if self.weak_epochs is not None:
            C.check_int("weak_epochs", self.weak_epochs, 1, 1000)
        C.check_int("epochs", self.epochs, 1, 1000)


@dataclass(frozen=True)
class Result:
    """Attributes:
        weak_accuracy: the weak model's real test accuracy.
        weak_train_accuracy: its accuracy on the ``n_train`` images it labels.
        kept: training images it gets wrong (the new training set).
        all_wrong: whether every kept label differs from the image's true label (it must).
        learned: the fresh model's accuracy on the real test set (true labels).
        agrees_with_weak: how often the fresh model predicts what the weak model predicts on the test set.
        label_counts: the new set's label histogram.
        provenance: ``D.provenance``: the dataset and the images' sha256.
    """

    weak_accuracy: float
    weak_train_accuracy: float
    kept: int
    n_train: int
    all_wrong: bool
    learned: float
    agrees_with_weak: float
    label_counts: tuple[int, ...]
    class_names: tuple[str, ...]
    n_test: int
    seconds: float
    provenance: dict = field(default_factory=dict)


def mislabeled_set(model, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The images ``model`` gets wrong, relabelled with its predictions: (images, new labels,
    their positions in ``x``)."""
    pred = D.predict(model, x)
    wrong = torch.nonzero(pred != y).squeeze(1)
    return x[wrong], pred[wrong], wrong


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Weak model, its wrong predictions as the training set, a fresh model, the real test set."""
    t0 = time.perf_counter()
    config = config.resolved()
    device = C.resolve_device(config.device or None)
    x_tr, y_tr, names, where_tr = D.images(config.dataset, "train", config.n_train, config.seed)
    x_te, y_te, _, where_te = D.images(config.dataset, "test", config.n_test, config.seed)
    common = dict(class_names=names, device=device, cancel=cancel, dataset=config.dataset)
    phases = D.Phases(progress, 2)
    g = torch.Generator().manual_seed(config.seed + 7)
    weak_idx = torch.randperm(len(x_tr), generator=g)[:config.weak_images]
    weak = D.train(config.arch, x_tr[weak_idx], y_tr[weak_idx], epochs=config.weak_epochs, seed=config.seed + 1,
                   name="weak model", progress=phases.next("weak model"), **common)
    x_new, y_new, where = mislabeled_set(weak, x_tr, y_tr)
    if len(y_new) == 0:
        raise ValueError("the weak model gets every training image right: nothing to learn from; "
                         "make it weaker (fewer weak images or epochs)")
    fresh = D.train(config.arch, x_new, y_new, epochs=config.epochs, seed=config.seed + 2,
                    name="trained on the wrong predictions", progress=phases.next("fresh model on the mislabeled set"),
                    **common)
    pred_fresh, pred_weak = D.predict(fresh, x_te), D.predict(weak, x_te)
    return Result(weak_accuracy=float((pred_weak == y_te).float().mean()),
                  weak_train_accuracy=1 - len(y_new) / len(y_tr), kept=len(y_new), n_train=len(y_tr),
                  all_wrong=bool((y_new != y_tr[where]).all()),
                  learned=float((pred_fresh == y_te).float().mean()),
                  agrees_with_weak=float((pred_fresh == pred_weak).float().mean()),
                  label_counts=tuple(int(c) for c in torch.bincount(y_new, minlength=len(names))),
                  class_names=tuple(names),
                  n_test=len(y_te), seconds=time.perf_counter() - t0,
                  provenance=D.provenance(config.dataset, {"train": (where_tr, x_tr, y_tr),
                                                           "test": (where_te, x_te, y_te)}))
