"""Paired, interleaved timing: the fair way to compare two programs on a noisy machine.

The two sides run alternately (A, B, B, A, ...) after one warm-up each, so slow drifts
of the machine (another job on the next core, turbo, the host) hit both alike. The
ratio is the median of the per-pair ratios; each side's time is its median.

Both clocks are read: wall time, and this process's CPU time. On a CPU run with one
thread the CPU time does not count the time another process held the core (a shared
core makes wall times swing 2-3x), so ``clock="cpu"`` is the fair one there; with
several threads or a GPU only wall time means anything.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Paired:
    """Median seconds of each side, the median of per-pair ratios b/a, and the repeats,
    by the chosen clock (``wall`` or ``cpu``); the wall-clock figures are kept too."""

    a_seconds: float
    b_seconds: float
    ratio: float  # b / a: > 1 means side a is faster
    repeats: int
    a_all: tuple[float, ...]
    b_all: tuple[float, ...]
    clock: str = "wall"
    a_wall: float = 0.0
    b_wall: float = 0.0
    ratio_wall: float = 0.0


#: the clock of this run: set once by bench.run (``cpu`` for a one-thread CPU run)
CLOCK = "wall"


def clock(fn: Callable[[], object]) -> tuple[tuple[float, float], object]:
    """(wall seconds, process CPU seconds) of ``fn()``, and its output."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return (time.perf_counter() - t0, time.process_time() - c0), out


def paired(a: Callable[[], object], b: Callable[[], object], *, min_repeats: int = 3, max_repeats: int = 15,
           budget_s: float = 30.0, warmup: bool = True) -> tuple[Paired, object, object]:
    """Time ``a`` and ``b`` alternately until ``budget_s`` is spent (within the repeat bounds).

    Returns the timing and the first timed outputs of ``a`` and ``b``.
    """
    if warmup:
        a()
        b()
    ta, tb, out_a, out_b = [], [], None, None  # (wall, cpu) per run
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
    k = 1 if CLOCK == "cpu" else 0
    a_k, b_k = [t[k] for t in ta], [t[k] for t in tb]
    ratio = statistics.median(y / x for x, y in zip(a_k, b_k))
    ratio_wall = statistics.median(y[0] / x[0] for x, y in zip(ta, tb))
    return Paired(statistics.median(a_k), statistics.median(b_k), ratio, len(ta), tuple(a_k), tuple(b_k), CLOCK,
                  statistics.median(t[0] for t in ta), statistics.median(t[0] for t in tb), ratio_wall), out_a, out_b
