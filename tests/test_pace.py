"""A run says how long it will take before it starts (``ui.pace``): the pace of this server's last run of
the same view on the same models, times the new run's work (``work(config)`` of each slow experiment)."""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

import pytest

from explorer.experiments import EXPERIMENTS
from ui import pace

PAGES = Path(__file__).resolve().parent.parent / "pages"

#: The experiments a page runs on a click and that can take long: each states its work.
SLOW = ("attack_lab", "perturbation_spectrum", "inspector", "class_synthesis", "inversion", "feature_visualization",
        "frequency", "fourier_heatmap", "layer_robustness", "zoo_report", "style_transfer", "squares")


@pytest.fixture(autouse=True)
def _fresh_pace():
    pace.clear()
    yield
    pace.clear()


def _defaults() -> list[tuple[str, object]]:
    """(experiment, Config) of every tour step and warm-up page default: what a fresh server runs."""
    from ui import tour, warmup

    out = [(s.experiment, s.config()) for s in tour.STEPS if s.experiment]
    out += [(e, warmup._page_default(item)) for item, e in warmup.PAGE_DEFAULTS]
    return out


def test_every_slow_experiment_states_its_work():
    for name in SLOW:
        assert name in EXPERIMENTS
        assert callable(getattr(importlib.import_module(f"explorer.experiments.{name}"), "work", None)), name


def test_work_is_positive_and_grows_with_the_steps(tiny_root):
    seen = set()
    for experiment, config in _defaults():
        w = pace._work(experiment, config)
        if experiment not in SLOW:
            continue
        seen.add(experiment)
        assert w is not None and w > 0, (experiment, w)
        for field in ("steps", "iterations", "n_images", "epochs"):
            if hasattr(config, field) and isinstance(getattr(config, field), int):
                more = dataclasses.replace(config, **{field: 2 * getattr(config, field)})
                assert pace._work(experiment, more) > w, (experiment, field)
    assert {"attack_lab", "inversion", "feature_visualization", "layer_robustness", "squares"} <= seen


def test_the_estimate_is_the_last_pace_times_the_new_work(tiny_root):
    from explorer.experiments import attack_lab

    (experiment, config), = [(e, c) for e, c in _defaults() if e == "attack_lab"][:1]
    assert pace.estimate(experiment, config) is None  # nothing run yet: nothing guessed
    assert pace.line(experiment, config) == ""
    pace.record(experiment, config, 6.0)
    assert pace.estimate(experiment, config) == pytest.approx(6.0)
    five_times = dataclasses.replace(config, steps=5 * config.steps)
    assert pace.estimate(experiment, five_times) == pytest.approx(30.0)
    assert pace.line(experiment, five_times).startswith("Expected: about 30 s")
    assert "about 2 min" in pace.line(experiment, dataclasses.replace(config, steps=20 * config.steps))
    # other models run at another pace: no estimate from this one
    other = dataclasses.replace(config, models=("tiny-standard", "tiny-robust"))
    assert pace.estimate(experiment, other) is None
    assert attack_lab.work(config) == len(config.models) * config.steps * config.restarts


def test_runs_without_work_are_not_kept():
    @dataclasses.dataclass(frozen=True)
    class Plain:
        models: tuple = ("a",)

    pace.record("constructed_table", Plain(), 10.0)  # the table says its own time left, by phases
    assert pace.estimate("constructed_table", Plain()) is None


def test_a_page_says_before_the_run_how_long_it_will_take(tiny_root, monkeypatch):
    """The inspector, run once, then with four times the PGD steps: its status says the expected time first,
    at the first run's pace (made slower here, so the line appears: tiny models run in milliseconds)."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from ui.models import ModelPair

    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(str(PAGES / "inspector.py"), default_timeout=300)
    at.session_state["model_pair"] = ModelPair("tiny-standard", "tiny-robust")
    at.run()
    at.number_input(key="inspector.steps").set_value(2)
    at.number_input(key="inspector.iterations").set_value(2)
    next(b for b in at.button if b.label == "Inspect").click().run()
    assert not at.exception, at.exception
    assert not [c for c in at.caption if c.value.startswith("Expected:")]  # the first run: nothing known
    (key, first), = pace._PACE.items()
    pace._PACE[key] = pace.Pace(seconds=5.0, work=first.work)  # as if that run had taken 5 s
    at.number_input(key="inspector.steps").set_value(8)
    next(b for b in at.button if b.label == "Inspect").click().run()
    assert not at.exception, at.exception
    said = [c.value for c in at.caption if c.value.startswith("Expected:")]
    assert said and re.match(r"Expected: about 20 s, at the pace of this server's last run", said[0]), said
