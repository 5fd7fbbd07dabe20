"""Datasets by name: Fashion-MNIST (the Debian package, torchvision's files or the bundled subset),
CIFAR-10 (torchvision's files or an image-folder tree), ``folder:ROOT`` trees, and each one's facts."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from explorer.data.base import DataError, DataIndexError, TensorDataset
from explorer.data.facts import CIFAR10_CLASSES, DATASETS, FASHION_MNIST_CLASSES, DatasetFacts, EpsRange
from explorer.data.folders import class_folder_names, load_image_folder

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUNDLED_FASHION_MNIST = ASSETS / "fashion_mnist_subset.npz"
BUNDLED_CIFAR10 = ASSETS / "cifar10_subset.npz"

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:  # a cut-off or corrupt .gz raises these, not DataError
        raise DataError(f"{path} cannot be read: {e}") from e
    if len(data) < 4:
        raise DataError(f"{path} is not an IDX file (too short)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated inside its header")
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
            if images.ndim != 3 or labels.ndim != 1:
                raise DataError(f"{ip} should hold [N, H, W] images and {lp} [N] labels; "
                                f"found shapes {images.shape} and {labels.shape}")
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


@functools.lru_cache(maxsize=1)
def _bundled_indices() -> dict[str, np.ndarray]:
    with np.load(BUNDLED_FASHION_MNIST) as z:
        return {split: z[f"{split}_index"].astype(np.int64) for split in ("train", "test")}


@functools.lru_cache(maxsize=4)
def _full_fashion_mnist(split: str, roots: tuple[str, ...]) -> TensorDataset:
    # keyed by the search roots so a changed $FASHION_MNIST_ROOT is honoured
    for r in roots:
        try:
            return load_fashion_mnist(split, root=r)
        except DataError:
            continue
    raise DataError("Fashion-MNIST not found")


_FASHION_MNIST_SIZES = {"train": 60_000, "test": 10_000}


def fashion_mnist_sample(index: int, split: str = "test", prefer_full: bool = True) -> tuple[torch.Tensor, int]:
    """One Fashion-MNIST example by its index in the original train or test set.

    Uses the full set when it is installed, else the bundled subset, which keeps
    each image's original index so the same index names the same picture either way.

    Args:
        index: position in the original set (0..9999 for test, 0..59999 for train).
        split: "train" or "test".
        prefer_full: look for the full set first; False always uses the bundled subset.

    Returns:
        (image, label): a float tensor [1, 1, 28, 28] in [0, 1] and the class index.

    Raises:
        DataIndexError: the index is outside the set, or (subset only) not among the bundled images.
    """
    if split not in _FASHION_MNIST_SIZES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    size = _FASHION_MNIST_SIZES[split]
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"index must be an int, got {type(index).__name__}")
    index = int(index)
    if not 0 <= index < size:
        raise DataIndexError(f"Fashion-MNIST {split} index {index} is out of range 0..{size - 1}")
    if prefer_full:
        try:
            ds = _full_fashion_mnist(split, tuple(str(r) for r in fashion_mnist_roots()))
        except DataError:
            ds = None
        if ds is not None and len(ds) == size:
            return ds.float_images(slice(index, index + 1)), int(ds.labels[index])
    original = _bundled_indices()[split]
    pos = np.flatnonzero(original == index)
    if pos.size == 0:
        raise DataIndexError(
            f"Fashion-MNIST {split} image {index} is not in the bundled subset ({original.size} of {size} images; "
            f"e.g. {', '.join(str(i) for i in original[:5])}, ...). For every index install the full set: "
            "apt-get install -y dataset-fashion-mnist")
    ds = bundled_fashion_mnist(split)
    k = int(pos[0])
    return ds.float_images(slice(k, k + 1)), int(ds.labels[k])


# ----------------------------------------------------------------------------- CIFAR-10

def cifar10_root() -> Path:
    """``$CIFAR10_ROOT`` or ~/.cache/explorer/cifar10: torchvision's files (cifar-10-batches-py/)
    or an image-folder tree (``train/<class>/*`` and ``test/<class>/*``)."""
    env = os.environ.get("CIFAR10_ROOT")
    return Path(env) if env else Path.home() / ".cache" / "explorer" / "cifar10"


def _is_split_tree(root: Path, split: str) -> bool:
    d = root / split
    return d.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in d.iterdir())


def load_cifar10(split: str = "test", root: str | Path | None = None, download: bool = False,
                 progress: bool = True) -> TensorDataset:
    """CIFAR-10 from disk: torchvision's files or an image-folder tree.

    torchvision checks each batch file's md5 against the official release before
    unpickling it, so only the genuine files are ever loaded. An image-folder tree
    (``root/train/airplane/*.jpg`` ...) is decoded once and cached (:func:`load_image_folder`).

    Args:
        split: "train" (50 000 images) or "test" (10 000).
        root: the folder holding cifar-10-batches-py/ (or that folder itself), or the top of an
            image-folder tree; default ``$CIFAR10_ROOT``, else ~/.cache/explorer/cifar10.
        download: let torchvision fetch it into ``root`` (needs internet).
        progress: a progress bar on stderr while an image folder is decoded the first time.

    Returns:
        A TensorDataset of uint8 [N, 3, 32, 32] images.

    Raises:
        DataError: not there (or corrupted), with the way to get it.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    r = Path(root) if root is not None else cifar10_root()
    if r.name == "cifar-10-batches-py":
        r = r.parent
    if not (r / "cifar-10-batches-py").is_dir() and _is_split_tree(r, split):
        ds = load_image_folder(r / split, (3, 32, 32), class_names=CIFAR10_CLASSES, progress=progress)
        return TensorDataset(ds.images, ds.labels, CIFAR10_CLASSES, f"cifar10/{split}")
    from torchvision.datasets import CIFAR10

    try:
        ds = CIFAR10(str(r), train=split == "train", download=download)
    except (RuntimeError, OSError) as e:  # torchvision: "Dataset not found or corrupted"; offline download: URLError
        raise DataError(
            f"CIFAR-10 not found or corrupted in {r / 'cifar-10-batches-py'} ({e}). With internet: "
            f"python -c \"from explorer.data import load_cifar10; load_cifar10(root='{r}', download=True)\"; "
            "or unpack cifar-10-python.tar.gz there, or point $CIFAR10_ROOT at its folder (torchvision's files "
            "or an image-folder tree with train/<class>/ and test/<class>/)") from e
    images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    return TensorDataset(images, labels, CIFAR10_CLASSES, f"cifar10/{split}")


def folder_root(dataset: str) -> Path:
    """``folder:ROOT`` -> ROOT (which holds train/ and test/ class-folder trees)."""
    root = Path(dataset.split(":", 1)[1]).expanduser()
    if not root.is_dir():
        raise DataError(f"{dataset}: {root} is not a folder (expected {root}/train/<class>/ and {root}/test/<class>/)")
    return root


def _folder_split(dataset: str, split: str, progress: bool) -> TensorDataset:
    root = folder_root(dataset)
    d = root / split
    if not d.is_dir():
        if split == "train" and not (root / "test").is_dir():
            d = root  # a single class-folder tree serves as the training set
        else:
            raise DataError(f"{dataset}: no {split}/ folder in {root} (expected {root}/{split}/<class>/<images>)")
    ds = load_image_folder(d, None, progress=progress)
    return TensorDataset(ds.images, ds.labels, ds.class_names, f"{dataset}/{split}")


def bundled_cifar10(split: str = "test") -> TensorDataset:
    """The small CIFAR-10 test subset that ships with the package: the first 100 test images
    of each class (JPEG re-encodings of the originals, see ../shared/datasets/README.md);
    ``test_index`` in the npz keeps each image's number within its class folder."""
    if split != "test":
        raise DataError("the bundled CIFAR-10 subset has test images only; for training point $CIFAR10_ROOT at "
                        "CIFAR-10 (torchvision's files or an image-folder tree) or use --dataset folder:ROOT")
    with np.load(BUNDLED_CIFAR10) as z:
        images = torch.from_numpy(z["test_images"].copy())
        labels = torch.from_numpy(z["test_labels"].astype(np.int64))
    return TensorDataset(images, labels, CIFAR10_CLASSES, "cifar10/test (bundled subset)")


def cifar10(split: str = "test", prefer_full: bool = True, progress: bool = True) -> TensorDataset:
    """The full set when it is here (``$CIFAR10_ROOT``), else, for the test split, the bundled subset."""
    if prefer_full:
        try:
            return load_cifar10(split, progress=progress)
        except DataError:
            if split != "test":
                raise
    return bundled_cifar10(split)


def load_dataset(dataset: str, split: str = "test", *, progress: bool = True) -> TensorDataset:
    """Any dataset the CLI and the pages take, by name.

    ``fashion-mnist`` (the full set when installed, else the bundled subset),
    ``fashion-mnist-bundled``, ``cifar10`` (see :func:`load_cifar10`; the test split falls back to
    the bundled subset), ``cifar10-bundled`` and ``folder:ROOT``
    (ROOT/train/<class>/* and ROOT/test/<class>/*, decoded once and cached). Constructed
    datasets (``constructed:PATH``) are read by ``explorer.construct.load``, a floor above.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if dataset == "fashion-mnist":
        return fashion_mnist(split)
    if dataset == "fashion-mnist-bundled":
        return bundled_fashion_mnist(split)
    if dataset == "cifar10":
        return cifar10(split, progress=progress)
    if dataset == "cifar10-bundled":
        return bundled_cifar10(split)
    if dataset.startswith("folder:"):
        return _folder_split(dataset, split, progress)
    raise DataError(f"unknown dataset {dataset!r}: use fashion-mnist, cifar10, folder:ROOT "
                    "(ROOT/train/<class>/ and ROOT/test/<class>/) or constructed:PATH")


def _scaled_eps(size: tuple[int, ...]) -> tuple[tuple, tuple]:
    """CIFAR-10's L2 radii scaled by sqrt(C*H*W / 3072) (an L2 ball grows with the dimension); Linf as CIFAR-10's."""
    f = DATASETS["cifar10"]
    k = math.sqrt(math.prod(size) / 3072)
    l2 = f.eps_range("l2")
    ranges = (("linf", f.eps_range("linf")),
              ("l2", EpsRange(round(l2.maximum * k, 4), round(l2.default * k, 4), round(l2.step * k, 4))))
    evals = (("linf", f.evaluation_eps("linf")), ("l2", tuple(round(e * k, 4) for e in f.evaluation_eps("l2"))))
    return ranges, evals


def dataset_facts(dataset: str, train: TensorDataset | None = None) -> DatasetFacts:
    """The facts of a dataset by name; a folder or constructed set's come from its images
    (``train``, loaded when not given): a folder that is CIFAR-10 or Fashion-MNIST (their ten
    classes, in any folder order, at their size) gets that dataset's mean/std, eps and
    augmentation with its own class order; others their own per-channel mean and std, and
    CIFAR-10's L2 radii scaled to their dimension."""
    base = dataset.removesuffix("-bundled")
    if base in DATASETS:
        return DATASETS[base]
    if not (dataset.startswith("folder:") or dataset.startswith("constructed:")):
        if train is None:
            return DATASETS["imagenet"]
        return dataclasses.replace(DATASETS["imagenet"], name=dataset, title="")
    if train is None:
        train = load_dataset(dataset, "train", progress=True)
    size = tuple(int(v) for v in train.images.shape[1:])
    names = tuple(train.class_names)
    for known in ("cifar10", "fashion-mnist"):
        f = DATASETS[known]
        if size == f.input_size and set(class_folder_names(names)) == set(class_folder_names(f.class_names)):
            return dataclasses.replace(f, name=dataset, class_names=names, title="")
    x = train.images[:10000]
    x = x.float() / 255 if not x.is_floating_point() else x.float()
    mean = tuple(round(float(v), 4) for v in x.mean((0, 2, 3)))
    std = tuple(round(max(float(v), 1e-3), 4) for v in x.std((0, 2, 3)))
    ranges, evals = _scaled_eps(size)
    return DatasetFacts(dataset, names, mean, std, size,  # type: ignore[arg-type]
                        augment_pad=max(1, size[-1] // 8) if size[-1] <= 64 else 0, eps_ranges=ranges,
                        eval_eps=evals)
