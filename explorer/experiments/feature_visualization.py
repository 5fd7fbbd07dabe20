"""Feature visualization: maximize one unit of a layer from noise, on each model.

Ilyas et al. (2019), Section 3 and Appendix (and Engstrom et al. 2019, "Adversarial
Robustness as a Prior for Learned Representations"): for a robust model, plain gradient
ascent on one coordinate of the penultimate representation, from noise and without any
regularizer or transformation, draws a recognizable pattern; for a standard model it
draws high-frequency noise. The ascent is the one loop (``optimize``) with
``objectives.activation``, normalized L2 steps and only the [0, 1] clamp
(``threat.Unconstrained``); several units are optimized as one batch, all from the
same start so the differences come from the units. A unit that is zero (after its
ReLU) everywhere at the start has no gradient and cannot move, so by default each
model gets its ``n_units`` units most active at the start.

Defaults for the bundled 28 x 28 models: step 0.1, 200 steps, from uniform noise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from explorer import objectives
from explorer.devices import device_lock
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.experiments.frequency import energy_below, power_spectrum, radius
from explorer.optimize import optimize
from explorer.threat import Unconstrained

STARTS = ("noise", "grey")
MAX_STEPS = 10_000
MAX_UNITS = 64


LOW_CUTOFF = 0.25  # the frequency radius below which a pattern keeps its energy (Result.summary)
PATTERN_RATIO = 1.5  # a low-frequency share this many times white noise's: structure, not noise (Result.summary)

@dataclass(frozen=True)
class Config:
    """Units to maximize, on every model.

    Attributes:
        models: zoo names (the standard and the robust model).
        units: coordinates (channels, for a convolutional layer) of ``layer``, the same for
            every model; None for each model's ``n_units`` most active units at the start.
        n_units: how many units when ``units`` is None.
        layer: ``penultimate`` by default.
        start: ``noise`` (uniform in [0, 1], by ``seed``) or ``grey``.
        steps, step_size: normalized L2 gradient ascent.
        seed: the noise start.
        device: torch device string; None for the best device.
    """

    models: tuple[str, ...]
    units: Optional[tuple[int, ...]] = None
    n_units: int = 8
    layer: str = "penultimate"
    start: str = "noise"
    steps: int = 200
    step_size: float = 0.1
    seed: int = 0
    device: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "models", C.check_models(self.models))
        C.check_int("n_units", self.n_units, 1, MAX_UNITS)
        if self.units is not None:
            units = (self.units,) if isinstance(self.units, (int, np.integer)) else tuple(self.units)
            if not 1 <= len(units) <= MAX_UNITS or any(isinstance(u, bool) or not isinstance(u, (int, np.integer))
                                                       or u < 0 for u in units):
                raise ValueError(f"units must be 1..{MAX_UNITS} unit indices >= 0, got {self.units!r}")
            object.__setattr__(self, "units", tuple(int(u) for u in units))
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")
        C.check_int("steps", self.steps, 1, MAX_STEPS)
        C.check_positive("step_size", self.step_size)


@dataclass(frozen=True)
class ModelVisualization:
    """One model's images.

    Attributes:
        units: the units of this row.
        images: [U, C, H, W] float32, one per unit.
        activation_start, activation_final: [U] the unit's value at the start and at the result.
        history: [steps + 1, U] the unit's value at each step.
        probs: [U, K] how the model classifies each image.
    """

    model: str
    kind: str
    robust: bool
    units: tuple[int, ...]
    images: np.ndarray
    activation_start: np.ndarray
    activation_final: np.ndarray
    history: np.ndarray
    probs: np.ndarray
    seconds: float


@dataclass(frozen=True)
class Result:
    """One row of images per model (``rows``), all from ``start_image``."""

    layer: str
    start_image: np.ndarray
    class_names: tuple[str, ...]
    rows: tuple[ModelVisualization, ...]
    steps: int
    step_size: float
    device: str

    def low_frequency_share(self, cutoff: float = LOW_CUTOFF) -> tuple[float, ...]:
        """Per row, the mean fraction of its images' energy (each image's mean removed) at rho <= ``cutoff``:
        a pattern keeps its energy low, noise spreads it like white noise (``noise_share``)."""
        return tuple(float(np.mean([energy_below(power_spectrum(img - img.mean(axis=(-2, -1), keepdims=True)), cutoff)
                                     for img in row.images]))
                     for row in self.rows)

    def noise_share(self, cutoff: float = LOW_CUTOFF) -> float:
        """What white noise would put at rho <= ``cutoff``: the fraction of DFT entries there."""
        return float((radius(*self.start_image.shape[-2:]) <= cutoff + 1e-9).mean())

    def summary(self, cutoff: float = LOW_CUTOFF) -> str:
        """Whether the robust model's images hold low-frequency structure (patterns) where the standard
        one's look like noise, in numbers: the claim of Engstrom et al. 2019, checked on these models."""
        shares, noise = self.low_frequency_share(cutoff), self.noise_share(cutoff)
        text = (f"Energy of the images at ρ ≤ {cutoff:g} (mean removed; white noise puts {noise:.0%} there): "
                + ", ".join(f"{row.model} {share:.0%}" for row, share in zip(self.rows, shares)) + ".")
        standard = [share for row, share in zip(self.rows, shares) if not row.robust]
        robust = [share for row, share in zip(self.rows, shares) if row.robust]
        if not standard or not robust:
            return text
        if max(standard[0], robust[0]) <= PATTERN_RATIO * noise:
            return text + (" Here neither model's images keep clearly more of their energy at low frequencies "
                           "than white noise: noise, not patterns.")
        if robust[0] > standard[0]:
            return text + (" Here the robust model's images are smoother than the standard model's and than "
                           "white noise: patterns.")
        return text + " Here the robust model's images are no smoother than the standard model's."


