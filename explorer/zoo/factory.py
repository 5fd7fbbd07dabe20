"""``load``: a record and its weights -> one shared frozen Classifier, kept in a bounded LRU cache.

The loaders come from the registry (``explorer.zoo.sources`` registers them when the
package is imported, as timm's model modules register theirs).

Every session of the dashboard shares the Classifier ``load`` hands out (it is frozen and
thread-safe). The cache holds at most ``LOAD_CACHE.max_entries`` models (settable), the
same bound as the page's ``st.cache_resource`` in ``ui/models.py``, so evicting a model
there lets its memory go here too.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from explorer import data
from explorer.classifier import Classifier, ClassifierInfo
from explorer.devices import best_device
from explorer.zoo.layers import default_layers
from explorer.zoo.registry import LOADERS, get_spec
from explorer.zoo.specs import ZooError, checkpoints_dir

MAX_LOADED = 16  # models kept loaded at once, by default


class LoadCache:
    """A thread-safe LRU map (name, device, checkpoints folder) -> Classifier.

    Attributes:
        max_entries: how many Classifiers are kept; setting it evicts the least recently
            used ones beyond it.
    """

    def __init__(self, max_entries: int = MAX_LOADED):
        self._items: OrderedDict[tuple, Classifier] = OrderedDict()
        self._lock = threading.Lock()
        self._max = 0
        self.max_entries = max_entries

    @property
    def max_entries(self) -> int:
        return self._max

    @max_entries.setter
    def max_entries(self, n: int) -> None:
        if int(n) < 1:
            raise ValueError(f"max_entries must be at least 1, got {n}")
        with self._lock:
            self._max = int(n)
            self._trim()

    def get(self, key: tuple) -> Classifier | None:
        with self._lock:
            clf = self._items.get(key)
            if clf is not None:
                self._items.move_to_end(key)
            return clf

    def put(self, key: tuple, clf: Classifier) -> Classifier:
        """Keep ``clf`` under ``key`` unless another thread got there first; returns the kept one."""
        with self._lock:
            kept = self._items.setdefault(key, clf)
            self._items.move_to_end(key)
            self._trim()
            return kept

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: tuple) -> bool:
        return key in self._items

    def _trim(self) -> None:
        while len(self._items) > self._max:
            self._items.popitem(last=False)


LOAD_CACHE = LoadCache(MAX_LOADED)


def _card_class_names(spec, root: Path) -> tuple[str, ...] | None:
    """The class names a training run wrote into the model card (a folder's own classes)."""
    if not spec.card:
        return None
    try:
        names = json.loads((Path(root) / spec.card).read_text()).get("class_names")
    except (OSError, ValueError):
        return None
    return tuple(str(n) for n in names) if isinstance(names, list) and len(names) == spec.num_classes else None


def class_names_for(dataset: str, num_classes: int) -> tuple[str, ...]:
    """A dataset's class names from the table in ``explorer.data``; ImageNet's 1000 names;
    else the label numbers."""
    facts = data.DATASETS.get(dataset.removesuffix("-bundled"))
    if facts is not None and facts.class_names:
        return facts.class_names
    if dataset == "imagenet" and num_classes == 1000:
        return data.imagenet_classes()
    return tuple(str(i) for i in range(num_classes))


def load(name: str, device: torch.device | str | None = None, root: Path | None = None,
         channels_last: bool | None = None) -> Classifier:
    """The frozen Classifier for ``name``, cached per (name, device, checkpoints folder)."""
    device = torch.device(device) if device is not None else best_device()
    root = Path(root or checkpoints_dir())
    key = (name, str(device), str(root))
    cached = LOAD_CACHE.get(key)
    if cached is not None:
        return cached
    spec = get_spec(name, root)
    if spec.source not in LOADERS:
        raise ZooError(f"{name}: unknown source {spec.source!r}")
    out = LOADERS[spec.source](spec, root)
    net, spec = out if isinstance(out, tuple) else (out, spec)
    info = ClassifierInfo(name=spec.name, dataset=spec.dataset,
                          class_names=(class_names_for(spec.dataset, spec.num_classes)
                                       if spec.dataset.removesuffix("-bundled") in data.DATASETS
                                       else _card_class_names(spec, root)
                                       or class_names_for(spec.dataset, spec.num_classes)),
                          input_size=tuple(spec.input_size), robust=spec.robust,
                          train_norm=spec.train_norm, train_eps=spec.train_eps,
                          extra={"source": spec.source, "arch": spec.arch, "mean": tuple(spec.mean),
                                 "std": tuple(spec.std)})
    layers = dict(spec.layers) or default_layers(spec.arch, net) or None
    if channels_last is None:
        channels_last = any(isinstance(m, nn.Conv2d) for m in net.modules())
    clf = Classifier(net, info, spec.mean, spec.std, layers=layers, device=device, channels_last=channels_last)
    return LOAD_CACHE.put(key, clf)
