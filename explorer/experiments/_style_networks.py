"""Which networks and which of their layers style transfer uses (not an experiment itself).

Layers: Nakano's for ResNets (the four residual stage outputs; content the third), Gatys et
al.'s for VGG (``relu1_1 .. relu5_1``; content ``relu4_2``), the same rule for our stage CNNs
(``stage1 .. stage4``; content ``stage3``), else derived from the network's named layers.
Networks: a standard and a robust ImageNet network by default, the zoo's frozen Classifiers (or
random-weights builds, for timing), prepared for the optimization (average pooling where asked,
BatchNorm folded, 1-channel networks behind a ``GreyView``).

Grey networks. A 1-channel network (the Fashion-MNIST stage CNNs, convolutional and globally
pooled, so they run on a photo of any size) sees the ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B
of the image, taken inside its ``features`` call: differentiable, part of the one forward pass
per network, and the same conversion ``data.to_model_input`` makes for these models. When every
network is grey, the image optimized is grey itself (``image_channels``): the pixels are then
exactly what the loss sees, nothing drifts in directions no gradient reaches, and the output is
shown grey (a viewer reads it as what the networks made, not as colour they never saw). With an
RGB network among them the image is RGB and the grey networks see its luma.

Fashion-MNIST is white on black, a photo's negative; ``to_model_input`` inverts bright-bordered
images for its models, and so do we by default: its networks see 1 - luma. Measured on chelsea,
camera and astronaut in gravel style (128 px, 100 L-BFGS iterations, content fmnist-standard),
the inverted luma reached a lower mean style loss for the standard and the L2-robust network in
each of four layer choices, and a power spectrum closer to the style image's in 7 of 8 (stage1-4:
robust-l2 style loss 0.041 vs 0.186, spectrum distance 0.27 vs 0.39; standard 0.045 vs 0.049,
0.46 vs 0.50). Seen side by side, the inverted luma spares the standard network the fine dotted
lines it lays over a bright photo (camera, its own content layer); ``invert_grey`` chooses.
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
#: our stage CNNs (``nets.StageCNN``): Nakano's rule on their four stages. Against stage3-4 (the derived
#: rule), stage2-4 and stage1-3 (three photos in gravel, 128 px, inverted luma): the spectrum closest to the
#: style image's for robust-l2 (0.27; others 0.28-0.33), second for the standard net (0.46; stage1-3 0.42),
#: and, of 18 runs (either polarity), none ending above its starting style loss (stage3-4: 3, stage2-4: 1).
STAGE_STYLE = ("stage1", "stage2", "stage3", "stage4")
STAGE_CONTENT = "stage3"

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
    """Nakano's layers for ResNets (and their rule for stage CNNs), Gatys' for VGG, else ``derived_layers``."""
    names = set(model.layer_names)
    if set(RESNET_STYLE) <= names:
        return LayerChoice(RESNET_STYLE, RESNET_CONTENT,
                           "Nakano: the outputs of the four residual stages; content the third")
    if set(VGG_STYLE) | {VGG_CONTENT} <= names:
        return LayerChoice(VGG_STYLE, VGG_CONTENT, "Gatys et al.: relu1_1 ... relu5_1; content relu4_2")
    if set(STAGE_STYLE) <= names:
        return LayerChoice(STAGE_STYLE, STAGE_CONTENT, "stage CNN: its four stages, as Nakano's four residual "
                                                       "stages; content the third")
    return derived_layers(model)


def check_layers(model: Classifier, layers: Sequence[str], what: str) -> None:
    """A one-line error naming the layers ``model`` does not have."""
    unknown = [l for l in layers if l not in model.layer_names]
    if unknown:
        raise ValueError(f"{model.name} has no {what} layer(s) {unknown}; it has {model.layer_names}")


# --- grey networks ----------------------------------------------------------------------------

#: ITU-R 601 luma weights of R, G, B: what PIL's ``convert("L")`` and ``data.to_model_input`` give a
#: 1-channel network.
LUMA = (0.299, 0.587, 0.114)
#: Datasets whose 1-channel images are light objects on black, the negative of a photo's luma;
#: their networks see the inverted luma by default (the better transfer, measured: README).
INVERTED_GREY_DATASETS = ("fashion-mnist",)


def luma(x: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] -> [N, 1, H, W]: 0.299 R + 0.587 G + 0.114 B (differentiable); a
    1-channel batch is returned as it is."""
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"luma needs [N, 1 or 3, H, W] images, got {tuple(x.shape)}")
    return torch.einsum("nchw,c->nhw", x, x.new_tensor(LUMA)).unsqueeze(1)


def grey_is_inverted(model: Classifier) -> bool:
    """Whether a 1-channel ``model`` sees photos inverted by default: its dataset is white on black."""
    return model.info.input_size[0] == 1 and model.info.dataset in INVERTED_GREY_DATASETS


