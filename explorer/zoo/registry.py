"""The registry: built-in records by name, the loader and availability check of each source.

Adding a model is adding a record (``register``); a duplicate name is an error, and a
manifest entry may not reuse a built-in name. Sources register their functions with the
``loader`` and ``availability_check`` decorators (see ``explorer.zoo.sources``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Union

from torch import nn

from explorer.zoo.manifest import kind_text, read_manifest
from explorer.zoo.specs import ModelSpec, ZooError, checkpoints_dir, timm_spec

LoaderResult = Union[nn.Module, "tuple[nn.Module, ModelSpec]"]
_BUILTIN: dict[str, ModelSpec] = {}
LOADERS: dict[str, Callable[[ModelSpec, Path], LoaderResult]] = {}
AVAILABILITY: dict[str, Callable[[ModelSpec, Path], tuple[bool, str]]] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a built-in record; a duplicate name is an error."""
    if spec.name in _BUILTIN:
        raise ZooError(f"duplicate model name {spec.name!r}")
    _BUILTIN[spec.name] = spec
    return spec


def loader(source: str):
    """Decorator: register the function that builds a net with weights for ``source``.

    The function takes ``(spec, root)`` and returns the net, or ``(net, spec)`` when the
    weights file itself corrects the record (e.g. a checkpoint's own normalization).
    """

    def deco(fn):
        LOADERS[source] = fn
        return fn

    return deco


def availability_check(source: str):
    """Decorator: register ``(spec, root) -> (available, why not)`` for ``source``; it must
    only look at local files, never the network."""

    def deco(fn):
        AVAILABILITY[source] = fn
        return fn

    return deco


def specs(root: Path | None = None) -> dict[str, ModelSpec]:
    """All records: built-ins, then the manifest (a manifest entry may not reuse a built-in name)."""
    out = dict(_BUILTIN)
    for s in read_manifest(root):
        if s.name in _BUILTIN:
            raise ZooError(f"manifest entry {s.name!r} duplicates a built-in model")
        out[s.name] = s
    return out


def get_spec(name: str, root: Path | None = None) -> ModelSpec:
    """The record for ``name``; ``timm:<model name>`` makes one from timm's pretrained config."""
    all_specs = specs(root)
    if name in all_specs:
        return all_specs[name]
    if name.startswith("timm:"):
        return timm_spec(name.split(":", 1)[1])
    raise ZooError(f"unknown model {name!r}; known: {', '.join(sorted(all_specs))} (or timm:<model name>)")


def availability(spec: ModelSpec, root: Path | None = None) -> tuple[bool, str]:
    """Whether ``spec`` loads offline now, and why not (with the command that fixes it).
    Looks only at local files."""
    root = Path(root or checkpoints_dir())
    check = AVAILABILITY.get(spec.source)
    if check is None:
        return False, f"unknown source {spec.source!r}"
    return check(spec, root)


def list_models(root: Path | None = None) -> list[dict]:
    """One row per model: name, dataset, kind, source, available, why (the fetch command when
    the weights only need downloading)."""
    rows = []
    for s in specs(root).values():
        ok, why = availability(s, root)
        rows.append({"name": s.name, "dataset": s.dataset, "kind": kind_text(s), "source": s.source,
                     "available": ok, "why": why})
    return rows
