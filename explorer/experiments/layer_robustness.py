"""Layer robustness: how far a layer's output can be pushed inside a small ball, relative
to how far apart two images' outputs are.

The authors' measure from their reply to Nakano in the Distill discussion of Ilyas et
al. (2019), "Adversarial Examples Are Not Bugs, They Are Features" (explaining why VGG
and AlexNet still do style transfer: their early layers are nearly as robust as a
robust ResNet's). For a layer f:

    R(f) = E_x [ max_{||delta|| <= eps} ||f(x + delta) - f(x)||_2 ]  /  E_{x, x'} [ ||f(x) - f(x')||_2 ]

Lower is more robust. The numerator is found per image and per layer by maximizing the
layer deviation (``objectives.layer_deviation``) with the one loop (``optimize``), from
a random start in the ball (at delta = 0 the gradient of the norm is zero), so it is a
lower bound of the true maximum, as every attack is. The denominator is the mean
distance over random pairs of distinct images of the same sample: each image is paired
with ``pairs_per_image`` partners drawn uniformly among the other images.

The interval on R is a percentile bootstrap over images: images are resampled with
replacement, each carrying its own deviation and its own pairs, and R is recomputed as
(mean deviation) / (mean pair distance) of the resample.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from explorer import data, zoo
from explorer.classifier import Classifier
from explorer.devices import best_device, device_lock
from explorer.folding import folded_classifier
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.experiments._layer_measure import (CI_METHOD, _seed, measure, random_partners,  # noqa: F401
                                                 summarize)
from explorer.threat import ball_norm as _check_norm
from explorer.threat import make_threat

MAX_STEPS = 5000
MAX_RESTARTS = 50
MAX_IMAGES = 10_000
LOGITS = "logits"


@dataclass(frozen=True)
class Config:
    """One layer-robustness run.

    Attributes:
        models: zoo names; every named layer of each is measured.
        norm: ``linf`` or ``l2``: the ball of the numerator.
        eps: its radius, in [0, 1] pixel units.
        n_images: test images (drawn by ``seed``); both the numerator and the pairs use them.
        steps: gradient steps per restart for each layer's numerator.
        step_size: None for the loop's default, 2.5 * eps / steps.
        restarts: independent random starts; the largest deviation per image is kept.
        layers: measure only these layer names (each model's that it has, in network order);
            None for all of a model's named layers.
        include_logits: with ``layers=None``, measure the ``logits`` layer too.
        pairs_per_image: random partners per image for the denominator.
        batch_size: images per optimization batch (memory, not results, depends on it
            apart from the random starts).
        ci_level: confidence level of the interval on R.
        bootstrap: bootstrap resamples for the interval.
        seed: images, pairs, random starts and the bootstrap all follow it.
        image_folder: a class-folder tree of images (``<folder>/<class>/<file>``) to use
            instead of the model's test set; needed for datasets without one here.
        device: torch device string; None for ``best_device()``.
    """

    models: tuple[str, ...]
    norm: str = "linf"
    eps: float = 0.1
    n_images: int = 64
    steps: int = 20
    step_size: Optional[float] = None
    restarts: int = 1
    layers: Optional[tuple[str, ...]] = None
    include_logits: bool = False
    pairs_per_image: int = 4
    batch_size: int = 64
    ci_level: float = 0.95
    bootstrap: int = 1000
    seed: int = 0
    image_folder: Optional[str] = None
    device: Optional[str] = None

    def __post_init__(self):
        models = (self.models,) if isinstance(self.models, str) else tuple(self.models)
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "norm", _check_norm(self.norm))
        if self.layers is not None:
            layers = (self.layers,) if isinstance(self.layers, str) else tuple(self.layers)
            object.__setattr__(self, "layers", layers)
            if not layers or not all(isinstance(l, str) and l for l in layers):
                raise ValueError(f"layers must be None or a non-empty list of layer names, got {self.layers!r}")
        C.check_models(models)
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be a finite number > 0, got {self.eps!r}")
        if self.norm == "linf" and self.eps > 1:
            raise ValueError(f"a Linf eps of {self.eps:g} is larger than the whole [0, 1] image box")
        C.check_int("n_images", self.n_images, 2, MAX_IMAGES)
        C.check_int("steps", self.steps, 1, MAX_STEPS)
        C.check_int("restarts", self.restarts, 1, MAX_RESTARTS)
        C.check_int("pairs_per_image", self.pairs_per_image, 1, 1000)
        C.check_int("batch_size", self.batch_size, 1, 1 << 16)
        C.check_int("bootstrap", self.bootstrap, 0, 100_000)
        if self.step_size is not None and not (math.isfinite(self.step_size) and self.step_size > 0):
            raise ValueError(f"step_size must be a finite number > 0 or None, got {self.step_size!r}")
        if not 0 < self.ci_level < 1:
            raise ValueError(f"ci_level must lie in (0, 1), got {self.ci_level!r}")

    def resolved_step_size(self) -> float:
        return float(self.step_size) if self.step_size is not None else 2.5 * self.eps / self.steps


@dataclass(frozen=True)
class LayerResult:
    """R of one layer of one model.

    Attributes:
        model, layer: which layer; ``index`` is its position in the model's network order.
        ratio: R = mean deviation / mean pair distance.
        ci_low, ci_high: the interval on R (``Result.ci_method`` at ``Result.ci_level``).
        numerator, numerator_se: mean over images of the largest deviation found, and its standard error.
        denominator, denominator_se: mean distance over the pairs, and the standard error over images.
        deviations: the largest ||f(x + delta) - f(x)||_2 found per image, [n_images] float64.
        distances: ||f(x_i) - f(x_j)||_2 for image i's pairs ``Result.partners[i]``, [n_images, pairs] float64.
        dims: the layer's output size per image.
        seconds: wall time of this layer's numerator and denominator.
    """

    model: str
    layer: str
    index: int
    ratio: float
    ci_low: float
    ci_high: float
    numerator: float
    numerator_se: float
    denominator: float
    denominator_se: float
    deviations: np.ndarray
    distances: np.ndarray
    dims: int
    seconds: float


@dataclass(frozen=True)
class ModelInfo:
    """A measured model: its name, kind (``standard`` / ``robust (linf eps 0.1)``), dataset,
    layers in network order, and where its images came from."""

    model: str
    kind: str
    robust: bool
    dataset: str
    layers: tuple[str, ...]
    images: str
    image_indices: np.ndarray
    seconds: float


@dataclass(frozen=True)
class Result:
    """R per layer for every model of the config.

    Attributes:
        layers: one entry per (model, layer), models in config order, layers in network order.
        models: one entry per model.
        partners: [n_images, pairs_per_image] int64: image i's pair partners (indices into
            the sample, never i). The same for every model.
        notes: things a reader should know (fewer images than asked, ...).
    """

    layers: tuple[LayerResult, ...]
    models: tuple[ModelInfo, ...]
    partners: np.ndarray
    norm: str
    eps: float
    steps: int
    step_size: float
    restarts: int
    n_images: int
    ci_level: float
    ci_method: str
    bootstrap: int
    seed: int
    device: str
    seconds: float
    notes: tuple[str, ...] = ()

    def rows(self) -> list[dict]:
        """The table: one plain dict per (model, layer), in order."""
        kinds = {m.model: m.kind for m in self.models}
        return [{"model": r.model, "kind": kinds[r.model], "layer": r.layer, "index": r.index,
                 "R": r.ratio, "ci_low": r.ci_low, "ci_high": r.ci_high,
                 "numerator": r.numerator, "numerator_se": r.numerator_se,
                 "denominator": r.denominator, "denominator_se": r.denominator_se,
                 "dims": r.dims, "n_images": int(r.deviations.shape[0]), "seconds": r.seconds}
                for r in self.layers]

    def layer(self, model: str, layer: str) -> LayerResult:
        for r in self.layers:
            if r.model == model and r.layer == layer:
                return r
        raise KeyError(f"no result for layer {layer!r} of {model!r}")

    def ratios(self, model: str) -> dict[str, float]:
        """layer -> R of one model, in network order."""
        return {r.layer: r.ratio for r in self.layers if r.model == model}

    def description(self) -> dict:
        """How the numbers were measured, for tables written next to them."""
        return {"norm": self.norm, "eps": self.eps, "steps": self.steps, "step_size": self.step_size,
                "restarts": self.restarts, "random_start": True, "n_images": self.n_images,
                "pairs_per_image": int(self.partners.shape[1]), "ci_level": self.ci_level,
                "ci_method": f"{self.ci_method} ({self.bootstrap} resamples)", "seed": self.seed,
                "device": self.device, "seconds": round(self.seconds, 2), "notes": list(self.notes),
                "images": {m.model: m.images for m in self.models}}


# --- images -----------------------------------------------------------------------------

def select_layers(model: Classifier, layers: Sequence[str] | None = None, include_logits: bool = False) -> list[str]:
    """The layers to measure, in network order: ``layers`` that the model has, or all its
    named layers (``logits`` only when ``include_logits``)."""
    if layers is None:
        return [l for l in model.layer_names if include_logits or l != LOGITS]
    return [l for l in model.layer_names if l in set(layers)]


def load_images(dataset: str, input_size: Sequence[int], n: int, seed: int = 0,
                image_folder: str | None = None) -> tuple[torch.Tensor, np.ndarray, str, tuple[str, ...]]:
    """``n`` images of a dataset's test set, drawn without replacement by ``seed``.

    Fashion-MNIST (the full set when installed, else the bundled subset) and CIFAR-10
    come from their test sets; ImageNet models use scikit-image's sample photos (only a
    handful); any other dataset, or more ImageNet images, needs ``image_folder``.

    Returns:
        (float images [n', C, H, W] in [0, 1] on the CPU, their indices in the source, the
        source's name, notes); n' < n only when the source has fewer images.
    """
    g = torch.Generator().manual_seed(_seed(seed, "images"))
    notes: list[str] = []
    c, h, w = (int(v) for v in input_size)
    if image_folder:
        ds = data.image_folder(image_folder, (c, h, w), verify=False)
        idx = torch.randperm(len(ds), generator=g)[:n]
        x = torch.stack([ds[int(i)][0] for i in idx])
        name = f"image folder {image_folder}"
    elif (ds := C.offline_split(dataset, "test")) is not None:
        idx = torch.randperm(len(ds), generator=g)[:n]
        x = ds.float_images(idx)
        name = ds.name
    elif dataset in data.IMAGENET_LIKE:
        photos = sorted(data.sample_photos().items())
        idx = torch.randperm(len(photos), generator=g)[:n]
        x = torch.cat([data.to_model_input(photos[int(i)][1], (c, h, w)) for i in idx])
        name = "scikit-image sample photos (" + ", ".join(photos[int(i)][0] for i in idx) + ")"
    else:
        raise data.DataError(f"no test images for dataset {dataset!r} here: pass an image folder "
                             f"(<folder>/<class>/<image files>)")
    if x.shape[0] < n:
        notes.append(f"{name} holds only {x.shape[0]} images, fewer than the {n} asked for; "
                     f"pass an image folder for more")
    if x.shape[0] < 2:
        raise data.DataError(f"{name} holds {x.shape[0]} image(s); pairs of distinct images need at least 2")
    if tuple(x.shape[1:]) != (c, h, w):
        raise ValueError(f"images of {name} are {tuple(x.shape[1:])}, the model takes {(c, h, w)}")
    return x.float(), idx.numpy().astype(np.int64), name, tuple(notes)


# --- the experiment ---------------------------------------------------------------------

def work(config: Config) -> float:
    """Image-steps of the run (``explorer.experiments``' cost contract): a PGD run per image pair and layer
    (all layers count as five)."""
    layers = len(config.layers) if config.layers is not None else 5
    return float(len(config.models) * config.n_images * config.pairs_per_image * config.steps * config.restarts
                 * layers)


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """R for every selected layer of every model of ``config``.

    ``progress(step, total, metrics)`` counts loop steps over all models, layers and
    batches; ``metrics`` holds ``model``, ``layer`` and the mean ``loss`` (deviation).
    """
    t_start = time.perf_counter()
    device = torch.device(config.device) if config.device else best_device()
    # BatchNorm folded into the convolutions: the same layer outputs, less work (bench/)
    models = [folded_classifier(zoo.load(name, device=device)) for name in config.models]
    chosen = [select_layers(m, config.layers, config.include_logits) for m in models]
    for m, layers in zip(models, chosen):
        if not layers:
            raise ValueError(f"{m.name} has none of the layers {list(config.layers or [])}; "
                             f"it has {m.layer_names}")
    if config.layers is not None:
        missing = [l for l in config.layers if not any(l in c for c in chosen)]
        if missing:
            raise ValueError(f"no model has the layer(s) {missing}")
    threat = make_threat(config.norm, config.eps)
    step_size = config.resolved_step_size()

    # models of one dataset and input size share their images (and so their pairs)
    images: dict[tuple, tuple] = {}
    for m in models:
        key = (m.info.dataset, tuple(m.info.input_size))
        if key not in images:
            images[key] = load_images(m.info.dataset, m.info.input_size, config.n_images, config.seed,
                                      config.image_folder)
    n = min(v[0].shape[0] for v in images.values())
    partners = random_partners(n, config.pairs_per_image, torch.Generator().manual_seed(_seed(config.seed, "pairs")))
    notes = tuple(dict.fromkeys(note for v in images.values() for note in v[3]))

    per_model = [config.steps * config.restarts * len(ls) * math.ceil(n / config.batch_size) for ls in chosen]
    total = sum(per_model)
    layer_results: list[LayerResult] = []
    infos: list[ModelInfo] = []
    with device_lock(device):
        base = 0
        for m, layers, steps_here in zip(models, chosen, per_model):
            x, idx, source, _ = images[(m.info.dataset, tuple(m.info.input_size))]

            def model_progress(step, _total, metrics, base=base, name=m.name):
                if progress is not None:
                    progress(base + step, total, {**metrics, "model": name})

            t0 = time.perf_counter()
            out = measure(m, x[:n], layers, threat, config.steps, partners, step_size=step_size,
                          restarts=config.restarts, batch_size=config.batch_size, seed=_seed(config.seed, m.name),
                          progress=model_progress, cancel=cancel)
            base += steps_here
            order = {l: i for i, l in enumerate(m.layer_names)}
            for l in layers:
                dev, dist, dims, secs = out[l]
                s = summarize(dev, dist, config.ci_level, config.bootstrap, _seed(config.seed, m.name, l, "ci"))
                layer_results.append(LayerResult(
                    model=m.name, layer=l, index=order[l], ratio=s["ratio"], ci_low=s["ci_low"],
                    ci_high=s["ci_high"], numerator=s["numerator"], numerator_se=s["numerator_se"],
                    denominator=s["denominator"], denominator_se=s["denominator_se"], deviations=dev,
                    distances=dist, dims=dims, seconds=secs))
            infos.append(ModelInfo(model=m.name, kind=m.info.kind, robust=bool(m.info.robust),
                                   dataset=m.info.dataset, layers=tuple(layers), images=source,
                                   image_indices=idx[:n], seconds=time.perf_counter() - t0))
    return Result(layers=tuple(layer_results), models=tuple(infos), partners=partners.numpy().astype(np.int64),
                  norm=config.norm, eps=float(config.eps), steps=config.steps, step_size=step_size,
                  restarts=config.restarts, n_images=n, ci_level=config.ci_level,
                  ci_method=CI_METHOD if config.bootstrap > 0 else "delta method, normal interval",
                  bootstrap=config.bootstrap, seed=config.seed, device=str(device),
                  seconds=time.perf_counter() - t_start, notes=notes)


# --- what the numbers say ---------------------------------------------------------------

def comparisons(result: Result) -> list[dict]:
    """Every pair of a robust and a standard model: at how many shared layers the robust
    one has the lower R, and at how many the intervals do not overlap."""
    out = []
    for r in (m for m in result.models if m.robust):
        for s in (m for m in result.models if not m.robust):
            shared = [l for l in r.layers if l in s.layers]
            if not shared:
                continue
            lower = [l for l in shared if result.layer(r.model, l).ratio < result.layer(s.model, l).ratio]
            separated = [l for l in lower if result.layer(r.model, l).ci_high < result.layer(s.model, l).ci_low]
            out.append({"robust": r.model, "standard": s.model, "shared": shared, "lower": lower,
                        "separated": separated})
    return out


def summary(result: Result) -> str:
    """A few sentences that state what the chart shows for these models."""
    parts = []
    for c in comparisons(result):
        k, total = len(c["lower"]), len(c["shared"])
        text = f"{c['robust']} has lower R than {c['standard']} at {k} of {total} layers"
        if k:
            text += f", {len(c['separated'])} of them with non-overlapping {result.ci_level:.0%} intervals"
        higher = [l for l in c["shared"] if l not in c["lower"]]
        if higher:
            text += "; not at " + ", ".join(higher)
        parts.append(text + ".")
    if not parts:  # no robust/standard pair: say where each model is most and least robust
        for m in result.models:
            rs = result.ratios(m.model)
            lo, hi = min(rs, key=rs.get), max(rs, key=rs.get)
            parts.append(f"{m.model} has its lowest R at {lo} ({rs[lo]:.3g}) and its highest at {hi} ({rs[hi]:.3g}).")
    parts.append(f"Measured in the {result.norm} ball of radius {result.eps:g} on {result.n_images} images "
                 f"with {result.steps} steps.")
    return " ".join(parts)
