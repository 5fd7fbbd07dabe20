"""Table 1's bookkeeping: what each phase costs (``PhaseClock``: the time left from measured
phases of each kind), what a trained or evaluated model rests on (sha256 of weights, constructed
datasets and the test set) and when a saved model or evaluation can be reused (the key matches
exactly). ``constructed_table`` runs the table; this room keeps its records."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import torch

from explorer import construct as K
from explorer import data, zoo
from explorer import distributed as D
from explorer import train as T
from explorer.classifier import Classifier, ClassifierInfo
from explorer.files import atomic_write_json

STEPS = ("constructing", "training", "evaluating")
_HOW = {"original": "copy", "robust": "inversion", "non-robust": "inversion", "rand": "attack", "det": "attack"}

class PhaseClock:
    """Whole phases done and the time left, for the table's progress.

    A table is ``3 * len(kinds)`` phases (construct, train, evaluate per kind) of very different
    lengths, so the time left is not (phases left) x (time per phase so far): each phase still to
    come is estimated from the measured phases of its own type (training and evaluation: any
    kind's; construction: the same way of building, inversion / attack / copy), the phase under
    way from its own fraction done. Phases that found their work already made (``reused``) take
    no time and are no estimate for others. ``eta()`` is (seconds, complete): ``complete`` False
    when some phase to come has no measured phase of its type yet (the seconds are then a
    lower bound), seconds None before anything was measured."""

    def __init__(self, kinds, clock=time.perf_counter):
        self.types = [(step, _HOW[k] if step == "constructing" else "") for k in kinds for step in STEPS]
        self.clock = clock
        self.done = 0                 # whole phases finished
        self.fraction = 0.0           # of the phase under way
        self.started = clock()        # when the phase under way began
        self.measured: dict[tuple[str, str], list[float]] = {}

    @property
    def total(self) -> int:
        return len(self.types)

    def advance(self, fraction: float) -> None:
        """The phase under way is ``fraction`` done."""
        self.fraction = min(max(float(fraction), 0.0), 1.0)

    def finish(self, reused: bool = False) -> None:
        """The phase under way is done (``reused``: it found its work already made)."""
        if not reused:
            self.measured.setdefault(self.types[self.done], []).append(self.clock() - self.started)
        self.done += 1
        self.fraction = 0.0
        self.started = self.clock()

    def _estimate(self, kind: tuple[str, str]) -> Optional[float]:
        times = self.measured.get(kind)
        return sum(times) / len(times) if times else None

    def eta(self) -> tuple[Optional[float], bool]:
        if self.done >= self.total:
            return 0.0, True
        elapsed = self.clock() - self.started
        current = self.types[self.done]
        known = self._estimate(current)
        if self.fraction > 0.01 and elapsed > 0:
            now = elapsed * (1 - self.fraction) / self.fraction
        elif known is not None:
            now = max(known - elapsed, 0.0)
        else:
            now = None
        seconds, complete = (now or 0.0), now is not None
        projected = {current: elapsed / self.fraction} if self.fraction > 0.01 else {}
        for kind in self.types[self.done + 1:]:
            e = self._estimate(kind)
            e = projected.get(kind) if e is None else e
            if e is None:
                complete = False
            else:
                seconds += e
        if seconds == 0 and not complete:
            return None, False
        return seconds, complete

    def eta_text(self) -> str:
        """``12:05`` (``12:05+``: at least that), or ``?``."""
        seconds, complete = self.eta()
        if seconds is None:
            return "?"
        m, sec = divmod(int(round(seconds)), 60)
        h, m = divmod(m, 60)
        text = f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"
        return text + ("" if complete else "+")


def _dataset_fingerprint(m: dict) -> dict:
    """What identifies a built dataset's content: its recipe, the source weights and the
    statistics of what was built (not the run history, which grows on every resume)."""
    return {k: m.get(k) for k in ("recipe", "source_model", "count", "statistics")}


def _train(cfg, resume_ok: bool, device, progress, built_from: Optional[dict] = None):
    """Train (or reuse a finished model of the same recipe trained on the same dataset
    content, ``built_from``); returns (the model card, whether it was reused)."""
    card_path = Path(cfg.out_dir) / f"{cfg.name}.json"
    weights = Path(cfg.out_dir) / f"{cfg.name}.safetensors"
    source_path = Path(cfg.out_dir) / f"{cfg.name}.dataset.json"
    card = _reuse(cfg, card_path, weights, source_path, built_from) if resume_ok else None
    if card is not None:
        return card, True
    state = Path(cfg.out_dir) / f"{cfg.name}.state.pt"
    if not _same_source(source_path, built_from):  # trained on another build: start again
        for stale in (card_path, weights, state):
            stale.unlink(missing_ok=True)
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    source_path.write_text(json.dumps(built_from, indent=1))  # before training, so a killed run resumes
    resume = False
    if resume_ok and state.exists():
        saved = torch.load(state, map_location="cpu", weights_only=True)
        resume = saved.get("config") == asdict(cfg)
    return T.train(cfg, resume=resume, device=device, progress=progress), False


def _same_source(source_path: Path, built_from: Optional[dict]) -> bool:
    try:
        saved = json.loads(source_path.read_text())
    except (OSError, ValueError):
        return built_from is None
    if isinstance(saved, dict):  # a recipe saved before a field existed reads as what it was built under
        saved = {**saved, "recipe": K.recipe_record(saved.get("recipe"))}
    return saved == json.loads(json.dumps(built_from))


def _reuse(cfg, card_path: Path, weights: Path, source_path: Path, built_from: Optional[dict]):
    """The saved card when the model was trained by the same recipe on the same dataset, else None."""
    if card_path.exists() and weights.exists() and _same_source(source_path, built_from):
        card = json.loads(card_path.read_text())
        try:  # a recipe saved before TrainConfig grew a field reads back with that field's default
            same = T.TrainConfig(**card.get("recipe", {})) == cfg
        except TypeError:  # a field that no longer exists
            same = False
        if same:
            return card
    return None


def load_trained(card: dict, weights: Path, device) -> Classifier:
    """A frozen Classifier from a model that ``explorer.train`` wrote (no zoo record needed)."""
    recipe = card["recipe"]
    c, h, w = card["input_size"]
    net = zoo.build_architecture(recipe["arch"], len(card["class_names"]), c, h)
    net.load_state_dict(zoo.load_state_dict_file(weights), strict=True)
    info = ClassifierInfo(name=card["name"], dataset=recipe["dataset"], class_names=tuple(card["class_names"]),
                          input_size=(c, h, w))
    return Classifier(net, info, card["mean"], card["std"], device=device)


def test_set_sha256(test: data.TensorDataset) -> str:
    """sha256 of a test set's content: its images' bytes, then its labels' (int64) bytes."""
    h = hashlib.sha256()
    h.update(test.images.contiguous().numpy().tobytes())
    h.update(test.labels.contiguous().numpy().tobytes())
    return h.hexdigest()


def dataset_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 of a constructed dataset's content (``construct.load_arrays``' tensors, every shard in
    order): for each tensor by name, its name, dtype, shape and bytes. The shards' metadata (the recipe,
    also in the manifest) is left out, and so is the shard size: the same images, labels and statistics
    give the same hash."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _evaluation_key(weights: Path, test, norm: str, eps: float, config, device) -> dict:
    """What an evaluation's numbers depend on: the exact weights, the test set's content, the
    threat model and PGD settings, the seed, the number of ranks and the device type."""
    return {"weights_sha256": zoo.sha256_file(weights) if weights.exists() else None,
            "test": {"dataset": config.dataset, "n": len(test), "sha256": test_set_sha256(test)},
            "norm": norm, "eps": float(eps), "steps": config.eval_steps, "limit": config.test_limit,
            "seed": config.seed, "world": D.world_size(),
            "device": torch.device(device).type, **_selection(test, config.test_limit)}


