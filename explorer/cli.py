"""``python -m explorer ...``: argument parsing; every command calls a library function.

Commands: train, evaluate, list, layer-robustness, style, construct, table, rerun, the
discussion's experiments, fetch and convert. Bad arguments stop with a one-line message
(exit status 2), never a traceback. Benchmarks are ``python -m bench`` (the repository's bench/).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib
import io
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from explorer import bounds as B
from explorer import cards, data, evaluation, fetch, views, zoo
from explorer import construct as K
from explorer import distributed as D
from explorer import train as T
from explorer.charts import style as charts_style
from explorer.experiments import attack_lab
from explorer.experiments import constructed_table as CT
from explorer.experiments import layer_robustness as LR
from explorer.experiments import style_transfer as ST
from explorer.experiments._discussion import jsonable, results_dir
from explorer.files import atomic_write_json, atomic_write_text

COMMANDS = {}

#: What --dataset takes, said the same way by every command.
DATASETS_HELP = ("fashion-mnist, cifar10 (torchvision's files or an image-folder tree at $CIFAR10_ROOT), "
                 "folder:ROOT (any ROOT/train/<class>/*.png|jpg and ROOT/test/<class>/* tree)")
TRAIN_DATASETS_HELP = DATASETS_HELP + " or constructed:PATH (a dataset that construct built)"


def command(name: str, help: str, arguments=None):
    """Register ``fn(args) -> exit status`` as a sub-command; ``arguments(parser)`` adds its options."""

    def deco(fn):
        if name in COMMANDS:
            raise ValueError(f"duplicate command {name!r}")
        COMMANDS[name] = (fn, help, arguments or (lambda p: None))
        return fn

    return deco


class CLIError(Exception):
    """A user error; printed as one line."""


# Kept for commands that have not picked a specific bound from explorer/bounds.py yet.
_positive_int = B.int_in(1, B.MAX_IMAGES)
_nonneg_float = B.float_in(0.0, B.MAX_WEIGHT)


def _tqdm_progress(total_desc: str):
    bar = {"bar": None}

    def progress(done: int, total: int, metrics: dict):
        if bar["bar"] is None:
            bar["bar"] = tqdm(total=total, desc=total_desc, dynamic_ncols=True, initial=done - 1)
        bar["bar"].update(done - bar["bar"].n)
        bar["bar"].set_postfix({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in metrics.items()},
                               refresh=False)
        if done >= total:
            bar["bar"].close()

    return progress


def _csv_text(rows: list[dict]) -> str:
    """``rows`` as CSV text (a header from the first row's keys; csv's own line ends)."""
    out = io.StringIO(newline="")
    w = csv.DictWriter(out, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


# --- train -------------------------------------------------------------------------

def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, type=B.name, help="output name: NAME.safetensors and NAME.json")
    p.add_argument("--arch", default="stage_cnn", help="stage_cnn, mlp, torchvision:<name>, timm:<name>")
    p.add_argument("--dataset", default="fashion-mnist", type=B.dataset, help=TRAIN_DATASETS_HELP)
    p.add_argument("--epochs", type=B.epochs, default=10)
    p.add_argument("--batch-size", type=B.batch_size, default=128)
    p.add_argument("--lr", type=B.learning_rate, default=0.1)
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--weight-decay", type=B.fraction, default=5e-4)
    p.add_argument("--schedule", choices=["cosine", "step"], default="cosine")
    p.add_argument("--warmup-epochs", type=B.warmup_epochs, default=0)
    p.add_argument("--adv", choices=["l2", "linf"], default=None, help="adversarial training threat model")
    p.add_argument("--eps", type=B.eps, default=0.0)
    p.add_argument("--attack-steps", type=B.steps, default=7)
    p.add_argument("--attack-step-size", type=B.step_size, default=None, help="default 2.5*eps/steps")
    p.add_argument("--eps-warmup-epochs", type=B.warmup_epochs, default=0, help="ramp eps linearly over these epochs")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=B.seed, default=0)
    p.add_argument("--limit", type=B.n_images, default=None, help="a seeded, class-balanced subset of N training images")
    p.add_argument("--clean-weight", type=B.fraction, default=0.0,
                   help="adversarial training: weight of the clean-example loss (0 = Madry et al.)")
    p.add_argument("--init-from", default=None, help="start from these weights (fine-tuning)")
    p.add_argument("--out-dir", default="checkpoints")
    p.add_argument("--device", default=None)
    p.add_argument("--resume", action="store_true", help="continue after the last finished epoch")
    p.add_argument("--register", action="store_true", help="add the model to out-dir/manifest.json")
    p.add_argument("--description", default="")


@command("train", "standard or PGD adversarial training", _add_train)
def cmd_train(args) -> int:
    cfg = T.TrainConfig(name=args.name, arch=args.arch, dataset=args.dataset, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                        weight_decay=args.weight_decay, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
                        adv_norm=args.adv, eps=args.eps, attack_steps=args.attack_steps,
                        attack_step_size=args.attack_step_size, eps_warmup_epochs=args.eps_warmup_epochs,
                        augment=not args.no_augment, seed=args.seed, limit=args.limit, out_dir=args.out_dir,
                        clean_weight=args.clean_weight, init_from=args.init_from)
    try:
        cfg.validate()
    except T.TrainError as e:
        raise CLIError(str(e)) from e
    main_rank = D.is_main()
    progress = _tqdm_progress(f"train {cfg.name}") if main_rank else None
    card = T.train(cfg, resume=args.resume, device=args.device, progress=progress)
    if main_rank:
        if args.register:
            cards.register_trained(cfg, card, args.description)
        h = card["history"][-1]
        print(f"{cfg.name}: {len(card['history'])} epochs in {card['training_seconds']:.0f} s, "
              f"last train loss {h['train_loss']:.4f} acc {h['train_acc']:.4f}")
    return 0


# --- evaluate ----------------------------------------------------------------------



def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", type=B.name,
                   help="zoo model names; each is measured on the test set of the dataset it was trained on: "
                        + TRAIN_DATASETS_HELP + " (its source's test set)")
    p.add_argument("--norms", nargs="+", choices=["l2", "linf"], default=["linf", "l2"])
    p.add_argument("--eps-linf", nargs="+", type=B.eps, default=None, help="default: per dataset")
    p.add_argument("--eps-l2", nargs="+", type=B.eps, default=None, help="default: per dataset")
    p.add_argument("--steps", type=B.steps, default=20, help="PGD steps (step size 2.5*eps/steps)")
    p.add_argument("--restarts", type=B.restarts, default=1)
    p.add_argument("--limit", type=B.n_images, default=None, help="first N test images (default: all)")
    p.add_argument("--batch-size", type=B.batch_size, default=500)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=B.seed, default=0)
    p.add_argument("--no-card", action="store_true",
                   help="print only: leave the model card and NAME.eval.json/.csv as they are")
    p.add_argument("--bundled-subset", action="store_true",
                   help="when the full test set of fashion-mnist or cifar10 is not here, measure on the small "
                        "bundled subset (the record and the card name it and its n); default: refuse")


@command("evaluate", "clean and PGD robust accuracy over eps lists; writes NAME.eval.json/.csv", _add_evaluate)
def cmd_evaluate(args) -> int:
    """Each model on the real test set of its dataset (fashion-mnist, cifar10, folder:ROOT's test/,
    or for constructed:PATH the set it was built from): ``cards.model_test_set``."""
    main_rank, world = D.is_main(), D.world_size()
    for name in args.names:
        spec = zoo.get_spec(name)
        test = cards.model_test_set(name, allow_subset=args.bundled_subset)
        default_eps = cards.evaluation_eps(spec.dataset)
        eps_by_norm = {"linf": args.eps_linf or default_eps["linf"], "l2": args.eps_l2 or default_eps["l2"]}
        n = len(test) if args.limit is None else min(args.limit, len(test))
        bar = tqdm(total=len(args.norms) * -(-n // world), desc=f"evaluate {name}",
                   dynamic_ncols=True) if main_rank else None
        res = cards.evaluate_model(name, args.norms, eps_by_norm, args.steps, args.restarts, args.limit,
                                   args.batch_size, args.device, args.seed, bar.update if bar else None,
                                   allow_subset=args.bundled_subset, test=test)
        if not main_rank:
            continue
        bar.close()
        res["command"] = cards.evaluation_command(name, args.norms, eps_by_norm, args.steps, args.limit,
                                                  args.restarts) + (" --bundled-subset" if args.bundled_subset else "")
        if not args.no_card:  # a quick check on a subset must not overwrite the card's full-test-set table
            cards.write_evaluation(spec, res, zoo.checkpoints_dir())
        print(f"{name}: on {res['test_set']}, {res['n']} images" +
              ("" if res["full_test_set"] else " (NOT the full test set)"))
        for r in res["results"]:
            label = "clean" if r["norm"] == "none" else f"{r['norm']} eps {r['eps']:g}"
            print(f"{name}: {label}: {100 * r['accuracy']:.2f}% ({r['correct']}/{r['n']})")
    return 0


def _add_autoattack(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", type=B.name, help="a zoo model (usually a robust one)")
    p.add_argument("--norm", choices=["l2", "linf"], required=True)
    p.add_argument("--eps", type=B.eps, required=True)
    p.add_argument("--n", type=B.n_images, default=1000, help="the first N test images (default 1000)")
    p.add_argument("--batch-size", type=B.batch_size, default=250)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=B.seed, default=0)
    p.add_argument("--bundled-subset", action="store_true", help="as for evaluate")


@command("autoattack", "AutoAttack beside PGD-20 on the first N test images; kept in the model card", _add_autoattack)
def cmd_autoattack(args) -> int:
    """torchattacks' AutoAttack (standard) and our PGD-20 on the same images: no gradient masking when close."""
    spec = zoo.get_spec(args.name)
    test = cards.model_test_set(args.name, allow_subset=args.bundled_subset)
    model = zoo.load(args.name, device=args.device)
    n = min(args.n, len(test))
    with tqdm(total=n, desc=f"autoattack {args.name}", dynamic_ncols=True) as bar:
        rec = evaluation.autoattack_counts(model, test, args.norm, args.eps, n, batch_size=args.batch_size,
                                           seed=args.seed, progress=bar.update)
    rec["test_set"] = test.name
    rec["command"] = (f"python -m explorer autoattack {args.name} --norm {args.norm} --eps {args.eps:g} --n {n}"
                      + (" --bundled-subset" if args.bundled_subset else ""))
    cards.write_autoattack(spec, rec, zoo.checkpoints_dir())
    print(f"{args.name}: {args.norm} eps {args.eps:g} on {n} images of {test.name}: clean {100 * rec['clean']:.1f}%, "
          f"PGD-20 {100 * rec['pgd']:.1f}%, AutoAttack {100 * rec['autoattack']:.1f}%")
    return 0


