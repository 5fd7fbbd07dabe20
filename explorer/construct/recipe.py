"""The recipe of a constructed dataset: what it is built from and with which settings.

A ``Recipe`` fixes everything that determines a constructed dataset (Ilyas et al. 2019,
Section 3 and Appendix C): its kind, the source model, the source set and subset, the
inversion or PGD settings, the seed, and the shard and batch sizes. ``default_recipe``
fills in a dataset family's defaults (``DEFAULTS``); this room also draws the source
images (``source_dataset``, ``subset_indices``) and gives each shard its own RNG
(``shard_generator``), so a shard depends only on the recipe and its index.

Paper defaults on CIFAR-10: inversion step 0.1 for 1000 iterations; PGD eps 0.5, step
0.1, 100 iterations. Fashion-MNIST defaults (``DEFAULTS``), measured on the bundled
models (28 x 28, 784 dims; two Fashion-MNIST images are ~10 apart in L2, a CIFAR pair ~20):

* inversion: 200 normalized steps, 100 of 1.0 then 100 of 0.1 (``inversion``'s schedule,
  shortened; each stage starts from the best point so far). Measured on 100 training
  images from another random training image (median relative distance
  ||g(z) - g(x)|| / ||g(x)||, best so far): on the L2-robust model (its epoch-4 state,
  three epochs before the end) 0.89 at the start -> 0.057 after 100 steps -> 0.016 after
  200, where the paper's fixed 0.1 gives 0.15 after 200 steps and needs ~470 to reach
  0.016 (0.0073 after its 1000); on fmnist-standard 0.96 -> 0.21 -> 0.13, the paper's
  recipe 0.15 at 200 and 0.10 after 1000. A fifth of the paper's steps for two to three
  times its final distance on D_NR and about the same on D_R.
* D_rand / D_det: L2 eps 1.0, 50 steps of 0.05 (2.5 * eps / 50), the smallest eps of the
  grid 0.5, 1, 1.5, 2 at which the targeted attack on fmnist-standard reaches D_det's
  target for more than 90% of 500 training images: 52% at eps 0.5 (the CIFAR value, 100
  steps of 0.1), 98.8% at 1.0, 99.8% at 1.5, 100% at 2.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import torch

from explorer import data, zoo
from explorer.attacks import RANDOM_TARGETS
from explorer.inversion import stage_steps

KINDS = ("original", "robust", "non-robust", "rand", "det")
NAMES = {"original": "D", "robust": "D_R", "non-robust": "D_NR", "rand": "D_rand", "det": "D_det"}
STARTS = ("other", "noise")
#: D_rand's target rules (``Recipe.targets``): ``uniform`` over all C classes (the paper's), ``other``
#: over the C - 1 other classes. A D_rand manifest written before the field existed was built
#: under ``other`` (``recipe_record``).
TARGETS = RANDOM_TARGETS
LAYER = "penultimate"
#: The arithmetic of the source model's passes (``Recipe.precision``): ``fp32`` (the paper's) or
#: ``bf16`` (bfloat16 autocast, ``devices.autocast``: D_rand / D_det only). A manifest written
#: before the field existed was built in fp32 (``recipe_record``).
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Defaults:
    """Per-dataset construction defaults: source models, inversion and PGD settings.

    ``standard`` / ``robust`` are None for a dataset with no model of ours (an image folder that
    is neither CIFAR-10 nor Fashion-MNIST): the user passes ``--source`` (``construct``) or
    ``--standard`` / ``--robust`` (``table``), a model trained on that dataset."""

    standard: Optional[str]
    robust: Optional[str]
    inversion_steps: int
    inversion_step_sizes: tuple[float, ...]
    attack_eps: float
    attack_steps: int
    attack_step_size: float
    why: str = ""
    dataset: str = ""
    input_size: Optional[tuple[int, int, int]] = None


#: CIFAR-10's image dimension (3 x 32 x 32): the paper's radii and step sizes are for it.
CIFAR10_DIMS = 3 * 32 * 32

DEFAULTS = {
    "fashion-mnist": Defaults(
        "fmnist-standard", "fmnist-robust-l2", 200, (1.0, 0.1), 1.0, 50, 0.05,
        "measured on the bundled models: see FASHION_MNIST_MEASUREMENTS", "fashion-mnist", (1, 28, 28)),
    "cifar10": Defaults(
        "cifar10-standard", "cifar10-robust-l2", 1000, (0.1,), 0.5, 100, 0.1,
        "the paper's (Ilyas et al. 2019, Appendix C), on our CIFAR-10 pair; MadryLab's ResNet-50s "
        "(madry-cifar10-resnet50-nat, madry-cifar10-resnet50-l2-0.5) with --source / --standard / --robust",
        "cifar10", (3, 32, 32)),
}
#: What the Fashion-MNIST defaults were chosen from (2-core CPU, training images drawn by seed 0).
#: Inversion: median relative representation distance (best so far) after n steps, 100 images.
#: PGD: D_det targeted success on fmnist-standard, 500 images.
FASHION_MNIST_MEASUREMENTS: dict = {
    "inversion": {
        "fmnist-robust-l2 (epoch-4 state)": {"1.0 then 0.1, 200 steps": {0: 0.895, 100: 0.057, 200: 0.016},
                                             "0.1, 1000 steps (paper)": {0: 0.895, 200: 0.152, 500: 0.014,
                                                                         1000: 0.0073}},
        "fmnist-standard": {"1.0 then 0.1, 200 steps": {0: 0.959, 100: 0.214, 200: 0.132},
                            "0.1, 1000 steps (paper)": {0: 0.959, 200: 0.154, 500: 0.120, 1000: 0.102},
                            "0.5, 200 steps": {200: 0.152}, "1.0, 0.3, 0.1, 300 steps": {300: 0.119}},
    },
    "d_det_success_on_fmnist_standard": {0.5: 0.518, 1.0: 0.988, 1.5: 0.998, 2.0: 1.0},
}


class ConstructError(ValueError):
    """Bad construction arguments or an output folder that belongs to another recipe."""


def dims_text(size) -> str:
    """(C, H, W) as ``CxHxW``."""
    return "x".join(str(int(v)) for v in size)


def _family(dataset: str, train: data.TensorDataset) -> Optional[str]:
    """``cifar10`` / ``fashion-mnist`` when an image folder is that dataset (its classes, in any
    folder order, and its image size), else None."""
    size = tuple(int(v) for v in train.images.shape[1:])
    folders = set(data.class_folder_names(train.class_names))
    for family in ("cifar10", "fashion-mnist"):
        facts = data.DATASETS[family]
        if size == tuple(facts.input_size) and folders == set(data.class_folder_names(facts.class_names)):
            return family
    return None


def _scaled(dataset: str, size: tuple[int, int, int]) -> Defaults:
    """Defaults for an image folder with no model of ours: the paper's CIFAR-10 recipe with every
    L2 length (PGD eps and step, inversion step) scaled by sqrt(C*H*W / 3072), the ratio of two
    images' typical L2 distance here and on CIFAR-10; no source model."""
    c = DEFAULTS["cifar10"]
    s = math.sqrt(size[0] * size[1] * size[2] / CIFAR10_DIMS)
    r = lambda v: float(f"{v * s:.3g}")  # noqa: E731 - three significant digits, as printed
    return Defaults(None, None, c.inversion_steps, tuple(r(v) for v in c.inversion_step_sizes), r(c.attack_eps),
                    c.attack_steps, r(c.attack_step_size),
                    f"CIFAR-10's recipe with L2 lengths scaled by sqrt({dims_text(size)} / 3072) = {s:.3f}; "
                    "no default source model", dataset, size)


