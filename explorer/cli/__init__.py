"""``python -m explorer ...``: argument parsing; every command calls a library function.

Commands: train, evaluate, list, layer-robustness, style, construct, table, rerun, the
discussion's experiments, fetch and convert. Bad arguments stop with a one-line message
(exit status 2), never a traceback. Benchmarks are ``python -m bench`` (the repository's bench/).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from explorer import data, zoo
from explorer import distributed as D
from explorer import train as T
from explorer.cli import datasets, experiments, models  # noqa: F401  (each module registers its commands)
from explorer.cli.base import COMMANDS, CLIError, command  # noqa: F401


#: The order ``--help`` lists the commands in: models, then views and datasets, then downloads.
HELP_ORDER = ("train", "evaluate", "autoattack", "list", "layer-robustness", "style", "style-pairs", "construct", "table", "rerun",
              "transfer-learnability", "leakage", "squares", "nontransferable", "mislabeled", "filtered-training",
              "fetch", "convert")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    order = {name: i for i, name in enumerate(HELP_ORDER)}
    for name, (fn, help, arguments) in sorted(COMMANDS.items(), key=lambda kv: order.get(kv[0], len(order))):
        p = sub.add_parser(name, help=help)
        arguments(p)
        p.set_defaults(func=fn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
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
