"""Instant first clicks: a background thread that, at server start, loads the bundled models
and computes every tour step into the page cache (``widgets.store_result``), so the first
click on a tour step is a cache hit; then the default views of the pages that take longer
than a lecture can wait (``PAGE_DEFAULTS``), each with the Config builder of ``ui.configs``
that its page calls, so the page's default is a cache hit too. app.py starts it once per
process through ``st.cache_resource``; the home page shows ``WarmUp.status_line``.

It waits a moment before starting, so the first page paints first, and it does nothing
when the tour's models are not here (or ``EXPLORER_WARMUP=0``).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Optional

import streamlit as st

DELAY_S = 1.0


class WarmUp:
    """The warm-up's progress: one entry per item, ``waiting``, ``computing``, ``warm`` or ``failed``."""

    def __init__(self, items: list[str]):
        self._lock = threading.Lock()
        self._state = {item: "waiting" for item in items}
        self.started = time.time()
        self.seconds: dict[str, float] = {}
        self.note = ""
        self.thread: Optional[threading.Thread] = None

    def set(self, item: str, state: str) -> None:
        with self._lock:
            self._state[item] = state
            if state in ("warm", "failed"):
                self.seconds[item] = time.time() - self.started

    def state(self) -> dict[str, str]:
        with self._lock:
            return dict(self._state)

    def tour_done(self) -> bool:
        """The models and every tour step are warm or failed (the page defaults may still be computing)."""
        return bool(self.note) or all(s in ("warm", "failed") for k, s in self.state().items()
                                      if k == "models" or k.startswith("step "))

    def done(self) -> bool:
        """Nothing left to do: every item warm or failed, or the warm-up did not start (``note``)."""
        return bool(self.note) or all(s in ("warm", "failed") for s in self.state().values())

    def status_line(self) -> str:
        """One line for the home page: what is warm, what is still computing."""
        if self.note:
            return self.note
        state = self.state()
        warm = [k for k, s in state.items() if s == "warm"]
        busy = [k for k, s in state.items() if s == "computing"]
        failed = [k for k, s in state.items() if s == "failed"]
        parts = [f"warm: {', '.join(warm) or 'nothing yet'}"]
        if busy:
            parts.append(f"computing: {', '.join(busy)}")
        if failed:
            parts.append(f"failed: {', '.join(failed)}")
        waiting = len(state) - len(warm) - len(busy) - len(failed)
        if waiting:
            parts.append(f"{waiting} waiting")
        return "Warm-up: " + "; ".join(parts) + "."


#: After the tour: (warm-up item, experiment) of each page default too slow to compute on its click, cheapest
#: first; ``_page_default`` builds its Config as its page does on a fresh session (the sidebar's default pair,
#: the widgets' defaults, Fashion-MNIST test image 0).
PAGE_DEFAULTS = (
    ("units", "feature_visualization"), ("inversion", "inversion"), ("frequency", "frequency"),
    ("layer robustness", "layer_robustness"), ("squares", "squares"), ("heat maps", "fourier_heatmap"),
    ("live table", "constructed_table"),
)


def _page_default(item: str):
    """The Config of page default ``item`` (``PAGE_DEFAULTS``), built as its page builds it."""
    from explorer import data
    from ui import configs
    from ui.models import DEFAULT_PAIR

    if item == "units":
        return configs.units({}, DEFAULT_PAIR)
    if item == "inversion":
        x, y = data.fashion_mnist_sample(0, "test")  # the image picker's default
        return configs.inversion({}, DEFAULT_PAIR, x[0].numpy(), int(y))
    if item == "frequency":
        return configs.frequency_curve({}, DEFAULT_PAIR)
    if item == "layer robustness":
        return configs.layer_robustness({}, DEFAULT_PAIR, "fashion-mnist")
    if item == "squares":
        return configs.squares({})
    if item == "heat maps":
        return configs.fourier_heatmap({}, DEFAULT_PAIR, 28)
    if item == "live table":
        return configs.constructed_live({}, *DEFAULT_PAIR, "fashion-mnist")
    raise KeyError(item)