def defaults_for(dataset: str, train: Optional[data.TensorDataset] = None) -> Defaults:
    """The defaults of ``dataset``, from its own facts.

    Fashion-MNIST and CIFAR-10 (by name, the ``-bundled`` sets too) take ``DEFAULTS``; an image
    folder (``folder:ROOT``; its training split ``train`` is read with ``data.load_dataset``, from
    the decode cache, when not given) takes CIFAR-10's or Fashion-MNIST's when it is that dataset
    (same classes, same image size), else CIFAR-10's recipe scaled to its image size
    (``_scaled``) with no default source model."""
    if dataset.startswith("fashion-mnist"):
        return DEFAULTS["fashion-mnist"]
    if dataset.startswith("cifar10"):
        return DEFAULTS["cifar10"]
    if dataset.startswith("constructed:"):
        raise ConstructError(f"{dataset}: build from a dataset (fashion-mnist, cifar10, folder:ROOT), "
                             "not from a constructed one")
    if not dataset.startswith("folder:"):
        raise ConstructError(f"unknown dataset {dataset!r}: use fashion-mnist, fashion-mnist-bundled, cifar10 "
                             "or folder:ROOT (ROOT/train/<class>/<images>)")
    train = train if train is not None else data.load_dataset(dataset, "train")
    family = _family(dataset, train)
    if family is not None:
        return replace(DEFAULTS[family], dataset=dataset)
    return _scaled(dataset, tuple(int(v) for v in train.images.shape[1:]))


