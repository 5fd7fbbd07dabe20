"""The records written out and read back: checkpoints/manifest.json, and how records read to people.

The manifest lists the bundled models and any user file dropped into checkpoints/; training
runs add their entry to it (one at a time, atomically).
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from explorer.files import atomic_write_text
from explorer.threat import eps_text  # noqa: F401  (re-exported: zoo.eps_text)
from explorer.zoo.specs import ModelSpec, ZooError, checkpoints_dir

MANIFEST = "manifest.json"


def read_manifest(root: Path | None = None) -> list[ModelSpec]:
    """The records of ``root``/manifest.json (none when there is no manifest)."""
    root = Path(root or checkpoints_dir())
    path = root / MANIFEST
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ZooError(f"{path} is not valid JSON: {e}") from e
    return [ModelSpec.from_dict(d) for d in raw.get("models", [])]


def write_manifest_entry(spec: ModelSpec, root: Path | None = None) -> None:
    """Add or replace ``spec`` in checkpoints/manifest.json (atomically)."""
    root = Path(root or checkpoints_dir())
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{MANIFEST}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent training runs register one at a time
        specs = [s for s in read_manifest(root) if s.name != spec.name] + [spec]
        text = json.dumps({"models": [s.to_dict() for s in specs]}, indent=2) + "\n"
        atomic_write_text(root / MANIFEST, text)


def kind_text(spec: ModelSpec) -> str:
    """``standard``, or ``robust (<norm> <eps>)``: the kind column of the model list."""
    return f"robust ({spec.train_norm} {eps_text(spec.train_norm, spec.train_eps)})" if spec.robust else "standard"
