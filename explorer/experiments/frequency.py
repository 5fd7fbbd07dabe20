"""Frequency: what standard and robust models see in low and high Fourier frequencies.

Test-time filtering: models trained on normal images are shown low-pass or high-pass
filtered test images. Two views here:

* one image through a low-pass or high-pass filter with a cutoff, and both models'
  predictions on it (``FilterConfig`` / ``run_filter``);
* accuracy of both models on filtered test images against the cutoff (``Config`` /
  ``run``).

Hendrycks & Gilmer's experiment in the Distill discussion of Ilyas et al. (2019) is the
other way round, models *trained* on filtered images (ImageNet: > 50% top-1 from high-pass,
> 30% from low-pass training): it lives in ``filtered_training``, with these filters. The
Fourier heat map of Yin et al. lives in ``fourier_heatmap``.

Frequencies are measured by the normalized radius

    rho(u, v) = sqrt(f_u^2 + f_v^2) / sqrt(0.5^2 + 0.5^2),   f in cycles per pixel (numpy's fftfreq),

so rho = 0 is the mean (DC) and rho = 1 the corner frequency (Nyquist on both axes).
The low-pass filter keeps rho <= cutoff: cutoff 1 returns the image, cutoff 0 its
mean. The high-pass filter keeps rho > cutoff and the mean (so the image keeps its
brightness and stays displayable): cutoff 0 returns the image, cutoff 1 its mean.
Filtered images are clamped to [0, 1] before a model sees them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from explorer.devices import device_lock
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.optimize import Cancelled

KINDS = ("low", "high")
_TOL = 1e-9
#: Cutoffs of the accuracy curve: 0, 0.05, ..., 1.
DEFAULT_CUTOFFS = tuple(round(0.05 * i, 2) for i in range(21))


# --- the Fourier tools -------------------------------------------------------------------

def radius(height: int, width: int) -> np.ndarray:
    """rho for every entry of an unshifted ``height x width`` DFT, [H, W] float64 in [0, 1]."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    return np.sqrt(fy ** 2 + fx ** 2) / np.sqrt(0.5)


def filter_mask(height: int, width: int, kind: str, cutoff: float) -> np.ndarray:
    """Which DFT entries a filter keeps, [H, W] bool (unshifted).

    ``low``: rho <= cutoff. ``high``: rho > cutoff, plus the mean.
    """
    kind = _check_kind(kind)
    rho = radius(height, width)
    if kind == "low":
        return rho <= cutoff + _TOL
    return (rho > cutoff + _TOL) | (rho == 0)


def fourier_filter(x: torch.Tensor | np.ndarray, kind: str, cutoff: float, clamp: bool = True) -> torch.Tensor:
    """Low-pass or high-pass filter images over their last two axes.

    Args:
        x: images [..., H, W] (a tensor or an array).
        kind: ``low`` or ``high``.
        cutoff: normalized radius in [0, 1] (see the module docstring).
        clamp: clamp the result to [0, 1] (what a model is shown).
    """
    x = torch.as_tensor(x)
    mask = torch.from_numpy(filter_mask(x.shape[-2], x.shape[-1], kind, cutoff)).to(x.device)
    spectrum = torch.fft.fft2(x.double() if x.device.type == "cpu" else x.float())
    out = torch.fft.ifft2(spectrum * mask).real.to(x.dtype if x.is_floating_point() else torch.float32)
    return out.clamp(0, 1) if clamp else out


def low_pass(x, cutoff: float, clamp: bool = True) -> torch.Tensor:
    """Keep frequencies with rho <= cutoff (1: the image, 0: its mean)."""
    return fourier_filter(x, "low", cutoff, clamp)


def high_pass(x, cutoff: float, clamp: bool = True) -> torch.Tensor:
    """Keep the mean and frequencies with rho > cutoff (0: the image, 1: its mean)."""
    return fourier_filter(x, "high", cutoff, clamp)


def power_spectrum(x: np.ndarray) -> np.ndarray:
    """|DFT|^2 over the last two axes, summed over leading axes (channels), fftshifted: [H, W]."""
    a = np.asarray(x, dtype=np.float64)
    p = np.abs(np.fft.fft2(a)) ** 2
    while p.ndim > 2:
        p = p.sum(0)
    return np.fft.fftshift(p)