def _selection(test, limit: Optional[int]) -> dict:
    """How the first ``limit`` images were chosen when that is not simply the first ones stored: an
    image-folder set is read round-robin over its classes (``TensorDataset.first``). Evaluations kept
    before that rule took the stored prefix (one or two classes) and no longer match."""
    if limit is None or limit >= len(test) or not data.class_blocked(test.labels):
        return {}
    return {"selection": "round-robin over the classes"}


def _saved_evaluation(path: Path, key: dict) -> Optional[dict]:
    """The numbers saved beside the model when they were measured under exactly ``key``."""
    try:
        saved = json.loads(path.read_text())
        if saved.get("key") == json.loads(json.dumps(key)):
            r = saved["result"]
            out = {k: float(r[k]) for k in ("clean", "robust", "robust_half", "seconds")}
            out["n_test"] = int(r["n_test"])
            if all(0 <= out[k] <= 1 for k in ("clean", "robust", "robust_half")) and out["n_test"] >= 1:
                out["confusion"] = _confusion_or_none(r.get("confusion"), out["n_test"])
                return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None  # none, another measurement's, or not a record this code wrote: measure again


def _confusion_or_none(value, n_test: int) -> Optional[list[list[int]]]:
    """A kept confusion matrix when it is square, of counts, and counts ``n_test`` images."""
    try:
        rows = [[int(v) for v in row] for row in value]
        if rows and all(len(r) == len(rows) and min(r) >= 0 for r in rows) and sum(map(sum, rows)) == n_test:
            return rows
    except (TypeError, ValueError):
        pass
    return None