class GreyView:
    """A 1-channel network as style transfer sees it: the luma of the image being optimized
    (``luma``; a grey image passes as it is), inverted (1 - luma) when ``invert``, then the
    network. The luma is taken inside ``features``, so it is part of every forward pass and
    the gradient flows through it to the pixels; one call is still one pass of the network.
    It looks like the Classifier it wraps where style transfer reads it (``name``, ``info``,
    ``layer_names``, ``device``, ``features``) and changes nothing in it.

    Args:
        model: the 1-channel Classifier (already prepared: folded).
        invert: give it 1 - luma (Fashion-MNIST's white-on-black convention).
    """

    def __init__(self, model: Classifier, invert: bool):
        if model.info.input_size[0] != 1:
            raise ValueError(f"GreyView wraps 1-channel networks; {model.name} takes "
                             f"{model.info.input_size[0]} channels")
        self.model, self.invert = model, bool(invert)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def info(self) -> ClassifierInfo:
        return self.model.info

    @property
    def layer_names(self) -> list[str]:
        return self.model.layer_names

    @property
    def device(self) -> torch.device:
        return self.model.device

    def grey(self, x: torch.Tensor) -> torch.Tensor:
        """What the network is given for [N, 1 or 3, H, W] images ``x`` in [0, 1]."""
        g = luma(x)
        return 1 - g if self.invert else g

    def features(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.model.features(self.grey(x), layers)

    def __repr__(self) -> str:
        return f"GreyView({self.name}, invert={self.invert})"


def image_channels(nets) -> int:
    """The channels of the image to optimize: 1 when every network is grey (the pixels are
    then exactly what the networks see: no colour the loss cannot reach), else 3 (RGB; the
    grey networks see its luma)."""
    return 1 if all(isinstance(n, GreyView) for n in nets) else 3


def grey_notes(nets, channels: int) -> list[str]:
    """One line on what the 1-channel networks among ``nets`` see, and what the output is."""
    grey = [n for n in nets if isinstance(n, GreyView)]
    if not grey:
        return []
    seen = "; ".join(f"{n.name}: {'1 - luma (white on black, as it was trained)' if n.invert else 'the luma'}"
                     for n in grey)
    out = ("the image optimized and shown is grey" if channels == 1
           else "the image optimized is RGB: its colours come from the RGB network alone")
    return [f"1-channel networks see the luma 0.299 R + 0.587 G + 0.114 B ({seen}); {out}."]


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


def prepare(model: Classifier, average_pooling: bool, invert_grey: Optional[bool] = None) -> Classifier | GreyView:
    """The network the optimization runs on: average-pooling where asked (``surgery``),
    BatchNorm folded into the convolutions (same features, less work; bench/), and a
    1-channel network behind a ``GreyView`` (``invert_grey``: None for its dataset's
    convention, ``grey_is_inverted``)."""
    channels = model.info.input_size[0]
    if channels not in (1, 3):
        raise ValueError(f"{model.name} takes {channels}-channel images; style transfer needs an RGB or a "
                         "1-channel (grey) network")
    net = with_average_pooling(model) if average_pooling and has_max_pooling_stack(model) else model
    net = folded_classifier(net)
    if channels == 1:
        return GreyView(net, grey_is_inverted(model) if invert_grey is None else bool(invert_grey))
    return net


# --- which networks by default ----------------------------------------------------------------

def _is_robust(row: dict) -> bool:
    return str(row["kind"]).startswith("robust")


#: datasets of colour photos, whose networks take a photo as it is: ImageNet-like ones and CIFAR-10.
PHOTO_DATASETS = (*data.IMAGENET_LIKE, "cifar10")
#: the bundled natural-image pair (ResNet-9s trained here on CIFAR-10's 32-px images): the default when no
#: standard-and-robust ImageNet pair is here. ``python -m explorer style-pairs`` measured it against the
#: Fashion-MNIST pairs (results/style/pairs.json): its robust network reaches a far lower style loss.
BUNDLED_PAIR = ("cifar10-standard", "cifar10-robust-l2")


def _pick(rows: Sequence[dict], datasets: Sequence[str], preferred: Sequence[str],
          preference: tuple[Sequence[str], Sequence[str]]) -> tuple[str, ...]:
    usable = {r["name"]: r for r in rows if r["available"] and r["dataset"] in datasets}
    out = []
    for robust, ranked in ((False, preference[0]), (True, preference[1])):
        names = [n for n in (*preferred, *ranked, *usable) if n in usable and _is_robust(usable[n]) == robust]
        if names:
            out.append(names[0])
    return tuple(out)


def default_networks(rows: Sequence[dict], preferred: Sequence[str] = ()) -> tuple[str, ...]:
    """The style networks to show side by side: a standard and a robust ImageNet network,
    each the first available of ``preferred`` (the sidebar's pair), else of Nakano's
    (ResNet-50, then the L2 eps 3 robust ResNet-50), else any; when no such pair is here, the
    bundled CIFAR-10 pair (``BUNDLED_PAIR``, or any standard and robust CIFAR-10 networks);
    else the ImageNet networks there are (one or none). ``rows`` are ``zoo.list_models()`` rows."""
    imagenet = _pick(rows, data.IMAGENET_LIKE, preferred, (STANDARD_PREFERENCE, ROBUST_PREFERENCE))
    if len(imagenet) == 2:
        return imagenet
    cifar = _pick(rows, ("cifar10",), preferred, (BUNDLED_PAIR[:1], BUNDLED_PAIR[1:]))
    return cifar if len(cifar) == 2 else imagenet


def style_network_names(rows: Sequence[dict]) -> list[str]:
    """The available networks a style transfer can run on: colour-photo ones (``PHOTO_DATASETS``) first,
    then the others (Fashion-MNIST's 1-channel ones see the luma, ``GreyView``)."""
    usable = [r for r in rows if r["available"]]
    return ([r["name"] for r in usable if r["dataset"] in PHOTO_DATASETS]
            + [r["name"] for r in usable if r["dataset"] not in PHOTO_DATASETS])


def missing_networks(rows: Sequence[dict]) -> list[tuple[str, str]]:
    """(name, fetch command) for Nakano's networks that are not here."""
    available = {r["name"] for r in rows if r["available"]}
    return [(n, zoo.fetch_command(n)) for n in NAKANO_NETWORKS if n not in available]
