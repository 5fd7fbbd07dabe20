"""The style-pair measurements against closed forms: white noise has a flat spectrum (its
energy above 1/4 cycle/pixel is the share of the frequency square outside that circle, and
no grid peak); a period-2 or period-4 dot grid has a large grid score; an image's spectrum
distance to itself is 0 and to a contrast-scaled copy too; the CLI measures a tiny grey pair into JSON."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explorer.experiments import style_pairs as SP


def test_white_noise_is_flat():
    rng = np.random.default_rng(0)
    x = rng.random((128, 128))
    assert SP.high_frequency_share(x) == pytest.approx(1 - math.pi * 0.25 ** 2, abs=0.02)
    assert abs(SP.grid_score(x)) < 0.6


@pytest.mark.parametrize("period", [2, 4])
def test_a_dot_grid_peaks(period):
    rng = np.random.default_rng(1)
    x = rng.random((128, 128)) * 0.2
    x[::period, ::period] += 0.8
    assert SP.grid_score(x) > 2.0
    assert SP.grid_score(x) > SP.grid_score(rng.random((128, 128))) + 1.5


def test_spectrum_distance_is_about_shape():
    rng = np.random.default_rng(2)
    x = rng.random((64, 64, 3))
    assert SP.spectrum_distance(x, x) == pytest.approx(0, abs=1e-12)
    assert SP.spectrum_distance(x, 0.5 * x) == pytest.approx(0, abs=1e-9)
    smooth = np.cumsum(np.cumsum(rng.random((64, 64)), 0), 1)
    assert SP.spectrum_distance(x, smooth / smooth.max()) > 0.5


def test_radial_spectrum_of_a_single_frequency():
    y, x = np.mgrid[:64, :64]
    img = np.cos(2 * math.pi * x * 8 / 64)  # 0.125 cycles/pixel
    r = SP.radial_spectrum(img, bins=32)
    assert int(np.argmax(r)) == int(0.125 / (0.5 / 32))


def test_the_cli_measures_a_tiny_grey_pair_into_json(tiny_root, tmp_path, capsys):
    import json

    from explorer.cli import main

    out, fig = tmp_path / "pairs.json", tmp_path / "pairs.png"
    assert main(["style-pairs", "--pair", "tiny-standard", "tiny-robust", "--size", "32", "--iterations", "2",
                 "--out", str(out), "--figure", str(fig), "--device", "cpu"]) == 0
    doc = json.loads(out.read_text())
    assert [(r["pair"], r["model"], r["robust"]) for r in doc["rows"]] == [(0, "tiny-standard", False),
                                                                          (0, "tiny-robust", True)]
    for r in doc["rows"]:
        assert r["style_loss"] > 0 and r["spectrum_distance"] >= 0 and 0 <= r["high_frequency_share"] <= 1
    assert doc["config"]["pairs"] == [["tiny-standard", "tiny-robust"]] and fig.stat().st_size > 0
    assert "tiny-robust" in capsys.readouterr().out
    assert main(["style-pairs", "--pair", "tiny-standard", "no-such-model", "--out", str(out)]) == 2