def _save_evaluation(path: Path, key: dict, result: dict) -> None:
    atomic_write_json(path, {"key": key, "result": result}, indent=1)


# --- rebuilding some rows of a shipped table -----------------------------------------------------

#: What two table.json files must share for rows of one to stand in another.
_SAME_EVALUATION = ("norm", "eps", "steps", "n_test")


def merge_tables(old: dict, new: dict) -> dict:
    """``old`` (a table.json document) with the rows ``new`` rebuilt put in their place.

    Both must test on the same dataset under the same evaluation (norm, eps, PGD steps, number of
    test images), else ValueError says which differs. Rows keep the order of ``construct.KINDS``;
    each row's details, sha256 records and the command that built it (``row_commands``) come
    from the document that built it; ``updates`` lists every merge (kinds, command, seconds,
    device). The caller renders the Markdown again from the merged rows.
    """
    old_ds, new_ds = old.get("config", {}).get("dataset"), new.get("config", {}).get("dataset")
    if old_ds != new_ds:
        raise ValueError(f"the table to update is on {old_ds!r}, this run on {new_ds!r}")
    differ = [k for k in _SAME_EVALUATION if old.get("eval", {}).get(k) != new.get("eval", {}).get(k)]
    if differ:
        show = ", ".join(f"{k} {old.get('eval', {}).get(k)!r} vs {new.get('eval', {}).get(k)!r}" for k in differ)
        raise ValueError(f"the rows cannot stand in that table: its evaluation differs ({show})")
    new_kinds = [r["kind"] for r in new["rows"]]

    def by_kind(items: list[dict]) -> dict:
        return {item["kind"]: item for item in items}

    rows, details = by_kind(old["rows"]), by_kind(old.get("details", []))
    rows.update(by_kind(new["rows"]))
    details.update(by_kind(new.get("details", [])))
    order = [k for k in K.KINDS if k in rows]
    commands = dict(old.get("row_commands") or {k: old.get("command", "") for k in rows if k not in new_kinds})
    commands.update({k: new.get("command", "") for k in new_kinds})
    sha = json.loads(json.dumps(old.get("sha256") or {}))
    for part, value in (new.get("sha256") or {}).items():
        if isinstance(value, dict):
            sha.setdefault(part, {}).update(value)
        else:
            sha[part] = value
    update = {"kinds": new_kinds, "command": new.get("command", ""), "seconds": new.get("seconds"),
              "device": new.get("device"), "config": new.get("config")}
    merged = dict(old)
    merged.update(rows=[rows[k] for k in order], details=[details[k] for k in order if k in details],
                  row_commands={k: commands.get(k, "") for k in order}, sha256=sha,
                  updates=list(old.get("updates", [])) + [update])
    return merged
