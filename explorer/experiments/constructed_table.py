"""Table 1 of Ilyas et al. (2019): train on D, D_R, D_NR, D_rand, D_det; test on the real test set.

"Adversarial Examples Are Not Bugs, They Are Features", Sections 3.1-3.2 (Figure 2 and
Table 1). Each dataset is built by ``explorer.construct`` (sharded, resumable), a fresh
model of one architecture is trained on each with one recipe (``explorer.train``), and
each model is evaluated on the *real* test set: clean accuracy, and PGD robust accuracy
at the robust source model's eps and norm (``attacks.robust_counts``). A model trained on
D_R should be robust although it was trained the standard way; one trained on D_NR
accurate but not robust; ones trained on D_rand / D_det above chance although every
training label looks wrong to a person.

``out_dir=None`` builds everything in a temporary folder (the page's live version);
the CLI's ``table`` command keeps it, so a killed run continues where it stopped.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from explorer import construct as K
from explorer import data, zoo
from explorer import distributed as D
from explorer import evaluation as E
from explorer import train as T
from explorer.devices import best_device
from explorer.evaluation import sharded_robust_counts
from explorer.optimize import Cancel, Progress
from explorer.experiments._table_records import (STEPS, PhaseClock, _dataset_fingerprint, _evaluation_key,  # noqa: F401
                                                 _reuse, _same_source, _save_evaluation, _saved_evaluation, _train,
                                                 dataset_sha256, load_trained, test_set_sha256)

#: Ilyas et al. 2019 on CIFAR-10 (percent): D 95.3, D_rand 63.3, D_det 43.7 (Table 1, ResNet-50);
#: the released datasets D_R 84 / 48 (robust at L2 0.25) and D_NR 88 / 0 (Figure 2).
PAPER_CIFAR10 = {
    "original": {"clean": 95.3, "robust": None},
    "robust": {"clean": 84.0, "robust": 48.0},
    "non-robust": {"clean": 88.0, "robust": 0.0},
    "rand": {"clean": 63.3, "robust": None},
    "det": {"clean": 43.7, "robust": None},
}
PAPER_NOTE = ("Ilyas et al. 2019, CIFAR-10, ResNet-50: D 95.3%, D_rand 63.3%, D_det 43.7% (Table 1); the "
              "released D_R 84% clean / 48% robust and D_NR 88% / 0% at L2 eps 0.25 (Figure 2).")


@dataclass(frozen=True)
class Config:
    """One table.

    Attributes:
        dataset: the source set (see ``construct.Recipe.dataset``).
        standard, robust: zoo names: D_NR, D_rand, D_det come from ``standard``, D_R from ``robust``.
            ``robust`` is needed only when D_R is among the kinds; when given, the evaluation is at
            its training norm and eps, else at L2 and the dataset's own eps (``evaluation_threat``).
        kinds: which datasets (``construct.KINDS``).
        subset: training images drawn by ``seed`` (None: the whole training set).
        inversion_steps, inversion_step_sizes, start: the D_R / D_NR recipe.
        attack_eps, attack_steps, attack_step_size: the D_rand / D_det recipe (L2).
        rand_targets: D_rand's target rule (``construct.Recipe.targets``): ``uniform`` over all
            classes (the paper's) or ``other`` (the other classes only; our tables before it existed).
        arch, epochs, batch_size, lr, augment: the one training recipe for every dataset.
        bf16: D_rand / D_det's PGD (``construct.Recipe.precision``) and every model's training
            passes (``train.TrainConfig.bf16``) under bfloat16 autocast, not the paper's fp32; the
            evaluation stays fp32.
        test_limit: real test images evaluated (None: all).
        eval_steps: PGD steps of the robust evaluation (step 2.5 * eps / steps, random start);
            the eps and norm are the robust model's training ones.
        shard_size, batch_size_construct: the construction job's shards and batches.
        seed: construction and training seed.
        out_dir: where datasets, models and the table go; None: a temporary folder.
        device: torch device string; None for the best device.
    """

    dataset: str = "fashion-mnist"
    standard: Optional[str] = "fmnist-standard"
    robust: Optional[str] = "fmnist-robust-l2"
    kinds: tuple[str, ...] = K.KINDS
    subset: Optional[int] = 3000
    inversion_steps: Optional[int] = None
    inversion_step_sizes: Optional[tuple[float, ...]] = None
    start: str = "other"
    attack_eps: Optional[float] = None
    attack_steps: Optional[int] = None
    attack_step_size: Optional[float] = None
    rand_targets: str = "uniform"
    arch: str = "stage_cnn"
    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.1
    augment: bool = True
    bf16: bool = False
    test_limit: Optional[int] = None
    eval_steps: int = 20
    shard_size: int = 500
    batch_size_construct: int = 250
    seed: int = 0
    out_dir: Optional[str] = None
    device: Optional[str] = None

    def __post_init__(self):
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        bad = [k for k in kinds if k not in K.KINDS]
        if bad or not kinds or len(set(kinds)) != len(kinds):
            raise ValueError(f"kinds must be distinct names among {K.KINDS}, got {kinds!r}")
        # the paper's order (D, D_R, D_NR, D_rand, D_det) whatever order they were asked in: tables read alike
        object.__setattr__(self, "kinds", tuple(k for k in K.KINDS if k in kinds))
        if self.inversion_step_sizes is not None:
            sizes = self.inversion_step_sizes
            object.__setattr__(self, "inversion_step_sizes",
                               (float(sizes),) if isinstance(sizes, (int, float)) else tuple(float(s) for s in sizes))
        for name in ("epochs", "batch_size", "eval_steps", "shard_size", "batch_size_construct"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("subset", "test_limit"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 2):
                raise ValueError(f"{name} must be an integer >= 2 or None, got {v!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.rand_targets not in K.TARGETS:
            raise ValueError(f"rand_targets must be one of {K.TARGETS}, got {self.rand_targets!r}")

    def recipe(self, kind: str, defaults: Optional[K.Defaults] = None) -> K.Recipe:
        """The construction recipe of ``kind`` under this table (``defaults``: the dataset's,
        ``construct.defaults_for``, computed here when not given)."""
        common = dict(subset=self.subset, seed=self.seed, shard_size=self.shard_size,
                      batch_size=self.batch_size_construct, defaults=defaults)
        if kind in ("robust", "non-robust"):
            return K.default_recipe(kind, self.dataset, source=self.robust if kind == "robust" else self.standard,
                                    steps=self.inversion_steps, step_sizes=self.inversion_step_sizes,
                                    start=self.start, **common)
        if kind in ("rand", "det"):
            return K.default_recipe(kind, self.dataset, source=self.standard, eps=self.attack_eps,
                                    steps=self.attack_steps,
                                    step_sizes=(self.attack_step_size,) if self.attack_step_size else None,
                                    targets=self.rand_targets if kind == "rand" else None,
                                    precision="bf16" if self.bf16 else None, **common)
        return K.default_recipe(kind, self.dataset, **common)


#: The phases of one row, in order; a phase's duration depends on its step and, for
#: construction, on how the kind is built.
@dataclass(frozen=True)
class Row:
    """One line of the table: a model trained on one constructed dataset.

    Attributes:
        kind, name: ``robust`` / ``D_R`` ...
        clean, robust: accuracy on the real test set (fractions), robust under PGD at the eval eps.
        robust_half: robust accuracy at half the eval eps, the paper's ratio (its D_R source was
            trained at L2 0.5 and D_R tested at 0.25); None in tables saved before it existed.
        paper_clean, paper_robust: the paper's CIFAR-10 numbers (percent) or None.
        n_train: training images; construction: the manifest's statistics (success rate,
            final distance); recipe: the construction in words.
        construct_seconds, train_seconds: what building the dataset (every run in its
            manifest) and training the model (its card) took, also when this run reused them;
            warning: a D_rand / D_det whose targeted attack missed its target on more than 10% of
            the images says so and what to change (``construct.attack_warning``), else "";
            reused: which of "dataset", "model", "evaluation" this run found already made (an
            evaluation is reused from ``models/on-KIND.eval.json`` only when the weights' sha256,
            the test set's content, the threat model, PGD steps, seed, ranks and device type match).
        confusion: the clean confusion matrix on the real test set ([true][predicted] counts, the
            class order of ``Result.class_names``, a saved table's ``class_names``); None in tables
            saved before it existed.
    """

    kind: str
    name: str
    clean: float
    robust: float
    n_train: int
    n_test: int
    paper_clean: Optional[float]
    paper_robust: Optional[float]
    construction: dict
    recipe: str
    construct_seconds: float
    train_seconds: float
    eval_seconds: float
    robust_half: Optional[float] = None
    reused: tuple[str, ...] = ()
    warning: str = ""
    confusion: Optional[tuple[tuple[int, ...], ...]] = None

    @property
    def into_next(self) -> Optional[float]:
        """The share of real test images the model puts in class (y + 1) mod C, D_det's relabelling
        rule, from ``confusion``: high for a D_det model that learned each class's own features under
        the shifted label; None with no confusion matrix."""
        return into_next_share(self.confusion)

    def record(self) -> dict:
        """Every field and ``into_next``, as a saved table's ``details[]`` holds them."""
        return {**asdict(self), "into_next": self.into_next}


@dataclass(frozen=True)
class Result:
    """The table, sample images of every dataset, and what it was measured with.

    Attributes:
        rows: one per kind, in ``Config.kinds`` order (the paper's: D, D_R, D_NR, D_rand, D_det).
        originals: [k, C, H, W] float32: the first k source images (every dataset lists the
            same source images in the same order); constructed: [kinds, k, C, H, W], their
            versions in each dataset.
        old_labels: [k]; new_labels: [kinds, k].
        eval_norm, eval_eps: the robust evaluation's threat model.
        test_set: the real test set's name (``cifar10/test (bundled subset)`` says it is the subset).
        sha256: what the table rests on, so a rebuild can be checked against it: ``source_models``
            (zoo name -> weights sha256, ``zoo.weights_sha256``), ``datasets`` (kind -> ``dataset_sha256``
            of the constructed set), ``models`` (kind -> sha256 of the trained weights file) and
            ``test_set`` (``test_set_sha256`` of the whole real test set; the evaluation takes its
            first ``n_test`` images).
    """

    rows: tuple[Row, ...]
    class_names: tuple[str, ...]
    originals: np.ndarray
    constructed: np.ndarray
    old_labels: np.ndarray
    new_labels: np.ndarray
    eval_norm: str
    eval_eps: float
    eval_steps: int
    arch: str
    epochs: int
    seconds: float
    device: str
    out_dir: Optional[str]
    test_set: str = ""
    sha256: dict = field(default_factory=dict)

    def table(self) -> list[dict]:
        """Plain rows for printing and saving: dataset, ours, the paper's."""
        return [{"dataset": r.name, "kind": r.kind, "train images": r.n_train,
                 "clean %": round(100 * r.clean, 1), "robust %": round(100 * r.robust, 1),
                 "robust % (half eps)": None if r.robust_half is None else round(100 * r.robust_half, 1),
                 "paper clean %": r.paper_clean, "paper robust %": r.paper_robust,
                 "construction": _construction_text(r.construction),
                 "into (y+1) %": None if r.into_next is None else round(100 * r.into_next, 1)} for r in self.rows]


def into_next_share(confusion) -> Optional[float]:
    """The share of images a confusion matrix ([true][predicted]) puts in class (y + 1) mod C."""
    if not confusion:
        return None
    c = len(confusion)
    total = sum(sum(row) for row in confusion)
    return sum(confusion[i][(i + 1) % c] for i in range(c)) / total if total else None


def _construction_text(stats: dict) -> str:
    if "attack_success_rate" in stats:
        return f"targeted attack success {100 * stats['attack_success_rate']:.1f}%"
    if "final_distance" in stats:
        return (f"relative distance {stats['start_distance']['median']:.3f} -> "
                f"{stats['final_distance']['median']:.3f} (median)")
    return ""


def pattern(rows: list[dict], num_classes: int = 10, n_test: int | None = None) -> str:
    """The paper's pattern checked on plain rows (``Result.table()`` or a table.json's ``rows``), in
    their numbers: D_rand and D_det above chance on the real test set; D_R more robust than D and
    D_NR. With ``n_test``, "above" and "below" chance mean by more than 3 binomial standard errors
    (the tour's rule), and nearer than that is said to be within them. Robust accuracy is read at
    half the evaluation eps when the rows have it (the paper's ratio), else at the eps itself."""
    by = {r["kind"]: r for r in rows}
    chance = 100 / num_classes
    margin = 0.0 if n_test is None else 300 * math.sqrt(chance / 100 * (1 - chance / 100) / max(n_test, 1))
    column = "robust % (half eps)" if any(r.get("robust % (half eps)") is not None for r in rows) else "robust %"
    at = "at half eps" if column != "robust %" else "robust"
    parts = []
    for kind in ("rand", "det"):
        if kind not in by:
            continue
        acc = by[kind]["clean %"]
        if n_test is None:
            verdict = f"{'above' if acc > chance else 'not above'} chance ({chance:g}%)"
        elif abs(acc - chance) <= margin:
            verdict = f"within 3 standard errors of chance ({chance:g}% ± {margin:.1f} points on {n_test} test images)"
        else:
            verdict = f"{'above' if acc > chance else 'below'} chance ({chance:g}%)"
        parts.append(f"{K.NAMES[kind]} {acc:g}% clean, {verdict}")
    if "robust" in by:
        r = by["robust"][column]
        for kind in ("original", "non-robust"):
            if kind in by and by[kind][column] is not None and r is not None:
                o = by[kind][column]
                parts.append(f"D_R {r:g}% {at} against {K.NAMES[kind]}'s {o:g}%: "
                             f"{'more' if r > o else 'not more'} robust")
    return ("Here: " + "; ".join(parts) + ".") if parts else ""


def markdown(result: Result) -> str:
    """The table as Markdown, with the paper's CIFAR-10 column beside ours."""
    return markdown_rows(result.table(), result.eval_norm, result.eval_eps)


def markdown_rows(rows: list[dict], norm: str, eps: float) -> str:
    """Markdown of plain rows (``Result.table()`` or a table.json's ``rows``) evaluated at (norm, eps)."""
    lines = [f"| trained on | train images | clean (ours) | robust at {norm} eps {eps:g} (ours) | "
             f"robust at {norm} eps {eps / 2:g} (ours) | "
             "paper clean (CIFAR-10) | paper robust (CIFAR-10, L2 0.25) | construction |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        pc = "-" if r["paper clean %"] is None else f"{r['paper clean %']:g}%"
        pr = "-" if r["paper robust %"] is None else f"{r['paper robust %']:g}%"
        rh = "-" if r["robust % (half eps)"] is None else f"{r['robust % (half eps)']:.1f}%"
        lines.append(f"| {r['dataset']} | {r['train images']} | {r['clean %']:.1f}% | {r['robust %']:.1f}% | "
                     f"{rh} | {pc} | {pr} | {r['construction']} |")
    return "\n".join(lines)


def real_test_set(dataset: str, class_names=None, input_size=None) -> data.TensorDataset:
    """The real test set of the source dataset (``data.load_dataset(dataset, "test")``), its labels
    in the order of ``class_names`` (the constructed sets', i.e. the source model's); a test set
    whose images are not ``input_size`` is refused, never resized."""
    test = K.in_label_order(data.load_dataset(dataset, "test"), class_names)
    have = tuple(int(v) for v in test.images.shape[1:])
    if input_size is not None and have != tuple(int(v) for v in input_size):
        raise data.DataError(f"{test.name} has {K.dims_text(have)} images; the training set "
                             f"{K.dims_text(input_size)}")
    return test


def evaluation_threat(config: Config, facts: Optional[data.DatasetFacts] = None,
                      defaults: Optional[K.Defaults] = None) -> tuple[str, float]:
    """(norm, eps) of the robust evaluation: the robust model's training ones when ``config.robust``
    is given, else L2 at the dataset's own eps (``DatasetFacts.eps_range("l2").default``; for an
    image folder with no eps of its own, the construction defaults' L2 eps, CIFAR-10's scaled to
    its image size)."""
    if config.robust:
        spec = zoo.get_spec(config.robust)
        if not spec.robust or not spec.train_norm or not spec.train_eps:
            raise ValueError(f"{config.robust} is not a robust model: D_R and the evaluation's eps need one")
        return spec.train_norm, float(spec.train_eps)
    facts = facts if facts is not None else data.dataset_facts(config.dataset)
    if facts.eps_ranges:
        return "l2", float(facts.eps_range("l2").default)
    d = defaults if defaults is not None else K.defaults_for(config.dataset)
    return "l2", float(d.attack_eps)


def _check_sources(config: Config, train: data.TensorDataset) -> None:
    """Every source model the kinds need is named and fits the data (one line otherwise)."""
    if "robust" in config.kinds and not config.robust:
        raise ValueError(K.no_source_text(config.dataset, "--robust").replace(
            "a model trained on it", "a robust model trained on it"))
    if set(config.kinds) & {"non-robust", "rand", "det"} and not config.standard:
        raise ValueError(K.no_source_text(config.dataset, "--standard"))
    needed = [config.robust] if "robust" in config.kinds else []
    needed += [config.standard] if set(config.kinds) & {"non-robust", "rand", "det"} else []
    for source in dict.fromkeys(needed):
        try:
            K.check_source(source, config.dataset, train)
        except K.ConstructError as e:
            option = "--robust" if source == config.robust and "robust" in config.kinds else "--standard"
            raise ValueError(str(e).replace("pass --source", f"pass {option}")) from e


def evaluate(model, dataset, norm: str, eps: float, steps: int, limit: Optional[int], seed: int,
             batch_size: int = 500) -> tuple[float, float, float, int]:
    """(clean accuracy, robust accuracy at eps, at eps / 2, n) on the real test set; under
    torchrun each rank takes every world-th image and the counts are summed."""
    counts, total = sharded_robust_counts(model, dataset, norm, [0.0, eps / 2, eps], steps, limit=limit,
                                          batch_size=batch_size, seed=seed)
    return counts[0.0] / total, counts[float(eps)] / total, counts[float(eps / 2)] / total, total


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None,
        command: str = "") -> Result:
    """Build every dataset, train a fresh model on each, evaluate on the real test set.

    ``progress(phases done, phases, metrics)`` counts whole phases (construct, train, evaluate
    per kind); ``metrics`` holds the phase under way (``model``), its fraction done (``phase``)
    and the time left (``eta``, from ``PhaseClock``)."""
    t_start = time.perf_counter()
    device = torch.device(config.device) if config.device else best_device()
    train_set = K.source_dataset(config.dataset)  # the decode cache for an image folder
    defaults = K.defaults_for(config.dataset, train_set)
    _check_sources(config, train_set)
    facts = data.dataset_facts(config.dataset, train_set)
    norm, eps = evaluation_threat(config, facts, defaults)
    tmp = tempfile.TemporaryDirectory(prefix="constructed-") if config.out_dir is None else None
    root = Path(tmp.name if tmp else config.out_dir)
    clock = PhaseClock(config.kinds)

    def report(label: str) -> None:
        if progress is not None:
            progress(clock.done, clock.total, {"model": label, "phase": f"{100 * clock.fraction:.0f}%",
                                               "eta": clock.eta_text()})

    try:
        rows, samples, test = [], [], None
        hashes: dict = {"source_models": {}, "datasets": {}, "models": {}, "test_set": None}
        for kind in config.kinds:
            def during(step: str, kind=kind):
                def cb(done, total, metrics=None):
                    clock.advance(done / max(total, 1))
                    report(f"{K.NAMES[kind]}: {step}")
                return cb

            recipe = config.recipe(kind, defaults)
            ds_dir = root / kind
            report(f"{K.NAMES[kind]}: constructing")
            K.build(recipe, ds_dir, device=device, progress=during("constructing"), cancel=cancel,
                    command=command)
            m = K.manifest(ds_dir)
            construct_seconds = float(m.get("build_seconds",
                                            sum(float(r.get("seconds") or 0) for r in m.get("runs", []))))
            dataset_reused = bool(m.get("runs")) and m["runs"][-1].get("images_built") == 0
            clock.finish(reused=dataset_reused)
            tcfg = T.TrainConfig(name=f"on-{kind}", arch=config.arch, dataset=f"constructed:{ds_dir}",
                                 epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                                 augment=config.augment, seed=config.seed, out_dir=str(root / "models"),
                                 bf16=config.bf16)
            t0 = time.perf_counter()
            report(f"{K.NAMES[kind]}: training")
            train_progress = during("training")
            card, model_reused = _train(tcfg, config.out_dir is not None, device,
                                        lambda s, t, _m, cb=train_progress: cb(s, t),
                                        built_from=_dataset_fingerprint(m))
            train_seconds = float(card.get("training_seconds", time.perf_counter() - t0))
            clock.finish(reused=model_reused)
            report(f"{K.NAMES[kind]}: evaluating")
            t0 = time.perf_counter()
            weights = root / "models" / f"on-{kind}.safetensors"
            if test is None:
                test = real_test_set(config.dataset, tuple(m["class_names"]), tuple(m["input_size"]))
            kept = config.out_dir is not None  # the live version keeps nothing, so it hashes nothing
            key = _evaluation_key(weights, test, norm, eps, config, device) if kept else None
            cache = root / "models" / f"on-{kind}.eval.json"
            saved = _saved_evaluation(cache, key) if kept else None
            if saved is None:
                model = load_trained(card, weights, device)
                clean, robust, robust_half, n_test = evaluate(model, test, norm, eps, config.eval_steps,
                                                              config.test_limit, config.seed)
                confusion = E.sharded_confusion(model, test, limit=config.test_limit)
                eval_seconds = time.perf_counter() - t0
            else:
                clean, robust, robust_half, n_test = (saved["clean"], saved["robust"], saved["robust_half"],
                                                      saved["n_test"])
                eval_seconds = float(saved["seconds"])
                confusion = saved.get("confusion")
                if confusion is None:  # kept before the confusion matrix was: one clean pass adds it
                    confusion = E.sharded_confusion(load_trained(card, weights, device), test,
                                                    limit=config.test_limit)
            if kept and D.is_main() and (saved is None or saved.get("confusion") is None):
                _save_evaluation(cache, key, dict(clean=clean, robust=robust, robust_half=robust_half,
                                                  n_test=n_test, seconds=eval_seconds, confusion=confusion))
            clock.finish(reused=saved is not None)
            report(f"{K.NAMES[kind]}: evaluated")
            paper = PAPER_CIFAR10[kind]
            rows.append(Row(kind=kind, name=K.NAMES[kind], clean=clean, robust=robust, n_train=m["count"],
                            n_test=n_test, paper_clean=paper["clean"], paper_robust=paper["robust"],
                            construction=m.get("statistics", {}),
                            recipe=m["description"].split(": ", 1)[-1],  # without the leading "D_R: "
                            construct_seconds=construct_seconds, train_seconds=train_seconds,
                            eval_seconds=eval_seconds, robust_half=robust_half,
                            reused=tuple(what for what, yes in (("dataset", dataset_reused),
                                                                ("model", model_reused),
                                                                ("evaluation", saved is not None)) if yes),
                            warning=K.attack_warning(m, ("--standard", "--attack-steps", "--eps")) or "",
                            confusion=tuple(tuple(r) for r in confusion)))
            _, t = K.load_arrays(ds_dir)
            samples.append(t)
            if recipe.source:
                hashes["source_models"][recipe.source] = zoo.weights_sha256(recipe.source)
            hashes["datasets"][kind] = dataset_sha256(t)
            hashes["models"][kind] = zoo.sha256_file(weights)
        k = min(8, rows[0].n_train)
        class_names = tuple(K.manifest(root / config.kinds[0])["class_names"])
        source = K.in_label_order(train_set, class_names)
        first = samples[0]["source_index"][:k]  # every dataset lists the same source images in the same order
        originals = source.float_images(first).numpy()
        constructed = np.stack([t["images"][:k].numpy() for t in samples])
        new_labels = np.stack([t["labels"][:k].numpy() for t in samples])
        return Result(rows=tuple(rows), class_names=class_names, originals=originals, constructed=constructed,
                      old_labels=source.labels[first].numpy(), new_labels=new_labels, eval_norm=norm,
                      eval_eps=eps, eval_steps=config.eval_steps, arch=config.arch, epochs=config.epochs,
                      seconds=time.perf_counter() - t_start, device=str(device), out_dir=config.out_dir,
                      test_set=test.name, sha256={**hashes, "test_set": test_set_sha256(test)})
    finally:
        if tmp is not None:
            tmp.cleanup()
