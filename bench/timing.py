"""Paired, interleaved timing: the fair way to compare two programs on a noisy machine.

The two sides run alternately (A, B, A, B, ...) after one warm-up each, so slow drifts
of the machine (another job on the next core, turbo, the host) hit both alike. The
ratio is the median of the per-pair ratios; each side's time is its median.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Paired:
    """Median seconds of each side, the median of per-pair ratios b/a, and the repeats."""

    a_seconds: float
    b_seconds: float
    ratio: float  # b / a: > 1 means side a is faster
    repeats: int
    a_all: tuple[float, ...]
    b_all: tuple[float, ...]


def clock(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def paired(a: Callable[[], object], b: Callable[[], object], *, min_repeats: int = 3, max_repeats: int = 15,
           budget_s: float = 30.0, warmup: bool = True) -> tuple[Paired, object, object]:
    """Time ``a`` and ``b`` alternately until ``budget_s`` is spent (within the repeat bounds).

    Returns the timing and the first timed outputs of ``a`` and ``b``.
    """
    if warmup:
        a()
        b()
    ta, tb, out_a, out_b = [], [], None, None
    start = time.perf_counter()
    for i in range(max_repeats):
        # alternate which side goes first so neither always runs on a warmer cache
        first, second = (a, b) if i % 2 == 0 else (b, a)
        s1, o1 = clock(first)
        s2, o2 = clock(second)
        sa, sb, oa, ob = (s1, s2, o1, o2) if i % 2 == 0 else (s2, s1, o2, o1)
        ta.append(sa)
        tb.append(sb)
        if i == 0:
            out_a, out_b = oa, ob
        if i + 1 >= min_repeats and time.perf_counter() - start > budget_s:
            break
    ratio = statistics.median(y / x for x, y in zip(ta, tb))
    return Paired(statistics.median(ta), statistics.median(tb), ratio, len(ta), tuple(ta), tuple(tb)), out_a, out_b
