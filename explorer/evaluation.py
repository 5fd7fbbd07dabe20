"""Robust accuracy over a whole test set, sharded over the ranks of a ``torchrun`` job.

The one sharded evaluation of the heavy jobs: ``python -m explorer evaluate`` (the model
cards' accuracies, ``explorer.cards``) and the ``table`` command (Table 1 of Ilyas et al.
2019, ``experiments.constructed_table``) both count with it. Rank r takes the test images
r, r + world, r + 2 * world, ... of the first ``limit`` (``TensorDataset.first``: a set stored
class by class is read round-robin over its classes); each rank counts the examples
that PGD does not flip (``attacks.robust_counts``: clean-correct and robust at each eps,
eps attacked in increasing order), and the counts are summed over the ranks, so every
rank returns the numbers of the whole set.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from explorer import attacks
from explorer import distributed as D
from explorer.files import atomic_write_json

__all__ = ["autoattack_counts", "sharded_confusion", "sharded_robust_counts"]


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
        limit: evaluate the first ``limit`` images only (None: all), in the dataset's reading
            order (``TensorDataset.first``: round-robin over the classes of an image-folder set).
        batch_size: images per attack batch.
        seed: the random starts (batch b uses ``seed + b``).
        progress: called with the number of images of each finished batch (this rank's).
    """
    idx = dataset.first(limit)[D.rank()::D.world_size()]

    def batches():
        for i in range(0, len(idx), batch_size):
            j = idx[i:i + batch_size]
            yield dataset.float_images(j), dataset.labels[j]

    counts, total = attacks.robust_counts(model, batches(), norm, eps_list, steps, restarts=restarts,
                                          random_start=True, seed=seed, progress=progress)
    keys = sorted(counts)
    summed = D.all_sum(torch.tensor([counts[k] for k in keys] + [total], dtype=torch.float64)).tolist()
    return {k: int(c) for k, c in zip(keys, summed[:-1])}, int(summed[-1])


def sharded_confusion(model, dataset, *, limit: Optional[int] = None, batch_size: int = 500) -> list[list[int]]:
    """The clean confusion matrix of the first ``limit`` images (``TensorDataset.first``), summed
    over every rank: entry [i][j] counts the images of class i the model calls j (the model's and
    the dataset's class order must agree)."""
    idx = dataset.first(limit)[D.rank()::D.world_size()]
    c = len(model.class_names)
    counts = torch.zeros(c * c, dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, len(idx), batch_size):
            j = idx[i:i + batch_size]
            pred = model(dataset.float_images(j).to(model.device)).argmax(1).cpu()
            counts += torch.bincount(dataset.labels[j].to(torch.int64) * c + pred, minlength=c * c).double()
    counts = D.all_sum(counts)
    return [[int(v) for v in row] for row in counts.view(c, c).tolist()]


def autoattack_counts(model, dataset, norm: str, eps: float, n: int, *, batch_size: int = 250, seed: int = 0,
                      pgd_steps: int = 20, progress: Optional[Callable[[int], None]] = None,
                      state: Optional[Path] = None, weights_sha256: Optional[str] = None) -> dict:
    """AutoAttack (Croce & Hein 2020; torchattacks' ``standard`` version: APGD-CE, APGD-T, FAB-T,
    Square) beside our PGD on the same first ``n`` test images (``TensorDataset.first``: an
    image-folder set is read round-robin over its classes): the check that a robust model's PGD
    numbers are not gradient masking (AutoAttack far below PGD would say they are).

    ``state``: a JSON file where each finished batch's count is kept (hours on a CPU): a killed
    run started again with the same model and settings skips every batch it finished (a batch is
    known by its images, so a shorter run reuses a longer one's first batches). The model is known
    by ``weights_sha256`` (its weights file's, as the zoo keys models) or, without one, by a hash
    of its state_dict.
    Batch b is attacked under ``torch.manual_seed(seed + b)``, so a resumed run counts what an
    unbroken one would.

    Returns a record: norm, eps, n, clean, pgd (PGD-``pgd_steps``, 2.5*eps/steps, random start,
    keep-best) and autoattack accuracies (fractions), the attack's name and library version, and
    the images per class."""
    try:
        import torchattacks
    except ImportError as e:
        raise ImportError("AutoAttack needs torchattacks: pip install torchattacks==3.3.0") from e
    n = min(int(n), len(dataset))
    first = dataset.first(n)
    key = _autoattack_key(model, norm, eps, batch_size, seed, weights_sha256)
    done = _read_state(state, key)
    pgd_counts, _ = sharded_robust_counts(model, dataset, norm, [0.0, eps], pgd_steps, limit=n,
                                          batch_size=batch_size, seed=seed)
    attack = torchattacks.AutoAttack(model, norm={"linf": "Linf", "l2": "L2"}[norm], eps=float(eps),
                                     version="standard", n_classes=len(model.class_names), seed=seed)
    robust = 0
    for b, i in enumerate(range(0, n, batch_size)):
        j = first[i:i + batch_size]
        batch = _batch_sha256(dataset, j, b)
        if batch not in done:
            torch.manual_seed(seed + b)
            x, y = dataset.float_images(j).to(model.device), dataset.labels[j].to(model.device)
            x_adv = attack(x, y)
            with torch.no_grad():
                done[batch] = int((model(x_adv).argmax(1) == y).sum())
            if state is not None:
                Path(state).parent.mkdir(parents=True, exist_ok=True)
                atomic_write_json(state, {"key": key, "done": done})
        robust += done[batch]
        if progress is not None:
            progress(len(j))
    return {"norm": norm, "eps": float(eps), "n": n, "clean": pgd_counts[0.0] / n, "pgd": pgd_counts[eps] / n,
            "pgd_attack": f"PGD-{pgd_steps}, step 2.5*eps/{pgd_steps}, random start, keep-best",
            "autoattack": robust / n, "attack": "AutoAttack (standard: APGD-CE, APGD-T, FAB-T, Square)",
            "library": f"torchattacks {torchattacks.__version__}", "seed": seed,
            "per_class": torch.bincount(dataset.labels[first], minlength=len(model.class_names)).tolist()}


def _autoattack_key(model, norm: str, eps: float, batch_size: int, seed: int,
                    weights_sha256: Optional[str] = None) -> dict:
    """What kept AutoAttack batch counts rest on besides their images: the weights and the settings."""
    if weights_sha256 is None:
        h = hashlib.sha256()
        for name, t in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        weights_sha256 = "state_dict:" + h.hexdigest()
    return {"weights": weights_sha256, "norm": norm, "eps": float(eps), "batch_size": int(batch_size),
            "seed": int(seed)}


def _batch_sha256(dataset, idx: torch.Tensor, b: int) -> str:
    """One batch's identity: its position b (its seed) and its images and labels. The first N are a
    prefix of the first M > N, so a run on 500 images reuses the batches a run on 1,000 finished."""
    h = hashlib.sha256(f"batch {b}\n".encode())
    h.update(dataset.images[idx].contiguous().numpy().tobytes())
    h.update(dataset.labels[idx].to(torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()


def _read_state(state: Optional[Path], key: dict) -> dict:
    """The batch counts a kept state holds for ``key`` ({} when none, or kept for other settings)."""
    if state is None or not Path(state).exists():
        return {}
    try:
        kept = json.loads(Path(state).read_text())
    except (OSError, ValueError):
        return {}
    return dict(kept.get("done", {})) if kept.get("key") == key else {}
