"""Reading constructed datasets back, and finding what the jobs wrote (for the pages and train).

``load`` is the one reader of a constructed dataset (``train --dataset constructed:PATH``
and the experiments use it); ``pairs`` puts constructed images beside their sources for the
browse view; ``find_datasets`` and ``find_tables`` list the complete datasets and the
``table`` command's tables under the artifacts folder and the shipped results.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import torch

from safetensors.torch import load_file, save_file

from explorer import data

from .recipe import source_dataset
from .shards import FORMAT, MANIFEST, read_manifest, read_shard, shard_path

#: the repository root (results/ lies beside explorer/)
_REPOSITORY = Path(__file__).resolve().parent.parent.parent


def manifest(path: str | Path) -> dict:
    """The manifest of a constructed dataset folder (a DataError when there is none)."""
    m = read_manifest(Path(path))
    if m is None:
        raise data.DataError(f"{path} holds no {MANIFEST}: build it with python -m explorer construct ...")
    if m.get("format") != FORMAT:
        raise data.DataError(f"{path}/{MANIFEST} is not a constructed dataset ({m.get('format')!r})")
    return m


def load_arrays(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(manifest, every shard's tensors concatenated in order); the dataset must be complete."""
    path = Path(path)
    m = manifest(path)
    missing = [k for k in range(m["num_shards"]) if not shard_path(path, k).exists()]
    if missing or not m.get("complete"):
        raise data.DataError(f"{path} is incomplete ({m['num_shards'] - len(missing)} of {m['num_shards']} "
                             f"shards); finish it by running its command again: {m.get('command') or '?'}")
    parts = [read_shard(shard_path(path, k))[0] for k in range(m["num_shards"])]
    return m, {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


def load(path: str | Path) -> data.TensorDataset:
    """A constructed dataset as a TensorDataset (float32 images in [0, 1])."""
    m, t = load_arrays(path)
    return data.TensorDataset(t["images"], t["labels"], tuple(m["class_names"]), f"{m['name']} ({path})")


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [0, 1] images -> uint8, rounded to the nearest level."""
    return images.clamp(0, 1).mul(255).round_().to(torch.uint8)


def export(path: str | Path, out: str | Path, limit: Optional[int] = None) -> int:
    """Write a constructed dataset as PNGs in ``out/train/<class>/<index>.png`` (8-bit: the
    float images rounded to the nearest level); returns the number written."""
    ds = load(path)
    u8 = data.TensorDataset(to_uint8(ds.images), ds.labels, ds.class_names, ds.name)
    return data.export_image_folder(u8, Path(out) / "train", limit=limit)


@dataclass(frozen=True)
class Pairs:
    """Browse view: originals x, their constructed versions, the start images, old and new labels."""

    originals: np.ndarray
    constructed: np.ndarray
    starts: Optional[np.ndarray]
    old_labels: np.ndarray
    new_labels: np.ndarray
    metric: np.ndarray
    positions: np.ndarray
    class_names: tuple[str, ...]


#: beside a small shipped dataset's shards: its source and start images (uint8), so it browses on a
#: machine without the source set it was built from (``pack_sources``).
SOURCES = "sources.safetensors"


def pack_sources(path: str | Path) -> Path:
    """Write the source image and the start image (zeros where there is none) of every example of the
    dataset at ``path`` into ``path/SOURCES``, from the source set it was built from."""
    path = Path(path)
    m, t = load_arrays(path)
    source = _source_set(m)
    start = t["start_index"]
    starts = source.images[start.clamp(min=0)].clone()
    starts[start < 0] = 0
    out = path / SOURCES
    save_file({"originals": source.images[t["source_index"]].contiguous(), "starts": starts.contiguous()}, str(out))
    return out


def _source_set(m: dict) -> data.TensorDataset:
    source = source_dataset(m["dataset"]["name"], tuple(m["input_size"]), tuple(m["class_names"]))
    if len(source) != m["dataset"]["size"]:
        raise data.DataError(f"the source set {source.name} has {len(source)} images; this dataset was built "
                             f"from {m['dataset']['size']}")
    return source


def _as_float(images: torch.Tensor) -> np.ndarray:
    return (images.float() / 255.0 if images.dtype == torch.uint8 else images.float()).numpy()


def pairs(path: str | Path, positions: Iterable[int]) -> Pairs:
    """The examples at ``positions`` of a constructed dataset next to their source images (from
    ``SOURCES`` when the dataset carries them, else from its source set)."""
    m, t = load_arrays(path)
    pos = torch.as_tensor(list(positions), dtype=torch.int64)
    if len(pos) and (pos.min() < 0 or pos.max() >= m["count"]):
        raise data.DataIndexError(f"positions must lie in 0..{m['count'] - 1}")
    start = t["start_index"][pos]
    has_starts = len(pos) and bool((start >= 0).all())
    packed = Path(path) / SOURCES
    if packed.is_file():
        sources = load_file(str(packed))
        originals = _as_float(sources["originals"][pos])
        starts = _as_float(sources["starts"][pos]) if has_starts else None
    else:
        source = _source_set(m)
        originals = source.float_images(t["source_index"][pos]).numpy()
        starts = source.float_images(start).numpy() if has_starts else None
    return Pairs(originals=originals,
                 constructed=t["images"][pos].numpy(), starts=starts,
                 old_labels=t["source_label"][pos].numpy(), new_labels=t["labels"][pos].numpy(),
                 metric=t["metric"][pos].numpy(), positions=pos.numpy(), class_names=tuple(m["class_names"]))


def artifacts_root() -> Path:
    """Where ``construct`` and ``table`` write by default: ``$EXPLORER_ARTIFACTS/constructed``
    (default ``artifacts/constructed`` under the working folder)."""
    return Path(os.environ.get("EXPLORER_ARTIFACTS", "artifacts")) / "constructed"


def find_datasets(root: str | Path | None = None) -> list[tuple[Path, dict]]:
    """Every complete constructed dataset under ``root``: (folder, manifest), by folder name."""
    root = Path(root) if root is not None else artifacts_root()
    out = []
    for path in sorted(root.rglob(MANIFEST)) if root.is_dir() else []:
        try:
            m = manifest(path.parent)
        except data.DataError:
            continue
        if m.get("complete"):
            out.append((path.parent, m))
    return out


def shipped_samples_root() -> Path:
    """Small samples of each constructed dataset, shipped inside the package with their source images so a
    fresh clone has something to browse: ``explorer/assets/constructed`` (``$EXPLORER_SHIPPED_SAMPLES``)."""
    default = Path(__file__).resolve().parent.parent / "assets" / "constructed"
    return Path(os.environ.get("EXPLORER_SHIPPED_SAMPLES", default))


def shipped_tables_root() -> Path:
    """The tables we produced with ``python -m explorer table`` and ship with the repository, so
    that a fresh clone shows ours: ``results/constructed`` (``$EXPLORER_SHIPPED_TABLES``)."""
    default = _REPOSITORY / "results" / "constructed"
    return Path(os.environ.get("EXPLORER_SHIPPED_TABLES", default))


def table_roots() -> tuple[Path, Path]:
    """Where the page looks for tables: the user's own first, then the shipped ones."""
    return artifacts_root(), shipped_tables_root()


def find_tables(*roots: str | Path) -> list[tuple[Path, dict]]:
    """Every ``table.json`` that ``python -m explorer table`` wrote under ``roots`` (default
    :func:`table_roots`): (file, its content), in root order, leaving out any table that is a
    copy of one already found (a shipped table the user also has in artifacts/)."""
    out: list[tuple[Path, dict]] = []
    for r in map(Path, roots or table_roots()):
        for path in sorted(r.rglob("table.json")) if r.is_dir() else []:
            try:
                table = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if all(table != seen for _, seen in out):
                out.append((path, table))
    return out
