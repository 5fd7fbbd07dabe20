"""BatchNorm folded into the convolutions, for gradient work on frozen models.

A frozen model's BatchNorm is an affine map per channel; folded into the preceding
convolution it costs nothing in the forward and backward passes. Twins are built once per
model, checked against the original's logits on a probe batch, and shared.
"""

from __future__ import annotations

import copy
import re
import threading
import weakref
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from explorer.classifier import Classifier

_FOLDED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_FOLD_LOCK = threading.Lock()
FOLD_TOLERANCE = 1e-4  # max |logit difference| / (1 + max |logit|) on the probe batch


def _fold_pairs(net: nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d inside an ``nn.Sequential``, timm's
    ``BatchNormAct2d`` after a sibling Conv2d, and each ``bnN`` after its ``convN`` (the blocks of
    torchvision's ResNets and ours), in place; returns how many were folded. The caller checks the
    logits on a probe batch: a net whose forward does not apply ``bnN`` right after ``convN`` fails
    that check and is not folded.

    No torch.fx trace: a trace patches ``nn.Module.__call__`` for every thread of the process while
    it runs, and a server folding a model in one session broke another session's training with
    "module is not installed as a submodule"."""
    folded = 0
    for parent in list(net.modules()):
        for name, conv in list(parent.named_children()):
            match = re.fullmatch(r"conv(\d*)", name)
            bn = getattr(parent, f"bn{match.group(1)}", None) if match else None
            if isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d and not isinstance(parent, nn.Sequential):
                setattr(parent, name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, f"bn{match.group(1)}", nn.Identity())
                folded += 1
        children = list(parent.named_children())
        for (n1, c1), (n2, c2) in zip(children, children[1:]):
            if not (isinstance(c1, nn.Conv2d) and isinstance(c2, nn.BatchNorm2d)):
                continue
            if type(c2) is not nn.BatchNorm2d and not (hasattr(c2, "act") and hasattr(c2, "drop")):
                continue  # an unknown BatchNorm subclass: leave it alone
            if isinstance(parent, nn.Sequential) or type(c2) is not nn.BatchNorm2d:
                setattr(parent, n1, fuse_conv_bn_eval(c1, c2))
                setattr(parent, n2, nn.Identity() if type(c2) is nn.BatchNorm2d else nn.Sequential(c2.drop, c2.act))
                folded += 1
    return folded


def _fold(model) -> nn.Module | None:
    """A BN-folded twin of ``model.net`` behind ``model.normalize``, or None when nothing
    folds or the twin does not compute the same logits on a probe batch."""
    net = getattr(model, "net", None)
    if net is None or not hasattr(model, "normalize") or not any(isinstance(m, nn.BatchNorm2d) for m in net.modules()):
        return None
    twin = copy.deepcopy(net)
    if _fold_pairs(twin) == 0:
        return None
    twin = twin.eval().requires_grad_(False)
    if getattr(model, "channels_last", False):
        twin = twin.to(memory_format=torch.channels_last)
    c, h, w = model.info.input_size
    probe = torch.rand(2, c, h, w, generator=torch.Generator().manual_seed(0)).to(model.device)
    with torch.no_grad():
        xn = model.normalize(probe)
        ref, got = net(xn), twin(xn)
    if ref.shape != got.shape or not bool(((ref - got).abs().max() / (1 + ref.abs().max())) < FOLD_TOLERANCE):
        return None
    return twin


def folded(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model``'s logits with BatchNorm folded into the preceding convolutions.

    A frozen model's BatchNorm is an affine map per channel; folded into the convolution
    it costs nothing in the forward and backward passes (measured in bench/: ~10% of a
    PGD step of the bundled CNN on a CPU, more on ResNet-50). The twin is built once per
    model (a copy of its weights), checked to give the same logits on a probe batch, and
    shared; a model without foldable BatchNorm is returned as it is.
    """
    with _FOLD_LOCK:
        try:
            twin = _FOLDED.get(model)
        except TypeError:  # not weak-referenceable: no cache, no folding
            return model
        if twin is None:
            twin = _fold(model) or False  # the value must not refer to the key (a weak-key cache)
            _FOLDED[model] = twin
    if twin is False:
        return model
    return lambda x: twin(model.normalize(x))


_FOLDED_CLASSIFIERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def folded_classifier(model):
    """A Classifier twin of ``model`` whose network has its BatchNorm folded into the
    convolutions where they sit side by side (``nn.Sequential`` conv -> bn, timm's
    conv -> BatchNormAct2d). Module paths are kept (a folded BatchNorm becomes an Identity,
    or its activation), so ``features`` and the named layers work as before; checked to give
    the same logits on a probe batch. ``model`` itself when nothing folds."""
    with _FOLD_LOCK:
        try:
            twin = _FOLDED_CLASSIFIERS.get(model)
        except TypeError:
            return model
        if twin is None:
            twin = False
            net = getattr(model, "net", None)
            if isinstance(model, Classifier) and any(isinstance(m, nn.BatchNorm2d) for m in net.modules()):
                folded_net = copy.deepcopy(net)
                if _fold_pairs(folded_net):
                    candidate = Classifier(folded_net, model.info, model.mean.flatten().tolist(),
                                           model.std.flatten().tolist(), layers=model.layers, device=model.device,
                                           channels_last=model.channels_last)
                    c, h, w = model.info.input_size
                    probe = torch.rand(2, c, h, w, generator=torch.Generator().manual_seed(0)).to(model.device)
                    with torch.no_grad():
                        ref, got = model(probe), candidate(probe)
                    if bool(((ref - got).abs().max() / (1 + ref.abs().max())) < FOLD_TOLERANCE):
                        twin = candidate
            _FOLDED_CLASSIFIERS[model] = twin
    return model if twin is False else twin