# --- list ---------------------------------------------------------------------------

@command("list", "the zoo: every model, available offline or not, and why")
def cmd_list(args) -> int:
    rows = zoo.list_models()
    width = max([len(r["name"]) for r in rows] + [4])
    for r in rows:
        mark = "yes" if r["available"] else "no "
        print(f"{r['name']:<{width}}  {r['dataset']:<14} {r['kind']:<22} {mark}  {r['why']}")
    return 0


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
    n = len(args.style_model)
    config = ST.Config.for_images(
        _style_input(args.content), _style_input(args.style), tuple(args.style_model), size=args.size,
        style_size=args.style_size, content_model=args.content_model, content_layer=args.content_layer,
        style_layers=(tuple(args.style_layers),) * n if args.style_layers else (), single_layer=args.single_layer,
        style_weight=args.style_weight, content_weight=args.content_weight, tv_weight=args.tv_weight,
        normalize=not args.raw_weights, optimizer=args.optimizer, learning_rate=args.lr or None,
        iterations=args.iterations, start=args.start, average_pooling=not args.max_pooling, seed=args.seed,
        device=args.device)
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
    p.add_argument("--out", default=None, help="output folder (default artifacts/constructed/DATASET[-subsetN]/KIND)")
    p.add_argument("--export", default=None, help="also write the result as PNGs in EXPORT/train/<class>/")
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
                              shard_size=args.shard_size, batch_size=args.batch_size, targets=args.targets)
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
    command_line = "python -m explorer construct " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if sys.argv[1:2] == ["construct"] else ""
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
    p.add_argument("--test-limit", type=B.n_images, default=None, help="first N real test images (default: all)")
    p.add_argument("--eval-steps", type=B.steps, default=20)
    p.add_argument("--shard-size", type=B.count, default=500)
    p.add_argument("--seed", type=B.seed, default=0)
    p.add_argument("--out", default=None, help="default artifacts/constructed/DATASET[-subsetN]/table")
    p.add_argument("--device", default=None)


