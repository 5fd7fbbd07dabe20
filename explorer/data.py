"""Datasets, bundled samples and safe image decoding.

Images leave this module as float tensors in [0, 1], NCHW; labels as int64.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
ASSETS = Path(__file__).resolve().parent / "assets"
BUNDLED_FASHION_MNIST = ASSETS / "fashion_mnist_subset.npz"

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DataError(RuntimeError):
    """A dataset is missing or malformed; the message says how to get it."""


@dataclass(frozen=True)
class TensorDataset:
    """Images [N, C, H, W] uint8 and labels [N] int64, with class names."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def float_images(self, idx=slice(None)) -> torch.Tensor:
        return self.images[idx].float().div_(255)

    def batches(self, batch_size: int, limit: int | None = None):
        """Yield (float images, labels) in order, at most ``limit`` examples."""
        n = len(self) if limit is None else min(limit, len(self))
        for i in range(0, n, batch_size):
            j = min(i + batch_size, n)
            yield self.float_images(slice(i, j)), self.labels[i:j]


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise DataError(f"{path} is not an IDX file (too short)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {body.size}")
    return body.reshape(shape)


def _find_idx(root: Path, stem: str) -> Path | None:
    for candidate in (root / stem, root / f"{stem}.gz", root / "FashionMNIST" / "raw" / stem,
                      root / "FashionMNIST" / "raw" / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def fashion_mnist_roots() -> list[Path]:
    roots = []
    if os.environ.get("FASHION_MNIST_ROOT"):
        roots.append(Path(os.environ["FASHION_MNIST_ROOT"]))
    roots += [DEBIAN_FASHION_MNIST, Path.home() / ".cache" / "explorer" / "fashion-mnist"]
    return roots


def load_fashion_mnist(split: str = "train", root: str | Path | None = None, download: bool = False) -> TensorDataset:
    """Full Fashion-MNIST from gzipped IDX files.

    Looks in ``root`` (a folder of IDX files or a torchvision root), then
    ``$FASHION_MNIST_ROOT``, the Debian package's /usr/share/datasets/fashion-mnist,
    and ~/.cache/explorer/fashion-mnist; ``download=True`` lets torchvision fetch it.
    """
    if split not in _IDX_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    roots = [Path(root)] if root is not None else fashion_mnist_roots()
    img_stem, lbl_stem = _IDX_FILES[split]
    for r in roots:
        ip, lp = _find_idx(r, img_stem), _find_idx(r, lbl_stem)
        if ip and lp:
            images, labels = _read_idx(ip), _read_idx(lp)
            if images.shape[0] != labels.shape[0]:
                raise DataError(f"{ip} and {lp} disagree on the number of examples")
            return TensorDataset(torch.from_numpy(images.copy()).unsqueeze(1),
                                 torch.from_numpy(labels.astype(np.int64)), FASHION_MNIST_CLASSES,
                                 f"fashion-mnist/{split}")
    if download:
        from torchvision.datasets import FashionMNIST

        target = roots[-1]
        ds = FashionMNIST(str(target), train=split == "train", download=True)
        return TensorDataset(ds.data.unsqueeze(1).clone(), ds.targets.clone(), FASHION_MNIST_CLASSES,
                             f"fashion-mnist/{split}")
    raise DataError("Fashion-MNIST not found (looked in " + ", ".join(str(r) for r in roots) + "). "
                    "Install it with: apt-get install -y dataset-fashion-mnist")


def bundled_fashion_mnist(split: str = "test") -> TensorDataset:
    """The small Fashion-MNIST subset that ships with the package (MIT licence,
    Zalando Research): 200 training and 100 test images per class, in the original
    order. ``index`` of the original test/train set is kept in the npz."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    with np.load(BUNDLED_FASHION_MNIST) as z:
        images = torch.from_numpy(z[f"{split}_images"].copy()).unsqueeze(1)
        labels = torch.from_numpy(z[f"{split}_labels"].astype(np.int64))
    return TensorDataset(images, labels, FASHION_MNIST_CLASSES, f"fashion-mnist/{split} (bundled subset)")


def fashion_mnist(split: str = "test", prefer_full: bool = True) -> TensorDataset:
    """The full set when it is installed, else the bundled subset."""
    if prefer_full:
        try:
            return load_fashion_mnist(split)
        except DataError:
            pass
    return bundled_fashion_mnist(split)
