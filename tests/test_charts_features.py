"""Charts of the feature views: the numbers they draw are the Result's."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from explorer import charts
from explorer.charts import features as CF


def test_spectrum_image_is_log_scaled_into_0_1():
    p = np.zeros((28, 28))
    p[14, 14], p[0, 0] = 1e6, 1.0
    img = CF.spectrum_image(p)
    assert img[14, 14] == pytest.approx(1.0) and img.min() == 0
    assert 0 < img[0, 0] < 0.01
    assert CF.spectrum_image(np.zeros((4, 4))).max() == 0


def test_signed_image_puts_zero_at_mid_grey():
    d = np.zeros((1, 28, 28), dtype=np.float32)
    d[0, 3, 3], d[0, 5, 5] = 0.2, -0.1
    img, scale = CF.signed_image(d)
    assert scale == pytest.approx(2.5) and img[0, 0, 0] == pytest.approx(0.5)
    assert img[0, 3, 3] == pytest.approx(1.0) and img[0, 5, 5] == pytest.approx(0.25)


def _heat_rows():
    return [{"model": m, "kind": "k", "u": u, "v": v, "error": 0.1 * (abs(u) + abs(v)) / 6}
            for m in ("a", "b") for u in range(-3, 4) for v in range(-3, 4)]


def test_altair_charts_carry_the_rows():
    heat = CF.heatmap_chart(_heat_rows()).to_dict()
    data = next(iter(heat["datasets"].values()))
    assert len(data) == 98 and heat["encoding"]["color"]["scale"]["domain"] == [0, 1]
    energy = CF.energy_chart([{"source": "s", "rho": r, "fraction": r} for r in (0, 0.5, 1)], cutoff=0.3).to_dict()
    assert any(layer.get("mark", {}).get("type") == "rule" for layer in energy["layer"])
    curve = [{"alpha": a, "usefulness": 0.5, "robust_l2": a - 0.5, "robust_linf": a - 0.4} for a in (0, 0.5, 1)]
    cont = CF.containment_chart(curve, "linf", 0.5).to_dict()
    values = [row["value"] for d in cont["datasets"].values() for row in d if "quantity" in row]
    assert sorted(values) == pytest.approx(sorted([0.5] * 3 + [-0.4, 0.1, 0.6]))


def test_features_scatter_marks_the_frontier_and_the_pick():
    rows = [{"feature": f"a{i + 1}", "index": i, "usefulness": u, "non_robustness": n, "robust": u - n,
             "pareto": i in (0, 2), "non_robust": n > u}
            for i, (u, n) in enumerate([(0.8, 0.1), (0.1, 0.5), (0.3, 0.05)])]
    chart = CF.features_scatter(rows, selected=1, extra=[{"feature": "ensemble", "usefulness": 0.3,
                                                          "non_robustness": 0.7}]).to_dict()
    kinds = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in chart["layer"]]
    assert kinds.count("point") == 2 and "circle" in kinds and "text" in kinds
    assert chart["layer"][1]["encoding"]["y"]["scale"]["type"] == "log"


def test_figures_have_one_row_per_model():
    img = np.full((1, 28, 28), 0.5, dtype=np.float32)
    syn = NS(start="grey", eps=8.0, steps=60, targets=np.arange(3), class_names=("a", "b", "c"),
             rows=[NS(model=m, kind="k", images=np.stack([img] * 3), target_prob=np.ones(3),
                      reached=np.array([True, True, False]), n_reached=2) for m in ("s", "r")])
    fig = CF.synthesis_figure(syn)
    tile = charts.tile_size(28, 28, 112)
    assert fig.size == charts.figure_size(2, 3, tile)



def test_model_panels_keep_the_pair_order():
    rows = [r for r in _heat_rows()]
    for r in rows:
        r["model"] = {"a": "standard-z", "b": "robust-a"}[r["model"]]
    chart = CF.heatmap_chart(rows).to_dict()
    assert chart["encoding"]["column"]["sort"] == ["standard-z", "robust-a"]
