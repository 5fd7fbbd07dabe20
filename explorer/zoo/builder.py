"""Weights into a network: architectures by name, safe state-dict reading, strict loading.

State dicts are read with safetensors or ``torch.load(weights_only=True)``; nothing that
could run code is ever unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import load_file as load_safetensors
from torch import nn

from explorer import nets
from explorer.zoo.specs import ModelSpec, ZooError


def build_architecture(arch: str, num_classes: int = 10, in_chans: int = 1, input_size: int = 28) -> nn.Module:
    """An untrained network by name: our own nets (``stage_cnn``, ``mlp`` ...), the MadryLab
    CIFAR ResNets (``madry_cifar_resnet50``), ``torchvision:<name>`` or ``timm:<name>``."""
    if arch in nets.ARCHITECTURES:
        return nets.ARCHITECTURES[arch](in_chans=in_chans, num_classes=num_classes, input_size=input_size)
    if arch in nets.MADRY_ARCHITECTURES:
        if in_chans != 3:
            raise ZooError(f"{arch} takes 3-channel input, got {in_chans}")
        return nets.MADRY_ARCHITECTURES[arch](num_classes=num_classes)
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
    """The architectures we define (``explorer.nets``), by name."""
    return sorted([*nets.ARCHITECTURES, *nets.MADRY_ARCHITECTURES])


def build(spec: ModelSpec) -> nn.Module:
    """The untrained network of a record."""
    return build_architecture(spec.arch, spec.num_classes, spec.input_size[0], spec.input_size[1])


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file, or a torch file that loads with weights_only=True.

    A checkpoint dict (``{"model": ..., "optimizer": ..., "epoch": ...}``) gives its
    ``model`` (or older ``state_dict``) entry.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            return load_safetensors(str(path))
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


def strict_load(net: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> nn.Module:
    """``net`` with ``state`` loaded strictly; a mismatch is a ZooError that lists the keys."""
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        details = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
        raise ZooError(f"{what}: the weights do not fit the architecture: "
                       + ("; ".join(details[:4]) or str(e).splitlines()[0])[:800]) from e
    return net


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
