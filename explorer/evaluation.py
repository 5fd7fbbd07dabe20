"""Robust accuracy over a whole test set, sharded over the ranks of a ``torchrun`` job.

The one sharded evaluation of the heavy jobs: ``python -m explorer evaluate`` (the model
cards' accuracies, ``explorer.cards``) and the ``table`` command (Table 1 of Ilyas et al.
2019, ``experiments.constructed_table``) both count with it. Rank r takes the test images
r, r + world, r + 2 * world, ... of the first ``limit``; each rank counts the examples
that PGD does not flip (``attacks.robust_counts``: clean-correct and robust at each eps,
eps attacked in increasing order), and the counts are summed over the ranks, so every
rank returns the numbers of the whole set.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from explorer import attacks
from explorer import distributed as D

__all__ = ["sharded_robust_counts"]


def sharded_robust_counts(model, dataset, norm: str, eps_list: Sequence[float], steps: int, *, restarts: int = 1,
                          limit: Optional[int] = None, batch_size: int = 500, seed: int = 0,
                          progress: Optional[Callable[[int], None]] = None) -> tuple[dict[float, int], int]:
    """({eps: examples robust at eps}, examples evaluated), summed over every rank.

    Args:
        model: the Classifier under attack.
        dataset: a ``data.TensorDataset`` (the test set).
        norm: ``linf`` or ``l2``.
        eps_list: the radii; eps 0 counts the clean-correct examples.
        steps: PGD steps (step size 2.5 * eps / steps, random start, keep-the-best).
        restarts: random restarts per eps.
        limit: evaluate the first ``limit`` images only (None: all).
        batch_size: images per attack batch.
        seed: the random starts (batch b uses ``seed + b``).
        progress: called with the number of images of each finished batch (this rank's).
    """
    n = len(dataset) if limit is None else min(limit, len(dataset))
    idx = torch.arange(D.rank(), n, D.world_size())

    def batches():
        for i in range(0, len(idx), batch_size):
            j = idx[i:i + batch_size]
            yield dataset.float_images(j), dataset.labels[j]

    counts, total = attacks.robust_counts(model, batches(), norm, eps_list, steps, restarts=restarts,
                                          random_start=True, seed=seed, progress=progress)
    keys = sorted(counts)
    summed = D.all_sum(torch.tensor([counts[k] for k in keys] + [total], dtype=torch.float64)).tolist()
    return {k: int(c) for k, c in zip(keys, summed[:-1])}, int(summed[-1])
