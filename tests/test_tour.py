"""AppTest walks the guided tour on the bundled models and checks each step's key fact.

The walk follows the home page's own tour links (their query strings), opens each page
with those settings and reads what the page computed: the flip, the class drawn by the
robust model, the saliency map on the edges, D_det's relabeled-but-generalizing accuracy,
the lower layer robustness. It also checks that the page computed exactly the Config
the warm-up computes (``ui.tour.Step.config``), so a warm cache answers the first click.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import parse_qs

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from ui import registry  # noqa: E402

from bundled_models import require  # noqa: E402
from explorer.experiments import tour as facts  # noqa: E402
from ui import tour, widgets  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 300
RESULT_KEYS = {"attack_lab": "attack_lab.result", "class_synthesis": "features.synthesis.result",
               "inspector": "inspector.result", "layer_robustness": "layer_robustness.result",
               "style_transfer": "style_transfer.result"}


#: every rerun goes through app.py, as on a server (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("navigation_runs_app_py")


@pytest.fixture
def home(monkeypatch):
    require(monkeypatch, *tour.MODELS, *tour.STYLE_PAIR)
    monkeypatch.setenv("EXPLORER_WARMUP", "0")  # the walk computes each step itself
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def tour_links(at) -> list:
    return [e.proto for e in at.get("page_link") if e.proto.icon == ":material/play_circle:"]


def open_step(at, step: tour.Step, query_string: str):
    at.query_params.clear()
    for k, v in parse_qs(query_string).items():
        at.query_params[k] = v if len(v) > 1 else v[0]
    at.switch_page(step.page.path).run()
    assert not at.exception, (step.title, at.exception)
    return at


def stored_result(at, step: tour.Step):
    value = at.session_state[RESULT_KEYS[step.experiment]]
    return value[1] if isinstance(value, tuple) else value


def test_the_home_page_links_every_step_with_its_settings(home):
    protos = tour_links(home)
    assert [p.label for p in protos] == [s.title for s in tour.STEPS]
    for p, step in zip(protos, tour.STEPS):
        assert parse_qs(p.query_string) == {k: v if isinstance(v, list) else [v]
                                            for k, v in step.query_params.items()}
    assert 5 <= len(tour.STEPS) <= 7
    for step in tour.STEPS:  # two sentences each
        assert len(re.findall(r"[.?!](?:\s|$)", step.caption)) == 2, step.caption


def test_walk_the_tour_on_the_bundled_models(home):
    at = home
    protos = tour_links(at)
    seen = {}
    for proto, step in zip(protos, tour.STEPS):
        at = open_step(at, step, proto.query_string)
        banner = [m.value for m in at.markdown if m.value.startswith("**Tour, step")]
        assert banner and banner[0].startswith(f"**Tour, step {step.number} of {len(tour.STEPS)}"), banner
        onward = [e.proto for e in at.get("page_link") if e.proto.icon == ":material/arrow_forward:"]
        if step.number < len(tour.STEPS):  # the page links the next step, with its settings
            assert parse_qs(onward[0].query_string) == parse_qs(protos[step.number].query_string)
        else:
            assert not onward
        if step.experiment:
            result = stored_result(at, step)
            # the page computed the very Config the warm-up computes: a warm cache answers this click
            assert widgets.cached_result(step.experiment, step.config()) is not None, step.title
            fact = tour.fact(step, result)
            assert fact.holds, (step.title, fact.text)
            seen[step.fact] = (result, fact)
        elif step.fact == "det_generalizes":
            table = next(df.value for df in at.table if "D_det" in set(df.value.get("trained on", [])))
            rows = [{"kind": "det" if r["trained on"] == "D_det" else "", **r} for r in table.to_dict("records")]
            caption = " ".join(str(c.value) for c in at.caption)
            n_test = int(caption.split("Fashion-MNIST, ")[1].split(" real test images")[0])
            fact = facts.det_generalizes(rows, n_test)
            assert fact.holds, fact.text
            seen["det"] = fact
        else:
            raise AssertionError(f"step {step.title!r} computes nothing and checks no fact")

    # the key facts, on the numbers
    flip, _ = seen["flip"]
    standard, robust = flip.attacks
    assert standard.success and standard.pred_after != standard.pred_before
    assert not robust.success and robust.pred_after == robust.pred_before == robust.label
    inspected, _ = seen["saliency"]
    by = {v.model: v for v in inspected.views}
    assert by[tour.STANDARD].eps("linf") < 0.1 < by[tour.ROBUST_LINF].eps("linf")  # the flip of step 1, bisected
    assert math.isfinite(by[tour.STANDARD].eps("l2"))
    assert by[tour.ROBUST_L2].edge_alignment > by[tour.STANDARD].edge_alignment
    layered, _ = seen["layers"]
    r = {(row["model"], row["layer"]): row["R"] for row in layered.rows()}
    layers = [layer for (m, layer) in r if m == tour.STANDARD]
    assert all(r[(tour.ROBUST_L2, layer)] < r[(tour.STANDARD, layer)] for layer in layers)
    assert "D_det" in seen["det"].text and "0% of them correct" in seen["det"].text
    styled, _ = seen["style"]  # the robust style network matches the style's Gram matrices better
    by = {t.style_model: t for t in styled.transfers}
    assert set(by) == set(tour.STYLE_PAIR) and by[tour.STYLE_PAIR[1]].robust and not by[tour.STYLE_PAIR[0]].robust
    assert by[tour.STYLE_PAIR[1]].style_history[-1] < by[tour.STYLE_PAIR[0]].style_history[-1]
    assert [r["kind"] for r in styled.rows()] and styled.size[0] <= 160 and styled.iterations == 60
    # back home, with every step computed, the tour shows each step's fact on the measured numbers
    at.query_params.clear()
    at.switch_page(registry.HOME.path).run()
    for step in tour.STEPS:
        measured = tour.measured(step)
        assert measured is not None and measured.holds, step.title


def test_the_warm_up_fills_the_cache_for_every_computing_step(monkeypatch):
    """``warmup.work`` computes each step's Config and stores it; a page then finds it."""
    require(monkeypatch, *tour.MODELS, *tour.STYLE_PAIR)
    from ui import warmup

    monkeypatch.setattr(warmup, "PAGE_DEFAULTS", ())  # the page defaults: tests/test_warmup.py
    stored = {}
    w = warmup.WarmUp(warmup._items())
    warmup.work(w, lambda experiment, config, result, **_: stored.setdefault((experiment, config), result))
    assert w.done() and set(w.state().values()) == {"warm"}, w.state()
    for step in tour.STEPS:
        if step.experiment:
            result = stored[(step.experiment, step.config())]
            assert tour.fact(step, result).holds
    assert "warm: models, step 1" in w.status_line()


