"""The construction job: build a recipe's shards, resumably, on one process or under torchrun.

D_R / D_NR (Section 3.1 of Ilyas et al. 2019): for each training image, start from another
randomly drawn training image (or noise) and minimize ||g(z) - g(x)|| / ||g(x)|| over z
(``explorer.inversion.invert``); keep y. D_rand / D_det (Section 3.2): targeted L2 PGD on a
standard model toward t (``attacks.pgd``), relabelled with t. ``original``: the (sub)set itself.

Each shard's randomness (start images, targets) depends only on (seed, shard index), so a
killed run restarted with the same arguments skips the finished shards and yields the same
files byte for byte; under ``torchrun`` shard k is built by rank k mod world and the output
is the same.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch

from explorer import data, zoo
from explorer import distributed as D
from explorer.attacks import choose_targets, pgd
from explorer.devices import best_device
from explorer.files import atomic_write_json
from explorer.inversion import invert
from explorer.optimize import Cancel, Progress
from explorer.threat import L2Ball

from .recipe import (ConstructError, Recipe, check_source, dims_text, in_label_order, shard_generator, source_dataset,
                     stage_steps, subset_indices)
from .shards import FORMAT, read_manifest, read_shard, shard_path, write_manifest, write_shard


@dataclass
class Built:
    """A constructed batch: images [N, C, H, W] float32 in [0, 1], new labels [N], the relative
    representation distance at the start (D_R / D_NR, else 0) and the per-image statistic: the
    final relative distance (D_R / D_NR), the success flag (D_rand / D_det) or 0."""

    images: torch.Tensor
    labels: torch.Tensor
    start_distance: torch.Tensor
    metric: torch.Tensor


def construct_batch(recipe: Recipe, model, x: torch.Tensor, y: torch.Tensor, *, z0: torch.Tensor | None = None,
                    targets: torch.Tensor | None = None, progress: Optional[Progress] = None,
                    cancel: Cancel = None) -> Built:
    """Construct ``recipe.kind`` versions of the images ``x`` (labels ``y``) with ``model``.

    D_R / D_NR take the start points ``z0``; D_rand / D_det take the ``targets``.
    """
    n = x.shape[0]
    if recipe.kind == "original":
        return Built(x.cpu().float(), y.cpu(), torch.zeros(n), torch.zeros(n))
    device = model.device
    x = x.to(device)
    if recipe.kind in ("robust", "non-robust"):
        z, dist, history = invert(model, x, z0.to(device), recipe.layer,
                                  stage_steps(recipe.steps, len(recipe.step_sizes)), recipe.step_sizes,
                                  progress=progress, cancel=cancel)
        return Built(z.detach().float().cpu(), y.cpu(), history[0].float(), dist.float().cpu())
    res = pgd(model, x, y.to(device), L2Ball(recipe.eps), steps=recipe.steps, step_size=recipe.step_sizes[0],
              target=targets.to(device), random_start=False, keep_best=True, seed=None, progress=progress,
              cancel=cancel, bf16=recipe.precision == "bf16")
    return Built(res.x_adv.detach().float().cpu(), res.target.cpu(), torch.zeros(n), res.success.float().cpu())


@dataclass
class ShardInputs:
    """What shard k is built from: source indices, images, labels, and the random draws
    (start points and their source indices for D_R / D_NR, targets for D_rand / D_det)."""

    index: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    z0: Optional[torch.Tensor] = None
    start_index: Optional[torch.Tensor] = None
    targets: Optional[torch.Tensor] = None


def shard_inputs(recipe: Recipe, source: data.TensorDataset, positions: torch.Tensor, shard: int,
                 num_classes: int) -> ShardInputs:
    """The inputs of shard ``shard``. ``positions`` are the source indices of the whole
    (sub)set; the shard takes its slice. Random draws come from ``shard_generator(seed, shard)``;
    D_rand's targets follow ``recipe.targets`` (``attacks.choose_targets``: ``other`` draws exactly
    what this code drew before the rule was a choice, so an old D_rand resumes byte for byte)."""
    lo = shard * recipe.shard_size
    idx = positions[lo:lo + recipe.shard_size]
    inp = ShardInputs(idx, source.float_images(idx), source.labels[idx].clone())
    g = shard_generator(recipe.seed, shard)
    if recipe.kind in ("robust", "non-robust"):
        if recipe.start == "noise":
            inp.z0 = torch.rand(inp.x.shape, generator=g)
        else:
            m = len(positions)
            if m < 2:
                raise ConstructError("starting from another image needs at least two images")
            own = torch.arange(lo, lo + len(idx))
            other = (own + torch.randint(1, m, (len(idx),), generator=g)) % m  # never the image itself
            inp.start_index = positions[other]
            inp.z0 = source.float_images(inp.start_index)
    elif recipe.kind == "det":
        inp.targets = (inp.y + 1) % num_classes
    elif recipe.kind == "rand":  # recipe.targets: "uniform" over all C (the paper's) or "other" (never y)
        inp.targets = choose_targets(inp.y, num_classes, recipe.targets, g)
    return inp


@dataclass
class BuildReport:
    """What one invocation of ``build`` did: shards built here (this rank), skipped as done,
    images built, seconds, and the final manifest (None on ranks other than 0)."""

    built: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    images: int = 0
    seconds: float = 0.0
    manifest: Optional[dict] = None


def build(recipe: Recipe, out: str | Path, *, device: torch.device | str | None = None,
          progress: Optional[Progress] = None, cancel: Cancel = None,
          stop_after_shards: Optional[int] = None, command: str = "") -> BuildReport:
    """Build (or finish) ``recipe`` into the folder ``out``; see the module docstring.

    Args:
        recipe: what to build.
        out: the output folder; a folder holding another recipe's manifest is refused.
        device: torch device (default the best one; under torchrun on CUDA, cuda:LOCAL_RANK).
        progress: ``progress(images done, images to build, {"shard": k})`` after each batch
            (this rank's images; skipped shards do not count).
        cancel: checked between optimization steps (raises ``Cancelled``).
        stop_after_shards: return after building that many shards here (tests; as a kill would).
        command: the command line to record in the manifest.
    """
    out = Path(out)
    world, rank = D.world_size(), D.rank()
    device = D.setup(device if device is not None else best_device())
    source = source_dataset(recipe.dataset)
    if recipe.source:  # before loading any weights: a model that does not fit the data is refused in one line
        check_source(recipe.source, recipe.dataset, source)
    model = zoo.load(recipe.source, device=device) if recipe.source else None
    size = tuple(model.info.input_size) if model is not None else None
    source = in_label_order(source, tuple(model.class_names) if model is not None else None)
    if model is not None and tuple(source.images.shape[1:]) != size:
        raise ConstructError(f"source {recipe.source} takes {dims_text(size)} images; {recipe.dataset} has "
                             f"{dims_text(source.images.shape[1:])} images: pass --source a model trained on it")
    num_classes = len(source.class_names)
    if model is not None and len(model.class_names) != num_classes:
        raise ConstructError(f"source {recipe.source} has {len(model.class_names)} classes; {recipe.dataset} has "
                             f"{num_classes}: pass --source a model trained on it")
    positions = subset_indices(len(source), recipe.subset, recipe.seed)
    count = len(positions)
    num_shards = math.ceil(count / recipe.shard_size)
    header = {
        "format": FORMAT, "name": recipe.name, "kind": recipe.kind,
        "recipe": json.loads(json.dumps(asdict(recipe))),  # as it reads back from JSON (tuples -> lists)
        "description": recipe.describe(),
        "source_model": None if model is None else {
            "name": recipe.source, "sha256": zoo.weights_sha256(recipe.source), "kind": model.info.kind},
        "dataset": {"name": recipe.dataset, "loaded": source.name, "size": len(source), "subset": recipe.subset},
        "class_names": list(source.class_names), "input_size": list(source.images.shape[1:]),
        "seed": recipe.seed, "count": count, "num_shards": num_shards, "shard_size": recipe.shard_size,
    }
    out.mkdir(parents=True, exist_ok=True)
    existing = read_manifest(out)
    if existing is not None and existing.get("recipe") != header["recipe"]:
        raise ConstructError(f"{out} holds another recipe ({existing.get('description', '?')}); "
                             "choose another --out or remove it")
    if existing is not None and existing["source_model"] and header["source_model"] and \
            existing["source_model"].get("sha256") != header["source_model"]["sha256"]:
        raise ConstructError(f"{out} was built from other weights of {recipe.source} (sha256 differs)")
    if rank == 0 and existing is None:
        write_manifest(out, {**header, "complete": False, "command": command})
    mine = [k for k in range(num_shards) if k % world == rank]
    todo = [k for k in mine if not shard_path(out, k).exists()]
    report = BuildReport(skipped=[k for k in mine if k not in todo])
    total_images = sum(min(recipe.shard_size, count - k * recipe.shard_size) for k in todo)
    done_images = 0
    clock = _RunClock(out, rank, world) if todo else None
    t0 = time.perf_counter()
    for k in todo:
        inp = shard_inputs(recipe, source, positions, k, num_classes)
        parts = []
        for i in range(0, len(inp.index), recipe.batch_size):
            sl = slice(i, i + recipe.batch_size)
            part = construct_batch(recipe, model, inp.x[sl], inp.y[sl],
                                   z0=None if inp.z0 is None else inp.z0[sl],
                                   targets=None if inp.targets is None else inp.targets[sl], cancel=cancel)
            parts.append(part)
            done_images += part.labels.shape[0]
            clock.note(time.perf_counter() - t0, report.images)
            if progress is not None:
                progress(done_images, total_images, {"shard": k})
        n = len(inp.index)
        tensors = {
            "images": torch.cat([p.images for p in parts]),
            "labels": torch.cat([p.labels for p in parts]).to(torch.int64),
            "source_index": inp.index.to(torch.int64), "source_label": inp.y.to(torch.int64),
            "start_index": inp.start_index.to(torch.int64) if inp.start_index is not None
            else torch.full((n,), -1, dtype=torch.int64),
            "start_distance": torch.cat([p.start_distance for p in parts]).float(),
            "metric": torch.cat([p.metric for p in parts]).float(),
        }
        write_shard(shard_path(out, k), tensors, {"shard": k, "recipe": asdict(recipe)})
        report.built.append(k)
        report.images += n
        clock.note(time.perf_counter() - t0, report.images)
        if stop_after_shards is not None and len(report.built) >= stop_after_shards and k != todo[-1]:
            report.seconds = time.perf_counter() - t0
            return report
    report.seconds = time.perf_counter() - t0
    if clock is not None:
        clock.done()  # this run's time goes into the manifest below; what is left belongs to killed runs
    if world > 1:
        totals = torch.tensor([report.seconds, float(report.images)], dtype=torch.float64)
        totals = D.all_sum(totals)
        D.barrier()
        seconds, images = float(totals[0]) / world, int(totals[1])  # mean rank time, all images
    else:
        seconds, images = report.seconds, report.images
    if rank == 0:
        report.manifest = finish_manifest(out, header, command, seconds, images)
    D.barrier()
    return report


RUN_NOTES = ".run-*.json"


class _RunClock:
    """What a run has built so far and how long it took, in ``out/.run-<run>-rank<r>.json``,
    written after every batch. A finished run removes its note (its time goes into the
    manifest's ``runs``); a killed run leaves it, and the next run that finishes the dataset
    records it as an interrupted run (``finish_manifest``), so no build time is lost."""

    def __init__(self, out: Path, rank: int, world: int):
        # one id for the run on every rank: rank 0's clock, summed with zeros from the others
        stamp = float(D.all_sum(torch.tensor([time.time() if rank == 0 else 0.0], dtype=torch.float64))[0])
        self.path = Path(out) / f".run-{int(stamp * 1000):x}-rank{rank}.json"
        self.record = {"run": f"{int(stamp * 1000):x}", "rank": rank, "world_size": world,
                       "started": _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc).isoformat(timespec="seconds")}

    def note(self, seconds: float, images: int) -> None:
        atomic_write_json(self.path, {**self.record, "seconds": round(seconds, 2), "images_built": images})

    def done(self) -> None:
        self.path.unlink(missing_ok=True)


def _interrupted_runs(out: Path) -> list[dict]:
    """The runs that were killed before they finished ``out`` (their notes, one entry per run:
    images of the shards they wrote, mean seconds over their ranks); the notes are removed."""
    notes: dict[str, list[dict]] = {}
    files = sorted(Path(out).glob(RUN_NOTES))
    for f in files:
        try:
            n = json.loads(f.read_text())
            notes.setdefault(str(n["run"]), []).append(n)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a note cut off by the kill itself: nothing to add
    runs = []
    for run in sorted(notes.values(), key=lambda ns: ns[0].get("started", "")):
        seconds = sum(float(n.get("seconds") or 0) for n in run) / max(int(run[0].get("world_size") or 1), 1)
        images = sum(int(n.get("images_built") or 0) for n in run)
        runs.append({"started": run[0].get("started"), "finished": None, "interrupted": True,
                     "images_built": images, "seconds": round(seconds, 1),
                     "images_per_second": round(images / seconds, 2) if seconds > 0 else None,
                     "world_size": int(run[0].get("world_size") or 1), "command": ""})
    for f in files:
        f.unlink(missing_ok=True)
    return runs


#: Below this targeted-attack success rate D_rand / D_det are not what the paper built.
SUCCESS_FLOOR = 0.9


def attack_warning(manifest: dict, options: tuple[str, str, str] = ("--source", "--steps", "--eps")) -> Optional[str]:
    """The warning for a D_rand / D_det whose targeted attack succeeded on fewer than 90% of the
    images (None otherwise): what that does to the dataset and what to change (``options``:
    the command's flags for the source model, the PGD steps and eps)."""
    rate = manifest.get("statistics", {}).get("attack_success_rate")
    if rate is None or rate >= SUCCESS_FLOOR:
        return None
    r = manifest.get("recipe", {})
    return (f"{manifest.get('name', '?')}'s targeted attack reached its target on only {100 * rate:.1f}% of the "
            f"images (below {100 * SUCCESS_FLOOR:.0f}%): the others keep their own class's features under a wrong "
            f"label, and a model trained on them can score below chance. Use a stronger source model "
            f"({options[0]}, now {r.get('source')}), more steps ({options[1]}, now {r.get('steps')}) or a larger "
            f"eps ({options[2]}, now {r.get('eps')})")


def finish_manifest(out: Path, header: dict, command: str, seconds: float, images_here: int) -> dict:
    """Read every shard back, sum the statistics and write the complete manifest: ``runs`` lists
    every run that built part of it (killed ones as ``interrupted``), ``build_seconds`` their sum,
    and ``warnings`` a targeted-attack success rate below 90% (``attack_warning``)."""
    labels, metric, start_distance, counts = [], [], [], []
    for k in range(header["num_shards"]):
        tensors, _ = read_shard(shard_path(out, k))
        labels.append(tensors["labels"])
        metric.append(tensors["metric"])
        start_distance.append(tensors["start_distance"])
        counts.append(int(tensors["labels"].shape[0]))
    labels, metric, start_distance = torch.cat(labels), torch.cat(metric), torch.cat(start_distance)
    previous = read_manifest(out) or {}
    history = list(previous.get("runs", [])) + _interrupted_runs(out)
    history.append({"finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "images_built": images_here, "seconds": round(seconds, 1),
                    "images_per_second": round(images_here / seconds, 2) if seconds > 0 else None,
                    "world_size": D.world_size(), "command": command})
    stats: dict = {"label_counts": torch.bincount(labels, minlength=len(header["class_names"])).tolist()}
    kind = header["kind"]
    if kind in ("rand", "det"):
        stats["attack_success_rate"] = round(float(metric.mean()), 6)
    elif kind in ("robust", "non-robust"):
        stats["final_distance"] = {"mean": round(float(metric.mean()), 6),
                                   "median": round(float(metric.median()), 6),
                                   "p90": round(float(metric.quantile(0.9)), 6)}
        stats["start_distance"] = {"mean": round(float(start_distance.mean()), 6),
                                   "median": round(float(start_distance.median()), 6)}
    manifest = {**header, "complete": True, "command": command or previous.get("command", ""),
                "shards": [{"file": shard_path(out, k).name, "count": c} for k, c in enumerate(counts)],
                "statistics": stats, "runs": history,
                "build_seconds": round(sum(float(r.get("seconds") or 0) for r in history), 1)}
    warning = attack_warning(manifest)
    manifest["warnings"] = [warning] if warning else []
    write_manifest(out, manifest)
    return manifest
