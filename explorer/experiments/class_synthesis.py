"""Class synthesis: large-eps targeted PGD from one start toward every class.

"Robust gradients are perceptually aligned": Ilyas et al. (2019), Section 3 and
Figure 2; Santurkar et al. (2019), "Image Synthesis with a Single (Robust) Classifier";
Tsipras et al. (2019). From one start image (the mean training image, a test image, a
flat grey image or uniform noise) targeted PGD minimizes the cross-entropy of each class in turn inside a large L2
ball around the start (``attacks.pgd``, the one loop). A robust model's optimum draws
the target's shapes (a trouser's two legs, a boot's sole); a standard model reaches the
same confidence with perturbations that look like noise.

Defaults for the bundled 28 x 28 Fashion-MNIST models: L2 eps 8 (an image of flat grey
0.5 has L2 norm 14), 60 steps of 2.5 * eps / steps, from the mean training image (a
class-neutral blob on the data's black background, in the spirit of Santurkar et al.'s
class-conditional seeds). Measured on a partly trained fmnist-robust-linf: from the mean
it reached all 10 classes with target probability >= 0.76; from flat grey or noise only
7 (Dress and Coat need a dark background the grey start lacks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from explorer import attacks, data
from explorer.devices import device_lock
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C

STARTS = ("mean", "grey", "noise", "image")
MAX_STEPS = 5000


@dataclass(frozen=True)
class Config:
    """One class-synthesis grid.

    Attributes:
        models: zoo names (the standard and the robust model).
        start: ``mean`` (the mean training image of the models' dataset), ``grey`` (0.5
            everywhere), ``noise`` (uniform in [0, 1], drawn by ``seed``) or ``image``
            (``image`` / ``image_shape``).
        image, image_shape: the start image for ``start="image"`` (``for_image`` builds them).
        eps: radius of the L2 ball around the start.
        steps: PGD steps; step_size None for 2.5 * eps / steps.
        classes: target classes; None for every class.
        seed: the noise start.
        device: torch device string; None for the best device.
    """

    models: tuple[str, ...]
    start: str = "mean"
    image: Optional[bytes] = None
    image_shape: Optional[tuple[int, int, int]] = None
    eps: float = 8.0
    steps: int = 60
    step_size: Optional[float] = None
    classes: Optional[tuple[int, ...]] = None
    seed: int = 0
    device: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "models", C.check_models(self.models))
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")
        if self.image_shape is not None:
            object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        if self.start == "image" and self.image is None:
            raise ValueError("start='image' needs an image")
        C.check_image_bytes("image", self.image, self.image_shape)
        C.check_positive("eps", self.eps)
        C.check_int("steps", self.steps, 1, MAX_STEPS)
        C.check_positive("step_size", self.step_size, allow_none=True)
        if self.classes is not None:
            classes = tuple(int(c) for c in self.classes)
            if not classes or min(classes) < 0 or len(set(classes)) != len(classes):
                raise ValueError(f"classes must be distinct class indices, got {self.classes!r}")
            object.__setattr__(self, "classes", classes)

    @classmethod
    def for_image(cls, image, models, **kwargs) -> "Config":
        raw, shape = C.image_to_bytes(image)
        return cls(models=C.check_models(models), start="image", image=raw, image_shape=shape, **kwargs)

    def resolved_step_size(self) -> float:
        return float(self.step_size) if self.step_size is not None else 2.5 * self.eps / self.steps


@dataclass(frozen=True)
class ModelSynthesis:
    """One model's row of the grid.

    Attributes:
        images: [T, C, H, W] float32, one per target class.
        probs: [T, K] softmax of each synthesized image.
        target_prob: [T] probability of the target class.
        reached: [T] bool, the prediction is the target.
        loss_history: [steps + 1, T] cross-entropy of the target at each step.
    """

    model: str
    kind: str
    robust: bool
    images: np.ndarray
    probs: np.ndarray
    target_prob: np.ndarray
    reached: np.ndarray
    loss_history: np.ndarray
    seconds: float

    @property
    def n_reached(self) -> int:
        return int(self.reached.sum())


@dataclass(frozen=True)
class Result:
    """The grid: one row per model, one column per target class."""

    start_image: np.ndarray
    start: str
    targets: np.ndarray
    class_names: tuple[str, ...]
    rows: tuple[ModelSynthesis, ...]
    eps: float
    steps: int
    step_size: float
    device: str


def mean_image(dataset: str) -> torch.Tensor:
    """The mean training image of ``dataset``, [1, C, H, W] (Fashion-MNIST: the bundled,
    class-balanced subset; CIFAR-10: its training set when on disk)."""
    if dataset == "fashion-mnist":
        ds = data.bundled_fashion_mnist("train")
    elif dataset == "cifar10":
        ds = data.load_cifar10("train")
    else:
        raise data.DataError(f"no training images of {dataset!r} here for a mean start: start from grey or noise")
    return ds.float_images().mean(0, keepdim=True)


def start_image(config: Config, shape: tuple[int, int, int], dataset: str = "fashion-mnist") -> torch.Tensor:
    """The start x0 for ``config``, [1, C, H, W] float32 in [0, 1]."""
    if config.start == "mean":
        return mean_image(dataset)
    if config.start == "image":
        if tuple(config.image_shape) != tuple(shape):
            raise ValueError(f"the models take {tuple(shape)} images, the start image is {config.image_shape}")
        return torch.from_numpy(C.bytes_to_image(config.image, config.image_shape))[None]
    if config.start == "grey":
        return torch.full((1, *shape), 0.5)
    g = torch.Generator().manual_seed(int(config.seed))
    return torch.rand((1, *shape), generator=g)


def work(config: Config) -> float:
    """Image-steps of the run (``explorer.experiments``' cost contract); every class counts as ten."""
    return float(len(config.models) * config.steps * (len(config.classes) if config.classes is not None else 10))


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Targeted L2 PGD from the start toward each target class, on every model."""
    device = C.resolve_device(config.device)
    models = C.load_models(config.models, device)
    k = len(models[0].class_names)
    targets = torch.tensor(config.classes if config.classes is not None else range(k), dtype=torch.long)
    if int(targets.max()) >= k:
        raise ValueError(f"class {int(targets.max())} is out of range: the models have {k} classes")
    x0 = start_image(config, tuple(models[0].info.input_size), models[0].info.dataset)
    step_size = config.resolved_step_size()
    rows = []
    with device_lock(device):
        x = x0.expand(len(targets), -1, -1, -1).contiguous().to(device)
        for i, m in enumerate(models):
            def model_progress(step, total, metrics, i=i, name=m.name):
                if progress is not None:
                    progress(i * config.steps + step, len(models) * config.steps, {**metrics, "model": name})

            t0 = time.perf_counter()
            res = attacks.pgd(m, x, targets.to(device), "l2", config.eps, config.steps, step_size,
                              target=targets.to(device), random_start=False, keep_best=True, seed=config.seed,
                              progress=model_progress, cancel=cancel)
            probs = res.logits_adv.float().softmax(1).cpu().numpy()
            t = targets.numpy()
            rows.append(ModelSynthesis(
                model=m.name, kind=m.info.kind, robust=bool(m.info.robust),
                images=res.x_adv.float().cpu().numpy(), probs=probs, target_prob=probs[np.arange(len(t)), t],
                reached=res.success.cpu().numpy().astype(bool), loss_history=res.loss_history[0].numpy(),
                seconds=time.perf_counter() - t0))
    return Result(start_image=x0[0].numpy(), start=config.start, targets=targets.numpy(),
                  class_names=tuple(models[0].class_names), rows=tuple(rows), eps=float(config.eps),
                  steps=config.steps, step_size=step_size, device=str(device))
