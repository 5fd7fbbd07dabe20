"""Image utilities of the photo experiments (style transfer): any image to uint8 RGB, resizing
with the aspect ratio kept, and uint8 RGB to a [0, 1] tensor (not an experiment itself)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def rgb_uint8(image) -> np.ndarray:
    """A PIL image, a uint8 [H, W, 3] / [H, W] array, or floats in [0, 1] ([H, W, 3] or
    [3, H, W]) -> a contiguous uint8 [H, W, 3] array."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    a = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an RGB or grey image, got shape {np.asarray(image).shape}")
    a = a[:, :, :3]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ValueError("float images must lie in [0, 1]")
        a = np.rint(a * 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def fit_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) with the longer side ``size`` and the aspect ratio kept."""
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, 3] resized (bicubic, antialiased when shrinking) so its longer side is ``size``."""
    h, w = fit_size(image.shape[0], image.shape[1], size)
    if (h, w) == image.shape[:2]:
        return image
    return np.asarray(Image.fromarray(image, "RGB").resize((w, h), Image.Resampling.BICUBIC), dtype=np.uint8)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [1, 3, H, W] in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()
