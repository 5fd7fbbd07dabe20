"""The dataset record every loader returns (uint8 or float images, labels, class names) and the errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class DataError(RuntimeError):
    """A dataset is missing or malformed; the message says how to get it."""


class ImageError(DataError):
    """An image file was refused or could not be decoded; the message is one line for a person."""


class DataIndexError(DataError, IndexError):
    """An example index is outside the dataset (or outside the bundled subset)."""


@dataclass(frozen=True)
class TensorDataset:
    """Images [N, C, H, W] uint8 (or float32 in [0, 1]) and labels [N] int64, with class names."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def float_images(self, idx=slice(None)) -> torch.Tensor:
        if self.images.is_floating_point():  # constructed datasets keep their float32 images in [0, 1]
            return self.images[idx].float()
        return self.images[idx].float().div_(255)

    def first(self, n: int | None = None) -> torch.Tensor:
        """Indices of the first ``n`` examples (None: all) in reading order (``reading_order``):
        the stored order, except that a set stored class by class (an image-folder tree) is read
        round-robin over its classes, so its first N are never one class."""
        order = reading_order(self.labels)
        return order if n is None else order[:max(0, min(int(n), len(order)))]

    def batches(self, batch_size: int, limit: int | None = None):
        """Yield (float images, labels) of the first ``limit`` examples (``first``), in batches."""
        idx = self.first(limit)
        for i in range(0, len(idx), batch_size):
            j = idx[i:i + batch_size]
            yield self.float_images(j), self.labels[j]


def class_blocked(labels: torch.Tensor) -> bool:
    """True when every class's examples are one contiguous run and there are at least two classes
    (how an image-folder tree is read: all of one class, then the next)."""
    labels = labels.flatten()
    if len(labels) < 2:
        return False
    runs = int((labels[1:] != labels[:-1]).sum()) + 1
    return runs > 1 and runs == len(torch.unique(labels))


def reading_order(labels: torch.Tensor) -> torch.Tensor:
    """The order in which "the first N examples" are taken: ``arange(N)``, except for a set stored
    class by class (``class_blocked``), which is read round-robin over the classes in their stored
    order (the 1st example of each class, then the 2nd of each, ...). A prefix of CIFAR-10's own
    files is close to class-balanced; a prefix of its image-folder export would be all airplanes,
    so every "first N test images" (evaluate --limit, autoattack --n, table --test-limit) reads
    this order."""
    labels = labels.flatten()
    n = len(labels)
    if not class_blocked(labels):
        return torch.arange(n)
    starts = torch.cat([torch.zeros(1, dtype=torch.int64), (labels[1:] != labels[:-1]).nonzero().flatten() + 1])
    sizes = torch.diff(torch.cat([starts, torch.tensor([n])]))
    rank = torch.arange(n) - torch.repeat_interleave(starts, sizes)  # position within its class
    block = torch.repeat_interleave(torch.arange(len(starts)), sizes)  # which class run
    return torch.from_numpy(np.lexsort((block.numpy(), rank.numpy()))).to(torch.int64)  # by rank, then block
