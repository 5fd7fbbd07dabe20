"""Hendrycks & Gilmer's filtered training (explorer/experiments/filtered_training.py): the training
images go through the frequency module's filters, the Config refuses bad settings, a tiny run's
Result, the CLI's results file, the chart, and the section on the features page (tiny, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer import cli
from explorer.charts import filtered_training as CF
from explorer.cli.experiments import DISCUSSION
from explorer.experiments import _discussion as D
from explorer.experiments import filtered_training as FT
from explorer.experiments import frequency as F

TINY = dict(arch="mlp", n_train=300, n_test=200, epochs=1, device="cpu")


@pytest.fixture(scope="module")
def spied():
    """A tiny run with every model's training images kept: (result, {label: (images, labels)})."""
    seen = {}
    real = D.train

    def spy(arch, x, y, **kw):
        seen[kw["name"]] = (x.clone(), y.clone())
        return real(arch, x, y, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(D, "train", spy)
    try:
        result = FT.run(FT.Config(low_cutoffs=(0.3,), high_cutoffs=(0.3, 0.6), **TINY))
    finally:
        mp.undo()
    return result, seen


# --- the filters ---------------------------------------------------------------------------------

def _band_energy(x: torch.Tensor, lo: float, hi: float) -> float:
    """Spectral energy of ``x`` (means removed) at lo < rho <= hi."""
    power = FT.spectrum(x)
    rho = np.fft.fftshift(F.radius(*power.shape))
    return float(power[(rho > lo + 1e-9) & (rho <= hi + 1e-9)].sum())


def test_each_model_trains_on_the_frequency_modules_filter_of_the_same_images(spied):
    _, seen = spied
    x, y, _, _ = D.fmnist("train", 300, 0)
    assert sorted(seen) == sorted(["trained on unfiltered images", "trained on low-pass rho 0.3",
                                   "trained on high-pass rho 0.3", "trained on high-pass rho 0.6"])
    assert torch.equal(seen["trained on unfiltered images"][0], x)
    for kind, cutoff in (("low", 0.3), ("high", 0.3), ("high", 0.6)):
        images, labels = seen[f"trained on {kind}-pass rho {cutoff:g}"]
        assert torch.equal(labels, y)
        torch.testing.assert_close(images, F.fourier_filter(x, kind, cutoff), rtol=0, atol=0)


def test_high_pass_training_images_lose_their_low_frequencies_and_low_pass_their_high_ones(spied):
    _, seen = spied
    x = seen["trained on unfiltered images"][0]
    high = seen["trained on high-pass rho 0.3"][0]
    low = seen["trained on low-pass rho 0.3"][0]
    # the clamp to [0, 1] puts a little back (measured: 0.2% and 1.3% of the original's band energy)
    assert _band_energy(high, 0, 0.3) < 0.05 * _band_energy(x, 0, 0.3)
    assert _band_energy(high, 0.3, 1) > 0.5 * _band_energy(x, 0.3, 1)
    assert _band_energy(low, 0.3, 1) < 0.05 * _band_energy(x, 0.3, 1)
    assert _band_energy(low, 0, 0.3) > 0.5 * _band_energy(x, 0, 0.3)
    # high-pass keeps each image's mean (before the clamp): the picture stays displayable
    unclamped = F.fourier_filter(x, "high", 0.3, clamp=False)
    torch.testing.assert_close(unclamped.mean((-2, -1)), x.mean((-2, -1)), rtol=0, atol=1e-5)


def test_energy_and_frequencies_kept_split_the_spectrum_between_the_two_filters(spied):
    result, _ = spied
    low, high = 0, 1  # low-pass 0.3, high-pass 0.3 (then high-pass 0.6)
    assert result.kinds[:2] == ("low", "high") and result.cutoffs[low] == result.cutoffs[high] == 0.3
    assert result.energy_kept[low] + result.energy_kept[high] == pytest.approx(1.0)
    # the mean is kept by both: one of the 28 x 28 entries counted twice
    assert result.frequencies_kept[low] + result.frequencies_kept[high] == pytest.approx(1 + 1 / 784)
    x, _, _, _ = D.fmnist("train", 300, 0)
    assert result.energy_kept[high] == pytest.approx(_band_energy(x, 0.3, 1) / _band_energy(x, 0, 1))
    assert result.energy_kept[2] < result.energy_kept[1]  # a higher high-pass cutoff keeps less


# --- the Config ----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [dict(dataset="mnist"), dict(arch="no_such_net"), dict(low_cutoffs=(0.0,)),
                                 dict(high_cutoffs=(1.0,)), dict(low_cutoffs=(-0.1,)), dict(high_cutoffs=(True,)),
                                 dict(low_cutoffs="0.2"), dict(low_cutoffs=(), high_cutoffs=()), dict(epochs=0),
                                 dict(n_train=5), dict(n_test=0)])
def test_the_config_refuses_bad_settings(bad):
    with pytest.raises(ValueError):
        FT.Config(**bad)


def test_the_config_sorts_its_cutoffs_and_lists_low_pass_first():
    c = FT.Config(low_cutoffs=(0.3, 0.1, 0.3), high_cutoffs=[0.5, 0.2])
    assert c.low_cutoffs == (0.1, 0.3) and c.high_cutoffs == (0.2, 0.5)
    assert c.settings == (("low", 0.1), ("low", 0.3), ("high", 0.2), ("high", 0.5))
    assert FT.Config(low_cutoffs=()).settings == (("high", 0.2), ("high", 0.4), ("high", 0.6))
    assert FT.Config.full().n_train is None and FT.Config.full().n_test is None
    assert FT.Config(dataset="cifar10").dataset == "cifar10"  # the data is only read by run()
    hash(c)  # pages key their cache on it


