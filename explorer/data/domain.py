"""Is an image within a model's domain? Measured signals for uploads, with thresholds taken from
the bundled images.

Every photo uploaded to a Fashion-MNIST model becomes a 28x28 grey "Bag": the model answers, but it
was never shown anything like the picture. :func:`domain_check` says when an image is far from what
a dataset's models were trained on, and why, in a sentence per signal; :func:`fitting_datasets` names
the datasets whose models the image does fit. Each signal is a number measured on the image and a
threshold set between the bundled in-domain images and the sample photos (numbers measured with
``explorer.data`` on the bundled subsets: 1,000 Fashion-MNIST and 1,000 CIFAR-10 test images, the seven
scikit-image photos of :func:`~explorer.data.sample_photos` and its four textures):

``colour`` (Fashion-MNIST): the mean chroma, ``max(R, G, B) - min(R, G, B)`` per pixel over 255,
    of the image shrunk to at most 8x the model's side. A Fashion-MNIST image is grey (0). The photos:
    astronaut 0.19, chelsea 0.24, coffee 0.42, rocket 0.15, motorcycle 0.15, hubble_deep_field 0.02,
    camera 0 (a grey photo). Threshold 0.05: a colour image whose colour the grey model cannot see.
``background`` (Fashion-MNIST): the fraction of the model input's 2-pixel outer ring darker than
    0.1, after :func:`~explorer.data.to_model_input` (which inverts a bright-bordered photo, as
    Fashion-MNIST is white on black). Every Fashion-MNIST image is a centred garment on black: at
    least 0.47 of its ring is dark (1st percentile 0.64, median 0.85), the same saved as JPEG of
    quality 75. The photos: astronaut 0.19, coffee 0.12, immunohistochemistry 0.05, the others 0
    (hubble_deep_field, a black sky, 0.93). Threshold 0.35.
``detail`` (every dataset): the fraction of the image's variance lost by shrinking it to the model's
    side, ``var(ref - up(down(ref))) / var(ref)`` on the centre crop the model keeps (``ref``: that
    crop, first shrunk to at most 8x the model's side). Measured only when the shrink is at least 4x.
    Fashion-MNIST images enlarged 10x lose at most 0.25 (nearest) or 0.12 (bicubic) when shrunk back,
    CIFAR-10 test images enlarged 10x (bicubic) at most 0.09. Shrunk to 28 px the photos lose 0.08
    (camera) to 0.30 (motorcycle), hubble_deep_field 0.77 (its stars vanish), the textures 0.85 to
    0.89. Threshold 0.5: what reaches the model is no longer the picture. It catches hubble_deep_field,
    grey enough and dark enough to pass the two signals above.
``enlarged`` (every dataset): the model's side over the image's short side. ImageNet training crops
    are enlarged about 2x at most (RandomResizedCrop keeps at least 8% of a ~500x375 photo); threshold
    4 (a 28x28 Fashion-MNIST image is enlarged 8x for a 224 px model, a CIFAR-10 image 7x).
``fashion_mnist`` (CIFAR-10 and ImageNet): grey (chroma below 0.01) and at least 0.45 of the ring
    dark: a garment on black. Every Fashion-MNIST test image has both; 5 of the 1,000 CIFAR-10 test
    images do too (grey ships, trucks and a plane on black), so a CIFAR-10 model warns on 0.5% of
    its own test images.

The shrink factor (e.g. 18x for a 512x512 photo into 28x28) is always said, as context; it decides
nothing alone: a Fashion-MNIST image saved at 280 px is still a Fashion-MNIST image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from explorer.data.facts import DATASETS, IMAGENET_LIKE
from explorer.data.images import _as_pil_rgb, to_model_input

CHROMA_COLOUR = 0.05  # Fashion-MNIST: colour the grey model cannot see
CHROMA_GREY = 0.01  # "grey" for the Fashion-MNIST look-alike test
DARK_LEVEL = 0.1  # a ring pixel darker than this counts as background
RING_DARK_MIN = 0.35  # Fashion-MNIST: at least this much of the ring is dark
RING_DARK_FMNIST = 0.45  # CIFAR-10 / ImageNet: this much dark ring plus grey looks like Fashion-MNIST
DETAIL_LOST_MAX = 0.5  # fraction of the variance the shrink may lose
MIN_SHRINK = 4.0  # below this the detail signal is not measured
MAX_ENLARGE = 4.0
REFERENCE_FACTOR = 8  # the reference for the detail signal is at most 8x the model's side
RING = 2  # pixels of the outer ring of the 28x28 grey input

DATASET_WORDS = {"fashion-mnist": "Fashion-MNIST (28x28 grey garments on black)",
                 "cifar10": "CIFAR-10 (32x32 colour photos)", "imagenet": "ImageNet (224x224 photos)",
                 "restricted-imagenet": "Restricted ImageNet (224x224 photos)"}


@dataclass(frozen=True)
class Signal:
    """One measured signal that an image is far from a dataset.

    Attributes:
        name: ``colour``, ``background``, ``detail``, ``enlarged`` or ``fashion_mnist``.
        value: what was measured on the image.
        threshold: where the signal fires (see the module docstring for the measurements).
        reason: one sentence for people.
    """

    name: str
    value: float
    threshold: float
    reason: str


@dataclass(frozen=True)
class DomainCheck:
    """Whether an image fits the models of ``dataset``: the signals that fired (none: it fits).

    Attributes:
        dataset: the dataset checked against.
        image_size: the image's (width, height).
        model_size: the model's (C, H, W).
        signals: the signals that fired.
    """

    dataset: str
    image_size: tuple[int, int]
    model_size: tuple[int, int, int]
    signals: tuple[Signal, ...] = ()

    @property
    def fits(self) -> bool:
        return not self.signals

    @property
    def scale_text(self) -> str:
        """How the image reaches the model, e.g. ``512x512 shrunk 18x to 28x28 grey``."""
        (w, h), (c, mh, mw) = self.image_size, self.model_size
        factor = min(w, h) / min(mh, mw)
        how = (f"shrunk {factor:.0f}x" if factor >= 1.5 else f"enlarged {1 / factor:.0f}x" if factor <= 1 / 1.5
               else "resized")
        return f"{w}x{h} {how} to {mw}x{mh}{' grey' if c == 1 else ''}"

    def text(self) -> str:
        """The reasons in one paragraph (empty when the image fits)."""
        if self.fits:
            return ""
        words = DATASET_WORDS.get(self.dataset, self.dataset)
        return (f"This image is far from what {words} models were trained on ({self.scale_text}). "
                + " ".join(s.reason for s in self.signals))


def _centre_crop(img: Image.Image) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def chroma(rgb: np.ndarray) -> float:
    """Mean of ``max(R, G, B) - min(R, G, B)`` over the pixels, in [0, 1] (0: grey)."""
    a = rgb.astype(np.float32)
    return float((a.max(axis=2) - a.min(axis=2)).mean() / 255.0)


def ring_dark(img: Image.Image) -> float:
    """Fraction of the 2-pixel outer ring of the 28x28 grey model input darker than ``DARK_LEVEL``
    (after ``to_model_input``'s automatic inversion of bright-bordered images)."""
    g = to_model_input(img, (1, 28, 28))[0, 0].numpy()
    b = RING
    ring = np.concatenate([g[:b].ravel(), g[-b:].ravel(), g[b:-b, :b].ravel(), g[b:-b, -b:].ravel()])
    return float((ring < DARK_LEVEL).mean())


def detail_lost(img: Image.Image, side: int) -> float:
    """Fraction of the centre crop's variance lost by shrinking it to ``side`` pixels and back
    (the crop itself first shrunk to at most ``REFERENCE_FACTOR * side``); 0 for a flat image."""
    crop = _centre_crop(img.convert("L"))
    s = crop.size[0]
    if s > REFERENCE_FACTOR * side:
        crop = crop.resize((REFERENCE_FACTOR * side,) * 2, Image.Resampling.BILINEAR)
        s = crop.size[0]
    ref = np.asarray(crop, dtype=np.float64)
    back = crop.resize((side, side), Image.Resampling.BILINEAR).resize((s, s), Image.Resampling.BILINEAR)
    var = float(((ref - ref.mean()) ** 2).mean())
    return float(((ref - np.asarray(back, dtype=np.float64)) ** 2).mean() / var) if var > 0 else 0.0


def _small(img: Image.Image, side: int) -> np.ndarray:
    """The image as RGB, shrunk so its short side is at most ``REFERENCE_FACTOR * side`` (for chroma)."""
    w, h = img.size
    k = REFERENCE_FACTOR * side / min(w, h)
    if k < 1:
        img = img.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.BILINEAR)
    return np.asarray(img)


