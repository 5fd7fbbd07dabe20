"""``python -m explorer ...``: train, evaluate, fetch, list.

Bad arguments stop with a one-line message (exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

COMMANDS = {}


def command(name: str, help: str):
    def deco(fn):
        COMMANDS[name] = (fn, help)
        return fn

    return deco


class CLIError(Exception):
    """A user error; printed as one line."""


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonneg_float(text: str) -> float:
    v = float(text)
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def _tqdm_progress(total_desc: str):
    from tqdm import tqdm

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


# --- train -------------------------------------------------------------------------

def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, help="output name: NAME.safetensors and NAME.json")
    p.add_argument("--arch", default="stage_cnn", help="stage_cnn, mlp, torchvision:<name>, timm:<name>")
    p.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist, cifar10, constructed:PATH")
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--batch-size", type=_positive_int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--weight-decay", type=_nonneg_float, default=5e-4)
    p.add_argument("--schedule", choices=["cosine", "step"], default="cosine")
    p.add_argument("--warmup-epochs", type=int, default=0)
    p.add_argument("--adv", choices=["l2", "linf"], default=None, help="adversarial training threat model")
    p.add_argument("--eps", type=_nonneg_float, default=0.0)
    p.add_argument("--attack-steps", type=_positive_int, default=7)
    p.add_argument("--attack-step-size", type=_nonneg_float, default=None, help="default 2.5*eps/steps")
    p.add_argument("--eps-warmup-epochs", type=int, default=0, help="ramp eps linearly over these epochs")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=_positive_int, default=None, help="use only the first N training images")
    p.add_argument("--out-dir", default="checkpoints")
    p.add_argument("--device", default=None)
    p.add_argument("--resume", action="store_true", help="continue after the last finished epoch")
    p.add_argument("--register", action="store_true", help="add the model to out-dir/manifest.json")
    p.add_argument("--description", default="")


@command("train", "standard or PGD adversarial training")
def cmd_train(args) -> int:
    import os

    from explorer import train as T

    cfg = T.TrainConfig(name=args.name, arch=args.arch, dataset=args.dataset, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                        weight_decay=args.weight_decay, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
                        adv_norm=args.adv, eps=args.eps, attack_steps=args.attack_steps,
                        attack_step_size=args.attack_step_size, eps_warmup_epochs=args.eps_warmup_epochs,
                        augment=not args.no_augment, seed=args.seed, limit=args.limit, out_dir=args.out_dir)
    try:
        cfg.validate()
    except T.TrainError as e:
        raise CLIError(str(e)) from e
    rank = int(os.environ.get("RANK", "0"))
    progress = _tqdm_progress(f"train {cfg.name}") if rank == 0 else None
    card = T.train(cfg, resume=args.resume, device=args.device, progress=progress)
    if rank == 0:
        if args.register:
            from explorer import zoo

            spec = zoo.ModelSpec(
                name=cfg.name, source="bundled", arch=cfg.arch, dataset=cfg.dataset,
                mean=tuple(card["mean"]), std=tuple(card["std"]), input_size=tuple(card["input_size"]),
                num_classes=len(card["class_names"]), robust=cfg.adv_norm is not None,
                train_norm=cfg.adv_norm, train_eps=cfg.eps if cfg.adv_norm else None,
                weights=f"{cfg.name}.safetensors", card=f"{cfg.name}.json",
                sha256=zoo.sha256_file(zoo.Path(cfg.out_dir) / f"{cfg.name}.safetensors"),
                paper="Madry et al. 2018 (adversarial training)" if cfg.adv_norm else "",
                licence="MIT (trained here on Fashion-MNIST, MIT)", description=args.description)
            zoo.write_manifest_entry(spec, zoo.Path(cfg.out_dir))
        h = card["history"][-1]
        print(f"{cfg.name}: {len(card['history'])} epochs in {card['training_seconds']:.0f} s, "
              f"last train loss {h['train_loss']:.4f} acc {h['train_acc']:.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    adders = {"train": _add_train}
    for name, (fn, help) in COMMANDS.items():
        p = sub.add_parser(name, help=help)
        adders.get(name, lambda p: None)(p) if name in adders else ADDERS[name](p)
        p.set_defaults(func=fn)
    return parser


ADDERS = {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from explorer.data import DataError
    from explorer.train import TrainError
    from explorer.zoo import ZooError

    try:
        return args.func(args)
    except (CLIError, TrainError, ZooError, DataError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
