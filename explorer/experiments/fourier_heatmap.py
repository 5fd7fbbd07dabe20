"""Fourier heat map: error rate under additive noise along each single Fourier basis vector.

Yin et al. (2019), "A Fourier Perspective on Model Robustness in Computer Vision", as
cited by Hendrycks & Gilmer in the Distill discussion of Ilyas et al. (2019). For every
frequency (u, v) let U_{u,v} be the real image whose DFT is non-zero only at (u, v) and
its mirror (-u, -v), scaled to ||U||_2 = 1 (a 2-D cosine). Each test image x gets

    x' = clamp(x + r * s * U_{u,v}, 0, 1),   s = +-1 at random per image, channel and frequency,

and the heat map shows the error rate on the x' at (u, v). Natural models are hurt most
by high frequencies, adversarially trained ones by low frequencies (Yin et al., Fig. 1).
The paper used r = 4 on 32x32x3 CIFAR-10 and 1000 test images.

We keep r = 4 on Fashion-MNIST (28 x 28 x 1). Measured on the bundled models with 50 test
images: at r = 2 the robust models' error stays at their clean error (24-26%) at every
frequency; at r = 4 fmnist-standard's mean error rises from 52% at low frequencies
(|(u, v)| <= 4) to 64% at high ones (> 9), while fmnist-robust-linf's falls from 49% to
44%, Yin et al.'s pattern (fmnist-robust-l2 stays near its clean error: 26% / 21%).
The map covers all 28 x 28 frequencies; (u, v) and (-u, -v) give the same basis image,
so each pair is evaluated once and written to both cells. For large images
``max_frequency`` restricts it to a grid of low frequencies.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from explorer.devices import device_lock
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.optimize import Cancelled


def basis_image(height: int, width: int, u: int, v: int) -> np.ndarray:
    """U_{u,v}: the real, unit-L2-norm image whose DFT lives at (u, v) and (-u, -v), [H, W] float64.

    ``u``, ``v`` are signed integer frequencies (cycles per image), taken modulo the size.
    """
    spectrum = np.zeros((height, width), dtype=np.complex128)
    spectrum[u % height, v % width] = 1
    spectrum[-u % height, -v % width] = 1
    b = np.fft.ifft2(spectrum).real
    return b / np.linalg.norm(b)


def frequency_axis(size: int, max_frequency: Optional[int] = None) -> np.ndarray:
    """Signed frequencies of one axis in fftshift order (-size//2 ... ceil(size/2) - 1),
    cut to |k| <= max_frequency when given."""
    k = np.arange(-(size // 2), size - size // 2)
    return k if max_frequency is None else k[np.abs(k) <= max_frequency]


def _canonical(u: int, v: int, h: int, w: int) -> tuple[int, int]:
    """One representative of the pair {(u, v), (-u, -v)} (indices modulo the size)."""
    a, b = (u % h, v % w), (-u % h, -v % w)
    return min(a, b)


@dataclass(frozen=True)
class Config:
    """One heat map per model.

    Attributes:
        models: zoo names.
        noise_norm: r, the L2 norm of the added basis image (per channel).
        n_images: test images drawn by ``seed``.
        max_frequency: None for every frequency; else only |u|, |v| <= max_frequency.
        batch_size: images per forward pass.
        seed: images and signs.
        device: torch device string; None for the best device.
    """

    models: tuple[str, ...]
    noise_norm: float = 4.0
    n_images: int = 100
    max_frequency: Optional[int] = None
    batch_size: int = 1024
    seed: int = 0
    device: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "models", C.check_models(self.models))
        C.check_positive("noise_norm", self.noise_norm)
        C.check_int("n_images", self.n_images, 1, 100_000)
        C.check_int("batch_size", self.batch_size, 1, 1 << 16)
        if self.max_frequency is not None:
            C.check_int("max_frequency", self.max_frequency, 0, 10_000)


@dataclass(frozen=True)
class Result:
    """Error rates per frequency.

    Attributes:
        error: [models, len(freq_u), len(freq_v)] error rate at each (u, v), in [0, 1].
        freq_u, freq_v: signed frequencies of the rows (vertical) and columns (horizontal).
        clean_error: [models] error on the same images without noise.
        example: the first test image, [C, H, W] float32 (to show what the noise looks like).
    """

    models: tuple[str, ...]
    kinds: tuple[str, ...]
    error: np.ndarray
    freq_u: np.ndarray
    freq_v: np.ndarray
    clean_error: np.ndarray
    noise_norm: float
    n_images: int
    images: str
    example: np.ndarray
    seconds: float
    device: str

    def rows(self) -> list[dict]:
        """One plain dict per (model, u, v)."""
        return [{"model": m, "kind": self.kinds[i], "u": int(u), "v": int(v), "error": float(self.error[i, a, b])}
                for i, m in enumerate(self.models) for a, u in enumerate(self.freq_u)
                for b, v in enumerate(self.freq_v)]

    def noisy_example(self, u: int, v: int, sign: float = 1.0) -> np.ndarray:
        """The example image with r * U_{u,v} added (clamped), [C, H, W] float32."""
        _, h, w = self.example.shape
        return np.clip(self.example + sign * self.noise_norm * basis_image(h, w, u, v), 0, 1).astype(np.float32)


def work(config: Config) -> float:
    """Forward passes of the run (``explorer.experiments``' cost contract): every image at every frequency
    (every frequency counts as a 32 x 32 grid when ``max_frequency`` is None)."""
    side = 33 if config.max_frequency is None else min(2 * config.max_frequency + 1, 33)
    return float(len(config.models) * config.n_images * side * side)


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Error rate of every model at every frequency of the grid."""
    t0 = time.perf_counter()
    device = C.resolve_device(config.device)
    models = C.load_models(config.models, device)
    x, y, where = C.sample_test_images(models[0].info.dataset, config.n_images, config.seed)
    n, ch, h, w = x.shape
    fu, fv = frequency_axis(h, config.max_frequency), frequency_axis(w, config.max_frequency)
    cells: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for a, u in enumerate(fu):
        for b, v in enumerate(fv):
            cells.setdefault(_canonical(int(u), int(v), h, w), []).append((a, b))
    pairs = sorted(cells)
    g = torch.Generator().manual_seed(int(config.seed))
    signs = torch.randint(0, 2, (len(pairs), n, ch, 1, 1), generator=g).float() * 2 - 1
    error = np.zeros((len(models), len(fu), len(fv)))
    clean = np.zeros(len(models))
    per_chunk = max(1, config.batch_size // n)
    chunks = math.ceil(len(pairs) / per_chunk)
    with device_lock(device):
        xd, yd = x.to(device), y.to(device)
        with torch.no_grad():
            for i, m in enumerate(models):
                pred = torch.cat([m(part).argmax(1) for part in xd.split(config.batch_size)])
                clean[i] = float((pred != yd).float().mean())
        for k in range(chunks):
            chunk = pairs[k * per_chunk:(k + 1) * per_chunk]
            basis = torch.from_numpy(np.stack([basis_image(h, w, u, v) for u, v in chunk])).float()
            noise = config.noise_norm * signs[k * per_chunk:k * per_chunk + len(chunk)] * basis[:, None, None]
            batch = (x[None] + noise).clamp(0, 1).reshape(-1, ch, h, w).to(device)
            with torch.no_grad():
                for i, m in enumerate(models):
                    pred = torch.cat([m(part).argmax(1) for part in batch.split(config.batch_size)])
                    wrong = (pred.view(len(chunk), n) != yd).float().mean(1).cpu().numpy()
                    for p, e in zip(chunk, wrong):
                        for a, b in cells[p]:
                            error[i, a, b] = e
            if progress is not None:
                progress(k + 1, chunks, {})
            if cancel is not None and cancel():
                raise Cancelled(f"cancelled after {k + 1} of {chunks} batches")
    return Result(models=config.models, kinds=tuple(m.info.kind for m in models), error=error, freq_u=fu,
                  freq_v=fv, clean_error=clean, noise_norm=float(config.noise_norm), n_images=n, images=where,
                  example=x[0].numpy(), seconds=time.perf_counter() - t0, device=str(device))
