"""Network surgery: copies of a frozen Classifier with parts of its network replaced.

The shared Classifier is never changed (many sessions use it); every function here returns
a new frozen Classifier around a deep copy of the network, with the same spec, layer map,
normalization, device and memory format.
"""

from __future__ import annotations

import copy

from torch import nn

from explorer.classifier import Classifier


def has_max_pooling_stack(model: Classifier) -> bool:
    """A VGG/AlexNet-style ``features`` stack with max-pooling in it."""
    features = getattr(model.net, "features", None)
    return isinstance(features, nn.Sequential) and any(isinstance(m, nn.MaxPool2d) for m in features)


def with_average_pooling(model: Classifier) -> Classifier:
    """A copy of ``model`` whose ``features`` stack average-pools where it max-pooled (Gatys
    et al. 2016; Nakano's VGG-19). The shared model is left as it is."""
    net = copy.deepcopy(model.net)
    for i, m in enumerate(net.features):
        if isinstance(m, nn.MaxPool2d):
            net.features[i] = nn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode)
    mean, std = model.mean.flatten().tolist(), model.std.flatten().tolist()
    return Classifier(net, model.info, mean, std, layers=model.layers, device=model.device,
                      channels_last=model.channels_last)
