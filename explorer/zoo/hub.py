"""Where a model's weights live on this machine, and their sha256 (local files only).

checkpoints/ (bundled models, user files, downloads), torchvision's torch hub cache and the
Hugging Face hub cache. Nothing here touches the network: a missing file is an error that
names the one command that fetches it. ``weights_file`` and ``weights_sha256`` are the
public way to get a model's verified weights file and its hash.
"""

from __future__ import annotations

import hashlib
import re
import os
from pathlib import Path

import torch

from explorer.zoo.registry import get_spec
from explorer.zoo.specs import ModelSpec, ZooError, checkpoints_dir, fetch_command


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def torch_hub_checkpoints() -> Path:
    """Where torchvision keeps downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"


_HF_URL = re.compile(r"^https://huggingface\.co/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


def hf_cached(url: str | None) -> Path | None:
    """The file behind a huggingface.co ``resolve`` URL if the HF hub cache already holds it."""
    m = _HF_URL.match(url or "")
    if not m:
        return None
    snapshots = hf_hub_cache() / f"models--{m['repo'].replace('/', '--')}" / "snapshots"
    hits = sorted(snapshots.glob(f"*/{m['file']}"))
    return hits[0] if hits else None


def download_target(spec: ModelSpec, root: Path | None = None) -> Path:
    """Where ``fetch`` puts ``spec``'s weights (and where the loader looks first)."""
    root = Path(root or checkpoints_dir())
    if not spec.weights:
        raise ZooError(f"{spec.name}: the record names no weights file")
    if spec.source == "torchvision":
        return torch_hub_checkpoints() / spec.weights  # shared with torchvision's own cache
    path = (root / spec.weights).resolve()
    if root.resolve() not in path.parents:
        raise ZooError(f"{spec.name}: weights path {spec.weights!r} leaves the checkpoints folder")
    return path


def converted_path(path: Path) -> Path:
    """Where ``convert --trust-pickled`` writes the safetensors copy of ``path``."""
    return Path(path).with_suffix(".safetensors")


def _missing(spec: ModelSpec, path: Path) -> ZooError:
    if spec.url:
        return ZooError(f"{spec.name}: weights file {path} is missing (nothing is downloaded at load time). "
                        f"Fetch it with: {fetch_command(spec.name)}")
    return ZooError(f"{spec.name}: weights file {path} is missing")


def check_sha256(spec: ModelSpec, path: Path) -> None:
    """A ZooError when the record has a sha256 and ``path`` does not match it."""
    if spec.sha256 and sha256_file(path) != spec.sha256:
        raise ZooError(f"{spec.name}: {path.name} does not match its sha256 (tampered or incomplete); "
                       f"delete it and fetch it again: {fetch_command(spec.name)}")


def _spec(name_or_spec: str | ModelSpec, root: Path | None) -> ModelSpec:
    return name_or_spec if isinstance(name_or_spec, ModelSpec) else get_spec(name_or_spec, root)


def weights_file(name_or_spec: str | ModelSpec, root: Path | None = None) -> Path:
    """The verified local weights file of a model (checkpoints/, the torch hub cache or the
    HF hub cache), or a ZooError naming the fetch command.

    Args:
        name_or_spec: a zoo name or its record.
        root: the checkpoints folder (default: ``checkpoints_dir()``).
    """
    spec = _spec(name_or_spec, root)
    root = Path(root or checkpoints_dir())
    path = download_target(spec, root)
    candidates = [path]
    if spec.source == "torchvision":
        candidates.append((root / spec.weights).resolve())  # a copy dropped into checkpoints/
    hf = hf_cached(spec.url)
    if hf is not None:
        candidates.append(hf)
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise _missing(spec, path)
    check_sha256(spec, found)
    return found


def weights_sha256(name_or_spec: str | ModelSpec, root: Path | None = None) -> str | None:
    """The sha256 of a model's weights: its record's, else its local file's; None when the
    file is not on this machine (or the record names none).

    Args:
        name_or_spec: a zoo name (an unknown one is a ZooError) or its record.
        root: the checkpoints folder (default: ``checkpoints_dir()``).
    """
    spec = _spec(name_or_spec, root)
    if spec.sha256:
        return spec.sha256
    try:
        return sha256_file(weights_file(spec, root))
    except (ZooError, OSError):
        return None


def local_file_availability(spec: ModelSpec, root: Path) -> tuple[bool, str]:
    """Whether ``spec``'s weights file is on this machine, and why not."""
    try:
        path = download_target(spec, root)
    except ZooError as e:
        return False, str(e)
    extra = [(Path(root) / spec.weights)] if spec.source == "torchvision" and spec.weights else []
    hf = hf_cached(spec.url)
    for p in [path, *extra, *([hf] if hf else [])]:
        if p.is_file():
            return True, f"weights present ({p})"
    if spec.url:
        return False, f"not downloaded: {fetch_command(spec.name)}"
    return False, f"weights file {spec.weights} missing from {path.parent}"
