"""How long a run will take, said before it starts: this server's own pace.

Every run of an experiment that states its cost (``work(config)``, see
``explorer.experiments``) is timed, by a page's click or by the warm-up, and kept here per
(experiment, models, device), for the whole process. The next run on the same models gets
``seconds_per_work x work(config)``: "about 40 s at this server's pace". Nothing is guessed
for models this server has not run yet; the progress bar's time left takes over once a run
has made a step. The pace of a run made while other work shared the CPU (the warm-up, other
sessions) is slower than a quiet one, so the estimate errs long.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Optional

_LOCK = threading.Lock()
_PACE: dict[tuple, "Pace"] = {}


@dataclass(frozen=True)
class Pace:
    seconds: float  # the timed run's wall time
    work: float  # its work(config)


def _work(experiment: str, config) -> Optional[float]:
    module = importlib.import_module(f"explorer.experiments.{experiment}")
    work = getattr(module, "work", None)
    if work is None:
        return None
    try:
        w = float(work(config))
    except (AttributeError, TypeError, ValueError):
        return None
    return w if w > 0 else None


def _key(experiment: str, config) -> tuple:
    """What a run's pace depends on besides its work: the experiment, its models and device."""
    models = getattr(config, "models", None) or getattr(config, "style_models", None) or getattr(config, "arch", None)
    return experiment, models, getattr(config, "device", None)


def record(experiment: str, config, seconds: float) -> None:
    """Keep the pace of a finished run (runs of an experiment without ``work`` are ignored)."""
    w = _work(experiment, config)
    if w is None or seconds <= 0:
        return
    with _LOCK:
        _PACE[_key(experiment, config)] = Pace(float(seconds), w)


def estimate(experiment: str, config) -> Optional[float]:
    """Seconds the run of ``config`` should take at the pace of this server's last run of the same
    experiment on the same models, or None when there is none."""
    w = _work(experiment, config)
    if w is None:
        return None
    with _LOCK:
        pace = _PACE.get(_key(experiment, config))
    return None if pace is None else pace.seconds / pace.work * w


def say(seconds: float) -> str:
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def line(experiment: str, config) -> str:
    """One sentence for the start of a run, or "" when nothing is known (or it takes under a second)."""
    seconds = estimate(experiment, config)
    if seconds is None or seconds < 1:
        return ""
    return f"Expected: {say(seconds)}, at the pace of this server's last run of this view on these models."


def clear() -> None:
    with _LOCK:
        _PACE.clear()