def work(config: Config) -> float:
    """Image-steps of the run (``explorer.experiments``' cost contract): one image per unit."""
    units = len(config.units) if config.units is not None else config.n_units
    return float(len(config.models) * config.steps * units)


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Gradient ascent on each unit from the same start, on every model."""
    device = C.resolve_device(config.device)
    models = C.load_models(config.models, device)
    shape = tuple(models[0].info.input_size)
    if config.start == "grey":
        x0 = torch.full((1, *shape), 0.5)
    else:
        x0 = torch.rand((1, *shape), generator=torch.Generator().manual_seed(int(config.seed)))
    rows = []
    with device_lock(device):
        for i, m in enumerate(models):
            if config.layer not in m.layer_names:
                raise ValueError(f"{m.name} has no layer {config.layer!r}; it has {m.layer_names}")
            g = m.feature_fn(config.layer)
            with torch.no_grad():
                start = g(x0.to(device))[0]
            start = start.flatten(1).mean(1) if start.ndim > 1 else start
            width = start.shape[0]
            if config.units is None:
                units = torch.argsort(start.cpu(), descending=True, stable=True)[:config.n_units]
            else:
                units = torch.tensor(config.units)
            if int(units.max()) >= width:
                raise ValueError(f"{m.name}'s {config.layer} has {width} units; "
                                 f"unit {int(units.max())} is out of range")
            x = x0.expand(len(units), -1, -1, -1).contiguous().to(device)

            def model_progress(step, total, metrics, i=i, name=m.name):
                if progress is not None:
                    progress(i * config.steps + step, len(models) * config.steps, {**metrics, "model": name})

            t0 = time.perf_counter()
            res = optimize(objectives.activation(g, units.to(device)), x, Unconstrained(), config.steps,
                           config.step_size, maximize=True, keep_best=True, progress=model_progress, cancel=cancel)
            history = res.history[0].numpy()
            rows.append(ModelVisualization(
                model=m.name, kind=m.info.kind, robust=bool(m.info.robust), units=tuple(int(u) for u in units),
                images=res.x.float().cpu().numpy(),
                activation_start=history[0], activation_final=res.loss.float().cpu().numpy(), history=history,
                probs=C.probs_of(m, res.x), seconds=time.perf_counter() - t0))
    return Result(layer=config.layer, start_image=x0[0].numpy(),
                  class_names=tuple(models[0].class_names), rows=tuple(rows), steps=config.steps,
                  step_size=float(config.step_size), device=str(device))
