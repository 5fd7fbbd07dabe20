"""The stated limits of every numeric input, and argparse types that enforce them with one line.

The CLI's options take their types from here, so a bad number stops at parse time with
``error: argument --steps: must be an integer in [1, 10000], got 0`` (exit status 2) instead of a
traceback an hour into a run. The maxima are generous (no real run needs more) but finite, so a typo
such as ``--steps 2000000`` is caught instead of queued.
"""

from __future__ import annotations

import argparse
import math

MAX_STEPS = 10_000            # optimization steps of an attack, inversion or style transfer
MAX_RESTARTS = 100
MAX_BATCH = 65_536
MAX_EPOCHS = 1_000
MAX_IMAGES = 10_000_000       # --limit / --subset / --n-images
MAX_SIDE = 4_096              # pixels of an image's longer side
MAX_EPS = 1_000.0             # L2 radius; larger than the diameter of [0,1]^d for any d <= 10^6
MAX_SEED = 2**32 - 1
MAX_WEIGHT = 1e15             # loss weights (Nakano's raw weights are ~1e9)


class _Bounded:
    """An argparse ``type``: parses, checks the range, explains a refusal in one line."""

    def __init__(self, kind: type, lo, hi, lo_open: bool = False):
        self.kind, self.lo, self.hi, self.lo_open = kind, lo, hi, lo_open
        self.__name__ = f"{kind.__name__} in {self.describe()}"  # argparse names the type in some errors

    def describe(self) -> str:
        return f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"

    def __call__(self, text: str):
        noun = "an integer" if self.kind is int else "a finite number"
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {noun} in {self.describe()}, got {text!r}") from None
        if self.kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {noun} in {self.describe()}, got {text!r}")
        below = value <= self.lo if self.lo_open else value < self.lo
        if below or value > self.hi:
            raise argparse.ArgumentTypeError(f"must be {noun} in {self.describe()}, got {text!r}")
        return value

    def __repr__(self) -> str:
        return f"<{self.__name__}>"


def int_in(lo: int, hi: int) -> _Bounded:
    """Integers in [lo, hi]."""
    return _Bounded(int, lo, hi)


def float_in(lo: float, hi: float, lo_open: bool = False) -> _Bounded:
    """Finite floats in [lo, hi] (or (lo, hi] with ``lo_open``); NaN and infinities are refused."""
    return _Bounded(float, lo, hi, lo_open)


def is_bounded(argtype) -> bool:
    """Whether an argparse type is one of ours (tests check every numeric option is)."""
    return isinstance(argtype, _Bounded)


steps = int_in(1, MAX_STEPS)
restarts = int_in(1, MAX_RESTARTS)
batch_size = int_in(1, MAX_BATCH)
epochs = int_in(1, MAX_EPOCHS)
warmup_epochs = int_in(0, MAX_EPOCHS)
n_images = int_in(1, MAX_IMAGES)
side = int_in(1, MAX_SIDE)
seed = int_in(0, MAX_SEED)
count = int_in(1, 1_000_000)  # shards, pairs per image, bootstrap resamples and the like
eps = float_in(0.0, MAX_EPS)
step_size = float_in(0.0, MAX_EPS, lo_open=True)
learning_rate = float_in(0.0, 10.0, lo_open=True)
fraction = float_in(0.0, 1.0)
weight = float_in(0.0, MAX_WEIGHT)
seconds = float_in(0.0, 86_400.0, lo_open=True)


# --- names that become paths --------------------------------------------------------------

#: dataset names that carry a path by design: the path after the prefix is the user's own folder
PATH_PREFIXES = ("folder:", "constructed:")


class _Name:
    """An argparse ``type`` for a name that becomes part of a path (a model, dataset or output
    name): one with a path separator or ``..`` would write or read outside its folder, so it
    stops with one line. ``folder:PATH`` / ``constructed:PATH`` datasets keep their path."""

    def __init__(self, what: str, path_prefixes: tuple[str, ...] = ()):
        self.what, self.path_prefixes = what, path_prefixes
        self.__name__ = what

    def __call__(self, text: str) -> str:
        if self.path_prefixes and text.startswith(self.path_prefixes) and text.split(":", 1)[1]:
            return text
        check_name(text, self.what)
        return text

    def __repr__(self) -> str:
        return f"<{self.__name__}>"


def check_name(text: str, what: str = "name") -> str:
    """``text`` when it is a plain name: not empty, no path separator (``/``, ``\\``), no ``..``,
    no NUL; else an ``argparse.ArgumentTypeError`` that says so in one line."""
    if not text or "/" in text or "\\" in text or ".." in text or "\0" in text or text.strip() != text:
        raise argparse.ArgumentTypeError(
            f"must be a plain {what} (no path separator, no '..'), got {text!r}")
    return text


def is_name(argtype) -> bool:
    """Whether an argparse type is one of the name checks."""
    return isinstance(argtype, _Name)


name = _Name("name")
dataset = _Name("dataset name", PATH_PREFIXES)
