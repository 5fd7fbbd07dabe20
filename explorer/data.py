"""Datasets, bundled samples and safe image decoding.

Images leave this module as float tensors in [0, 1], NCHW; labels as int64.
Uploaded or on-disk image files go through :func:`decode_image`, which accepts
only PNG, JPEG, WebP, GIF, BMP and TIFF, refuses decompression bombs from the
header before decoding, and always returns an RGB image.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import io
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

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


@dataclass(frozen=True)
class EpsRange:
    """Slider range for eps: ``(0, maximum]`` with a sensible ``default`` and ``step``."""

    maximum: float
    default: float
    step: float


@dataclass(frozen=True)
class DatasetFacts:
    """What the code needs to know about a dataset, in one place.

    Attributes:
        name: the dataset's id (``fashion-mnist``, ``cifar10``, ``imagenet``, ``folder:ROOT`` ...).
        class_names: one per label.
        mean, std: per-channel normalization of the models trained on it.
        input_size: (C, H, W) of its images.
        imagenet_like: photos at ImageNet resolution (style transfer, layer maps).
        augment_pad: random-translation padding used in training (pixels).
        eps_ranges: per norm (``linf``, ``l2``), the eps slider's range; the defaults are the
            training radii of the dataset's robust models, so the standard model flips while
            the robust one mostly holds.
        eval_eps: per norm, the radii a model card's evaluation reports.
    """

    name: str
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]
    imagenet_like: bool = False
    augment_pad: int = 2
    eps_ranges: tuple[tuple[str, EpsRange], ...] = ()
    eval_eps: tuple[tuple[str, tuple[float, ...]], ...] = ()

    def eps_range(self, norm: str) -> EpsRange:
        return dict(self.eps_ranges or _IMAGENET_EPS)[norm]

    def evaluation_eps(self, norm: str) -> tuple[float, ...]:
        return dict(self.eval_eps or _IMAGENET_EVAL_EPS)[norm]


_IMAGENET_EPS = (("linf", EpsRange(16 / 255, 4 / 255, 0.5 / 255)), ("l2", EpsRange(10.0, 3.0, 0.25)))
_IMAGENET_EVAL_EPS = (("linf", (1 / 255, 4 / 255, 8 / 255)), ("l2", (0.5, 1.0, 3.0)))

FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)

class DataError(RuntimeError):
    """A dataset is missing or malformed; the message says how to get it."""


class ImageError(DataError):
    """An image file was refused or could not be decoded; the message is one line for a person."""


class DataIndexError(DataError, IndexError):
    """An example index is outside the dataset (or outside the bundled subset)."""


@dataclass(frozen=True)
class TensorDataset:
    """Images [N, C, H, W] uint8 (or float32 in [0, 1]) and labels [N] int64, with class names."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def float_images(self, idx=slice(None)) -> torch.Tensor:
        if self.images.is_floating_point():  # constructed datasets keep their float32 images in [0, 1]
            return self.images[idx].float()
        return self.images[idx].float().div_(255)

    def batches(self, batch_size: int, limit: int | None = None):
        """Yield (float images, labels) in order, at most ``limit`` examples."""
        n = len(self) if limit is None else min(limit, len(self))
        for i in range(0, n, batch_size):
            j = min(i + batch_size, n)
            yield self.float_images(slice(i, j)), self.labels[i:j]


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


# ----------------------------------------------------------------------------- safe image decoding

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
_DETECTED_FORMATS = IMAGE_FORMATS + ("MPO",)  # PIL's JPEG opener names multi-picture camera JPEGs "MPO"
_FORMATS_TEXT = "PNG, JPEG, WebP, GIF, BMP or TIFF"
MAX_PIXELS = 40_000_000
MIN_SIDE = 8
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _megapixels(n: int) -> str:
    mp = n / 1e6
    return f"{mp:.0f}" if mp >= 10 else f"{mp:.3g}"


