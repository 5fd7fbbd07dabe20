"""Layer maps: public layer names -> module paths (what the layer-robustness page plots).

A record may name its layers; one that names none gets them read off the network itself.
"""

from __future__ import annotations

from torch import nn

from explorer import nets

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

TIMM_RESNET_LAYERS: tuple[tuple[str, str], ...] = (
    ("stem", "act1"), ("layer1", "layer1"), ("layer2", "layer2"), ("layer3", "layer3"), ("layer4", "layer4"),
    ("penultimate", "global_pool"))


def default_layers(arch: str, net: nn.Module) -> dict[str, str]:
    """Named layers for a record that names none, read off the network itself."""
    modules = dict(net.named_modules())
    if arch in nets.MADRY_ARCHITECTURES or (all(m in modules for _, m in RESNET_LAYERS) and "fc" in modules):
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
