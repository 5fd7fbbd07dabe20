"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half.

Every write goes to a hidden temporary file beside the target (``.NAME.tmpPID``, same folder,
so the rename stays on one file system), is flushed to disk, and then renamed over the
target with ``os.replace``. A killed process leaves at most a stray temporary file; the
target keeps its previous content. The shards of ``construct``, the training state and
weights of ``train``, the model cards and evaluation tables of ``cards`` and the downloads
of ``fetch`` are all written this way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["temporary_path", "atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
           "atomic_torch_save"]


def temporary_path(path: str | Path) -> Path:
    """The hidden temporary file beside ``path`` that this process writes before renaming."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write(path: str | Path, write: Callable[[Path], None], *, fsync: bool = True) -> None:
    """Call ``write(temporary path)`` and rename the result over ``path``.

    Args:
        path: the target file.
        write: writes the whole content to the path it is given.
        fsync: flush the temporary file to disk before the rename (a crash then leaves the
            old file or the new one, not an empty one).
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: tmp.write_bytes(payload))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2, **dumps) -> None:
    """Write ``obj`` as JSON with a final newline to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, **dumps) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` atomically."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))