def energy_below(power: np.ndarray, cutoff: float) -> float:
    """Fraction of a (shifted) power spectrum at rho <= cutoff; 0 for an all-zero spectrum."""
    rho = np.fft.fftshift(radius(*power.shape))
    total = float(power.sum())
    return float(power[rho <= cutoff + _TOL].sum() / total) if total > 0 else 0.0


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def _check_cutoff(cutoff) -> None:
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not 0 <= cutoff <= 1:
        raise ValueError(f"cutoff must be a number in [0, 1], got {cutoff!r}")


# --- one image -----------------------------------------------------------------------------

@dataclass(frozen=True)
class FilterConfig:
    """One image through one filter.

    Attributes:
        models: zoo names (the standard and the robust model).
        image, image_shape: float32 bytes of a [C, H, W] image in [0, 1] (``for_image`` builds them).
        label: the true class, when known.
        kind: ``low`` or ``high``.
        cutoff: normalized radius in [0, 1].
        device: torch device string; None for the best device.
    """

    models: tuple[str, ...]
    image: bytes
    image_shape: tuple[int, int, int]
    label: Optional[int] = None
    kind: str = "low"
    cutoff: float = 0.3
    device: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "models", C.check_models(self.models))
        object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        C.check_image_bytes("image", self.image, self.image_shape)
        _check_kind(self.kind)
        _check_cutoff(self.cutoff)

    @classmethod
    def for_image(cls, image, models, **kwargs) -> "FilterConfig":
        raw, shape = C.image_to_bytes(image)
        return cls(models=C.check_models(models), image=raw, image_shape=shape, **kwargs)


@dataclass(frozen=True)
class FilterResult:
    """The filtered image and both models' class probabilities before and after.

    Attributes:
        original, filtered: [C, H, W] float32.
        probs_original, probs_filtered: [models, K] float32.
        kept: fraction of DFT entries the filter keeps.
        energy_kept: fraction of the image's energy (mean removed) in the kept band.
    """

    models: tuple[str, ...]
    kinds: tuple[str, ...]
    class_names: tuple[str, ...]
    label: Optional[int]
    kind: str
    cutoff: float
    original: np.ndarray
    filtered: np.ndarray
    probs_original: np.ndarray
    probs_filtered: np.ndarray
    kept: float
    energy_kept: float


def run_filter(config: FilterConfig, progress: Optional[Progress] = None, cancel: Cancel = None) -> FilterResult:
    """Filter the image and classify it with every model (no optimization: instant)."""
    device = C.resolve_device(config.device)
    models = C.load_models(config.models, device, config.image_shape)
    x = torch.from_numpy(C.bytes_to_image(config.image, config.image_shape))[None]
    filtered = fourier_filter(x, config.kind, config.cutoff)
    mask = filter_mask(x.shape[-2], x.shape[-1], config.kind, config.cutoff)
    centred = x[0].numpy() - x[0].numpy().mean(axis=(-2, -1), keepdims=True)
    power = power_spectrum(centred)
    total = float(power.sum())
    energy = float(power[np.fft.fftshift(mask)].sum() / total) if total > 0 else 1.0
    with device_lock(device):
        po = np.stack([C.probs_of(m, x.to(device))[0] for m in models])
        pf = np.stack([C.probs_of(m, filtered.to(device))[0] for m in models])
    if progress is not None:
        progress(1, 1, {})
    return FilterResult(models=config.models, kinds=tuple(m.info.kind for m in models),
                        class_names=tuple(models[0].class_names), label=config.label, kind=config.kind,
                        cutoff=float(config.cutoff), original=x[0].numpy(), filtered=filtered[0].numpy(),
                        probs_original=po, probs_filtered=pf, kept=float(mask.mean()), energy_kept=energy)