def domain_check(img: Image.Image | np.ndarray, dataset: str,
                 input_size: tuple[int, int, int] | None = None) -> DomainCheck:
    """Measure how far ``img`` is from the images of ``dataset`` (see the module docstring).

    Args:
        img: a PIL image (any mode) or an array, as :func:`~explorer.data.to_model_input` takes.
        dataset: ``fashion-mnist``, ``cifar10`` or an ImageNet-like key of ``explorer.data.DATASETS``
            get every signal of theirs; another dataset (an image folder) only the size signals.
        input_size: the model's (C, H, W); default the dataset's (3x224x224 when unknown).

    Returns:
        The signals that fired; ``fits`` when none did.
    """
    pil = _as_pil_rgb(img)
    facts = DATASETS.get(dataset)
    c, h, w = (int(v) for v in (input_size or (facts.input_size if facts else (3, 224, 224))))
    side = min(h, w)
    iw, ih = pil.size
    factor = min(iw, ih) / side
    signals: list[Signal] = []
    if factor < 1 / MAX_ENLARGE:
        signals.append(Signal("enlarged", 1 / factor, MAX_ENLARGE,
                              f"It is enlarged {1 / factor:.0f}x, far more than any training image was: the "
                              "model sees a blur."))
    if dataset == "fashion-mnist":
        tint = chroma(_small(pil, side))
        if tint > CHROMA_COLOUR:
            signals.append(Signal("colour", tint, CHROMA_COLOUR,
                                  "It is a colour image, and this model sees only grey."))
        dark = ring_dark(pil)
        if dark < RING_DARK_MIN:
            signals.append(Signal("background", dark, RING_DARK_MIN,
                                  f"Only {dark:.0%} of its border is plain black (after inverting a light "
                                  "background), where every Fashion-MNIST image is one centred garment on black "
                                  "(at least 47% of the border)."))
    elif (dataset == "cifar10" or dataset in IMAGENET_LIKE) and chroma(_small(pil, side)) < CHROMA_GREY:
        dark = ring_dark(pil)
        if dark >= RING_DARK_FMNIST:
            signals.append(Signal("fashion_mnist", dark, RING_DARK_FMNIST,
                                  "It looks like a Fashion-MNIST image: grey, one object on a black background."))
    if factor >= MIN_SHRINK:
        lost = detail_lost(pil, side)
        if lost > DETAIL_LOST_MAX:
            signals.append(Signal("detail", lost, DETAIL_LOST_MAX,
                                  f"Shrinking it {factor:.0f}x loses {lost:.0%} of its detail: what reaches the "
                                  "model is no longer the picture."))
    return DomainCheck(dataset, (iw, ih), (c, h, w), tuple(signals))


FITTING_ORDER = ("imagenet", "cifar10", "fashion-mnist")


def fitting_datasets(img: Image.Image | np.ndarray, candidates=FITTING_ORDER) -> tuple[str, ...]:
    """The datasets among ``candidates`` (in their order) whose models ``img`` fits."""
    pil = _as_pil_rgb(img)
    return tuple(d for d in candidates if domain_check(pil, d).fits)