# --- a tiny run ----------------------------------------------------------------------------------

def test_a_tiny_run_fills_one_entry_per_setting_and_the_baseline_beats_chance(spied):
    result, _ = spied
    assert result.kinds == ("low", "high", "high")
    np.testing.assert_array_equal(result.cutoffs, [0.3, 0.3, 0.6])
    for field in ("real_accuracy", "filtered_accuracy", "baseline_on_filtered", "frequencies_kept", "energy_kept"):
        values = getattr(result, field)
        assert values.shape == (3,) and np.all((values >= 0) & (values <= 1)), field
    assert result.chance == 0.1 and len(result.class_names) == 10
    assert (result.n_train, result.n_test, result.epochs, result.dataset) == (300, 200, 1, "fashion-mnist")
    # one epoch of an MLP on 300 images: about 50% on 200 test images (measured 52.5%)
    assert result.baseline_accuracy > 0.3
    assert [r["filter"] for r in result.rows()] == ["low-pass", "high-pass", "high-pass"]


# --- the CLI -------------------------------------------------------------------------------------

def test_the_cli_command_writes_the_results_file(tmp_path, monkeypatch, capsys):
    assert DISCUSSION["filtered-training"][0] == "filtered_training"
    monkeypatch.setenv("EXPLORER_DISCUSSION_RESULTS", str(tmp_path))
    assert cli.main(["filtered-training", "--arch", "mlp", "--n-train", "200", "--n-test", "100", "--epochs", "1",
                     "--low-cutoffs", "0.2", "--high-cutoffs", "0.4", "0.6", "--device", "cpu"]) == 0
    doc = json.loads((tmp_path / "filtered_training.json").read_text())
    assert doc == D.read_results("filtered_training")
    assert doc["experiment"] == "filtered_training"
    assert doc["command"].startswith("python -m explorer filtered-training")
    assert doc["config"]["high_cutoffs"] == [0.4, 0.6] and doc["config"]["arch"] == "mlp"
    assert doc["commenter"] == FT.COMMENTER
    assert doc["result"]["kinds"] == ["low", "high", "high"] and len(doc["result"]["real_accuracy"]) == 3
    assert cli.main(["filtered-training", "--low-cutoffs", "1.5", "--device", "cpu"]) == 2  # refused, no traceback


# --- the chart and table -------------------------------------------------------------------------

def test_the_chart_and_table_show_the_results_numbers_in_percent(spied):
    result = D.jsonable(spied[0])
    chart = CF.accuracy_chart(result)
    real, same, rules = chart.layer[0].data, chart.layer[1].data, chart.layer[2].data
    np.testing.assert_allclose(real["accuracy %"], np.round(100 * np.array(result["real_accuracy"]), 1))
    np.testing.assert_allclose(same["accuracy %"], np.round(100 * np.array(result["filtered_accuracy"]), 1))
    np.testing.assert_allclose(real["cutoff"], result["cutoffs"])
    assert list(rules["accuracy %"]) == [round(100 * result["baseline_accuracy"], 1), 10.0]
    table = CF.table_frame(result, FT.COMMENTER)
    assert table["trained on"][0] == "unfiltered images" and len(table) == 4
    assert list(table["Hendrycks & Gilmer, ImageNet top-1 %"]) == ["", "> 30", "> 50", "> 50"]
    assert table["real test set %"][3] == round(100 * result["real_accuracy"][2], 1)


# --- the page ------------------------------------------------------------------------------------

def test_the_features_page_shows_the_saved_run_and_a_live_one(tiny_root, tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from ui.models import ModelPair

    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    monkeypatch.setenv("EXPLORER_DISCUSSION_RESULTS", str(tmp_path))
    page = str(Path(__file__).resolve().parent.parent / "pages" / "features.py")

    def open_page() -> AppTest:
        at = AppTest.from_file(page, default_timeout=300)
        at.session_state["model_pair"] = ModelPair("tiny-standard", "tiny-robust")
        at.run()
        assert not at.exception, at.exception
        return at

    at = open_page()
    assert "Trained on filtered images (Hendrycks & Gilmer)" in [s.value for s in at.subheader]
    assert any("No saved result yet: run `python -m explorer filtered-training`" in i.value for i in at.info)
    markdown = "\n".join(m.value for m in at.markdown)
    assert "models classify high-pass filtered images far above chance" not in markdown  # the old attribution

    assert cli.main(["filtered-training", "--arch", "mlp", "--n-train", "200", "--n-test", "100", "--epochs", "1",
                     "--low-cutoffs", "0.2", "--high-cutoffs", "0.6", "--device", "cpu"]) == 0
    saved = D.read_results("filtered_training")["result"]
    at = open_page()
    table = next(df.value for df in at.table if "real test set %" in df.value.columns)
    assert list(table["real test set %"]) == [round(100 * v, 1) for v in
                                             [saved["baseline_accuracy"], *saved["real_accuracy"]]]
    captions = "\n".join(c.value for c in at.caption)
    assert "`python -m explorer filtered-training" in captions and "Departures from Hendrycks & Gilmer" in captions
    markdown = "\n".join(m.value for m in at.markdown)
    assert f"**{saved['real_accuracy'][1]:.1%}** on the real test set" in markdown  # high-pass at 0.6

    at.number_input(key="features.filtered.n_train").set_value(100)
    at.number_input(key="features.filtered.epochs").set_value(1)
    button = next(b for b in at.button if b.label.startswith("Run the small version"))
    button.click().run()
    assert not at.exception, at.exception
    assert "live run" in "\n".join(c.value for c in at.caption)
    table = next(df.value for df in at.table if "real test set %" in df.value.columns)
    assert len(table) == 7  # the baseline and the default three cutoffs per filter