# --- accuracy against the cutoff --------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """Accuracy on low-pass and high-pass filtered test images, for each cutoff.

    Attributes:
        models: zoo names.
        n_images: test images drawn by ``seed`` (Fashion-MNIST: the full test set when
            installed, else the bundled subset).
        cutoffs: normalized radii in [0, 1].
        batch_size: images per forward pass.
        seed: which images.
        device: torch device string; None for the best device.
    """

    models: tuple[str, ...]
    n_images: int = 500
    cutoffs: tuple[float, ...] = DEFAULT_CUTOFFS
    batch_size: int = 500
    seed: int = 0
    device: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "models", C.check_models(self.models))
        cutoffs = tuple(float(c) for c in self.cutoffs)
        if not cutoffs:
            raise ValueError("cutoffs must not be empty")
        for c in cutoffs:
            _check_cutoff(c)
        object.__setattr__(self, "cutoffs", tuple(sorted(set(cutoffs))))
        C.check_int("n_images", self.n_images, 1, 100_000)
        C.check_int("batch_size", self.batch_size, 1, 1 << 16)


@dataclass(frozen=True)
class Result:
    """Accuracy curves.

    Attributes:
        cutoffs: [T] normalized radii.
        accuracy: [models, 2, T]: low-pass (index 0) and high-pass (index 1) accuracy.
        clean_accuracy: [models] on the unfiltered images.
        images: where the images came from.
    """

    models: tuple[str, ...]
    kinds: tuple[str, ...]
    cutoffs: np.ndarray
    accuracy: np.ndarray
    clean_accuracy: np.ndarray
    n_images: int
    images: str
    seconds: float
    device: str

    def rows(self) -> list[dict]:
        """One plain dict per (model, filter, cutoff)."""
        return [{"model": m, "kind": self.kinds[i], "filter": f"{k}-pass", "cutoff": float(c),
                 "accuracy": float(self.accuracy[i, j, t])}
                for i, m in enumerate(self.models) for j, k in enumerate(KINDS)
                for t, c in enumerate(self.cutoffs)]


def work(config: Config) -> float:
    """Forward passes of the run (``explorer.experiments``' cost contract): every image at every cutoff."""
    return float(len(config.models) * config.n_images * len(config.cutoffs))


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Accuracy of every model on the filtered images, for both filters and every cutoff."""
    t0 = time.perf_counter()
    device = C.resolve_device(config.device)
    models = C.load_models(config.models, device)
    x, y, where = C.sample_test_images(models[0].info.dataset, config.n_images, config.seed)
    n = x.shape[0]
    correct = np.zeros((len(models), len(KINDS), len(config.cutoffs)))
    clean = np.zeros(len(models))
    spectrum = torch.fft.fft2(x.double())
    rho = torch.from_numpy(radius(x.shape[-2], x.shape[-1]))
    total = len(KINDS) * len(config.cutoffs)
    done = 0
    with device_lock(device):
        for i, m in enumerate(models):
            clean[i] = _count_correct(m, x, y, config.batch_size, device)
        for j, kind in enumerate(KINDS):
            for t, c in enumerate(config.cutoffs):
                keep = rho <= c + _TOL if kind == "low" else (rho > c + _TOL) | (rho == 0)
                xf = torch.fft.ifft2(spectrum * keep).real.float().clamp(0, 1)
                for i, m in enumerate(models):
                    correct[i, j, t] = _count_correct(m, xf, y, config.batch_size, device)
                done += 1
                if progress is not None:
                    progress(done, total, {"filter": f"{kind}-pass", "cutoff": c})
                if cancel is not None and cancel():
                    raise Cancelled(f"cancelled after {done} of {total} filters")
    return Result(models=config.models, kinds=tuple(m.info.kind for m in models),
                  cutoffs=np.asarray(config.cutoffs, dtype=np.float64), accuracy=correct / n,
                  clean_accuracy=clean / n, n_images=n, images=where, seconds=time.perf_counter() - t0,
                  device=str(device))


def _count_correct(model, x: torch.Tensor, y: torch.Tensor, batch_size: int, device) -> int:
    hits = 0
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            pred = model(x[s:s + batch_size].to(device)).argmax(1).cpu()
            hits += int((pred == y[s:s + batch_size]).sum())
    return hits
