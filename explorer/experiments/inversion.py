"""Representation inversion: one D_R and one D_NR sample for one image.

Ilyas et al. (2019), "Adversarial Examples Are Not Bugs, They Are Features",
Section 3.1 and Appendix C: the robustified dataset D_R is built by finding, for each
training image x, an image z whose representation g(z) under a robust model matches
g(x), starting from another image (or noise):

    min_z ||g(z) - g(x)||_2 / ||g(x)||_2,

with normalized L2 gradient steps and no ball (``threat.Unconstrained``; only the [0, 1]
clamp), here through the one loop (``optimize``) with ``objectives.representation_match``.
With the robust model the result looks like x (a D_R sample: it carries only the robust
features of x); with the standard model it still looks like the start but the standard
model classifies it as x (a D_NR sample).

The paper used step 0.1 and 1000 iterations on CIFAR-10, with an L2-robust model. On
the bundled 28 x 28 Fashion-MNIST models one fixed step is either too slow (0.1: the
distance falls 2-5x in 1000 steps) or too coarse to settle (1.0). The default is a
decreasing schedule through the same loop: 300 steps of 1.0, then 300 of 0.3, then 300
of 0.1, each stage starting from the best point of the one before (keep-the-best
throughout); ``step_sizes=(0.1,)`` with ``steps=1000`` is the paper's recipe.

Measured with the bundled models on six test images (0, 12, 300, 555, 777, 100), each
from a test image of another class: fmnist-robust-l2 lowers the distance 123-495x,
fmnist-standard 6-12x, fmnist-robust-linf only 1.8-3.6x (longer or larger schedules
did not get it reliably past 5x either). Madry et al.
report that Linf training on MNIST makes the first layer threshold its input; a
representation built on near-binary thresholds gives gradient steps little to move, so
D_R samples are best made with the L2-robust model, as the paper did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from explorer.devices import device_lock
from explorer.experiments import _common as C
from explorer.inversion import invert, stage_steps
from explorer.optimize import Cancel, Progress

STARTS = ("random_image", "image", "noise", "grey")
DEFAULT_STEP_SIZES = (1.0, 0.3, 0.1)
MAX_STEPS = 10_000
PENULTIMATE = "penultimate"


@dataclass(frozen=True)
class Config:
    """One inversion on every model.

    Attributes:
        models: zoo names (the standard and the robust model).
        image, image_shape: the image x whose representation is matched (``for_images``).
        label: x's true class when known.
        start: ``random_image`` (a test image of another class drawn by ``seed``, as the
            paper starts from another training image), ``image`` (``start_image``),
            ``noise`` (uniform, by ``seed``) or ``grey``.
        start_image, start_label: the start z0 for ``start="image"`` and its class.
        layer: the representation g; ``penultimate`` (the paper's) by default.
        steps: normalized L2 gradient steps in all, split evenly over the stages.
        step_sizes: one step size per stage, each stage starting from the best point so far.
        seed: the random-image or noise start.
        device: torch device string; None for the best device.
    """

    models: tuple[str, ...]
    image: bytes
    image_shape: tuple[int, int, int]
    label: Optional[int] = None
    start: str = "random_image"
    start_image: Optional[bytes] = None
    start_label: Optional[int] = None
    layer: str = PENULTIMATE
    steps: int = 900
    step_sizes: tuple[float, ...] = DEFAULT_STEP_SIZES
    seed: int = 0
    device: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "models", C.check_models(self.models))
        object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        C.check_image_bytes("image", self.image, self.image_shape)
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")
        if self.start == "image" and self.start_image is None:
            raise ValueError("start='image' needs a start_image")
        C.check_image_bytes("start_image", self.start_image, self.image_shape)
        C.check_int("steps", self.steps, 0, MAX_STEPS)
        sizes = (self.step_sizes,) if isinstance(self.step_sizes, (int, float)) else tuple(self.step_sizes)
        if not sizes:
            raise ValueError("step_sizes must not be empty")
        for size in sizes:
            C.check_positive("step_sizes", size)
        object.__setattr__(self, "step_sizes", tuple(float(v) for v in sizes))
        if not isinstance(self.layer, str) or not self.layer:
            raise ValueError(f"layer must be a layer name, got {self.layer!r}")

    @classmethod
    def for_images(cls, image, models, start_image=None, **kwargs) -> "Config":
        """A config for target ``image`` and (optionally) a start image, both [C, H, W] in [0, 1]."""
        raw, shape = C.image_to_bytes(image)
        if start_image is not None:
            start_raw, start_shape = C.image_to_bytes(start_image)
            if start_shape != shape:
                raise ValueError(f"the start image is {start_shape}, the target {shape}")
            kwargs = {"start": "image", **kwargs, "start_image": start_raw}
        return cls(models=C.check_models(models), image=raw, image_shape=shape, **kwargs)


@dataclass(frozen=True)
class ModelInversion:
    """The inversion through one model.

    Attributes:
        inverted: the best z found, [C, H, W] float32.
        loss_history: relative distance ||g(z) - g(x)|| / ||g(x)|| at each step, [steps + 1]
            (over all stages; a stage's first point is the previous stage's best).
        start_distance, final_distance: at z0 and at the returned z.
        reduction: start_distance / final_distance.
        probs: [models, K]: how each model of the config classifies ``inverted``.
    """

    model: str
    kind: str
    robust: bool
    inverted: np.ndarray
    loss_history: np.ndarray
    start_distance: float
    final_distance: float
    reduction: float
    probs: np.ndarray
    seconds: float


@dataclass(frozen=True)
class Result:
    """x, the start z0, the inversion through each model and how every model classifies them.

    Attributes:
        probs_image, probs_start: [models, K]: how each model classifies x and z0.
    """

    models: tuple[str, ...]
    kinds: tuple[str, ...]
    class_names: tuple[str, ...]
    image: np.ndarray
    label: Optional[int]
    start_image: np.ndarray
    start: str
    start_label: Optional[int]
    probs_image: np.ndarray
    probs_start: np.ndarray
    inversions: tuple[ModelInversion, ...]
    layer: str
    steps: int
    step_sizes: tuple[float, ...]
    stage_steps: tuple[int, ...]
    device: str

    def schedule_text(self) -> str:
        """The step schedule in words: ``300 x 1, 300 x 0.3, 300 x 0.1``."""
        return ", ".join(f"{n} x {s:g}" for n, s in zip(self.stage_steps, self.step_sizes))

    def pixel_distances(self) -> tuple[tuple[float, float], ...]:
        """Per inversion, the pixel L2 distance of the result to x and to the start z0."""
        return tuple((float(np.linalg.norm(inv.inverted - self.image)),
                      float(np.linalg.norm(inv.inverted - self.start_image))) for inv in self.inversions)

    def summary(self) -> str:
        """What each result looks like in pixels (nearer x, a D_R-like sample, or nearer z0, a D_NR-like
        one) and what its own model calls it, from the numbers of this run."""
        parts = []
        for inv, (to_x, to_z) in zip(self.inversions, self.pixel_distances()):
            own = self.class_names[int(inv.probs[self.models.index(inv.model)].argmax())]
            parts.append(f"through {inv.model} the result is {to_x:.2f} from x and {to_z:.2f} from z0 in pixels "
                         f"(L2), nearer {'x' if to_x < to_z else 'z0'}, and {inv.model} calls it {own}")
        return "Here " + "; ".join(parts) + "."


def random_test_image(dataset: str, label: Optional[int], seed: int) -> tuple[torch.Tensor, int]:
    """A test image drawn by ``seed``, of another class than ``label`` when it is known:
    ([1, C, H, W], its class)."""
    x, y, _ = C.sample_test_images(dataset, 64, seed)
    others = [i for i in range(len(y)) if label is None or int(y[i]) != label]
    k = others[0] if others else 0
    return x[k:k + 1], int(y[k])


def start_point(config: Config, dataset: str = "fashion-mnist") -> tuple[torch.Tensor, Optional[int]]:
    """z0, [1, C, H, W] float32 in [0, 1], and its class when known."""
    if config.start == "random_image":
        return random_test_image(dataset, config.label, config.seed)
    if config.start == "image":
        return torch.from_numpy(C.bytes_to_image(config.start_image, config.image_shape))[None], config.start_label
    if config.start == "grey":
        return torch.full((1, *config.image_shape), 0.5), None
    g = torch.Generator().manual_seed(int(config.seed))
    return torch.rand((1, *config.image_shape), generator=g), None


def work(config: Config) -> float:
    """Image-steps of the run (``explorer.experiments``' cost contract)."""
    return float(len(config.models) * config.steps)


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Invert x's representation from z0 through every model; classify everything with every model."""
    device = C.resolve_device(config.device)
    models = C.load_models(config.models, device, config.image_shape)
    x_cpu = torch.from_numpy(C.bytes_to_image(config.image, config.image_shape))[None]
    z0_cpu, start_label = start_point(config, models[0].info.dataset)
    steps = stage_steps(config.steps, len(config.step_sizes))
    out = []
    with device_lock(device):
        x, z0 = x_cpu.to(device), z0_cpu.to(device)
        for i, m in enumerate(models):
            def model_progress(step, total, metrics, i=i, name=m.name):
                if progress is not None:
                    progress(i * config.steps + step, len(models) * config.steps, {**metrics, "model": name})

            t0 = time.perf_counter()
            z, loss, history = invert(m, x, z0, config.layer, steps, config.step_sizes, model_progress, cancel)
            history = history[:, 0].double().numpy()
            final = float(loss[0])
            start = float(history[0])
            out.append(ModelInversion(
                model=m.name, kind=m.info.kind, robust=bool(m.info.robust),
                inverted=z[0].float().cpu().numpy(), loss_history=history, start_distance=start,
                final_distance=final, reduction=start / final if final > 0 else float("inf"),
                probs=np.stack([C.probs_of(other, z)[0] for other in models]),
                seconds=time.perf_counter() - t0))
        probs_image = np.stack([C.probs_of(m, x)[0] for m in models])
        probs_start = np.stack([C.probs_of(m, z0)[0] for m in models])
    return Result(models=config.models, kinds=tuple(m.info.kind for m in models),
                  class_names=tuple(models[0].class_names), image=x_cpu[0].numpy(), label=config.label,
                  start_image=z0_cpu[0].numpy(), start=config.start, start_label=start_label,
                  probs_image=probs_image, probs_start=probs_start, inversions=tuple(out), layer=config.layer,
                  steps=config.steps, step_sizes=config.step_sizes, stage_steps=steps, device=str(device))
