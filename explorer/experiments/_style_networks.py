"""Which networks and which of their layers style transfer uses (not an experiment itself).

Layers: Nakano's for ResNets (the four residual stage outputs; content the third), Gatys et
al.'s for VGG (``relu1_1 .. relu5_1``; content ``relu4_2``), else derived from the network's
named layers. Networks: a standard and a robust ImageNet network by default, the zoo's
frozen Classifiers (or random-weights builds, for timing), prepared for the optimization
(average pooling where asked, BatchNorm folded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from explorer import data, zoo
from explorer.classifier import Classifier, ClassifierInfo
from explorer.folding import folded_classifier
from explorer.surgery import has_max_pooling_stack, with_average_pooling

#: ``random:<arch>`` builds ``<arch>`` with random (seeded) weights: for timing, never for science.
RANDOM_PREFIX = "random:"

RESNET_STYLE = ("layer1", "layer2", "layer3", "layer4")
RESNET_CONTENT = "layer3"
VGG_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
VGG_CONTENT = "relu4_2"

#: Nakano's networks: MadryLab's L2 eps 3 ResNet-50 (resnet50_l2_eps3.ckpt), torchvision's ResNet-50 and VGG-19.
NAKANO_NETWORKS = ("madry-imagenet-resnet50-l2-3", "resnet50", "vgg19")
STANDARD_PREFERENCE = ("resnet50", "madry-imagenet-resnet50-nat", "vgg19", "efficientnet-lite0")
ROBUST_PREFERENCE = ("madry-imagenet-resnet50-l2-3", "madry-imagenet-resnet50-l2-3-2019",
                     "madry-imagenet-resnet50-linf-4", "madry-imagenet-resnet50-linf-4-2019",
                     "madry-imagenet-resnet50-linf-8", "madry-imagenet-resnet50-linf-8-2019")


# --- layers -------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerChoice:
    """Style layers and content layer for one network, and the rule that chose them."""

    style_layers: tuple[str, ...]
    content_layer: str
    rule: str


def spatial_layers(model: Classifier, size: Optional[int] = None) -> list[tuple[str, tuple[int, int]]]:
    """(layer, (h, w)) for every named layer with a spatial [N, C, h, w] output, in network
    order, measured on one grey image of the model's input size (or ``size``)."""
    c, h, w = model.info.input_size
    if size is not None:
        h = w = size
    with torch.no_grad():
        out = model.features(torch.full((1, c, h, w), 0.5, device=model.device), model.layer_names)
    return [(name, tuple(t.shape[-2:])) for name, t in out.items() if t.ndim == 4 and min(t.shape[-2:]) > 1]


def derived_layers(model: Classifier) -> LayerChoice:
    """Style: the last named layer at each resolution from 1/4 of the input down (a ResNet's
    four stage outputs); content: the third of them (or the last when fewer)."""
    layers = spatial_layers(model)
    if not layers:
        raise ValueError(f"{model.name} has no named layer with a spatial output; name its style layers")
    height = model.info.input_size[1]
    last_per_resolution: dict[tuple[int, int], str] = {}
    for name, hw in layers:
        last_per_resolution[hw] = name  # network order: the later layer wins
    style = [name for hw, name in last_per_resolution.items() if hw[0] <= height / 4]
    rule = "derived: the last named layer at each resolution from 1/4 of the input down; content the third"
    if not style:
        style = [name for name, _ in layers]
        rule = "derived: every named spatial layer (none at 1/4 of the input or below); content the third"
    content = style[2] if len(style) >= 3 else style[-1]
    return LayerChoice(tuple(style), content, rule)


def default_layers(model: Classifier) -> LayerChoice:
    """Nakano's layers for ResNets, Gatys' for VGG, else ``derived_layers``."""
    names = set(model.layer_names)
    if set(RESNET_STYLE) <= names:
        return LayerChoice(RESNET_STYLE, RESNET_CONTENT,
                           "Nakano: the outputs of the four residual stages; content the third")
    if set(VGG_STYLE) | {VGG_CONTENT} <= names:
        return LayerChoice(VGG_STYLE, VGG_CONTENT, "Gatys et al.: relu1_1 ... relu5_1; content relu4_2")
    return derived_layers(model)


def check_layers(model: Classifier, layers: Sequence[str], what: str) -> None:
    """A one-line error naming the layers ``model`` does not have."""
    unknown = [l for l in layers if l not in model.layer_names]
    if unknown:
        raise ValueError(f"{model.name} has no {what} layer(s) {unknown}; it has {model.layer_names}")


# --- networks -------------------------------------------------------------------------------

def random_weights(arch: str, device: torch.device | str = "cpu", seed: int = 0) -> Classifier:
    """``arch`` (``zoo.build_architecture`` names, e.g. ``torchvision:resnet50``) with random
    weights drawn by ``seed``, ImageNet-sized and normalized: for timing runs only."""
    facts = data.dataset_facts("imagenet")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = zoo.build_architecture(arch, 1000, 3, facts.input_size[1])
    info = ClassifierInfo(name=f"{RANDOM_PREFIX}{arch}", dataset="imagenet",
                          class_names=zoo.class_names_for("imagenet", 1000), input_size=facts.input_size,
                          extra={"random_weights": True, "arch": arch})
    layers = zoo.default_layers(arch, net) or None
    return Classifier(net, info, facts.mean, facts.std, layers=layers, device=device,
                      channels_last=any(isinstance(m, nn.Conv2d) for m in net.modules()))


def load_network(name: str, device: torch.device) -> Classifier:
    """The zoo's frozen Classifier, or a random-weights build for ``random:<arch>``."""
    if name.startswith(RANDOM_PREFIX):
        return random_weights(name[len(RANDOM_PREFIX):], device)
    return zoo.load(name, device=device)


def prepare(model: Classifier, average_pooling: bool) -> Classifier:
    """The network the optimization runs on: an RGB network, average-pooling where asked
    (``surgery``), BatchNorm folded into the convolutions (same features, less work; bench/)."""
    if model.info.input_size[0] != 3:
        raise ValueError(f"{model.name} takes {model.info.input_size[0]}-channel images; style transfer "
                         "needs an RGB (ImageNet-like) network")
    net = with_average_pooling(model) if average_pooling and has_max_pooling_stack(model) else model
    return folded_classifier(net)


# --- which networks by default ----------------------------------------------------------------

def _is_robust(row: dict) -> bool:
    return str(row["kind"]).startswith("robust")


def default_networks(rows: Sequence[dict], preferred: Sequence[str] = ()) -> tuple[str, ...]:
    """The style networks to show side by side: a standard and a robust ImageNet network,
    each the first available of ``preferred`` (the sidebar's pair), else of Nakano's
    (ResNet-50, then the L2 eps 3 robust ResNet-50), else any; one or none when that is all
    there is. ``rows`` are ``zoo.list_models()`` rows."""
    usable = {r["name"]: r for r in rows if r["available"] and r["dataset"] in data.IMAGENET_LIKE}
    out = []
    for robust, preference in ((False, STANDARD_PREFERENCE), (True, ROBUST_PREFERENCE)):
        names = [n for n in (*preferred, *preference, *usable) if n in usable and _is_robust(usable[n]) == robust]
        if names:
            out.append(names[0])
    return tuple(out)


def missing_networks(rows: Sequence[dict]) -> list[tuple[str, str]]:
    """(name, fetch command) for Nakano's networks that are not here."""
    available = {r["name"] for r in rows if r["available"]}
    return [(n, zoo.fetch_command(n)) for n in NAKANO_NETWORKS if n not in available]