@command("table", "Table 1: train on D, D_R, D_NR, D_rand, D_det; test on the real test set", _add_table)
def cmd_table(args) -> int:
    d = K.defaults_for(args.dataset)
    out = args.out or str(_constructed_root(args.dataset, args.subset) / "table")
    # the robust model is asked for only when D_R is built; else the evaluation eps is the dataset's
    robust = args.robust or (d.robust if "robust" in args.kinds else None)
    config = CT.Config(dataset=args.dataset, standard=args.standard or d.standard, robust=robust,
                       kinds=tuple(args.kinds), subset=args.subset, inversion_steps=args.steps,
                       inversion_step_sizes=tuple(args.step_size) if args.step_size else None, start=args.start,
                       attack_eps=args.eps, attack_steps=args.attack_steps, attack_step_size=args.attack_step_size,
                       rand_targets=args.targets, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr,
                       augment=not args.no_augment, test_limit=args.test_limit, eval_steps=args.eval_steps,
                       shard_size=args.shard_size, seed=args.seed, out_dir=out, device=args.device)
    main_rank = D.is_main()
    command_line = "python -m explorer table " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if sys.argv[1:2] == ["table"] else ""
    result = CT.run(config, progress=_table_progress() if main_rank else None, command=command_line)
    if not main_rank:
        return 0
    md = CT.markdown(result)
    rows = result.table()
    doc = {"command": command_line, "config": dataclasses.asdict(config), "eval": {"norm": result.eval_norm,
           "eps": result.eval_eps, "steps": result.eval_steps, "n_test": result.rows[0].n_test,
           "test_set": result.test_set},
           "rows": rows, "details": [dataclasses.asdict(r) for r in result.rows], "seconds": round(result.seconds, 1),
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
                p.add_argument(flag, type=argtype, default=None, help=f"default {f.default}")
        p.add_argument("--full", action="store_true", help="full size (every image; hours on a CPU)")
        p.add_argument("--subset", type=bounds.n_images, default=None, help="n_train = N (another size)")
        p.add_argument("--out", default=None, help=f"results JSON (default results/discussion/{module_name}.json)")

    return add


def _run_discussion(module_name: str, args) -> int:
    module = importlib.import_module(f"explorer.experiments.{module_name}")
    names = {f.name for f in dataclasses.fields(module.Config)}
    given = {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items() if k in names and v is not None}
    if args.subset is not None:
        given["n_train"] = args.subset
    config = module.Config.full(**given) if args.full else module.Config(**given)
    result = module.run(config, progress=_tqdm_progress(module_name))
    out = Path(args.out) if args.out else results_dir() / f"{module_name}.json"
    command_line = "python -m explorer " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    doc = {"experiment": module_name, "command": command_line, "config": jsonable(config),
           "commenter": jsonable(module.COMMENTER), "result": jsonable(result)}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, doc, indent=1)
    print(json.dumps(doc["result"], indent=1))
    print(f"wrote {out} ({result.seconds:.0f} s)")
    return 0


for _name, (_module, _help) in DISCUSSION.items():
    command(_name, _help, _config_arguments(_module))(lambda args, m=_module: _run_discussion(m, args))


# --- fetch / convert (explorer/fetch.py) -------------------------------------------

def _register_fetch() -> None:
    command("fetch", "download a canonical model into checkpoints/ (progress, resume, sha256)",
            fetch.add_fetch_arguments)(fetch.cmd_fetch)
    command("convert", "opt-in one-time conversion of a trusted pickled checkpoint to safetensors",
            fetch.add_convert_arguments)(fetch.cmd_convert)


_register_fetch()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (fn, help, arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=help)
        arguments(p)
        p.set_defaults(func=fn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
        D.leave()  # on success only: after a rank failed, others may sit in a collective
        return rc
    except (CLIError, T.TrainError, zoo.ZooError, data.DataError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