def _png_header_size(head: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR, only to explain why PIL refused it."""
    if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    return None


def _open_checked(fp: BinaryIO, max_pixels: int, min_side: int) -> Image.Image:
    """Open lazily (header only) and refuse what we must not decode."""
    head = fp.read(32)
    if not head:
        raise ImageError("the file is empty")
    fp.seek(0)
    try:
        img = Image.open(fp, formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as e:  # PIL's own limit (2 x MAX_IMAGE_PIXELS) fired first
        m = re.search(r"\((\d+) pixels\)", str(e))
        n = f"{_megapixels(int(m.group(1)))} MP" if m else "too many pixels"
        pil_limit = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else max_pixels
        raise ImageError(f"image is {n}, above the {_megapixels(min(max_pixels, pil_limit))} MP limit") from e
    except Image.DecompressionBombWarning as e:  # raised only when warnings are errors
        raise ImageError(f"image is too large ({e}); the limit is {_megapixels(max_pixels)} MP") from e
    except (Image.UnidentifiedImageError, SyntaxError, ValueError, OSError, EOFError, struct.error) as e:
        size = _png_header_size(head)
        if size is not None and 0 in size:
            raise ImageError(f"image is {size[0]}x{size[1]} pixels; at least {min_side}x{min_side} is needed") from e
        raise ImageError(f"not an image file that can be read: expected {_FORMATS_TEXT}") from e
    if img.format not in _DETECTED_FORMATS:  # formats= already restricts this; kept as a second lock
        raise ImageError(f"{img.format} images are not accepted: expected {_FORMATS_TEXT}")
    w, h = img.size
    if w * h > max_pixels:
        raise ImageError(f"image is {w}x{h} = {_megapixels(w * h)} MP, above the {_megapixels(max_pixels)} MP limit")
    if min(w, h) < min_side:
        raise ImageError(f"image is {w}x{h} pixels; at least {min_side}x{min_side} is needed")
    return img


def _scaled_gray(img: Image.Image) -> Image.Image:
    """High-bit-depth grayscale (I;16*, I, F) to 8-bit L by its nominal range."""
    a = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16"):
        a = a / 257.0
    elif img.mode == "I" and a.size and a.min() >= 0 and a.max() <= 65535:
        a = a / 257.0 if a.max() > 255 else a  # 16-bit data in a 32-bit container, or plain 8-bit
    elif img.mode == "F" and a.size and np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1:
        a = a * 255.0
    else:  # no nominal range: stretch what is there
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def _on_white(rgb: np.ndarray, alpha: np.ndarray, premultiplied: bool = False) -> Image.Image:
    """Composite colour over white: out = c * a + 255 * (1 - a), rounded."""
    c = rgb.astype(np.float64)
    a = alpha.astype(np.float64)[..., None] / 255.0
    out = c + 255.0 * (1.0 - a) if premultiplied else c * a + 255.0 * (1.0 - a)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("La", "RGBa"):  # premultiplied alpha: PIL cannot convert La at all
        a = np.asarray(img)
        color = np.repeat(a[..., :1], 3, axis=2) if mode == "La" else a[..., :3]
        return _on_white(color, a[..., -1], premultiplied=True)
    if mode.startswith("I;16") or mode in ("I", "F"):
        img = _scaled_gray(img)
        mode = "L"
    has_alpha = mode in ("LA", "PA", "RGBA") or (
        mode in ("1", "L", "RGB", "P") and img.info.get("transparency") is not None)  # tRNS / GIF transparency
    try:
        if has_alpha:
            a = np.asarray(img.convert("RGBA"))
            return _on_white(a[..., :3], a[..., 3])
        return img.convert("RGB")
    except (ValueError, OSError) as e:
        raise ImageError(f"colour mode {mode} is not supported") from e


def _decode(fp: BinaryIO, max_pixels: int, min_side: int) -> Image.Image:
    img = _open_checked(fp, max_pixels, min_side)
    try:
        img.load()  # the first frame only: GIF, WebP and TIFF stay at frame 0
    except Image.DecompressionBombError as e:
        raise ImageError(f"image is above the {_megapixels(max_pixels)} MP limit") from e
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, MemoryError) as e:
        raise ImageError(f"{img.format} file is truncated or damaged ({e})") from e
    try:
        oriented = ImageOps.exif_transpose(img)
    except Exception:  # broken EXIF only loses the rotation; the pixels are fine
        oriented = img
    return _to_rgb(oriented if oriented is not None else img)


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE) -> Image.Image:
    """Decode an uploaded image file safely into an RGB image.

    Only PNG, JPEG, WebP, GIF (first frame), BMP and TIFF (first page) are
    accepted, judged by the content PIL recognises, never by a file name. The size
    in the header is checked against ``max_pixels`` before any pixel is decoded, so
    a decompression bomb costs nothing. PIL's global ``Image.MAX_IMAGE_PIXELS`` is
    left as it is (it still refuses files above twice its value on its own).

    EXIF orientation is applied. Every mode becomes RGB: alpha and transparent
    palette entries are composited on white (``c * a + 255 * (1 - a)``), 16-bit and
    32-bit grayscale are scaled by their nominal range, CMYK goes through PIL.

    Truncated files are refused only while ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``
    is False (PIL's default).

    Args:
        data: the file's bytes.
        max_pixels: largest width * height accepted.
        min_side: smallest width and height accepted.

    Returns:
        A loaded RGB ``PIL.Image.Image``.

    Raises:
        ImageError: with a one-line reason a person understands.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_image takes the file's bytes, got {type(data).__name__}")
    return _decode(io.BytesIO(bytes(data)), max_pixels, min_side)


def decode_image_file(path: str | Path, *, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE) -> Image.Image:
    """:func:`decode_image` for a file on disk; reads only the header of a file it refuses.

    Raises:
        ImageError: the file is not an acceptable image, or cannot be read.
    """
    try:
        with open(path, "rb") as f:
            return _decode(f, max_pixels, min_side)
    except (IsADirectoryError, PermissionError, FileNotFoundError) as e:
        raise ImageError(f"cannot read {path}: {e.strerror}") from e


# ----------------------------------------------------------------------------- model inputs

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
_FULL_RESIZE_FACTOR = 16  # resize the whole image (torchvision's way) up to 16x the pixels of the resized short side


def _as_pil_rgb(img: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(img, Image.Image):
        return img if img.mode == "RGB" else _to_rgb(img)
    a = np.asarray(img)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):  # float arrays are taken to be in [0, 1]
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise TypeError(f"image arrays must be uint8, bool or float in [0, 1], got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        return Image.fromarray(a, "L").convert("RGB")
    if a.ndim == 3 and a.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(a), "RGB")
    if a.ndim == 3 and a.shape[2] == 4:
        return _on_white(a[..., :3], a[..., 3])
    raise ValueError(f"image array must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got {a.shape}")


def _border_is_bright(gray: np.ndarray) -> bool:
    """True when most of the outer ring (1/14 of the side, 2 px at 28) is brighter than mid-grey."""
    b = max(1, min(gray.shape) // 14)
    ring = np.concatenate([gray[:b].ravel(), gray[-b:].ravel(), gray[b:-b, :b].ravel(), gray[b:-b, -b:].ravel()])
    return bool((ring > 127).mean() > 0.5)


def to_model_input(img: Image.Image | np.ndarray, input_size: tuple[int, int, int], *, invert: bool | None = None,
                   crop_pct: float | None = None, interpolation: str = "bilinear") -> torch.Tensor:
    """A photo as one model input: resize the shortest side, center crop, [0, 1] NCHW.

    The standard evaluation transform: for inputs of 64 px and more the image is
    resized so its shortest side is ``H / crop_pct`` (256 for 224 with the default
    0.875) and the center ``H x W`` is cut out; small inputs (28, 32) are resized
    straight to cover ``H x W``. PIL's resize is antialiased when it shrinks.

    Fashion-MNIST is white-on-black; photos are mostly dark-on-light. For 1-channel
    28x28 inputs ``invert=None`` inverts when most of the border is bright.

    Args:
        img: a PIL image (any mode) or a uint8/bool/float-in-[0, 1] array [H, W] or [H, W, C].
        input_size: the model's (C, H, W); C is 1 (grayscale, ITU-R 601 luma) or 3.
        invert: True/False forces it; None auto-inverts 1-channel 28x28 inputs only.
        crop_pct: fraction of the resized image kept by the crop; default 0.875 at 64 px and up, else 1.
        interpolation: "bilinear" (torchvision's ImageNet eval) or "bicubic" (timm's).

    Returns:
        A float32 tensor [1, C, H, W] in [0, 1].
    """
    c, h, w = (int(v) for v in input_size)
    if c not in (1, 3) or h < 1 or w < 1:
        raise ValueError(f"input_size must be (1 or 3, H, W), got {tuple(input_size)}")
    if interpolation not in _RESAMPLE:
        raise ValueError(f"interpolation must be one of {sorted(_RESAMPLE)}, got {interpolation!r}")
    if crop_pct is None:
        crop_pct = 1.0 if min(h, w) < 64 else 224 / 256
    if not 0 < crop_pct <= 1:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    pil = _as_pil_rgb(img)
    if c == 1:
        pil = pil.convert("L")
    sh, sw = round(h / crop_pct), round(w / crop_pct)
    iw, ih = pil.size
    if sh / ih >= sw / iw:  # height binds; the other side truncates as torchvision's Resize does
        nh, nw = sh, max(sw, int(sh * iw / ih))
    else:
        nw, nh = sw, max(sh, int(sw * ih / iw))
    top, left = int(round((nh - h) / 2.0)), int(round((nw - w) / 2.0))  # torchvision's CenterCrop rounding
    if nw * nh > _FULL_RESIZE_FACTOR * sh * sw:
        # a very long, thin image (an 8x200000 upload would resize to gigabytes): resample only the
        # region the crop keeps (same centres and filter support; bicubic may differ by a few levels)
        sx, sy = iw / nw, ih / nh
        pil = pil.resize((w, h), _RESAMPLE[interpolation], box=(left * sx, top * sy, (left + w) * sx, (top + h) * sy))
        top = left = 0
    elif (nw, nh) != (iw, ih):
        pil = pil.resize((nw, nh), _RESAMPLE[interpolation])
    a = np.asarray(pil, dtype=np.uint8)[top:top + h, left:left + w]
    if invert is None:
        invert = c == 1 and (h, w) == (28, 28) and _border_is_bright(a)
    if invert:
        a = 255 - a
    t = torch.from_numpy(np.array(a)).float().div_(255)  # a copy: PIL's array view is read-only
    t = t.unsqueeze(0) if c == 1 else t.permute(2, 0, 1)
    return t.unsqueeze(0).contiguous()


# ----------------------------------------------------------------------------- bundled photos and names

# skimage.data samples that ship inside the wheel (no pooch download); checked on 0.26
_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "motorcycle", "hubble_deep_field")
_TEXTURES = ("brick", "grass", "gravel", "immunohistochemistry")


def _skimage_rgb(name: str) -> np.ndarray:
    import skimage.data as skd

    a = skd.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skd, name)()
    a = np.asarray(a)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    a = np.ascontiguousarray(a[..., :3].astype(np.uint8))
    a.setflags(write=False)  # shared through the cache; callers copy before editing
    return a


@functools.lru_cache(maxsize=2)
def _samples(names: tuple[str, ...]) -> tuple[tuple[str, np.ndarray], ...]:
    try:
        import skimage.data  # noqa: F401
    except ImportError as e:
        raise DataError("sample photos need scikit-image: pip install scikit-image") from e
    out = []
    for name in names:
        try:
            out.append((name, _skimage_rgb(name)))
        except Exception:  # a trimmed or future skimage may lack one sample; the others still work
            continue
    if not out:
        raise DataError("none of scikit-image's bundled samples could be loaded: pip install scikit-image")
    return tuple(out)


def sample_photos() -> dict[str, np.ndarray]:
    """Natural photos bundled with scikit-image, loaded offline.

    Returns:
        name -> read-only RGB uint8 array [H, W, 3]: astronaut, camera, chelsea
        (a tabby cat), coffee, rocket, motorcycle, hubble_deep_field.
    """
    return dict(_samples(_PHOTOS))


def sample_textures() -> dict[str, np.ndarray]:
    """Texture images bundled with scikit-image, for style images.

    Returns:
        name -> read-only RGB uint8 array [H, W, 3]: brick, grass, gravel
        (grayscale, repeated to RGB) and immunohistochemistry (colour).
    """
    return dict(_samples(_TEXTURES))


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in label order, offline (torchvision's weight metadata)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


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


# ----------------------------------------------------------------------------- class-folder trees

_UNSAFE_IN_NAMES = re.compile(r'[\x00-\x1f/\\:*?"<>|]')


def class_folder_names(class_names: Sequence[str]) -> list[str]:
    """Folder name for each class: characters no file system allows become "_",
    and a name that would repeat gets "-<label>" appended ("T-shirt/top" -> "T-shirt_top")."""
    base = [(_UNSAFE_IN_NAMES.sub("_", n).strip(" .") or "_") for n in class_names]
    seen: dict[str, int] = {}
    for b in base:
        seen[b] = seen.get(b, 0) + 1
    return [b if seen[b] == 1 else f"{b}-{i}" for i, b in enumerate(base)]


class ImageFolderDataset(torch.utils.data.Dataset):
    """Images from a class-folder tree, each through :func:`decode_image` and :func:`to_model_input`.

    Attributes:
        root: the tree's top folder.
        class_names: one per label.
        samples: (file, label) for every readable image.
        skipped: (file, reason) for every file that was refused.
    """

    def __init__(self, root: Path, input_size: tuple[int, int, int], class_names: tuple[str, ...],
                 samples: list[tuple[Path, int]], skipped: list[tuple[Path, str]], invert: bool | None,
                 max_pixels: int):
        self.root = root
        self.input_size = tuple(int(v) for v in input_size)
        self.class_names = class_names
        self.samples = samples
        self.skipped = skipped
        self.invert = invert
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        img = decode_image_file(path, max_pixels=self.max_pixels)
        return to_model_input(img, self.input_size, invert=self.invert)[0], label


def image_folder(path: str | Path, input_size: tuple[int, int, int], *, class_names: Sequence[str] | None = None,
                 invert: bool | None = None, verify: bool = True, max_pixels: int = MAX_PIXELS) -> ImageFolderDataset:
    """An ImageNet-style tree (``path/<class>/<any>/<file>``) as a torch Dataset.

    Every file is judged by its content, not its name. Files that are not
    acceptable images are skipped and counted (one warning names how many).

    Args:
        path: the tree's top folder.
        input_size: the model's (C, H, W); see :func:`to_model_input`.
        class_names: the model's labels; each folder must then be one of
            :func:`class_folder_names` of them, and labels follow this order.
            Default: the sorted folder names.
        invert: passed to :func:`to_model_input`.
        verify: fully decode every file now, so truncated files are skipped too;
            False checks only headers and a damaged file raises ImageError when read.
        max_pixels: passed to :func:`decode_image`.

    Returns:
        An :class:`ImageFolderDataset` yielding (float [C, H, W] in [0, 1], label).

    Raises:
        DataError: the folder is missing, has no class folders, names an unknown class, or holds no readable image.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root} has no class folders (expected {root}/<class name>/<image files>)")
    if class_names is None:
        names = tuple(folders)
        label_of = {f: i for i, f in enumerate(folders)}
    else:
        names = tuple(class_names)
        label_of = {f: i for i, f in enumerate(class_folder_names(names))}
        unknown = [f for f in folders if f not in label_of]
        if unknown:
            raise DataError(f"{root}: folders {unknown[:5]} are not among the {len(names)} class names "
                            f"(expected folder names like {list(label_of)[:3]})")
    samples: list[tuple[Path, int]] = []
    skipped: list[tuple[Path, str]] = []
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(root / folder):  # no symlinked folders: no loops
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                file = Path(dirpath) / name
                try:
                    if verify:
                        decode_image_file(file, max_pixels=max_pixels)
                    else:
                        with open(file, "rb") as f:
                            _open_checked(f, max_pixels, MIN_SIDE).close()
                except ImageError as e:
                    skipped.append((file, str(e)))
                    continue
                except OSError as e:
                    skipped.append((file, f"cannot read: {e}"))
                    continue
                samples.append((file, label_of[folder]))
    if skipped:
        first, why = skipped[0]
        warnings.warn(f"skipped {len(skipped)} of {len(skipped) + len(samples)} files in {root} "
                      f"(first: {first.relative_to(root)}: {why})", stacklevel=2)
    if not samples:
        raise DataError(f"{root} holds no readable image ({len(skipped)} files refused)")
    return ImageFolderDataset(root, input_size, names, samples, skipped, invert, max_pixels)


def export_image_folder(ds: TensorDataset, path: str | Path, limit: int | None = None) -> int:
    """Write a TensorDataset as PNG files in a class-folder tree.

    Files are ``path/<class folder>/<index>.png`` (index in ``ds``, zero-padded),
    with folder names from :func:`class_folder_names`; read it back with
    ``image_folder(path, size, class_names=ds.class_names)`` to keep the labels.

    Args:
        ds: uint8 images with 1 (grayscale) or 3 (RGB) channels.
        path: the tree's top folder; created if missing.
        limit: write only the first ``limit`` examples.

    Returns:
        The number of files written.
    """
    if ds.images.dtype != torch.uint8 or ds.images.ndim != 4 or ds.images.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images [N, 1 or 3, H, W], got {ds.images.dtype} {tuple(ds.images.shape)}")
    root = Path(path)
    folders = class_folder_names(ds.class_names)
    n = len(ds) if limit is None else min(limit, len(ds))
    width = max(5, len(str(max(n - 1, 0))))
    images = ds.images[:n].permute(0, 2, 3, 1).numpy()
    labels = ds.labels[:n].tolist()
    for folder in sorted(set(folders[y] for y in labels)):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, (a, y) in enumerate(zip(images, labels)):
        img = Image.fromarray(np.ascontiguousarray(a[..., 0] if a.shape[2] == 1 else a))
        img.save(root / folders[y] / f"{i:0{width}d}.png", format="PNG")
    return n


# ----------------------------------------------------------------------------- image folders, decoded once

def cache_dir() -> Path:
    """Where decoded datasets are cached: ``$EXPLORER_CACHE`` or ~/.cache/explorer."""
    env = os.environ.get("EXPLORER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "explorer"


def _folder_listing(root: Path) -> list[tuple[str, Path]]:
    """(class folder, file) for every non-hidden file under ``root/<class>/``, sorted."""
    out = []
    for folder in sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            out.extend((folder, Path(dirpath) / n) for n in sorted(filenames) if not n.startswith("."))
    return out


def _listing_key(listing: list[tuple[str, Path]], root: Path, extra: str) -> str:
    import hashlib

    h = hashlib.sha256(extra.encode())
    for folder, file in listing:
        st = file.stat()
        h.update(f"{file.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _looks_grey(files: list[Path], k: int = 16) -> bool:
    for f in files[:k]:
        a = np.asarray(decode_image_file(f))
        if not (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2])):
            return False
    return True


def load_image_folder(path: str | Path, input_size: tuple[int, int, int] | None = None, *,
                      class_names: Sequence[str] | None = None, progress: bool = True,
                      cache: bool = True) -> TensorDataset:
    """A class-folder tree (``path/<class>/<files>``) as an in-memory uint8 TensorDataset.

    Decoded once (every file through :func:`decode_image_file`, refused files skipped with one
    warning) and cached under :func:`cache_dir` in a file keyed by the tree's listing (relative
    paths, sizes, modification times), the input size and the class names: a second call reads
    the cache in a fraction of a second; any change to the tree decodes it again.

    Args:
        path: the tree's top folder (one sub-folder per class).
        input_size: (C, H, W); default from the first images: their size, 1 channel when they are grey.
        class_names: labels in order; each folder must be one of :func:`class_folder_names` of them.
            Default: the sorted folder names.
        progress: a tqdm bar on stderr while decoding.
        cache: read and write the cache.

    Raises:
        DataError: not a folder, no class folders, an unknown class, or no readable image.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder (expected {root}/<class name>/<image files>)")
    listing = _folder_listing(root)
    folders = sorted({f for f, _ in listing} | {p.name for p in root.iterdir()
                                                 if p.is_dir() and not p.name.startswith(".")})
    if not folders:
        raise DataError(f"{root} has no class folders (expected {root}/<class name>/<image files>)")
    if class_names is None:
        names = tuple(folders)
        label_of = {f: i for i, f in enumerate(folders)}
    else:
        names = tuple(class_names)
        label_of = {f: i for i, f in enumerate(class_folder_names(names))}
        unknown = [f for f in folders if f not in label_of]
        if unknown:
            raise DataError(f"{root}: folders {unknown[:5]} are not among the {len(names)} class names "
                            f"(expected folder names like {list(label_of)[:3]})")
    if not listing:
        raise DataError(f"{root} holds no files under its class folders")
    if input_size is None:
        first = decode_image_file(listing[0][1])
        input_size = (1 if _looks_grey([f for _, f in listing]) else 3, first.size[1], first.size[0])
    c, h, w = (int(v) for v in input_size)
    key = _listing_key(listing, root, f"v1|{c},{h},{w}|{'|'.join(names)}")
    cache_file = cache_dir() / "folders" / f"{key}.npz"
    name = f"folder:{root}"
    if cache and cache_file.exists():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                return TensorDataset(torch.from_numpy(z["images"]), torch.from_numpy(z["labels"]), names, name)
        except (OSError, ValueError, KeyError):
            pass  # a broken cache file is decoded again and replaced
    images = np.empty((len(listing), c, h, w), dtype=np.uint8)
    labels = np.empty(len(listing), dtype=np.int64)
    skipped: list[tuple[Path, str]] = []
    n = 0
    it = listing
    if progress:
        from tqdm import tqdm

        it = tqdm(listing, desc=f"decoding {root.name or root} (once; cached)", unit="img", mininterval=1.0)
    for folder, file in it:
        try:
            img = decode_image_file(file)
        except (ImageError, OSError) as e:
            skipped.append((file, str(e)))
            continue
        if img.size == (w, h):
            a = np.asarray(img.convert("L") if c == 1 else img, dtype=np.uint8)
            images[n] = a[None] if c == 1 else a.transpose(2, 0, 1)
        else:
            images[n] = (to_model_input(img, (c, h, w), invert=False)[0] * 255).round().to(torch.uint8).numpy()
        labels[n] = label_of[folder]
        n += 1
    if skipped:
        first, why = skipped[0]
        warnings.warn(f"skipped {len(skipped)} of {len(listing)} files in {root} "
                      f"(first: {first.relative_to(root)}: {why})", stacklevel=2)
    if n == 0:
        raise DataError(f"{root} holds no readable image ({len(skipped)} files refused)")
    images, labels = images[:n], labels[:n]
    if cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, images=images, labels=labels)
        os.replace(tmp, cache_file)
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(labels), names, name)


