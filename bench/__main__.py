"""``python -m bench``: the benchmarks (bench/ imports explorer; explorer never imports bench)."""

from __future__ import annotations

import argparse
import sys

from bench import run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=run.__doc__.splitlines()[0])
    run.add_arguments(parser)
    return run.main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
