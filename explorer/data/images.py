"""Safe image decoding (every upload and on-disk image goes through :func:`decode_image`: only
PNG, JPEG, WebP, GIF, BMP and TIFF, decompression bombs refused from the header, always RGB),
photos as model inputs, and the bundled sample photos, textures and ImageNet class names."""

from __future__ import annotations

import functools
import io
import re
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps

from explorer.data.base import DataError, ImageError

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
