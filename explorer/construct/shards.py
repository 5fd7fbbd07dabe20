"""The files of a constructed dataset: shards and the manifest, each written atomically.

A dataset folder holds ``shard-NNNNN.safetensors`` files (float32 images, labels, source
indices and per-image statistics, with the shard's index and recipe as metadata) and
``manifest.json`` (``FORMAT``: recipe, source model and its sha256, seed, counts, and once
complete the statistics and the runs that built it). Every file is written through
``explorer.files``, so a killed job leaves whole files or none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
from safetensors import safe_open
from safetensors.torch import save

from explorer import data
from explorer.files import atomic_write_bytes, atomic_write_json

from .recipe import recipe_record

FORMAT = "explorer-constructed/1"
MANIFEST = "manifest.json"


def shard_path(out: Path, k: int) -> Path:
    """The file of shard ``k`` in the dataset folder ``out``."""
    return Path(out) / f"shard-{k:05d}.safetensors"


def write_shard(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write one shard's tensors and metadata atomically."""
    # one metadata key: safetensors keeps a key's order only within one string
    payload = save({k: v.contiguous() for k, v in tensors.items()}, metadata={"shard": json.dumps(meta, sort_keys=True)})
    atomic_write_bytes(path, payload)


def read_shard(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """A shard's tensors and its metadata."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("shard", "{}"))
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except Exception as e:  # safetensors raises its own error types
        raise data.DataError(f"{path} is not a readable shard: {e}") from e


def read_manifest(out: Path) -> Optional[dict]:
    """The manifest in the folder ``out``, or None when there is none yet. A recipe written before
    a field existed reads with the value it was built under (``recipe.recipe_record``: a D_rand
    without ``targets`` was built with targets over the other classes)."""
    path = Path(out) / MANIFEST
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise data.DataError(f"{path} is not valid JSON: {e}") from e
    if isinstance(m, dict) and isinstance(m.get("recipe"), dict):
        m["recipe"] = recipe_record(m["recipe"])
    return m


def write_manifest(out: Path, manifest: dict) -> None:
    """Write the manifest of the folder ``out`` atomically."""
    atomic_write_json(Path(out) / MANIFEST, manifest)
