"""The model zoo with its cards, and a quick robust-accuracy evaluation.

``model_table`` joins ``zoo.list_models()`` with each model card's measured numbers
(the ``evaluation`` written by ``python -m explorer evaluate``). ``run`` measures clean
and PGD robust accuracy on the first N test images (Madry et al. 2018's evaluation:
PGD with 2.5 * eps / steps, random start), a small version of the evaluate command
that a page can start itself.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from explorer import attacks, data, zoo
from explorer.devices import best_device, device_lock
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.optimize import Cancelled

MAX_IMAGES = 10_000


# --- cards ------------------------------------------------------------------------

def read_card(name: str, root: Path | None = None) -> dict:
    """The model card of ``name`` (checkpoints/NAME.json or the record's card), {} when none.

    A separate NAME.eval.json from the evaluate command fills in ``evaluation`` when the
    card has none."""
    root = Path(root or zoo.checkpoints_dir())
    try:
        spec = zoo.get_spec(name, root)
    except zoo.ZooError:
        return {}
    card: dict = {}
    for file in dict.fromkeys([spec.card, f"{name}.json"]):
        if file and (root / file).is_file():
            try:
                card = json.loads((root / file).read_text())
            except (OSError, json.JSONDecodeError):
                card = {}
            break
    if "evaluation" not in card and (root / f"{name}.eval.json").is_file():
        try:
            card = {**card, "evaluation": json.loads((root / f"{name}.eval.json").read_text())}
        except (OSError, json.JSONDecodeError):
            pass
    return card if isinstance(card, dict) else {}


def evaluation_rows(name: str, root: Path | None = None) -> list[dict]:
    """Measured accuracies of ``name``: rows of model, norm (``none`` for clean), eps, accuracy, n."""
    ev = read_card(name, root).get("evaluation") or {}
    rows = []
    for r in ev.get("results", []):
        try:
            rows.append({"model": name, "norm": str(r["norm"]), "eps": float(r["eps"]),
                         "accuracy": float(r["accuracy"]), "n": int(r.get("n", ev.get("n", 0)))})
        except (KeyError, TypeError, ValueError):
            continue
    return rows


def _robust_text(rows: list[dict]) -> str:
    parts = [f"{r['norm']} {zoo.eps_text(r['norm'], r['eps'])}: {r['accuracy']:.1%}" for r in rows
             if r["norm"] != "none"]
    return "; ".join(parts)


def model_table(root: Path | None = None) -> list[dict]:
    """One row per zoo model: name, dataset, kind, source, available, why, and from its card
    clean accuracy, robust accuracies and the number of test images; ``fetch`` names the
    command for models that need a download."""
    rows = []
    for row in zoo.list_models(root):
        ev = evaluation_rows(row["name"], root)
        clean = next((r["accuracy"] for r in ev if r["norm"] == "none"), None)
        why = str(row.get("why", ""))
        rows.append({**row,
                     "clean accuracy": clean,
                     "robust accuracy": _robust_text(ev) or None,
                     "test images": ev[0]["n"] if ev else None,
                     "fetch": zoo.fetch_command(row["name"]) if not row["available"] and "fetch" in why else None})
    return rows


# --- quick evaluation ----------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """Clean and PGD accuracy of some models on the first ``n`` test images.

    Attributes:
        models: zoo names (one dataset each; they may differ).
        norm: ``linf`` or ``l2``.
        eps: radii to attack at (0, clean accuracy, is always added).
        n: test images.
        steps, restarts: PGD settings (step size 2.5 * eps / steps, random start).
        batch_size, seed, device: as usual (device None: ``best_device()``).
    """

    models: tuple[str, ...]
    norm: str = "linf"
    eps: tuple[float, ...] = (0.05, 0.1, 0.2)
    n: int = 100
    steps: int = 10
    restarts: int = 1
    batch_size: int = 100
    seed: int = 0
    device: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "models", (self.models,) if isinstance(self.models, str) else tuple(self.models))
        object.__setattr__(self, "eps", tuple(float(e) for e in self.eps))
        if not self.models:
            raise ValueError("name at least one model")
        if self.norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2', got {self.norm!r}")
        if any(not math.isfinite(e) or e < 0 for e in self.eps):
            raise ValueError(f"eps must be finite and >= 0, got {self.eps}")
        if self.norm == "linf" and any(e > 1 for e in self.eps):
            raise ValueError(f"Linf eps above 1 covers the whole image box, got {self.eps}")
        if not 1 <= self.n <= MAX_IMAGES:
            raise ValueError(f"n must be in 1..{MAX_IMAGES}, got {self.n}")
        if not 1 <= self.steps <= 1000 or not 1 <= self.restarts <= 20 or self.batch_size < 1:
            raise ValueError("steps must be in 1..1000, restarts in 1..20 and batch_size >= 1")


@dataclass(frozen=True)
class Result:
    """Accuracy per model at every eps: ``accuracy[i, j]`` for ``models[i]`` at ``eps[j]``."""

    models: tuple[str, ...]
    norm: str
    eps: np.ndarray
    accuracy: np.ndarray
    correct: np.ndarray
    n: int
    seconds: float

    def rows(self) -> list[dict]:
        """model, norm (``none`` at eps 0), eps, accuracy: the shape ``charts.accuracy_curve`` takes."""
        return [{"model": m, "norm": "none" if e == 0 else self.norm, "eps": float(e),
                 "accuracy": float(self.accuracy[i, j]), "n": self.n}
                for i, m in enumerate(self.models) for j, e in enumerate(self.eps)]


def evaluation_set(dataset: str) -> data.TensorDataset:
    """The test set of ``dataset`` available offline."""
    ds = C.offline_split(dataset, "test")
    if ds is not None:
        return ds
    raise ValueError(f"no test set for {dataset!r} on this machine: quick evaluation supports "
                     "fashion-mnist and cifar10 (ImageNet needs its validation set)")


def work(config: Config) -> float:
    """Image-steps of the run (``explorer.experiments``' cost contract): PGD at every eps, plus the clean pass."""
    return float(len(config.models) * config.n * (len(config.eps) * config.steps * config.restarts + 1))


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Clean and robust accuracy of every model on the first ``n`` test images."""
    device = config.device or best_device()
    eps = sorted({0.0, *config.eps})
    acc = np.zeros((len(config.models), len(eps)))
    correct = np.zeros((len(config.models), len(eps)), dtype=np.int64)
    t0 = time.perf_counter()
    n_used = config.n
    for i, name in enumerate(config.models):
        model = zoo.load(name, device=device)
        ds = evaluation_set(model.info.dataset)
        n_used = min(config.n, len(ds))
        done = [i * n_used]

        def tick(count: int) -> None:
            done[0] += count
            if progress is not None:
                progress(done[0], n_used * len(config.models), {"model": name})
            if cancel is not None and cancel():
                raise Cancelled(f"cancelled after {done[0]} images")

        with device_lock(model.device):
            counts, total = attacks.robust_counts(model, ds.batches(config.batch_size, n_used), config.norm, eps,
                                                  config.steps, restarts=config.restarts, random_start=True,
                                                  device=model.device, seed=config.seed, progress=tick)
        for j, e in enumerate(eps):
            correct[i, j] = counts[e]
            acc[i, j] = counts[e] / total
    return Result(models=config.models, norm=config.norm, eps=np.array(eps), accuracy=acc, correct=correct,
                  n=n_used, seconds=time.perf_counter() - t0)
