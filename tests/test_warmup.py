"""The background warm-up (ui/warmup.py) stops cleanly when the process exits.

A daemon thread still inside torch when the interpreter finalizes aborts the process
(exit 134, "terminate called without an active exception"): a server stopped mid-warm-up,
or a test run whose AppTest started it, would end with a crash instead of exit 0.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bundled_models import require

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import atexit, sys, threading, time
    def _last():  # registered first, so it runs after the warm-up's own exit handler
        alive = [t.name for t in threading.enumerate() if t.name == "explorer-warmup" and t.is_alive()]
        print(f"at exit: warm-up alive={bool(alive)} after {time.time() - t_exit:.2f} s", flush=True)
    atexit.register(_last)
    from ui import warmup
    warmup.DELAY_S = 0.0
    w = warmup.start(lambda *a: None)
    t0 = time.time()
    while not any(k.startswith("step") and s == "computing" for k, s in w.state().items()):
        if time.time() - t0 > 120 or w.note:
            print("never computed:", w.note, w.state()); sys.exit(3)
        time.sleep(0.05)
    print("exiting while", w.state(), flush=True)
    t_exit = time.time()
""")


def test_exiting_mid_warm_up_stops_the_thread_and_exits_0(monkeypatch):
    require(monkeypatch, "fmnist-standard", "fmnist-robust-linf", "fmnist-robust-l2")
    monkeypatch.setenv("EXPLORER_WARMUP", "1")
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-2000:])
    assert "exiting while" in r.stdout and "computing" in r.stdout
    assert "at exit: warm-up alive=False" in r.stdout, r.stdout
    assert "terminate called" not in r.stderr


def test_stop_before_the_delay_starts_nothing(monkeypatch):
    from ui import warmup

    monkeypatch.setenv("EXPLORER_WARMUP", "1")
    monkeypatch.setattr(warmup, "DELAY_S", 5.0)
    monkeypatch.setattr(warmup, "_STOP", __import__("threading").Event())
    w = warmup.start(lambda *a: pytest.fail("nothing may be computed after stop()"))
    warmup.stop(timeout=10)
    assert w.thread is not None and not w.thread.is_alive()
    assert all(s == "waiting" for s in w.state().values())


# --- the slow pages' defaults: the warm-up computes the very Config each page builds ----------------

PAGES = ROOT / "pages"
#: warm-up item -> (page file, the button that runs the default, the label's start)
DEFAULT_BUTTONS = {
    "units": ("features.py", "Maximize"), "inversion": ("features.py", "Invert"),
    "frequency": ("features.py", "Measure"), "heat maps": ("features.py", "Compute the heat maps"),
    "layer robustness": ("layer_robustness.py", "Run"),
    "squares": ("discussion.py", "Run the small version (300 squares"),
    "live table": ("constructed.py", "Build, train and test"),
}


def test_every_page_default_has_its_button():
    from ui import warmup

    assert set(DEFAULT_BUTTONS) == {item for item, _ in warmup.PAGE_DEFAULTS}
    assert set(warmup._items()) >= set(DEFAULT_BUTTONS)


@pytest.mark.parametrize("item", list(DEFAULT_BUTTONS))
def test_a_page_default_is_a_cache_hit_on_what_the_warm_up_stores(item, monkeypatch):
    """Press the page's default button on a fresh session (the default pair, every widget at its default):
    the Config the page asks for is the warm-up's, so its first click answers from the cache."""
    from streamlit.testing.v1 import AppTest

    from ui import warmup, widgets
    from ui.models import DEFAULT_PAIR, ModelPair

    require(monkeypatch, *DEFAULT_PAIR)
    experiment = dict(warmup.PAGE_DEFAULTS)[item]
    warm = warmup._page_default(item)
    widgets.store_result(experiment, warm, f"computed by the warm-up: {item}")
    asked = []

    def spy(name, config, label):  # the page's run, recorded instead of computed
        asked.append((name, config))
        return widgets.cached_result(name, config)

    monkeypatch.setattr(widgets, "run_experiment", spy)
    monkeypatch.setattr(widgets, "keep", lambda *a: None)  # the stand-in result is not drawn
    page, label = DEFAULT_BUTTONS[item]
    at = AppTest.from_file(str(PAGES / page), default_timeout=300)
    at.session_state["model_pair"] = ModelPair(*DEFAULT_PAIR)
    at.run()
    assert not at.exception, at.exception
    buttons = [b for b in at.button if b.label.startswith(label)]
    assert buttons, [b.label for b in at.button]
    asked.clear()  # views that compute on load (the features page's linear features)
    buttons[0].click().run()
    assert not at.exception, at.exception
    configs = [config for name, config in asked if name == experiment]
    assert len(configs) == 1, asked
    assert configs[0] == warm
    assert widgets.cached_result(experiment, configs[0]) == f"computed by the warm-up: {item}"


def test_the_slow_defaults_as_pinned():
    """The defaults the warm-up computes (issue 21: every default answers in seconds)."""
    from ui import configs, warmup
    from ui.models import DEFAULT_PAIR

    assert configs.frequency_curve({}, DEFAULT_PAIR).n_images == 200  # was 500: 17 s of one core
    heat = warmup._page_default("heat maps")
    assert (heat.n_images, heat.noise_norm, heat.max_frequency) == (100, 4.0, None)  # Yin et al.'s r, every frequency
    inv = warmup._page_default("inversion")
    assert (inv.steps, inv.step_sizes, inv.start, inv.models) == (900, (1.0, 0.3, 0.1), "random_image", DEFAULT_PAIR)
    live = warmup._page_default("live table")
    assert (live.subset, live.epochs, live.test_limit, live.robust) == (300, 10, 500, DEFAULT_PAIR[1])


def test_the_warm_up_stores_page_defaults_after_the_tour(monkeypatch):
    """``work`` computes the tour, then each page default, and stores it under its experiment and Config."""
    from ui import configs, tour, warmup

    require(monkeypatch, *tour.MODELS)
    monkeypatch.setattr(tour, "STEPS", ())
    monkeypatch.setattr(warmup, "PAGE_DEFAULTS", (("units", "feature_visualization"),))
    monkeypatch.setattr(warmup, "_page_default", lambda item: configs.units(
        {"features.units.steps": 10, "features.units.n": 2}, ("fmnist-standard", "fmnist-robust-linf")))
    stored = {}
    w = warmup.WarmUp(warmup._items())
    warmup.work(w, lambda experiment, config, result, **_: stored.setdefault((experiment, config), result))
    assert w.state() == {"models": "warm", "units": "warm"}
    assert w.tour_done() and w.done()
    (experiment, config), result = next(iter(stored.items()))
    assert experiment == "feature_visualization" and config.steps == 10
    assert [len(row.units) for row in result.rows] == [2, 2]


def test_tour_done_does_not_wait_for_the_page_defaults():
    from ui import warmup

    w = warmup.WarmUp(["models", "step 1", "inversion"])
    w.set("models", "warm")
    w.set("step 1", "failed")
    assert w.tour_done() and not w.done()
    w.set("inversion", "warm")
    assert w.done()