def _items() -> list[str]:
    from ui import tour

    return (["models"] + [f"step {i + 1}" for i, s in enumerate(tour.STEPS) if s.experiment]
            + [item for item, _ in PAGE_DEFAULTS])


def tour_models_available() -> tuple[bool, str]:
    from explorer import zoo
    from ui import tour

    specs = zoo.specs()
    for name in tour.MODELS:
        if name not in specs:
            return False, f"{name} is not in the zoo here"
        ok, why = zoo.availability(specs[name])
        if not ok:
            return False, why
    return True, ""


_STOP = threading.Event()


def stop(timeout: float = 30.0) -> None:
    """Ask every warm-up thread to stop at its next optimization step and wait for it.

    Registered with ``atexit``: a daemon thread still inside torch when the interpreter
    finalizes aborts the process ("terminate called without an active exception").
    """
    _STOP.set()
    for t in threading.enumerate():
        if t.name == "explorer-warmup" and t is not threading.current_thread():
            t.join(timeout)


atexit.register(stop)


def work(w: WarmUp, store) -> None:
    """Load the tour's models, compute each step, then each page default (``PAGE_DEFAULTS``), and hand
    each to ``store(experiment, config, result)``."""
    from explorer import devices, zoo
    from ui import tour

    w.set("models", "computing")
    try:
        for name in tour.MODELS:
            zoo.load(name, device=devices.best_device())
        w.set("models", "warm")
    except Exception:  # noqa: BLE001 - a failed warm-up only means a slower first click
        w.set("models", "failed")
    jobs = [(f"step {i + 1}", step.experiment, step.config) for i, step in enumerate(tour.STEPS) if step.experiment]
    jobs += [(item, experiment, lambda item=item: _page_default(item)) for item, experiment in PAGE_DEFAULTS]
    for item, experiment, config in jobs:
        if _STOP.is_set() or not _compute(w, item, experiment, config, store):
            return


def _compute(w: WarmUp, item: str, experiment: str, build, store) -> bool:
    """Compute one item into the cache; False when cancelled (the warm-up stops)."""
    import importlib

    from explorer.optimize import Cancelled

    w.set(item, "computing")
    try:
        config = build()
        began = time.monotonic()
        result = importlib.import_module(f"explorer.experiments.{experiment}").run(config, cancel=_STOP.is_set)
        store(experiment, config, result, seconds=time.monotonic() - began)
        w.set(item, "warm")
    except Cancelled:
        w.set(item, "waiting")
        return False
    except Exception:  # noqa: BLE001
        w.set(item, "failed")
    return True


def start(store) -> WarmUp:
    """Start the warm-up thread (daemon) unless disabled or the tour's models are missing."""
    w = WarmUp(_items())
    if os.environ.get("EXPLORER_WARMUP", "1") == "0":
        w.note = "Warm-up off (EXPLORER_WARMUP=0): the tour's steps compute on their first click."
        return w

    def run():
        if _STOP.wait(DELAY_S):  # let the first page paint before the CPU gets busy
            return
        from explorer import devices

        devices.use_server_threads()  # the server's thread count, before the first torch work
        ok, why = tour_models_available()
        if not ok:
            w.note = f"No warm-up: the tour runs on the bundled Fashion-MNIST models, and {why}."
            return
        work(w, store)

    w.thread = threading.Thread(target=run, name="explorer-warmup", daemon=True)
    w.thread.start()
    return w



@st.cache_resource(show_spinner=False)
def started() -> WarmUp:
    """The process's warm-up, started at the first call (app.py calls it on every run)."""
    return start(_store_result)


def _store_result(*args, **kwargs):
    # ui.widgets imports torch, pandas and altair (seconds on a laptop CPU): importing it here, in
    # the warm-up thread, and not in started(), keeps it out of the first page's way (a py-spy
    # profile of a fresh server's first run found 90% of the script thread in that import)
    from ui import widgets

    return widgets.store_result(*args, **kwargs)