def balanced_subset(ds: TensorDataset, n: int, seed: int = 0) -> TensorDataset:
    """``n`` examples drawn without replacement, as even over the classes as the data allows,
    seeded; kept in their original order. All of ``ds`` when ``n >= len(ds)``."""
    if n >= len(ds):
        return ds
    g = torch.Generator().manual_seed(seed)
    labels = ds.labels
    classes = torch.unique(labels).tolist()
    per_class = {k: (labels == k).nonzero().flatten() for k in classes}
    per_class = {k: v[torch.randperm(len(v), generator=g)] for k, v in per_class.items()}
    quota = {k: 0 for k in classes}
    left = n
    while left > 0:  # deal one per class in turn until n, skipping exhausted classes
        for k in classes:
            if left and quota[k] < len(per_class[k]):
                quota[k] += 1
                left -= 1
    idx = torch.sort(torch.cat([per_class[k][:quota[k]] for k in classes])).values
    return TensorDataset(ds.images[idx], ds.labels[idx], ds.class_names, ds.name)


# ----------------------------------------------------------------------------- datasets by name, and their facts

DATASETS: dict[str, DatasetFacts] = {
    "fashion-mnist": DatasetFacts(
        "fashion-mnist", FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD, (1, 28, 28), augment_pad=2,
        eps_ranges=(("linf", EpsRange(0.3, 0.1, 0.01)), ("l2", EpsRange(5.0, 1.5, 0.1))),
        eval_eps=(("linf", (0.05, 0.1, 0.2)), ("l2", (0.5, 1.0, 1.5, 2.0)))),
    "cifar10": DatasetFacts(
        "cifar10", CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, (3, 32, 32), augment_pad=4,
        eps_ranges=(("linf", EpsRange(32 / 255, 8 / 255, 1 / 255)), ("l2", EpsRange(2.0, 0.5, 0.05))),
        eval_eps=(("linf", (2 / 255, 4 / 255, 8 / 255)), ("l2", (0.25, 0.5, 1.0)))),
    "imagenet": DatasetFacts("imagenet", (), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), (3, 224, 224),
                             imagenet_like=True, augment_pad=0, eps_ranges=_IMAGENET_EPS,
                             eval_eps=_IMAGENET_EVAL_EPS),
    "restricted-imagenet": DatasetFacts("restricted-imagenet", (), (0.4717, 0.4499, 0.3837),
                                        (0.2600, 0.2516, 0.2575), (3, 224, 224), imagenet_like=True, augment_pad=0,
                                        eps_ranges=_IMAGENET_EPS, eval_eps=_IMAGENET_EVAL_EPS),
}
IMAGENET_LIKE = tuple(k for k, f in DATASETS.items() if f.imagenet_like)


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
    if ds.class_names == CIFAR10_CLASSES and tuple(ds.images.shape[1:]) == (3, 32, 32):
        return TensorDataset(ds.images, ds.labels, CIFAR10_CLASSES, f"{dataset}/{split}")
    return TensorDataset(ds.images, ds.labels, ds.class_names, f"{dataset}/{split}")


