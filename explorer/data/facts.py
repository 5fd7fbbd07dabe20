"""ONE table of dataset facts: class names, mean/std, image size and channels, ImageNet-like,
training augmentation, the eps slider ranges and the radii a model card's evaluation reports.
zoo, train, the experiments, the CLI and the widgets read it; nothing else holds these numbers."""

from __future__ import annotations

from dataclasses import dataclass

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class EpsRange:
    """Slider range for eps: ``(0, maximum]`` with a sensible ``default`` and ``step``."""

    maximum: float
    default: float
    step: float


@dataclass(frozen=True)
class DatasetFacts:
    """What the code needs to know about a dataset, in one place.

    Attributes:
        name: the dataset's id (``fashion-mnist``, ``cifar10``, ``imagenet``, ``folder:ROOT`` ...).
        class_names: one per label.
        mean, std: per-channel normalization of the models trained on it.
        input_size: (C, H, W) of its images.
        imagenet_like: photos at ImageNet resolution (style transfer, layer maps).
        augment_pad: random-translation padding used in training (pixels).
        eps_ranges: per norm (``linf``, ``l2``), the eps slider's range; the defaults are the
            training radii of the dataset's robust models, so the standard model flips while
            the robust one mostly holds.
        eval_eps: per norm, the radii a model card's evaluation reports.
        title: the name people write (``CIFAR-10``); ``display_name`` falls back to ``name``.
    """

    name: str
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]
    imagenet_like: bool = False
    augment_pad: int = 2
    eps_ranges: tuple[tuple[str, EpsRange], ...] = ()
    eval_eps: tuple[tuple[str, tuple[float, ...]], ...] = ()
    title: str = ""

    def eps_range(self, norm: str) -> EpsRange:
        return dict(self.eps_ranges or _IMAGENET_EPS)[norm]

    def evaluation_eps(self, norm: str) -> tuple[float, ...]:
        return dict(self.eval_eps or _IMAGENET_EVAL_EPS)[norm]


_IMAGENET_EPS = (("linf", EpsRange(16 / 255, 4 / 255, 0.5 / 255)), ("l2", EpsRange(10.0, 3.0, 0.25)))
_IMAGENET_EVAL_EPS = (("linf", (1 / 255, 4 / 255, 8 / 255)), ("l2", (0.5, 1.0, 3.0)))

FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


DATASETS: dict[str, DatasetFacts] = {
    "fashion-mnist": DatasetFacts(
        "fashion-mnist", FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD, (1, 28, 28), augment_pad=2,
        eps_ranges=(("linf", EpsRange(0.3, 0.1, 0.01)), ("l2", EpsRange(5.0, 1.5, 0.1))),
        eval_eps=(("linf", (0.05, 0.1, 0.2)), ("l2", (0.5, 1.0, 1.5, 2.0))), title="Fashion-MNIST"),
    "cifar10": DatasetFacts(
        "cifar10", CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, (3, 32, 32), augment_pad=4,
        eps_ranges=(("linf", EpsRange(32 / 255, 8 / 255, 1 / 255)), ("l2", EpsRange(2.0, 0.5, 0.05))),
        eval_eps=(("linf", (2 / 255, 4 / 255, 8 / 255)), ("l2", (0.25, 0.5, 1.0))), title="CIFAR-10"),
    "imagenet": DatasetFacts("imagenet", (), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), (3, 224, 224),
                             imagenet_like=True, augment_pad=0, eps_ranges=_IMAGENET_EPS,
                             eval_eps=_IMAGENET_EVAL_EPS, title="ImageNet"),
    "restricted-imagenet": DatasetFacts("restricted-imagenet", (), (0.4717, 0.4499, 0.3837),
                                        (0.2600, 0.2516, 0.2575), (3, 224, 224), imagenet_like=True, augment_pad=0,
                                        eps_ranges=_IMAGENET_EPS, eval_eps=_IMAGENET_EVAL_EPS,
                                        title="Restricted ImageNet"),
}
IMAGENET_LIKE = tuple(k for k, f in DATASETS.items() if f.imagenet_like)


def display_name(dataset: str) -> str:
    """The name people write for a dataset id (``cifar10`` -> ``CIFAR-10``); any other id as it is."""
    facts = DATASETS.get(dataset)
    return facts.title if facts is not None and facts.title else dataset
