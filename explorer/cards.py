"""Model cards: measure a zoo model's accuracy into its card, and register a trained model.

The accuracies on a card come only from ``python -m explorer evaluate`` (``evaluate_model``:
clean and PGD robust accuracy on the model's whole test set, sharded over ``torchrun``
ranks by ``explorer.evaluation``); ``write_evaluation`` keeps them beside the weights as
``NAME.eval.json`` / ``NAME.eval.csv`` and in the card's ``evaluation``. ``register_trained``
adds a model that ``explorer.train`` wrote to ``checkpoints/manifest.json``. Every file is
written atomically (``explorer.files``).
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from explorer import data, zoo
from explorer import distributed as D
from explorer.devices import best_device
from explorer.evaluation import sharded_robust_counts
from explorer.files import atomic_write_json, atomic_write_text
from explorer.train import TrainConfig, code_version, hardware

__all__ = ["EVALUATED_DATASETS", "CardError", "test_set", "evaluate_model", "evaluation_command",
           "write_evaluation", "register_trained"]

EVALUATED_DATASETS = ("fashion-mnist", "cifar10")
CSV_FIELDS = ["norm", "eps", "accuracy", "correct", "n"]


class CardError(ValueError):
    """A model that cannot be evaluated here (one-line message)."""


def test_set(dataset: str) -> data.TensorDataset:
    """The test set a card's accuracies are measured on."""
    if dataset == "fashion-mnist":
        return data.fashion_mnist("test")
    if dataset == "cifar10":
        return data.load_cifar10("test")
    raise CardError(f"no test set for dataset {dataset!r} here (evaluate supports fashion-mnist and cifar10)")


def evaluate_model(name: str, norms: Sequence[str], eps_by_norm: dict, steps: int, restarts: int,
                   limit: Optional[int], batch_size: int, device, seed: int,
                   progress: Optional[Callable[[int], None]] = None) -> dict:
    """Clean and PGD robust accuracy of one zoo model on its test set.

    Under torchrun each rank evaluates its share and the counts are summed over the ranks.

    Args:
        name: a zoo model.
        norms: ``linf`` and/or ``l2``.
        eps_by_norm: the radii per norm (clean accuracy is always measured, once).
        steps, restarts: PGD steps (step 2.5 * eps / steps, random start, keep-the-best) and restarts.
        limit: the first ``limit`` test images (None: all).
        batch_size: images per attack batch.
        device: torch device (None: the best one; under torchrun on CUDA, cuda:LOCAL_RANK).
        seed: the random starts.
        progress: called with the images of each finished batch.

    Returns:
        The evaluation record: model, dataset, test set, n, attack, one row per (norm, eps),
        seconds, device, code version and the command.
    """
    device = D.setup(device if device is not None else best_device())
    model = zoo.load(name, device=device)
    ds = test_set(model.info.dataset)
    t0 = time.time()
    rows = []
    for norm in norms:
        counts, total = sharded_robust_counts(model, ds, norm, [0.0] + list(eps_by_norm[norm]), steps,
                                              restarts=restarts, limit=limit, batch_size=batch_size, seed=seed,
                                              progress=progress)
        for eps, correct in counts.items():
            if eps == 0 and rows and rows[0]["eps"] == 0:
                continue  # clean accuracy once
            rows.append({"norm": "none" if eps == 0 else norm, "eps": eps, "accuracy": round(correct / total, 4),
                         "correct": correct, "n": total})
    return {
        "model": name, "dataset": model.info.dataset, "test_set": ds.name, "n": rows[0]["n"],
        "attack": f"PGD, {steps} steps, step 2.5*eps/{steps}, random start, {restarts} restart(s), keep-best",
        "results": rows, "seconds": round(time.time() - t0, 1), "device": hardware(model.device, D.world_size()),
        "code_version": code_version(), "command": "python -m explorer evaluate " + name,
    }


def evaluation_command(name: str, norms: Sequence[str], eps_by_norm: dict, steps: int, limit: Optional[int],
                       restarts: int) -> str:
    """The ``python -m explorer evaluate`` command that measures this evaluation again."""
    parts = ["python -m explorer evaluate", name, "--norms", *norms, "--steps", str(steps)]
    if limit:
        parts += ["--limit", str(limit)]
    if restarts > 1:
        parts += ["--restarts", str(restarts)]
    for norm in norms:
        parts += [f"--eps-{norm}", *[f"{e:g}" for e in eps_by_norm[norm]]]
    return " ".join(parts)


def write_evaluation(spec, evaluation: dict, root: Path) -> None:
    """Keep ``evaluation`` as ``root/NAME.eval.json`` and ``.csv`` and in the model's card (when it has one)."""
    root = Path(root)
    atomic_write_json(root / f"{spec.name}.eval.json", evaluation)
    table = io.StringIO(newline="")
    w = csv.DictWriter(table, fieldnames=CSV_FIELDS)
    w.writeheader()
    w.writerows(evaluation["results"])
    atomic_write_text(root / f"{spec.name}.eval.csv", table.getvalue())
    if spec.card and (root / spec.card).exists():
        card = json.loads((root / spec.card).read_text())
        card["evaluation"] = evaluation
        atomic_write_json(root / spec.card, card)


def register_trained(cfg: TrainConfig, card: dict, description: str = "") -> None:
    """Add the model ``explorer.train`` wrote for ``cfg`` to ``cfg.out_dir/manifest.json``."""
    out_dir = Path(cfg.out_dir)
    spec = zoo.ModelSpec(
        name=cfg.name, source="bundled", arch=cfg.arch, dataset=cfg.dataset,
        mean=tuple(card["mean"]), std=tuple(card["std"]), input_size=tuple(card["input_size"]),
        num_classes=len(card["class_names"]), robust=cfg.adv_norm is not None,
        train_norm=cfg.adv_norm, train_eps=cfg.eps if cfg.adv_norm else None,
        weights=f"{cfg.name}.safetensors", card=f"{cfg.name}.json",
        sha256=zoo.sha256_file(out_dir / f"{cfg.name}.safetensors"),
        paper="Madry et al. 2018 (adversarial training)" if cfg.adv_norm else "",
        licence="MIT (trained here on Fashion-MNIST, MIT)", description=description)
    zoo.write_manifest_entry(spec, out_dir)
