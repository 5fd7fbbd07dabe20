"""AppTest of pages/layer_robustness.py: the chart's data, the sentence and the table, on the
tiny pair of the fixture (and on the bundled pair when it has landed in checkpoints/)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from explorer import zoo  # noqa: E402
from explorer.experiments import layer_robustness as LR  # noqa: E402
from ui import registry  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "layer_robustness.py")
APP = str(ROOT / "app.py")
KEY = "layer_robustness"
TIMEOUT = 300
PAIR = ("tiny-standard", "tiny-robust")
BUNDLED = ("fmnist-standard", "fmnist-robust-linf")
STAGES = ["stage1", "stage2", "stage3", "stage4", "penultimate"]


def chart_data(at) -> tuple[dict, pd.DataFrame]:
    """The one vega-lite chart of the page: its spec and its data as a DataFrame."""
    charts = [e for e in at.main if e.type == "vega_lite_chart"]
    assert len(charts) == 1, [e.type for e in at.main]
    proto = charts[0].proto
    spec = json.loads(proto.spec)
    (dataset,) = proto.datasets
    assert spec["data"]["name"] == dataset.name
    return spec, pa.ipc.open_stream(dataset.data.data).read_all().to_pandas()


def run_page(at, n_images: int, steps: int):
    at.number_input(key=f"{KEY}.n_images").set_value(n_images)
    at.number_input(key=f"{KEY}.steps").set_value(steps)
    at.button[0].click().run()  # the form's Run button
    assert not at.exception, at.exception
    return at


@pytest.fixture
def page(tiny_root, monkeypatch):
    from ui.models import ModelPair

    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["model_pair"] = ModelPair(*PAIR)  # what app.py's sidebar stores
    at.run()
    assert not at.exception, at.exception
    return at


def test_page_charts_R_per_layer_for_the_pair(page):
    assert page.multiselect(key=f"{KEY}.models").value == list(PAIR)
    assert page.slider(key=f"{KEY}.eps.fashion-mnist.linf").value == pytest.approx(0.1)
    at = run_page(page, 8, 3)
    spec, df = chart_data(at)
    # one point per (model, layer), layers in network order on the x axis
    assert list(df["model"]) == [m for m in PAIR for _ in STAGES]
    assert list(df["layer"]) == STAGES * 2
    layer_layers = [layer["encoding"]["x"] for layer in spec["layer"]]
    assert all(x["field"] == "layer" and x["sort"] == STAGES for x in layer_layers)
    assert {layer["encoding"]["y"]["field"] for layer in spec["layer"]} == {"R", "ci_low"}
    assert (df["ci_low"] <= df["R"]).all() and (df["R"] <= df["ci_high"]).all()
    # the chart shows what the experiment computes for the same settings
    expected = LR.run(LR.Config(models=PAIR, norm="linf", eps=0.1, n_images=8, steps=3, device="cpu"))
    np.testing.assert_allclose(df["R"], [r.ratio for r in expected.layers], rtol=1e-6)
    # the robust model lies below the standard one at every layer, and the sentence says so
    r = df.pivot(index="layer", columns="model", values="R").loc[STAGES]
    assert (r["tiny-robust"] < r["tiny-standard"]).all(), r
    sentence = "tiny-robust has lower R than tiny-standard at 5 of 5 layers"
    assert any(sentence in m.value for m in at.markdown)
    table = at.table[0].value
    assert list(table["layer"]) == STAGES * 2 and "numerator" in table.columns


def test_result_survives_a_rerun_without_recomputing(page, monkeypatch):
    """A rerun redraws the kept result; other settings (the norm, the models) hide it behind a note
    instead of showing the Linf result under the L2 slider; back to its settings, it shows again."""
    at = run_page(page, 6, 2)
    calls = []
    monkeypatch.setattr(LR, "run", lambda *a, **k: calls.append(1))
    at.run()
    assert calls == [] and len(chart_data(at)[1]) == 10
    at.radio(key=f"{KEY}.norm").set_value("l2").run()  # moves a widget outside the form
    assert not at.exception, at.exception
    assert not [e for e in at.main if e.type == "vega_lite_chart"] and "Result" not in [h.value for h in at.header]
    assert any(i.value.startswith("Inputs changed") for i in at.info)
    at.radio(key=f"{KEY}.norm").set_value("linf").run()
    assert calls == [] and len(chart_data(at)[1]) == 10 and not any(i.value.startswith("Inputs") for i in at.info)
    at.multiselect(key=f"{KEY}.models").set_value(["tiny-robust"]).run()  # another model: hidden again
    assert not [e for e in at.main if e.type == "vega_lite_chart"] and calls == []


def test_one_model_and_no_model(page):
    page.multiselect(key=f"{KEY}.models").set_value(["tiny-robust"]).run()
    at = run_page(page, 4, 2)
    _, df = chart_data(at)
    assert set(df["model"]) == {"tiny-robust"} and list(df["layer"]) == STAGES
    assert any("has its lowest R at" in m.value for m in at.markdown)
    at.multiselect(key=f"{KEY}.models").set_value([]).run()
    assert at.button[0].disabled


def test_page_in_the_app_reads_the_sidebar_pair(tiny_root, monkeypatch):
    """In the navigation, the page defaults to the pair chosen in the sidebar."""
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    assert registry.LAYER_ROBUSTNESS in registry.PAGES
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    at = at.switch_page(registry.LAYER_ROBUSTNESS.path).run()
    assert not at.exception, at.exception
    assert at.multiselect(key=f"{KEY}.models").value == list(at.session_state["model_pair"].names) == list(PAIR)


def _bundled_available() -> bool:
    rows = {r["name"]: r["available"] for r in zoo.list_models(zoo.DEFAULT_CHECKPOINTS)}
    return all(rows.get(n) for n in BUNDLED)


@pytest.mark.skipif(not _bundled_available(), reason="the bundled fmnist-robust-linf has not landed in checkpoints/")
def test_page_with_the_bundled_pair(monkeypatch):
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(zoo.DEFAULT_CHECKPOINTS))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    at.multiselect(key=f"{KEY}.models").set_value(list(BUNDLED)).run()
    at = run_page(at, 16, 10)
    _, df = chart_data(at)
    r = df.pivot(index="layer", columns="model", values="R").loc[STAGES]
    lower = r["fmnist-robust-linf"] < r["fmnist-standard"]
    # every stage after the first (stage 1 is the exception explained in test_layer_robustness.py)
    assert lower.loc[STAGES[1:]].all(), r
    sentence = f"fmnist-robust-linf has lower R than fmnist-standard at {int(lower.sum())} of 5 layers"
    assert any(sentence in m.value for m in at.markdown), [m.value for m in at.markdown]