def test_the_fact_functions_on_known_numbers():
    import numpy as np

    rng = np.random.default_rng(0)
    means = rng.random((10, 1, 8, 8)).astype(np.float32)
    start = means.mean(0)
    targets = np.arange(10)
    toward = start[None] + 0.3 * (means - start[None])  # each image moved toward its own class mean
    assert facts.looks_like_target(toward, start, targets, means) == 1.0
    wrong = start[None] + 0.3 * (means[(targets + 1) % 10] - start[None])
    assert facts.looks_like_target(wrong, start, targets, means) == 0.0
    rows = [{"kind": "det", "clean %": 18.1, "train images": 4000}]
    assert facts.det_generalizes(rows, 2000).holds  # 8.1 points = 12 standard errors of 0.67 points
    assert not facts.det_generalizes([{**rows[0], "clean %": 11.5}], 2000).holds  # 2.2 standard errors
    assert not facts.det_generalizes([{"kind": "rand", "clean %": 50.0}], 2000).holds


def test_the_inspector_fact_says_what_pgd_searched_and_never_holds():
    """A search that found no flip is no robustness: the home page's measured text names the eps searched."""
    from types import SimpleNamespace as NS

    eps = {"s": {"linf": 0.05, "l2": 1.0}, "r": {"linf": 0.149, "l2": math.inf}}
    views = tuple(NS(model=m, robust=m == "r", edge_alignment=0.1 if m == "s" else 0.3, eps=eps[m].__getitem__)
                  for m in ("s", "r"))
    fact = facts.saliency(NS(views=views, norms=("linf", "l2"), eps_max=(0.3, 5.0)))
    assert fact.holds
    assert "r: edge alignment 0.30, PGD flips it at linf eps 0.149, PGD found no l2 flip up to eps 5" in fact.text
    assert "holds" not in fact.text


def test_a_tour_link_later_in_a_session_brings_its_models_to_the_sidebar(home):
    """Step 5 names the L2-robust model; the session's sidebar showed the Linf one (the default, and step 1's):
    opening the step's link shows the pair it names, not the one chosen before."""
    at = home
    assert at.sidebar.selectbox(key="pair_robust").value == tour.ROBUST_LINF
    step = tour.STEPS[4]
    assert step.params["pair_robust"] == tour.ROBUST_L2
    params = {k: v for k, v in step.query_params.items() if k != "run"}  # the settings, without computing
    at.query_params.clear()
    at.query_params.update(params)
    at.switch_page(step.page.path).run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="pair_standard").value == tour.STANDARD
    assert at.sidebar.selectbox(key="pair_robust").value == tour.ROBUST_L2
    assert at.session_state["model_pair"].names == (tour.STANDARD, tour.ROBUST_L2)
    at.sidebar.selectbox(key="pair_robust").set_value(tour.ROBUST_LINF).run()  # the user's own choice then stays
    assert at.sidebar.selectbox(key="pair_robust").value == tour.ROBUST_LINF
    assert at.session_state["model_pair"].names == (tour.STANDARD, tour.ROBUST_LINF)
