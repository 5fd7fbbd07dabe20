"""Commands on constructed datasets: construct and table (Table 1)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from tqdm import tqdm

from explorer import bounds as B
from explorer import construct as K
from explorer import distributed as D
from explorer.cli.base import DATASETS_HELP, _csv_text, command
from explorer.cli.base import command_line as command_line_of
from explorer.experiments import constructed_table as CT
from explorer.experiments._table_records import merge_tables
from explorer.files import atomic_write_json, atomic_write_text

# --- construct / table (explorer/construct.py, explorer/experiments/constructed_table.py) ----

_KINDS = list(K.KINDS)


def _add_construct(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=_KINDS,
                   help="D_R, D_NR (representation inversion), D_rand, D_det (targeted L2 PGD), or D itself")
    p.add_argument("--source", type=B.name, default=None,
                   help="zoo model trained on --dataset (default: the dataset's robust model for robust, its standard "
                        "model otherwise; cifar10: cifar10-robust-l2 / cifar10-standard; another folder has none)")
    p.add_argument("--dataset", default="fashion-mnist", type=B.dataset, help=DATASETS_HELP)
    p.add_argument("--subset", type=B.n_images, default=None, help="this many training images, drawn by --seed")
    p.add_argument("--steps", type=B.steps, default=None, help="inversion or PGD steps (default: per dataset)")
    p.add_argument("--step-size", type=B.step_size, nargs="+", default=None,
                   help="PGD: one; inversion: one per stage, the steps split evenly (default: per dataset)")
    p.add_argument("--eps", type=B.eps, default=None, help="L2 radius of rand/det (default: per dataset)")
    p.add_argument("--targets", choices=list(K.TARGETS), default=None,
                   help="D_rand's target rule: uniform over all classes, independent of y (default; the paper's) "
                        "or other (uniform over the other classes, never y)")
    p.add_argument("--start", choices=["other", "noise"], default="other",
                   help="D_R/D_NR start: another random training image, or uniform noise")
    p.add_argument("--layer", default="penultimate", help="the representation matched by D_R/D_NR")
    p.add_argument("--seed", type=B.seed, default=0)
    p.add_argument("--shard-size", type=B.count, default=500)
    p.add_argument("--batch-size", type=B.batch_size, default=250)
    p.add_argument("--bf16", action="store_true",
                   help="rand/det: the source model's PGD passes in bfloat16 (not the paper's fp32; 2.2-2.9x faster "
                        "on a CPU with AMX, see bench/README.md); recorded in the manifest")
    p.add_argument("--out", default=None, help="output folder (default artifacts/constructed/DATASET[-subsetN]/KIND)")
    p.add_argument("--export", default=None, help="also write the result as PNGs in EXPORT/train/<class>/")
    p.add_argument("--pack-sources", action="store_true",
                   help=f"also write each example's source and start image beside the shards ({K.SOURCES}), so "
                        "the dataset browses on a machine without its source set (the shipped samples)")
    p.add_argument("--device", default=None)


def _constructed_root(dataset: str, subset):
    """artifacts/constructed/DATASET[-subsetN]: where construct and table write by default."""
    stem = dataset.replace(":", "-").replace("/", "_").strip("_") + (f"-subset{subset}" if subset else "")
    return Path("artifacts") / "constructed" / stem


@command("construct", "build D_R, D_NR, D_rand or D_det in resumable shards (also under torchrun)", _add_construct)
def cmd_construct(args) -> int:
    defaults = K.defaults_for(args.dataset)  # an image folder's from its own facts (read from the decode cache)
    recipe = K.default_recipe(args.kind, args.dataset, defaults=defaults, source=args.source, subset=args.subset,
                              steps=args.steps, step_sizes=tuple(args.step_size) if args.step_size else None,
                              eps=args.eps, start=args.start, layer=args.layer, seed=args.seed,
                              shard_size=args.shard_size, batch_size=args.batch_size, targets=args.targets,
                              precision="bf16" if args.bf16 else None)
    out = args.out or _constructed_root(args.dataset, args.subset) / args.kind
    main_rank = D.is_main()
    bar = {}

    def progress(done: int, total: int, metrics: dict) -> None:
        if not main_rank:
            return
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=f"construct {recipe.name}", unit="img", dynamic_ncols=True)
        bar["bar"].update(done - bar["bar"].n)

    if main_rank:
        print(recipe.describe())
    command_line = command_line_of(args)
    report = K.build(recipe, out, device=args.device, progress=progress, command=command_line)
    if "bar" in bar:
        bar["bar"].close()
    if main_rank:
        m = report.manifest
        stats = m["statistics"]
        extra = ""
        if "final_distance" in stats:
            extra = (f"; relative representation distance median {stats['start_distance']['median']:.3f} -> "
                     f"{stats['final_distance']['median']:.3f}")
        run = m["runs"][-1]
        rate = f", {run['images_per_second']:.1f} images/s" if run["images_per_second"] else ""
        print(f"{m['name']}: {m['count']} images in {m['num_shards']} shards at {out} "
              f"({len(report.skipped)} already there; built {run['images_built']} in {run['seconds']:.0f} s"
              f"{rate}){extra}")
        if "build_seconds" in m and len(m["runs"]) > 1:
            interrupted = sum(1 for r in m["runs"] if r.get("interrupted"))
            print(f"{m['name']}: built in {m['build_seconds']:.0f} s over {len(m['runs'])} runs"
                  + (f" ({interrupted} interrupted)" if interrupted else ""))
        if "attack_success_rate" in stats:
            hit = round(stats["attack_success_rate"] * m["count"])
            print(f"{m['name']}: TARGETED ATTACK SUCCESS {100 * stats['attack_success_rate']:.1f}% "
                  f"({hit} of {m['count']} images reached their target)")
        for warning in m.get("warnings", []):
            print(f"WARNING: {warning}")
            print(f"warning: {warning}", file=sys.stderr)
        if args.export:
            n = K.export(out, args.export)
            print(f"exported {n} PNGs to {args.export}/train/<class>/")
        if args.pack_sources:
            print(f"wrote {K.pack_sources(out)}")
    return 0


def _table_progress():
    """The table's bar: whole phases done of all, the phase under way and the time left
    (``CT.PhaseClock``: each phase to come estimated from measured phases of its own type)."""
    bar = {}

    def progress(done: int, total: int, metrics: dict) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc="table", unit="phase", dynamic_ncols=True,
                              bar_format="{desc}: {n}/{total} phases |{bar}| {elapsed} elapsed, {postfix}")
        b = bar["bar"]
        b.update(done - b.n)
        b.set_postfix_str(f"{metrics.get('model', '')} {metrics.get('phase', '')}, "
                          f"left {metrics.get('eta', '?')}", refresh=True)
        if done >= total:
            b.close()

    return progress


def _add_table(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="fashion-mnist", type=B.dataset, help=DATASETS_HELP)
    p.add_argument("--standard", type=B.name, default=None, help="source of D_NR, D_rand, D_det (default: per dataset)")
    p.add_argument("--robust", type=B.name, default=None,
                   help="source of D_R, asked for only when robust is among --kinds; when given, its norm and eps are "
                        "the evaluation's (default: per dataset; without it L2 at the dataset's eps)")
    p.add_argument("--kinds", nargs="+", choices=_KINDS, default=_KINDS)
    p.add_argument("--subset", type=B.n_images, default=None, help="training images (default: all)")
    p.add_argument("--steps", type=B.steps, default=None, help="inversion steps")
    p.add_argument("--step-size", type=B.step_size, nargs="+", default=None, help="inversion step size(s)")
    p.add_argument("--start", choices=["other", "noise"], default="other")
    p.add_argument("--eps", type=B.eps, default=None, help="L2 radius of D_rand / D_det")
    p.add_argument("--targets", choices=list(K.TARGETS), default="uniform",
                   help="D_rand's target rule: uniform over all classes (default; the paper's) or other (the other "
                        "classes only, as in our first shipped tables)")
    p.add_argument("--attack-steps", type=B.steps, default=None)
    p.add_argument("--attack-step-size", type=B.step_size, default=None)
    p.add_argument("--arch", default="stage_cnn")
    p.add_argument("--epochs", type=B.epochs, default=15)
    p.add_argument("--batch-size", type=B.batch_size, default=128)
    p.add_argument("--lr", type=B.learning_rate, default=0.1)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--bf16", action="store_true",
                   help="D_rand/D_det's PGD and every model's training passes in bfloat16 (not the paper's fp32; "
                        "2.2-2.9x faster on a CPU with AMX, see bench/README.md); the evaluation stays fp32")
    p.add_argument("--test-limit", type=B.n_images, default=None,
                   help="first N real test images (default: all; an image-folder set round-robin over its classes)")
    p.add_argument("--eval-steps", type=B.steps, default=20)
    p.add_argument("--shard-size", type=B.count, default=500)
    p.add_argument("--seed", type=B.seed, default=0)
    p.add_argument("--out", default=None, help="default artifacts/constructed/DATASET[-subsetN]/table")
    p.add_argument("--update", default=None, metavar="TABLE_JSON",
                   help="also put the rows of --kinds into this table.json (e.g. a shipped one: "
                        "results/constructed/fashion-mnist/table.json), keeping its other rows; the evaluation "
                        "must match. Its .md and .csv beside it are written again")
    p.add_argument("--device", default=None)


@command("table", "Table 1: train on D, D_R, D_NR, D_rand, D_det; test on the real test set", _add_table)
def cmd_table(args) -> int:
    if args.update and not Path(args.update).is_file():
        raise SystemExit(f"--update: no table.json at {args.update}")
    d = K.defaults_for(args.dataset)
    out = args.out or str(_constructed_root(args.dataset, args.subset) / "table")
    # the robust model is asked for only when D_R is built; else the evaluation eps is the dataset's
    robust = args.robust or (d.robust if "robust" in args.kinds else None)
    config = CT.Config(dataset=args.dataset, standard=args.standard or d.standard, robust=robust,
                       kinds=tuple(args.kinds), subset=args.subset, inversion_steps=args.steps,
                       inversion_step_sizes=tuple(args.step_size) if args.step_size else None, start=args.start,
                       attack_eps=args.eps, attack_steps=args.attack_steps, attack_step_size=args.attack_step_size,
                       rand_targets=args.targets, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, bf16=args.bf16,
                       augment=not args.no_augment, test_limit=args.test_limit, eval_steps=args.eval_steps,
                       shard_size=args.shard_size, seed=args.seed, out_dir=out, device=args.device)
    main_rank = D.is_main()
    command_line = command_line_of(args)
    result = CT.run(config, progress=_table_progress() if main_rank else None, command=command_line)
    if not main_rank:
        return 0
    md = CT.markdown(result)
    rows = result.table()
    doc = {"command": command_line, "config": dataclasses.asdict(config), "eval": {"norm": result.eval_norm,
           "eps": result.eval_eps, "steps": result.eval_steps, "n_test": result.rows[0].n_test,
           "test_set": result.test_set},
           "rows": rows, "details": [r.record() for r in result.rows],
           "class_names": list(result.class_names), "seconds": round(result.seconds, 1),
           "device": result.device, "paper": CT.PAPER_NOTE, "markdown": md, "sha256": result.sha256}
    Path(out).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(out, "table.json"), doc)
    atomic_write_text(Path(out, "table.md"), md + "\n")
    atomic_write_text(Path(out, "table.csv"), _csv_text(rows))
    print(md)
    for r in result.rows:
        reused = f" ({' and '.join(r.reused)} reused: recorded times)" if r.reused else ""
        print(f"{r.name}: {r.recipe}; built in {r.construct_seconds:.0f} s, trained in {r.train_seconds:.0f} s, "
              f"evaluated in {r.eval_seconds:.0f} s{reused}")
        if r.warning:
            print(f"WARNING: {r.warning}")
    print(f"tested on {result.test_set}, {result.rows[0].n_test} images; robust at {result.eval_norm} eps "
          f"{result.eval_eps:g}")
    print(f"{CT.PAPER_NOTE}\n{result.seconds:.0f} s on {result.device}; wrote {out}/table.json, .csv, .md")
    if args.update:
        _update_table(Path(args.update), doc)
    return 0


def _update_table(path: Path, doc: dict) -> None:
    """Put this run's rows into the table.json at ``path`` (and its .md, .csv)."""
    try:
        old = json.loads(path.read_text())
        merged = merge_tables(old, doc)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"--update {path}: {e}") from None
    merged["markdown"] = CT.markdown_rows(merged["rows"], merged["eval"]["norm"], merged["eval"]["eps"])
    atomic_write_json(path, merged)
    atomic_write_text(path.with_suffix(".md"), merged["markdown"] + "\n")
    atomic_write_text(path.with_suffix(".csv"), _csv_text(merged["rows"]))
    print(f"updated {path}: rows {', '.join(r['dataset'] for r in doc['rows'])} from this run, "
          f"the others kept\n{merged['markdown']}")


