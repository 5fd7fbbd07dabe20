"""Transferability vs learnability (paper Figure 3): Pearson's r and its interval against known values,
the scatter's chance rule, the sentence the page states, and a tiny CLI run into a temporary results
folder shown on the discussion page."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from explorer import cli
from explorer.charts import discussion as CD
from explorer.experiments import transfer_learnability as TL
from explorer.zoo import build_architecture

# --- Pearson's r and its Fisher-z interval ---------------------------------------------------------

def test_pearson_ci_of_a_hand_computed_case():
    # deviations (-2, -1, 0, 1, 2) and (-1, -2, 1, 0, 2): r = 8 / 10; z = atanh 0.8, half-width 1.96 / sqrt 2
    r, lo, hi = TL.pearson_ci(np.array([1, 2, 3, 4, 5]), np.array([2, 1, 4, 3, 5]))
    assert r == pytest.approx(0.8)
    assert (lo, hi) == pytest.approx((math.tanh(math.atanh(0.8) - 1.959964 / math.sqrt(2)),
                                      math.tanh(math.atanh(0.8) + 1.959964 / math.sqrt(2))), abs=1e-6)
    assert (lo, hi) == pytest.approx((-0.279640, 0.986196), abs=1e-6)  # scipy.stats.pearsonr's interval


def test_pearson_ci_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (4, 6, 12):
        x = rng.random(n)
        y = 0.4 * x + 0.2 * rng.random(n)
        want = stats.pearsonr(x, y)
        ci = want.confidence_interval(0.9)
        assert TL.pearson_ci(x, y, 0.9) == pytest.approx((want.statistic, ci.low, ci.high), abs=1e-9)


def test_pearson_ci_is_nan_where_undefined_and_exact_on_a_line():
    assert all(math.isnan(v) for v in TL.pearson_ci(np.array([0.2, 0.2, 0.2]), np.array([0.1, 0.2, 0.3])))
    r, lo, hi = TL.pearson_ci(np.array([0.1, 0.2, 0.3]), np.array([0.3, 0.1, 0.2]))
    assert r == pytest.approx(-0.5) and math.isnan(lo) and math.isnan(hi)  # three points: no interval
    assert TL.pearson_ci(np.arange(5.0), 2 * np.arange(5.0)) == pytest.approx((1.0, 1.0, 1.0))


# --- the Config ----------------------------------------------------------------------------------

def test_the_default_compares_five_different_architectures_that_build():
    archs = TL.Config().archs
    assert len(archs) >= 5 and len(set(archs)) == len(archs)
    sizes = {a: sum(p.numel() for p in build_architecture(a, 10, 1, 28).parameters()) for a in archs}
    assert len(set(sizes.values())) == len(archs)  # they differ, not one net under five names
    assert sizes["linear"] == 784 * 10 + 10
    with pytest.raises(ValueError, match="differ"):
        TL.Config(archs=("mlp", "mlp", "stage_cnn"))


# --- the chart and the sentence ---------------------------------------------------------------------

def _result(learned, chance=0.1, ci=(0.1, 0.9), r=0.6):
    points = [{"arch": f"a{i}", "attack": "PGD", "transfer": 0.1 * (i + 1), "learned": v, "learned_shifted": 0.3,
               "clean_accuracy": 0.8} for i, v in enumerate(learned)]
    points.append({"arch": "a0", "attack": "non-transferable", "transfer": 0.0, "learned": 0.01,
                   "learned_shifted": 0.7, "clean_accuracy": 0.8})
    return {"points": points, "slope": 0.5, "intercept": 0.02, "correlation": r, "correlation_ci": list(ci),
            "ci_level": 0.95, "chance": chance}


@pytest.mark.parametrize("chance", [0.1, 0.5])
def test_the_scatter_draws_chance_as_a_rule(chance):
    chart = CD.transfer_scatter(_result([0.05, 0.2, 0.3, 0.4], chance=chance))
    rules = [layer for layer in chart.layer if layer.mark.type == "rule"]
    assert len(rules) == 1
    assert list(rules[0].data["accuracy trained on D_det %"]) == [pytest.approx(100 * chance)]
    spec = chart.to_dict()  # it renders
    assert len(spec["layer"]) == 3  # the line, the rule, the points


def test_the_frame_shows_the_shifted_labels():
    frame = CD.transfer_learnability_frame(_result([0.05, 0.2, 0.3, 0.4]))
    assert list(frame["into (y + 1) mod C %"]) == [30.0] * 4 + [70.0]


def test_the_sentence_says_what_the_interval_supports():
    rising = CD.transfer_fit_sentence(_result([0.05, 0.2, 0.3, 0.4], ci=(0.12, 0.95), r=0.8))
    assert rising.startswith("Pearson r = 0.80, 95% CI [0.12, 0.95] (Fisher z, 4 architectures)")
    assert "support a rising trend" in rising and "3 of 4 architectures above chance (10%)" in rising
    assert rising.endswith("; among those 3 alone r = 1.00.")  # (0.2, 0.2), (0.3, 0.3), (0.4, 0.4)
    gap = CD.transfer_fit_sentence(_result([0.05, 0.4, 0.3, 0.2], ci=(0.12, 0.95), r=0.8))
    assert gap.endswith("; among those 3 alone r = -1.00.")  # the trend rests on the gap to the point below
    everyone = CD.transfer_fit_sentence(_result([0.2, 0.3, 0.4, 0.5], ci=(0.12, 0.95), r=0.8))
    assert "4 of 4" in everyone and "alone" not in everyone
    wide = CD.transfer_fit_sentence(_result([0.05, 0.2, 0.3, 0.4], ci=(-0.4, 0.9), r=0.5))
    assert "includes 0: the data do not support a trend" in wide
    assert "too few for an interval" in CD.transfer_fit_sentence(_result([0.05, 0.2, 0.3], ci=(None, None)))


# --- a tiny run through the CLI, shown on the page ------------------------------------------------

@pytest.fixture(scope="module")
def saved(tiny_root, tmp_path_factory):
    """A tiny transfer-learnability result written by the CLI into a temporary results folder."""
    root = tmp_path_factory.mktemp("discussion")
    with pytest.MonkeyPatch.context() as mp:  # no --out: the CLI writes where the page reads, never results/
        mp.setenv("EXPLORER_DISCUSSION_RESULTS", str(root))
        assert cli.main(["transfer-learnability", "--source", "tiny-standard", "--archs", "linear", "mlp",
                         "stage_cnn_tiny", "resnet_small", "--n-train", "100", "--n-attack", "30", "--n-test", "60",
                         "--epochs", "1", "--steps", "2", "--ensemble-arch", "linear", "--ensemble-size", "1",
                         "--device", "cpu"]) == 0
    return root


def test_the_cli_result_has_the_shifted_accuracy_chance_and_the_interval(saved):
    doc = json.loads((saved / "transfer_learnability.json").read_text())
    assert doc["command"].startswith("python -m explorer transfer-learnability --source tiny-standard")
    res = doc["result"]
    assert res["chance"] == 0.1 and res["ci_level"] == 0.95
    assert len(res["points"]) == 8 and {p["attack"] for p in res["points"]} == {"PGD", "non-transferable"}
    for p in res["points"]:
        assert 0 <= p["learned"] + p["learned_shifted"] <= 1  # two disjoint sets of test images
    pgd = [p for p in res["points"] if p["attack"] == "PGD"]
    r, lo, hi = TL.pearson_ci(np.array([p["transfer"] for p in pgd]), np.array([p["learned"] for p in pgd]))
    if math.isnan(r):
        assert res["correlation"] is None
    else:
        assert res["correlation"] == pytest.approx(r, abs=1e-4)  # the JSON keeps 6 decimals of each number
        assert res["correlation_ci"] == pytest.approx([lo, hi], abs=1e-4)
    assert 0 <= res["success"]["PGD"] <= 1 and 0 <= res["det_success"]["PGD"] <= 1


def test_the_page_draws_chance_and_states_the_fit(saved, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from ui.models import ModelPair

    monkeypatch.setenv("EXPLORER_DISCUSSION_RESULTS", str(saved))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "discussion.py"),
                           default_timeout=300)
    at.session_state["model_pair"] = ModelPair("tiny-standard", "tiny-robust")
    at.run()
    assert not at.exception, at.exception
    frame = next(df.value for df in at.table if "into (y + 1) mod C %" in df.value.columns)
    assert len(frame) == 8
    caption = next(c.value for c in at.caption if "Targeted success on the source" in c.value)
    assert "Pearson r" in caption or "No correlation" in caption
    assert "architectures above chance (10%)" in caption and "of D_det" in caption
    scatter = next(e for e in at.main if e.type == "vega_lite_chart")
    spec = json.loads(scatter.proto.spec)
    assert any(layer.get("mark", {}).get("type") == "rule" for layer in spec["layer"])
