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

from explorer import construct, data, zoo
from explorer import distributed as D
from explorer.devices import best_device
from explorer.evaluation import sharded_robust_counts
from explorer.files import atomic_write_json, atomic_write_text
from explorer.train import TrainConfig, code_version, hardware

__all__ = ["EVALUATED_DATASETS", "BUNDLED", "CardError", "base_dataset", "test_set", "model_test_set",
           "evaluation_eps", "evaluate_model", "evaluation_command", "write_evaluation", "register_trained"]

EVALUATED_DATASETS = ("fashion-mnist", "cifar10", "folder:ROOT", "constructed:PATH")
CSV_FIELDS = ["norm", "eps", "accuracy", "correct", "n"]
BUNDLED = "(bundled subset)"


class CardError(ValueError):
    """A model that cannot be evaluated here (one-line message)."""


def base_dataset(dataset: str) -> str:
    """The dataset whose real test set measures a model trained on ``dataset``: itself, or for
    ``constructed:PATH`` the dataset it was built from (its manifest's recipe)."""
    if not dataset.startswith("constructed:"):
        return dataset
    path = dataset.split(":", 1)[1]
    try:
        m = construct.manifest(path)
    except (data.DataError, OSError) as e:
        raise CardError(f"{dataset}: no constructed dataset there to read its source from ({e})") from e
    return str(m["recipe"]["dataset"])


def _constructed_class_names(dataset: str) -> Optional[tuple[str, ...]]:
    if not dataset.startswith("constructed:"):
        return None
    return tuple(construct.manifest(dataset.split(":", 1)[1])["class_names"])


def test_set(dataset: str, class_names: Optional[Sequence[str]] = None, *, allow_subset: bool = False,
             input_size: Optional[Sequence[int]] = None) -> data.TensorDataset:
    """The test set a card's accuracies are measured on, through ``data.load_dataset``.

    ``fashion-mnist``, ``cifar10``, ``folder:ROOT`` (ROOT/test/<class>/*) and their ``-bundled``
    sets; ``constructed:PATH``: the real test set of the dataset it was built from, its labels in
    the constructed set's order. Labels follow ``class_names`` (the model's) when every class of the
    test set is one of them.

    Args:
        dataset: the model's training dataset.
        class_names: the model's labels, in order.
        allow_subset: ``fashion-mnist`` / ``cifar10`` fall back to the small bundled test subset when
            the full set is not here; a card's numbers would then be on another test set, so that is
            refused (CardError) unless allowed. The set's ``name`` ends in "(bundled subset)" then.
        input_size: the model's (C, H, W); a test set of other images is refused, never resized.
    """
    base = base_dataset(dataset)
    names = class_names if class_names is not None else _constructed_class_names(dataset)
    try:
        ds = data.load_dataset(base, "test")
    except (data.DataError, ValueError) as e:
        raise CardError(f"no test set for {dataset!r} here: {e}") from e
    if ds.name.endswith(BUNDLED) and not base.endswith("-bundled") and not allow_subset:
        raise CardError(f"only the bundled {len(ds)}-image subset of {base}'s test set is here, not the full one: "
                        f"get the full set ({'point $CIFAR10_ROOT at CIFAR-10' if base == 'cifar10' else 'apt-get install -y dataset-fashion-mnist'}) "
                        "or pass --bundled-subset to measure on the subset (the card then names it and its n)")
    ds = construct.in_label_order(ds, tuple(names) if names is not None else None)
    have = tuple(int(v) for v in ds.images.shape[1:])
    if input_size is not None and have != tuple(int(v) for v in input_size):
        raise CardError(f"{ds.name} has {construct.dims_text(have)} images; the model takes "
                        f"{construct.dims_text(input_size)}")
    return ds


def evaluation_eps(dataset: str) -> dict[str, list[float]]:
    """The radii a card reports per norm: the dataset's facts (a constructed set: its source's; an
    image folder's facts carry CIFAR-10's radii, the L2 ones scaled by sqrt(C*H*W / 3072))."""
    facts = data.dataset_facts(base_dataset(dataset))
    return {n: list(facts.evaluation_eps(n)) for n in ("linf", "l2")}


def _card_class_names(spec) -> Optional[tuple[str, ...]]:
    """The class names a trained model's card records (its training set's, in label order)."""
    if not spec.card:
        return None
    try:
        names = json.loads((zoo.checkpoints_dir() / spec.card).read_text()).get("class_names")
    except (OSError, ValueError):
        return None
    return tuple(names) if names else None


def evaluate_model(name: str, norms: Sequence[str], eps_by_norm: dict, steps: int, restarts: int,
                   limit: Optional[int], batch_size: int, device, seed: int,
                   progress: Optional[Callable[[int], None]] = None, *, allow_subset: bool = False,
                   test: Optional[data.TensorDataset] = None) -> dict:
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
        allow_subset: measure on the bundled test subset when the full test set is not here
            (``test_set``); the record's ``test_set`` and ``n`` say so.
        test: the test set (default ``test_set`` of the model's dataset).

    Returns:
        The evaluation record: model, dataset, test set, n, attack, one row per (norm, eps),
        seconds, device, code version and the command.
    """
    device = D.setup(device if device is not None else best_device())
    model = zoo.load(name, device=device)
    ds = test if test is not None else model_test_set(name, allow_subset=allow_subset)
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
        "full_test_set": not ds.name.endswith(BUNDLED) and (limit is None or limit >= len(ds)),
        "attack": f"PGD, {steps} steps, step 2.5*eps/{steps}, random start, {restarts} restart(s), keep-best",
        "results": rows, "seconds": round(time.time() - t0, 1), "device": hardware(model.device, D.world_size()),
        "code_version": code_version(), "command": "python -m explorer evaluate " + name,
    }


def model_test_set(name: str, allow_subset: bool = False) -> data.TensorDataset:
    """The test set of the zoo model ``name`` (``test_set`` of its dataset, in its label order,
    at its input size)."""
    spec = zoo.get_spec(name)
    names = _card_class_names(spec) or zoo.class_names_for(spec.dataset, spec.num_classes)
    if all(n == str(i) for i, n in enumerate(names)):
        names = None  # label numbers only: the test set's own order
    return test_set(spec.dataset, names, allow_subset=allow_subset, input_size=spec.input_size)


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


def write_autoattack(spec, record: dict, root: Path) -> None:
    """Keep an AutoAttack record in ``root/NAME.autoattack.json`` and the card's ``autoattack`` list
    (one entry per norm and eps: a new one replaces the old)."""
    root = Path(root)
    path = root / f"{spec.name}.autoattack.json"
    records = json.loads(path.read_text()) if path.exists() else []
    records = [r for r in records if (r["norm"], r["eps"]) != (record["norm"], record["eps"])] + [record]
    atomic_write_json(path, records)
    if spec.card and (root / spec.card).exists():
        card = json.loads((root / spec.card).read_text())
        card["autoattack"] = records
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
        licence="MIT (trained here on Fashion-MNIST, MIT)" if cfg.dataset.startswith("fashion-mnist")
        else f"MIT (weights trained here on {cfg.dataset}; the data keeps its own licence)",
        description=description)
    zoo.write_manifest_entry(spec, out_dir)
