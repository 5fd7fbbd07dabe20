"""Commands that compute a view: layer-robustness, style, rerun and the discussion's experiments."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import time
from pathlib import Path

from explorer import bounds as B
from explorer import data, views, zoo
from explorer.cli.base import CLIError, _csv_text, _tqdm_progress, command
from explorer.cli.base import command_line as command_line_of
from explorer.experiments import attack_lab
from explorer.experiments import layer_robustness as LR
from explorer.experiments import style_transfer as ST
from explorer.experiments._discussion import jsonable, results_path
from explorer.files import atomic_write_json, atomic_write_text

# --- layer robustness ----------------------------------------------------------------

def _add_layer_robustness(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", type=B.name, help="zoo model names; every named layer of each is measured")
    p.add_argument("--eps", type=B.eps, default=None,
                   help="radius of the ball (default: the first robust model's training eps in --norm, "
                        "else the dataset's usual one)")
    p.add_argument("--norm", choices=["linf", "l2"], default="linf")
    p.add_argument("--n-images", type=B.n_images, default=64, help="test images, drawn by --seed")
    p.add_argument("--steps", type=B.steps, default=20, help="steps of each layer's maximization")
    p.add_argument("--step-size", type=B.step_size, default=None, help="default 2.5*eps/steps")
    p.add_argument("--restarts", type=B.restarts, default=1, help="random starts per image and layer")
    p.add_argument("--layers", nargs="+", default=None, help="only these layers (default: all but logits)")
    p.add_argument("--include-logits", action="store_true", help="measure the logits layer too")
    p.add_argument("--pairs-per-image", type=B.count, default=4, help="random partners for the denominator")
    p.add_argument("--batch-size", type=B.batch_size, default=64)
    p.add_argument("--bootstrap", type=B.int_in(0, 1_000_000), default=1000, help="resamples for the interval (0: delta method)")
    p.add_argument("--ci-level", type=B.float_in(0.5, 0.999), default=0.95)
    p.add_argument("--image-folder", default=None, help="<folder>/<class>/<images> instead of the test set")
    p.add_argument("--seed", type=B.seed, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None,
                   help="writes OUT.json and OUT.csv (default artifacts/layer_robustness/<models>)")


@command("layer-robustness", "R per layer (the authors' reply to Nakano); writes a CSV/JSON table",
         _add_layer_robustness)
def cmd_layer_robustness(args) -> int:
    eps = args.eps
    if eps is None:
        specs = [zoo.get_spec(m) for m in args.models]
        robust = [s for s in specs if s.robust and s.train_norm == args.norm and s.train_eps]
        eps = robust[0].train_eps if robust else attack_lab.eps_range(specs[0].dataset, args.norm).default
    config = LR.Config(models=tuple(args.models), norm=args.norm, eps=eps, n_images=args.n_images,
                       steps=args.steps, step_size=args.step_size, restarts=args.restarts,
                       layers=tuple(args.layers) if args.layers else None, include_logits=args.include_logits,
                       pairs_per_image=args.pairs_per_image, batch_size=args.batch_size, ci_level=args.ci_level,
                       bootstrap=args.bootstrap, seed=args.seed, image_folder=args.image_folder,
                       device=args.device)
    t0 = time.perf_counter()
    result = LR.run(config, progress=_tqdm_progress("layer robustness"))
    seconds = time.perf_counter() - t0
    out = Path(args.out) if args.out else Path("artifacts") / "layer_robustness" / "+".join(args.models)
    if out.suffix in (".json", ".csv"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = result.rows()
    command_line = " ".join(["python -m explorer layer-robustness", *args.models, "--eps", f"{eps:g}",
                             "--norm", args.norm, "--n-images", str(args.n_images), "--steps", str(args.steps)])
    doc = {"command": command_line, "summary": LR.summary(result), "settings": result.description(),
           "models": [{"model": m.model, "kind": m.kind, "dataset": m.dataset, "layers": list(m.layers),
                       "images": m.images, "seconds": round(m.seconds, 2)} for m in result.models],
           "seconds": round(seconds, 2), "rows": rows}
    atomic_write_json(Path(f"{out}.json"), doc)
    atomic_write_text(Path(f"{out}.csv"), _csv_text(rows))
    width = max(len(r["model"]) for r in rows)
    for r in rows:
        print(f"{r['model']:<{width}}  {r['layer']:<12} R {r['R']:.4f}  [{r['ci_low']:.4f}, {r['ci_high']:.4f}]  "
              f"num {r['numerator']:.4g}  den {r['denominator']:.4g}")
    for note in result.notes:
        print(f"note: {note}")
    print(LR.summary(result))
    print(f"{seconds:.1f} s on {result.device}; wrote {out}.json and {out}.csv")
    return 0


# --- style transfer (explorer/experiments/style_transfer.py) --------------------------

def _add_style(p: argparse.ArgumentParser) -> None:
    p.add_argument("content", help="content image: a file, or a scikit-image sample name (chelsea, astronaut ...)")
    p.add_argument("style", help="style image: a file, or a sample name (brick, gravel, grass ...)")
    p.add_argument("--style-model", nargs="+", default=["efficientnet-lite0"],
                   help="style networks, one transfer each (random:<arch>, e.g. random:torchvision:resnet50, "
                        "has random weights: timing only)")
    p.add_argument("--content-model", default=None, help="default: the first standard style network")
    p.add_argument("--content-layer", default=None, help="default: the content network's (ResNet layer3)")
    p.add_argument("--style-layers", nargs="+", default=None, help="for every style network (default: its own)")
    p.add_argument("--single-layer", action="store_true", help="one transfer per (style network, style layer)")
    p.add_argument("--size", type=B.side, default=512, help="the output's longer side in pixels")
    p.add_argument("--style-size", type=B.side, default=None, help="the style image's (default --size)")
    p.add_argument("--iterations", type=B.steps, default=300)
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--lr", type=B.learning_rate, default=None, help="default 1 (L-BFGS), 0.02 (Adam)")
    p.add_argument("--start", choices=["content", "noise"], default="content")
    p.add_argument("--style-weight", type=B.weight, default=10.0)
    p.add_argument("--content-weight", type=B.weight, default=1.0)
    p.add_argument("--tv-weight", type=B.weight, default=0.0)
    p.add_argument("--raw-weights", action="store_true", help="raw loss terms (Nakano's 1e9-style weights)")
    p.add_argument("--max-pooling", action="store_true", help="keep VGG's max-pooling (default: average)")
    p.add_argument("--invert-grey", action=argparse.BooleanOptionalAction, default=None,
                   help="1-channel networks see 1 - luma (default: as their dataset, Fashion-MNIST inverted)")
    p.add_argument("--seed", type=B.seed, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="PNG: the stylized image, or the grid when there are several "
                                               "(default artifacts/style_transfer/CONTENT-STYLE.png)")
    p.add_argument("--figure", default=None, help="also write the captioned figure to this PNG")


def _style_input(text: str):
    if Path(text).is_file():
        return data.decode_image_file(text)
    samples = {**data.sample_photos(), **data.sample_textures()}
    if text in samples:
        return samples[text]
    raise CLIError(f"{text!r} is neither a file nor a sample image ({', '.join(sorted(samples))})")


@command("style", "neural style transfer with separate style and content networks; writes a PNG", _add_style)
def cmd_style(args) -> int:
    from explorer.charts import style as charts_style  # here, not at the top: the heavy jobs run without altair

    n = len(args.style_model)
    config = ST.Config.for_images(
        _style_input(args.content), _style_input(args.style), tuple(args.style_model), size=args.size,
        style_size=args.style_size, content_model=args.content_model, content_layer=args.content_layer,
        style_layers=(tuple(args.style_layers),) * n if args.style_layers else (), single_layer=args.single_layer,
        style_weight=args.style_weight, content_weight=args.content_weight, tv_weight=args.tv_weight,
        normalize=not args.raw_weights, optimizer=args.optimizer, learning_rate=args.lr or None,
        iterations=args.iterations, start=args.start, average_pooling=not args.max_pooling,
        invert_grey=args.invert_grey, seed=args.seed, device=args.device)
    result = ST.run(config, progress=_tqdm_progress("style transfer"))
    stem = f"{Path(args.content).stem}-{Path(args.style).stem}"
    out = Path(args.out) if args.out else Path("artifacts") / "style_transfer" / f"{stem}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    one = len(result.transfers) == 1
    out.write_bytes(charts_style.image_png(result.transfers[0].image) if one else charts_style.transfer_png(result))
    if args.figure:
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        Path(args.figure).write_bytes(charts_style.transfer_png(result))
    for t in result.transfers:
        print(f"{t.style_model} ({t.kind}) [{t.layer_text}]: loss {t.initial_loss:.4g} -> {t.final_loss:.4g}, "
              f"{t.seconds:.1f} s, {t.seconds_per_iteration:.3f} s/iteration")
    for note in result.notes:
        print(f"note: {note}")
    print(f"{result.description()}; {result.seconds:.1f} s on {result.device}; wrote {out}"
          + (f" and {args.figure}" if args.figure else ""))
    return 0


#: Candidate pairs of ``style-pairs`` when none is given: every bundled (standard, robust) pair.
STYLE_PAIRS = (("fmnist-standard", "fmnist-robust-l2"), ("fmnist-standard", "fmnist-robust-linf"),
               ("cifar10-standard", "cifar10-robust-l2"))


def _add_style_pairs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pair", nargs=2, action="append", metavar=("STANDARD", "ROBUST"), default=None,
                   help="a candidate pair (repeat it); default: every bundled pair available here")
    p.add_argument("--content", default="chelsea", help="sample photo (default chelsea)")
    p.add_argument("--style", default="gravel", help="sample texture (default gravel)")
    p.add_argument("--size", type=B.side, default=128)
    p.add_argument("--iterations", type=B.steps, default=100)
    p.add_argument("--invert-grey", action=argparse.BooleanOptionalAction, default=None,
                   help="1-channel networks see 1 - luma (default: as their dataset, Fashion-MNIST inverted)")
    p.add_argument("--device", default=None)
    p.add_argument("--out", default="results/style/pairs.json", help="the measurements (JSON)")
    p.add_argument("--figure", default=None, help="also a PNG: the inputs, then each pair side by side")


@command("style-pairs", "which robust-vs-standard pair shows Nakano's effect: style loss, spectrum distance, grid "
         "artifact, s/iteration per network", _add_style_pairs)
def cmd_style_pairs(args) -> int:
    from explorer import charts
    from explorer.charts import style as charts_style
    from explorer.experiments import style_pairs as SP

    available = {r["name"] for r in zoo.list_models() if r["available"]}
    pairs = tuple(map(tuple, args.pair)) if args.pair else tuple(p for p in STYLE_PAIRS if set(p) <= available)
    missing = sorted({m for p in pairs for m in p} - available)
    if missing:
        raise CLIError(f"not available here: {', '.join(missing)} (python -m explorer list)")
    config = SP.Config(pairs=SP.check_pairs(pairs), content=args.content, style=args.style, size=args.size,
                       iterations=args.iterations, invert_grey=args.invert_grey, device=args.device)
    result = SP.run(config, progress=_tqdm_progress("style pairs"))
    rows = SP.table(result)
    doc = {"command": command_line_of(args), "config": dataclasses.asdict(config), "rows": rows,
           "style_high_frequency_share": result.style_high_frequency_share,
           "style_grid_score": result.style_grid_score, "seconds": round(result.seconds, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, doc, indent=1)
    print(_csv_text(rows))
    print(f"style image: high-frequency share {result.style_high_frequency_share:.3f}, grid score "
          f"{result.style_grid_score:.3f}; {result.seconds:.0f} s; wrote {out}")
    if args.figure:
        cells = [(img, f"{r.model}: style loss {r.style_loss:.3g}, spectrum distance {r.spectrum_distance:.2f}, "
                       f"grid {r.grid_score:.2f}") for r, img in zip(result.rows, result.images)]
        h, w = result.content_image.shape[1:]  # a figure's images share one size: the style image cropped to it
        grid = [("inputs", [(result.content_image, "content"), (charts_style.fit_to(result.style_image, h, w),
                                                                 "style")])]
        grid += [(f"pair {k + 1}", [c for c, r in zip(cells, result.rows) if r.pair == k]) for k in range(len(pairs))]
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        Path(args.figure).write_bytes(charts.png_bytes(charts.figure(grid, title="Style transfer: standard vs robust "
                                                                               "style network")))
        print(f"wrote {args.figure}")
    return 0


def _add_rerun(p: argparse.ArgumentParser) -> None:
    p.add_argument("view", help="a view's JSON file, as the dashboard's export writes it")
    p.add_argument("--out", default=None, help="write the result's rows (and summary) here as JSON")
    p.add_argument("--device", default=None, help="default: the best device here")


@command("rerun", "compute a view exported from the dashboard again (its JSON file: experiment + exact Config)",
         _add_rerun)
def rerun_cmd(args) -> int:
    record = json.loads(Path(args.view).read_text())
    experiment, config = views.config_from_record(record)
    for note in views.check_models(record):
        print(f"warning: {note}", file=sys.stderr)
    if args.device and "device" in {f.name for f in dataclasses.fields(config)}:
        config = dataclasses.replace(config, device=args.device)
    result = importlib.import_module(f"explorer.experiments.{experiment}").run(config)
    rows = result.rows() if callable(getattr(result, "rows", None)) else []
    doc = {"experiment": experiment, "rows": rows, "view": args.view}
    text = json.dumps(doc, indent=2, default=float)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


# --- the Distill discussion's experiments (explorer/experiments/<module>.py) ----------

DISCUSSION = {
    "transfer-learnability": ("transfer_learnability",
                              "transfer rate vs accuracy from D_det per architecture (paper Fig. 3)"),
    "leakage": ("leakage", "Goh: robust linear features trained on D_rand / D_det, tested on the real test set"),
    "squares": ("squares", "Nakkiran: adversarial squares, a net fit to noisy labels vs early-stopped / clean"),
    "nontransferable": ("nontransferable", "Nakkiran: non-transferable targeted attack vs PGD, and their D_dets"),
    "mislabeled": ("mislabeled", "Wallace: train only on a weak model's wrong predictions, test on real data"),
    "filtered-training": ("filtered_training",
                          "Hendrycks & Gilmer: train on low/high-pass filtered images, test on the real test set"),
}


def _bounded_type(name: str, kind: type):
    """The ``explorer.bounds`` type of a Config field, by its name and type."""
    bounds = B
    if kind is float:
        if "eps" in name:
            return bounds.eps
        return {"step_size": bounds.step_size, "lr": bounds.learning_rate, "label_noise": bounds.fraction,
                "pixel_noise": bounds.fraction}.get(name, bounds.weight)
    if name in ("steps", "attack_steps", "head_steps"):
        return bounds.steps
    if name.endswith("epochs"):
        return bounds.epochs
    if name.startswith("n_") or name.endswith("_images"):
        return bounds.n_images
    return {"batch_size": bounds.batch_size, "seed": bounds.seed, "size": bounds.side}.get(name, bounds.count)


def _dataset_defaults(config) -> set:
    """The Config fields whose default is their dataset's (``DatasetDefaults``; ``norm``: l2 unless the table has it)."""
    return {k for row in getattr(config, "DEFAULTS", {}).values() for k in row} | (
        {"norm"} if hasattr(config, "NORM_DEFAULTS") else set())


