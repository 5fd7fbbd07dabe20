"""The CLI's shared pieces: the command registry, the one-line user error, help texts, progress bars."""

from __future__ import annotations

import csv
import io
import shlex

from tqdm import tqdm

from explorer import bounds as B

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
    """``rows`` as CSV text (a header of every key, in the order first met; a row without one
    leaves it empty, as a row of a table saved before that column existed; csv's own line ends)."""
    out = io.StringIO(newline="")
    w = csv.DictWriter(out, fieldnames=list(dict.fromkeys(k for r in rows for k in r)), restval="")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()




def command_line(args) -> str:
    """The command that ran, as a user would type it again (``python -m explorer ...``), from the
    arguments ``main`` parsed (recorded in results files)."""
    return "python -m explorer " + " ".join(shlex.quote(a) for a in getattr(args, "argv", ()))
