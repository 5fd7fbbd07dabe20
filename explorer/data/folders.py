"""Class-folder image trees (``ROOT/<class>/<files>``): read as a torch Dataset, decoded once into
a cached in-memory dataset, written back out; and seeded class-balanced subsets."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from explorer.files import atomic_write
from explorer.data.base import DataError, ImageError, TensorDataset
from explorer.data.images import MAX_PIXELS, MIN_SIDE, _open_checked, decode_image_file, to_model_input

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


def _class_folders(root: Path, class_names: Sequence[str] | None) -> tuple[list[str], tuple[str, ...], dict]:
    """(class folders, class names, folder -> label) of a class-folder tree; labels follow
    ``class_names`` (each folder must be one of :func:`class_folder_names` of them) or the sorted folders."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder (expected {root}/<class name>/<image files>)")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root} has no class folders (expected {root}/<class name>/<image files>)")
    if class_names is None:
        return folders, tuple(folders), {f: i for i, f in enumerate(folders)}
    names = tuple(class_names)
    label_of = {f: i for i, f in enumerate(class_folder_names(names))}
    unknown = [f for f in folders if f not in label_of]
    if unknown:
        raise DataError(f"{root}: folders {unknown[:5]} are not among the {len(names)} class names "
                        f"(expected folder names like {list(label_of)[:3]})")
    return folders, names, label_of


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
    folders, names, label_of = _class_folders(root, class_names)
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
    folders, names, label_of = _class_folders(root, class_names)
    listing = _folder_listing(root)
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

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
                np.savez(f, images=images, labels=labels)

        atomic_write(cache_file, write)
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
