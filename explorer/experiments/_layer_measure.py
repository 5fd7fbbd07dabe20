"""The authors' layer-robustness measure R(f) on one model: the numerator (the largest layer
deviation PGD finds in the ball, per image, through the one loop), the denominator (distances
between random pairs of distinct images) and the bootstrap interval on their ratio. The
experiment (``layer_robustness``) picks the images, the models and the layers."""

from __future__ import annotations

import math
import time
import zlib
from typing import Optional, Sequence

import numpy as np
import torch

from explorer import objectives
from explorer.classifier import Classifier
from explorer.optimize import Cancel, Progress, optimize
from explorer.threat import Threat

CI_METHOD = "percentile bootstrap over images"


def random_partners(n: int, pairs_per_image: int, generator: torch.Generator) -> torch.Tensor:
    """For each of ``n`` images, ``pairs_per_image`` partners drawn uniformly among the
    other ``n - 1`` images: [n, pairs_per_image] int64, never equal to the row index."""
    if n < 2:
        raise ValueError(f"pairs of distinct images need at least 2 images, got {n}")
    offsets = torch.randint(1, n, (n, pairs_per_image), generator=generator)
    return (torch.arange(n)[:, None] + offsets) % n


def _seed(*parts) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode())


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # float32 on the device (MPS has no float64), float64 on the CPU
    return (a.flatten(1).float() - b.flatten(1).float()).norm(dim=1).cpu().double()


def _pair_distances(clean: dict, partner: dict, where: torch.Tensor, mask: torch.Tensor, out: dict) -> None:
    """``out[l][i, k] = ||clean[l][i] - partner[l][where[i, k]]||`` wherever ``mask[i, k]``;
    one partner column at a time, so at most a batch of rows is gathered."""
    for k in range(mask.shape[1]):
        rows = torch.nonzero(mask[:, k]).flatten()
        if rows.numel() == 0:
            continue
        for l, f in clean.items():
            dev_rows = rows.to(f.device)
            out[l][rows, k] = _distances(f[dev_rows], partner[l][where[rows, k].to(f.device)])


def measure(model: Classifier, images: torch.Tensor, layers: Sequence[str], threat: Threat, steps: int,
            partners: torch.Tensor, *, step_size: float | None = None, restarts: int = 1, batch_size: int = 64,
            seed: int = 0, progress: Optional[Progress] = None, cancel: Cancel = None
            ) -> dict[str, tuple[np.ndarray, np.ndarray, int, float]]:
    """The numerator's deviations and the denominator's pair distances of every layer of one model.

    Each batch of images goes through the network once, without gradients, for all
    layers' clean features; these are the reference points of every layer's numerator
    and the first half of each pair (partners in the same batch reuse them too).
    Then one maximization per layer: the maximizer differs from layer to layer.

    Args:
        model: anything with ``features(x, layers)`` and ``feature_fn(layer)``, on its device.
        images: [N, C, H, W] in [0, 1] (any device; moved batch by batch).
        layers: layer names, measured in this order.
        threat: the ball of the numerator (``make_threat(norm, eps)``).
        steps, step_size, restarts: of the loop; always from a random start.
        partners: [N, P] partner indices (``random_partners``).
        batch_size: images per batch.
        seed: seeds the random starts (per layer and batch).
        progress: ``progress(step, total, {"layer", "loss"})`` over all layers and batches.
        cancel: checked between steps; raises ``Cancelled``.

    Returns:
        layer -> (deviations [N] float64, distances [N, P] float64, output size, seconds).
    """
    n = images.shape[0]
    device = model.device
    per_call = steps * restarts
    n_batches = math.ceil(n / batch_size)
    total = per_call * len(layers) * n_batches
    deviations = {l: np.empty(n) for l in layers}
    distances = {l: np.empty(tuple(partners.shape)) for l in layers}
    dims: dict[str, int] = {}
    seconds = {l: 0.0 for l in layers}
    done = 0
    for b, start in enumerate(range(0, n, batch_size)):
        stop = min(start + batch_size, n)
        xb = images[start:stop].to(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            clean = model.features(xb, layers)
        # pair distances: partners inside this batch reuse ``clean``; the others run once more,
        # a batch at a time, so memory stays at two batches' features whatever the pair count
        part = partners[start:stop]
        inside = (part >= start) & (part < stop)
        dist = {l: torch.empty(part.shape, dtype=torch.float64) for l in layers}
        _pair_distances(clean, clean, part - start, inside, dist)
        outside = torch.unique(part[~inside])
        for i in range(0, outside.numel(), batch_size):
            ids = outside[i:i + batch_size]
            with torch.no_grad():
                feats = model.features(images[ids].to(device), layers)
            here = torch.isin(part, ids) & ~inside
            _pair_distances(clean, feats, torch.searchsorted(ids, part), here, dist)
        for l in layers:
            distances[l][start:stop] = dist[l].numpy()
            dims[l] = int(clean[l][0].numel())
        share = (time.perf_counter() - t0) / len(layers)
        for l in layers:
            t1 = time.perf_counter()

            def layer_progress(step, _total, metrics, l=l, base=done):
                if progress is not None:
                    progress(base + step, total, {**metrics, "layer": l})

            g = torch.Generator().manual_seed(_seed(seed, l, b))
            res = optimize(objectives.layer_deviation(model.feature_fn(l), clean[l]), xb, threat, steps,
                           step_size, maximize=True, random_start=True, restarts=restarts, keep_best=True,
                           generator=g, progress=layer_progress, cancel=cancel)
            deviations[l][start:stop] = res.loss.double().cpu().numpy()
            done += per_call
            seconds[l] += time.perf_counter() - t1 + share
    return {l: (deviations[l], distances[l], dims[l], seconds[l]) for l in layers}


def summarize(deviations: np.ndarray, distances: np.ndarray, ci_level: float = 0.95, bootstrap: int = 1000,
              seed: int = 0) -> dict[str, float]:
    """R with its interval from per-image deviations [N] and pair distances [N, P].

    The interval is a percentile bootstrap over images (each image keeps its own
    pairs); with ``bootstrap=0`` it falls back to the delta method's normal interval.
    """
    dev = np.asarray(deviations, dtype=np.float64)
    dist = np.asarray(distances, dtype=np.float64).reshape(dev.shape[0], -1).mean(1)
    n = dev.shape[0]
    num, den = float(dev.mean()), float(dist.mean())
    num_se = float(dev.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    den_se = float(dist.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    ratio = num / den if den > 0 else math.inf
    alpha = 1 - ci_level
    if bootstrap > 0 and den > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(bootstrap, n))
        boot = dev[idx].mean(1) / np.maximum(dist[idx].mean(1), np.finfo(float).tiny)
        lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    elif den > 0 and n > 1:
        cov = float(np.cov(dev, dist)[0, 1]) / n
        se = abs(ratio) * math.sqrt(max((num_se / num) ** 2 + (den_se / den) ** 2 - 2 * cov / (num * den), 0.0)) \
            if num > 0 else 0.0
        z = _normal_quantile(1 - alpha / 2)
        lo, hi = ratio - z * se, ratio + z * se
    else:
        lo = hi = ratio
    return {"ratio": ratio, "ci_low": float(lo), "ci_high": float(hi), "numerator": num, "numerator_se": num_se,
            "denominator": den, "denominator_se": den_se}


def _normal_quantile(p: float) -> float:
    return float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(p, dtype=torch.float64)))
