"""Small pieces the feature-visualization experiments share (not an experiment itself).

Images travel inside frozen configs as float32 bytes plus a shape, so configs stay
hashable for ``st.cache_data``; models are loaded through the zoo and checked to share
an input size and a label space.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch

from explorer import data, zoo
from explorer.classifier import Classifier
from explorer.devices import best_device
from explorer.threat import ball_norm

check_norm = ball_norm  # ``linf`` or ``l2``; the threat module owns the names


def check_int(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")


def check_positive(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0{' or None' if allow_none else ''}, got {value!r}")


def check_models(models) -> tuple[str, ...]:
    """One or more distinct zoo names, as a tuple."""
    models = (models,) if isinstance(models, str) else tuple(models)
    if not models or not all(isinstance(m, str) and m for m in models):
        raise ValueError(f"models must be one or more zoo names, got {models!r}")
    if len(set(models)) != len(models):
        raise ValueError(f"models must not repeat, got {models!r}")
    return models


def image_to_bytes(image: np.ndarray | torch.Tensor) -> tuple[bytes, tuple[int, int, int]]:
    """[C, H, W] (or [1, C, H, W]) floats in [0, 1] -> (float32 bytes, (C, H, W))."""
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3:
        raise ValueError(f"image must be [C, H, W] or [1, C, H, W], got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype="<f4")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise ValueError("image values must lie in [0, 1]")
    return arr.tobytes(), tuple(int(s) for s in arr.shape)


def check_image_bytes(name: str, image: Optional[bytes], shape: Optional[tuple[int, int, int]]) -> None:
    if image is None:
        return
    if shape is None or len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{name}_shape must be (C, H, W), got {shape!r}")
    expected = 4 * math.prod(shape)
    if not isinstance(image, bytes) or len(image) != expected:
        raise ValueError(f"{name} must be {expected} bytes of float32 for shape {shape}")


def bytes_to_image(image: bytes, shape: Sequence[int]) -> np.ndarray:
    """The inverse of ``image_to_bytes``: [C, H, W] float32 (a writable copy)."""
    return np.frombuffer(image, dtype="<f4").reshape(tuple(shape)).copy()


def resolve_device(device: Optional[str]) -> torch.device:
    return torch.device(device) if device else best_device()


def load_models(names: Sequence[str], device: torch.device,
                image_shape: Optional[tuple[int, int, int]] = None) -> list[Classifier]:
    """The zoo's Classifiers for ``names``: one input size and one label space."""
    models = [zoo.load(n, device=device) for n in names]
    sizes = {tuple(m.info.input_size) for m in models}
    if len(sizes) > 1:
        raise ValueError(f"{', '.join(names)} take different input sizes {sorted(sizes)}")
    if len({len(m.class_names) for m in models}) > 1:
        raise ValueError(f"{', '.join(names)} do not share a label space")
    if image_shape is not None and tuple(image_shape) != tuple(models[0].info.input_size):
        raise ValueError(f"{models[0].name} takes {tuple(models[0].info.input_size)} images, the image is "
                         f"{tuple(image_shape)}; resize it to the model's input size first")
    return models


def offline_split(dataset: str, split: str = "test") -> Optional[data.TensorDataset]:
    """The ``split`` of ``dataset`` that can be read offline: Fashion-MNIST or CIFAR-10, the full set
    when it is here, else (CIFAR-10: the test split only) the bundled subset; None for any other dataset."""
    if dataset == "fashion-mnist":
        return data.fashion_mnist(split)
    if dataset == "cifar10":
        return data.cifar10(split, progress=False)
    return None


def sample_test_images(dataset: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``n`` test images of ``dataset`` drawn without replacement by ``seed``:
    (float images [n, C, H, W], labels [n], where they came from).

    Both Fashion-MNIST and CIFAR-10 use the full test set when it is here, else the bundled subset
    (``where`` names it).
    """
    ds = offline_split(dataset, "test")
    if ds is None:
        raise data.DataError(f"no test set for {dataset!r} here: this view needs Fashion-MNIST or CIFAR-10 models")
    n = min(int(n), len(ds))
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(ds), generator=g)[:n].sort().values
    return ds.float_images(idx), ds.labels[idx].clone(), f"{n} images of {ds.name}"


def probs_of(model: Classifier, x: torch.Tensor) -> np.ndarray:
    """Softmax probabilities of ``model`` on ``x`` as float32 numpy, [N, K]."""
    return model.predict(x).numpy().astype(np.float32)