def _config_arguments(module_name: str):
    """argparse options from the experiment's Config fields (``--n-train 500``), plus --full,
    --subset, --out."""

    def add(p: argparse.ArgumentParser) -> None:
        bounds = B
        config = importlib.import_module(f"explorer.experiments.{module_name}").Config
        for f in dataclasses.fields(config):
            t = str(f.type)
            kind = float if "float" in t else int if "int" in t else str
            argtype = str if kind is str else _bounded_type(f.name, kind)
            flag = "--" + f.name.replace("_", "-")
            if t.startswith("tuple"):
                p.add_argument(flag, type=argtype, nargs="+", default=None,
                               help=f"default {' '.join(map(str, f.default))}")
            else:
                dataset_default = f.default is None and f.name in _dataset_defaults(config)
                p.add_argument(flag, type=argtype, default=None,
                               help="default: the dataset's (the experiment's DEFAULTS)" if dataset_default
                               else f"default {f.default}")
        p.add_argument("--full", action="store_true", help="full size (every image; hours on a CPU)")
        p.add_argument("--subset", type=bounds.n_images, default=None, help="n_train = N (another size)")
        p.add_argument("--out", default=None, help=f"results JSON (default results/discussion/{module_name}.json on "
                       f"Fashion-MNIST, results/discussion/<dataset>/{module_name}.json on another, e.g. cifar10)")

    return add


def _run_discussion(module_name: str, args) -> int:
    module = importlib.import_module(f"explorer.experiments.{module_name}")
    names = {f.name for f in dataclasses.fields(module.Config)}
    given = {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items() if k in names and v is not None}
    if args.subset is not None:
        given["n_train"] = args.subset
    config = module.Config.full(**given) if args.full else module.Config(**given)
    if hasattr(config, "resolved"):  # the dataset's defaults in place of settings left unset
        config = config.resolved()
    dataset = config.dataset_id() if hasattr(config, "dataset_id") else getattr(config, "dataset", "fashion-mnist")
    result = module.run(config, progress=_tqdm_progress(module_name))
    out = Path(args.out) if args.out else results_path(module_name, dataset)
    command_line = command_line_of(args)
    doc = {"experiment": module_name, "command": command_line, "dataset": dataset, "config": jsonable(config),
           "commenter": jsonable(module.COMMENTER), "result": jsonable(result)}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, doc, indent=1)
    print(json.dumps(doc["result"], indent=1))
    print(f"wrote {out} ({result.seconds:.0f} s)")
    return 0


for _name, (_module, _help) in DISCUSSION.items():
    command(_name, _help, _config_arguments(_module))(lambda args, m=_module: _run_discussion(m, args))


