"""Datasets, their facts, bundled samples and safe image decoding (the package's face).

Images leave this package as float tensors in [0, 1], NCHW; labels as int64. Rooms:
``facts`` (the one table of dataset facts), ``base`` (TensorDataset, errors), ``images``
(safe decoding, model inputs, sample photos), ``domain`` (is an upload within a model's domain?),
``folders`` (class-folder trees, the decode cache, balanced subsets), ``datasets`` (datasets by name).
"""

from explorer.data.base import DataError, DataIndexError, ImageError, TensorDataset, class_blocked, reading_order
from explorer.data.datasets import (ASSETS, BUNDLED_CIFAR10, BUNDLED_FASHION_MNIST, DEBIAN_FASHION_MNIST,
                                    bundled_cifar10, bundled_fashion_mnist, cifar10, cifar10_root, dataset_facts,
                                    fashion_mnist, fashion_mnist_roots,
                                    fashion_mnist_sample, folder_root, load_cifar10, load_dataset,
                                    load_fashion_mnist)
from explorer.data.domain import DomainCheck, domain_check, fitting_datasets
from explorer.data.facts import (CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, DATASETS, FASHION_MNIST_CLASSES,
                                 FASHION_MNIST_MEAN, FASHION_MNIST_STD, IMAGENET_LIKE, DatasetFacts, EpsRange,
                                 display_name)
from explorer.data.folders import (ImageFolderDataset, balanced_subset, cache_dir, class_folder_names,
                                   export_image_folder, image_folder, load_image_folder)
from explorer.data.images import (IMAGE_FORMATS, MAX_PIXELS, MIN_SIDE, decode_image, decode_image_file,
                                  imagenet_classes, sample_photos, sample_textures, to_model_input)

__all__ = [
    "ASSETS", "BUNDLED_CIFAR10", "BUNDLED_FASHION_MNIST", "bundled_cifar10", "cifar10", "CIFAR10_CLASSES",
    "CIFAR10_MEAN", "CIFAR10_STD", "DATASETS", "DEBIAN_FASHION_MNIST", "DataError", "DataIndexError", "DatasetFacts",
    "DomainCheck", "EpsRange", "FASHION_MNIST_CLASSES", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "IMAGENET_LIKE",
    "IMAGE_FORMATS", "ImageError", "ImageFolderDataset", "MAX_PIXELS", "MIN_SIDE", "TensorDataset", "balanced_subset",
    "bundled_fashion_mnist", "cache_dir", "class_blocked", "reading_order", "cifar10_root", "class_folder_names",
    "dataset_facts", "decode_image",
    "decode_image_file", "display_name", "domain_check", "export_image_folder", "fashion_mnist", "fitting_datasets",
    "fashion_mnist_roots", "fashion_mnist_sample", "folder_root", "image_folder", "imagenet_classes", "load_cifar10",
    "load_dataset", "load_fashion_mnist", "load_image_folder", "sample_photos", "sample_textures", "to_model_input",
]
