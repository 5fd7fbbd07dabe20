"""The dataset record every loader returns (uint8 or float images, labels, class names) and the errors."""

from __future__ import annotations

from dataclasses import dataclass

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

    def batches(self, batch_size: int, limit: int | None = None):
        """Yield (float images, labels) in order, at most ``limit`` examples."""
        n = len(self) if limit is None else min(limit, len(self))
        for i in range(0, n, batch_size):
            j = min(i + batch_size, n)
            yield self.float_images(slice(i, j)), self.labels[i:j]