def load_dataset(dataset: str, split: str = "test", *, progress: bool = True) -> TensorDataset:
    """Any dataset the CLI and the pages take, by name.

    ``fashion-mnist`` (the full set when installed, else the bundled subset),
    ``fashion-mnist-bundled``, ``cifar10`` (see :func:`load_cifar10`) and ``folder:ROOT``
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
        return load_cifar10(split, progress=progress)
    if dataset.startswith("folder:"):
        return _folder_split(dataset, split, progress)
    raise DataError(f"unknown dataset {dataset!r}: use fashion-mnist, cifar10, folder:ROOT "
                    "(ROOT/train/<class>/ and ROOT/test/<class>/) or constructed:PATH")


def dataset_facts(dataset: str, train: TensorDataset | None = None) -> DatasetFacts:
    """The facts of a dataset by name; a folder or constructed set's come from its images
    (``train``, loaded when not given): a folder that is CIFAR-10 (its ten classes, 32x32 RGB)
    gets CIFAR-10's, others their own per-channel mean and std."""
    base = dataset.removesuffix("-bundled")
    if base in DATASETS:
        return DATASETS[base]
    if not (dataset.startswith("folder:") or dataset.startswith("constructed:")):
        return DATASETS["imagenet"] if train is None else dataclasses.replace(DATASETS["imagenet"], name=dataset)
    if train is None:
        train = load_dataset(dataset, "train", progress=True)
    size = tuple(int(v) for v in train.images.shape[1:])
    if train.class_names == CIFAR10_CLASSES and size == (3, 32, 32):
        f = DATASETS["cifar10"]
        return dataclasses.replace(f, name=dataset)
    if train.class_names == FASHION_MNIST_CLASSES and size == (1, 28, 28):
        return dataclasses.replace(DATASETS["fashion-mnist"], name=dataset)
    x = train.images[:10000]
    x = x.float() / 255 if not x.is_floating_point() else x.float()
    mean = tuple(round(float(v), 4) for v in x.mean((0, 2, 3)))
    std = tuple(round(max(float(v), 1e-3), 4) for v in x.std((0, 2, 3)))
    return DatasetFacts(dataset, tuple(train.class_names), mean, std, size,  # type: ignore[arg-type]
                        augment_pad=max(1, size[-1] // 8) if size[-1] <= 64 else 0)