def no_source_text(dataset: str, option: str = "--source") -> str:
    """The one line for a dataset without a default source model: what to pass and how to train one."""
    return (f"{dataset} has no default source model: pass {option} NAME, a model trained on it "
            f"(python -m explorer train --name NAME --dataset {dataset} --register; "
            f"for D_R a robust one: add --adv l2 --eps EPS)")


def check_source(source: str, dataset: str, train: data.TensorDataset) -> None:
    """Refuse, in one line, a source model whose input size or number of classes does not fit
    ``dataset`` (its training split ``train``): images are never resized or turned grey to fit."""
    try:
        spec = zoo.get_spec(source)
    except zoo.ZooError as e:
        if source in (DEFAULTS["cifar10"].standard, DEFAULTS["cifar10"].robust):
            raise ConstructError(
                f"{source}, the default source for CIFAR-10, is not in the zoo here: pass --source "
                "madry-cifar10-resnet50-nat (D_NR, D_rand, D_det) or madry-cifar10-resnet50-l2-0.5 (D_R) after "
                "python -m explorer fetch NAME, or a model you trained on it") from e
        raise
    want, have = tuple(int(v) for v in spec.input_size), tuple(int(v) for v in train.images.shape[1:])
    if want != have:
        raise ConstructError(f"source {source} takes {dims_text(want)} images; {dataset} has {dims_text(have)} "
                             "images: pass --source a model trained on it")
    if int(spec.num_classes) != len(train.class_names):
        raise ConstructError(f"source {source} has {spec.num_classes} classes; {dataset} has "
                             f"{len(train.class_names)}: pass --source a model trained on it")


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a constructed dataset (the manifest's ``recipe``).

    Attributes:
        kind: ``original``, ``robust`` (D_R), ``non-robust`` (D_NR), ``rand``, ``det``.
        source: the zoo model g (D_R: robust; the others: standard); None for ``original``.
        dataset: ``fashion-mnist`` (full when installed, else the bundled subset),
            ``fashion-mnist-bundled``, ``cifar10`` or ``folder:ROOT`` (ROOT/train/<class>/*).
        subset: build from this many training images, drawn by ``seed`` (None: all).
        steps: inversion or PGD steps.
        step_sizes: inversion: one step size per stage (steps split evenly); PGD: one.
        eps: the L2 radius of D_rand / D_det.
        start: D_R / D_NR start: ``other`` (another random image of the set) or ``noise``.
        layer: the representation g for D_R / D_NR.
        seed: randomness of the subset, the starts and the targets.
        shard_size: images per shard file.
        batch_size: images per optimization batch (part of the recipe: it fixes the
            arithmetic, so resumed and distributed runs compute the same numbers).
        targets: D_rand's target rule: ``uniform`` (default; t uniform over all C classes,
            independent of y, so about 1/C of the labels equal y: the paper's) or ``other`` (t
            uniform over the other C - 1 classes, never y). None for every other kind.
        precision: ``fp32`` (the paper's) or ``bf16``: the source model's passes of D_rand /
            D_det's PGD under bfloat16 autocast (2.2-2.9x faster on a CPU with AMX; the
            perturbation and the images stay fp32). Inversion (D_R / D_NR) is fp32 only.
    """

    kind: str
    source: Optional[str]
    dataset: str = "fashion-mnist"
    subset: Optional[int] = None
    steps: int = 0
    step_sizes: tuple[float, ...] = ()
    eps: Optional[float] = None
    start: str = "other"
    layer: str = LAYER
    seed: int = 0
    shard_size: int = 500
    batch_size: int = 250
    targets: Optional[str] = None
    precision: str = "fp32"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConstructError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind != "original" and not self.source:
            raise ConstructError(f"{self.kind} needs a source model")
        if self.subset is not None and (isinstance(self.subset, bool) or int(self.subset) < 1):
            raise ConstructError(f"subset must be >= 1, got {self.subset!r}")
        if self.start not in STARTS:
            raise ConstructError(f"start must be one of {STARTS}, got {self.start!r}")
        if self.shard_size < 1 or self.batch_size < 1:
            raise ConstructError("shard size and batch size must be >= 1")
        if self.steps < 0:
            raise ConstructError(f"steps must be >= 0, got {self.steps}")
        sizes = (self.step_sizes,) if isinstance(self.step_sizes, (int, float)) else tuple(self.step_sizes)
        if any(not (math.isfinite(s) and s > 0) for s in sizes):
            raise ConstructError(f"step sizes must be finite and > 0, got {sizes}")
        object.__setattr__(self, "step_sizes", tuple(float(s) for s in sizes))
        if self.kind in ("robust", "non-robust", "rand", "det") and (self.steps < 1 or not self.step_sizes):
            raise ConstructError(f"{self.kind} needs steps >= 1 and a step size")
        if self.kind in ("rand", "det"):
            if self.eps is None or not (math.isfinite(self.eps) and self.eps > 0):
                raise ConstructError(f"{self.kind} needs eps > 0, got {self.eps!r}")
            if len(self.step_sizes) != 1:
                raise ConstructError("PGD takes one step size")
        if self.kind == "rand":
            if self.targets is None:
                object.__setattr__(self, "targets", TARGETS[0])
            if self.targets not in TARGETS:
                raise ConstructError(f"targets must be one of {TARGETS}, got {self.targets!r}")
        elif self.targets is not None:
            raise ConstructError(f"targets (the target rule) is for D_rand only, not {self.kind}")
        if self.precision not in PRECISIONS:
            raise ConstructError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.precision != "fp32" and self.kind not in ("rand", "det"):
            raise ConstructError(f"{self.precision} is for D_rand and D_det's PGD only, not {self.kind}")

    @property
    def name(self) -> str:
        return NAMES[self.kind]

    def describe(self) -> str:
        """The recipe in one line."""
        src = f" from {self.source}" if self.source else ""
        if self.kind in ("robust", "non-robust"):
            sched = ", ".join(f"{n} x {s:g}" for n, s in zip(stage_steps(self.steps, len(self.step_sizes)),
                                                            self.step_sizes))
            how = f"representation inversion ({self.layer}{src}), start {self.start}, steps {sched}"
        elif self.kind in ("rand", "det"):
            how = (f"targeted L2 PGD{src}, eps {self.eps:g}, {self.steps} steps of {self.step_sizes[0]:g}, "
                   f"target {TARGET_TEXT.get(self.targets, '(y + 1) mod C')}")
            if self.precision == "bf16":
                how += ", the model's passes in bfloat16 (not the paper's fp32)"
        else:
            how = "the images themselves"
        size = f"{self.subset} images of " if self.subset else ""
        return f"{self.name}: {how}; {size}{self.dataset} train, seed {self.seed}"


#: How ``describe`` names each target rule.
TARGET_TEXT = {"uniform": "uniform over all classes, independent of y (the paper's D_rand)",
               "other": "uniform over the other classes, never y (not the paper's rule)"}


def recipe_record(record: Optional[dict]) -> Optional[dict]:
    """A manifest's ``recipe`` as this code writes it: one saved before ``targets`` existed gets
    ``other`` for D_rand (the only rule there was then: t uniform over the other classes) and
    None for every other kind, so an old dataset reads as what it is and compares equal to a
    recipe of the same rule, never to one of the paper's; one saved before ``precision``
    existed was built in fp32."""
    if not isinstance(record, dict):
        return record
    if "targets" not in record:
        record = {**record, "targets": "other" if record.get("kind") == "rand" else None}
    if "precision" not in record:
        record = {**record, "precision": "fp32"}
    return record


def default_recipe(kind: str, dataset: str = "fashion-mnist", *, defaults: Optional[Defaults] = None,
                   **overrides) -> Recipe:
    """The recipe of ``kind`` with ``dataset``'s defaults (``defaults_for``, or ``defaults`` when
    given); ``overrides`` replace fields (None values are ignored, so CLI options can be passed
    through). A dataset with no default source model needs ``source`` (ConstructError otherwise)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if kind == "original":
        return Recipe(kind=kind, dataset=dataset, **{"source": None, **overrides})
    d = defaults if defaults is not None else defaults_for(dataset)
    if kind in ("robust", "non-robust"):
        base = dict(source=d.robust if kind == "robust" else d.standard, steps=d.inversion_steps,
                    step_sizes=d.inversion_step_sizes)
    elif kind in ("rand", "det"):
        base = dict(source=d.standard, steps=d.attack_steps, step_sizes=(d.attack_step_size,), eps=d.attack_eps)
    else:
        raise ConstructError(f"kind must be one of {KINDS}, got {kind!r}")
    if not overrides.get("source") and not base["source"]:
        raise ConstructError(no_source_text(dataset))
    return Recipe(kind=kind, dataset=dataset, **{**base, **overrides})


def with_overrides(recipe: Recipe, **kw) -> Recipe:
    """``recipe`` with fields replaced (None values ignored)."""
    return replace(recipe, **{k: v for k, v in kw.items() if v is not None})


# --- the source data ---------------------------------------------------------------------

def in_label_order(ds: data.TensorDataset, class_names: Optional[tuple[str, ...]]) -> data.TensorDataset:
    """``ds`` with its labels in the order of ``class_names`` (a model's) when every class of
    ``ds`` is one of them (compared as folder names: "T-shirt/top" is the folder "T-shirt_top");
    else ``ds`` as it is. The images stay where they are."""
    if class_names is None or tuple(ds.class_names) == tuple(class_names):
        return ds
    have, want = data.class_folder_names(ds.class_names), data.class_folder_names(class_names)
    if not set(have) <= set(want):
        return ds
    order = torch.tensor([want.index(h) for h in have], dtype=torch.int64)
    return data.TensorDataset(ds.images, order[ds.labels], tuple(class_names), ds.name)


def source_dataset(dataset: str, input_size: Optional[tuple[int, int, int]] = None,
                   class_names: Optional[tuple[str, ...]] = None) -> data.TensorDataset:
    """The training split of ``dataset`` (see ``Recipe.dataset``) as ``data.load_dataset`` reads it:
    an image folder is decoded once into the cache, at its own size and channels.

    Its labels follow ``class_names`` (the source model's) when every class of the set is one of
    them (``in_label_order``). ``input_size``, when given, is what the images must be: a set of
    another size is refused (ConstructError), never resized or turned grey."""
    if dataset.startswith("constructed:"):
        raise ConstructError(f"{dataset}: build from a dataset (fashion-mnist, cifar10, folder:ROOT), "
                             "not from a constructed one")
    ds = in_label_order(data.load_dataset(dataset, "train"), class_names)
    have = tuple(int(v) for v in ds.images.shape[1:])
    if input_size is not None and tuple(int(v) for v in input_size) != have:
        raise ConstructError(f"{dataset} has {dims_text(have)} images, not {dims_text(input_size)}")
    return ds


def subset_indices(n: int, subset: Optional[int], seed: int) -> torch.Tensor:
    """Positions in the source set, in increasing order: all, or ``subset`` drawn by ``seed``."""
    if subset is None or subset >= n:
        return torch.arange(n)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=g)[: int(subset)].sort().values


def shard_generator(seed: int, shard: int) -> torch.Generator:
    """The RNG of one shard: a function of (seed, shard index) only."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(shard)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
