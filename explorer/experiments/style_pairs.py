"""Which robust-vs-standard pair shows Nakano's effect: measurements of style transfers.

Nakano found that style transfer works with a robust ResNet and not with a standard one,
whose output carries high-frequency, grid-like artifacts. For each candidate pair (a
standard and a robust network of one architecture) this runs the same transfer with each
network as the style network and measures, on the stylized images:

- the style loss reached (the weighted, normalized Gram term at the last iteration);
- texture statistics: the distance between the log radially averaged power spectra of the
  output and of the style image (0 = the same spectrum shape);
- grid artifact: how far the power at the frequencies a stride-2 network repeats on
  (1/2 and 1/4 of the sampling rate, along each axis and the diagonals) stands above the
  power at other frequencies of the same radius (log10 ratio; 0 = no peak);
- the share of spectral energy above a quarter of the sampling rate (style image beside it);
- seconds per iteration of each network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from explorer.experiments import Cancel, Progress
from explorer.experiments import style_transfer as ST


def _luma(image: np.ndarray) -> np.ndarray:
    """[3, H, W] or [H, W, 3] or [H, W] in [0, 1] or uint8 -> float64 [H, W] luma, mean removed."""
    a = np.asarray(image, dtype=np.float64)
    if a.dtype.kind in "ui" or a.max() > 1.0 + 1e-6:
        a = a / 255.0
    if a.ndim == 3:
        if a.shape[0] == 3:
            a = a.transpose(1, 2, 0)
        a = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    return a - a.mean()


def power_spectrum(image: np.ndarray) -> np.ndarray:
    """|FFT|^2 of the luma (mean removed), zero frequency at the centre, [H, W]."""
    return np.abs(np.fft.fftshift(np.fft.fft2(_luma(image)))) ** 2


def _radius(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    fy = (np.arange(h) - h // 2) / h
    fx = (np.arange(w) - w // 2) / w
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)  # cycles per pixel, 0 .. ~0.707


def radial_spectrum(image: np.ndarray, bins: int = 32) -> np.ndarray:
    """Power averaged over rings of equal frequency, ``bins`` rings from 0 to 0.5 cycles/pixel."""
    p = power_spectrum(image)
    r = _radius(p.shape)
    edges = np.linspace(0, 0.5, bins + 1)
    idx = np.digitize(r, edges) - 1
    out = np.zeros(bins)
    for b in range(bins):
        m = idx == b
        out[b] = p[m].mean() if m.any() else 0.0
    return out


def spectrum_distance(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """RMS difference of the log10 radial spectra, each normalized to total power 1 (shape, not contrast)."""
    ra, rb = radial_spectrum(a, bins)[1:], radial_spectrum(b, bins)[1:]
    ra, rb = ra / max(ra.sum(), 1e-300), rb / max(rb.sum(), 1e-300)
    return float(np.sqrt(np.mean((np.log10(ra + 1e-12) - np.log10(rb + 1e-12)) ** 2)))


def high_frequency_share(image: np.ndarray) -> float:
    """Share of the spectral energy above a quarter of the sampling rate (radius > 0.25 cycles/pixel)."""
    p = power_spectrum(image)
    r = _radius(p.shape)
    total = p.sum()
    return float(p[r > 0.25].sum() / total) if total > 0 else 0.0


def grid_score(image: np.ndarray) -> float:
    """Mean log10 of (power at a grid frequency / median power of the other frequencies at the same radius),
    over the grid frequencies (1/2 and 1/4 cycles/pixel along each axis and both diagonals). A periodic
    dotted grid puts peaks there; a natural texture does not (about 0)."""
    p = power_spectrum(image)
    h, w = p.shape
    cy, cx = h // 2, w // 2
    r = _radius(p.shape)
    ratios = []
    for f in (0.25, 0.5):
        dy, dx = int(round(f * h)), int(round(f * w))
        points = {(cy, cx + dx), (cy + dy, cx), (cy + dy, cx + dx), (cy - dy, cx + dx)}
        for y, x in points:
            y, x = y % h, x % w
            ring = np.abs(r - r[y, x]) < 1.0 / max(h, w)
            ring[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = False
            if not ring.any():
                continue
            peak = p[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2].max()
            ratios.append(np.log10((peak + 1e-20) / (np.median(p[ring]) + 1e-20)))
    return float(np.mean(ratios)) if ratios else 0.0


@dataclass(frozen=True)
class Config:
    """Candidate pairs ((standard, robust) zoo names) and the transfer they all run.

    Attributes:
        pairs: (standard, robust) per candidate.
        content, style: sample names (``data.sample_photos()`` / ``data.sample_textures()``).
        size: the output's longer side in pixels.
        iterations, optimizer, invert_grey: as in ``style_transfer.Config``.
        device: torch device string; None for the best device.
    """

    pairs: tuple[tuple[str, str], ...]
    content: str = "chelsea"
    style: str = "gravel"
    size: int = 128
    iterations: int = 100
    optimizer: str = "lbfgs"
    invert_grey: Optional[bool] = None
    device: Optional[str] = None


@dataclass(frozen=True)
class Row:
    pair: int
    model: str
    robust: bool
    style_loss: float
    final_loss: float
    spectrum_distance: float
    grid_score: float
    high_frequency_share: float
    seconds_per_iteration: float


@dataclass(frozen=True)
class Result:
    rows: tuple[Row, ...]
    images: tuple[np.ndarray, ...]  # per row, [3, H, W] float32
    content_image: np.ndarray
    style_image: np.ndarray
    style_high_frequency_share: float
    style_grid_score: float
    seconds: float


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    from explorer import data

    t0 = time.time()
    content = data.sample_photos()[config.content]
    style = data.sample_textures()[config.style]
    rows, images = [], []
    last = None
    for k, (standard, robust) in enumerate(config.pairs):
        st = ST.Config.for_images(content, style, (standard, robust), size=config.size, iterations=config.iterations,
                                  optimizer=config.optimizer, content_model=standard, invert_grey=config.invert_grey,
                                  device=config.device)
        res = ST.run(st, progress=progress, cancel=cancel)
        last = res
        for t in res.transfers:
            rows.append(Row(pair=k, model=t.style_model, robust=t.robust, style_loss=float(t.style_history[-1]),
                            final_loss=float(t.final_loss),
                            spectrum_distance=spectrum_distance(t.image, res.style_image),
                            grid_score=grid_score(t.image), high_frequency_share=high_frequency_share(t.image),
                            seconds_per_iteration=float(t.seconds_per_iteration)))
            images.append(t.image)
    assert last is not None
    return Result(rows=tuple(rows), images=tuple(images), content_image=last.content_image,
                  style_image=last.style_image, style_high_frequency_share=high_frequency_share(last.style_image),
                  style_grid_score=grid_score(last.style_image), seconds=time.time() - t0)


def table(result: Result) -> list[dict]:
    return [dict(r.__dict__) for r in result.rows]


def check_pairs(pairs: Sequence[Sequence[str]]) -> tuple[tuple[str, str], ...]:
    out = tuple((str(a), str(b)) for a, b in pairs)
    if not out:
        raise ValueError("give at least one (standard, robust) pair")
    return out
