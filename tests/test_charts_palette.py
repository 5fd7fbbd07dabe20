"""Every chart that tells standard from robust models apart uses the one pair of colours
(explorer.charts.palette), read from the Vega-Lite spec the page would render."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from explorer import charts
from explorer.charts import features as CF
from explorer.charts import layers as CL
from explorer.charts import palette
from explorer.charts import style as CS

STD, ROB = "fmnist-standard", "fmnist-robust-linf"
KINDS = {STD: "standard", ROB: "robust (linf eps 0.1)"}


def colour_scales(spec) -> list[dict]:
    """Every colour encoding's scale (domain -> range) anywhere in a spec dict."""
    found = []
    if isinstance(spec, dict):
        enc = spec.get("encoding")
        if isinstance(enc, dict) and isinstance(enc.get("color"), dict) and "field" in enc["color"]:
            scale = enc["color"].get("scale") or {}
            found.append(dict(zip(scale.get("domain", []), scale.get("range", []))))
        for v in spec.values():
            found += colour_scales(v)
    elif isinstance(spec, list):
        for v in spec:
            found += colour_scales(v)
    return found


def kind_colours(chart, labels: dict) -> None:
    """Every colour scale of ``chart`` maps each label to its kind's colour; together the
    labels use exactly the two colours."""
    scales = colour_scales(chart.to_dict())
    assert scales, "no colour encoding with a scale"
    for scale in scales:
        for label, kind in labels.items():
            assert scale.get(label) == palette.KIND_COLOURS[kind], (label, scale)
        assert {scale[label] for label in labels} == {palette.STANDARD, palette.ROBUST}


def test_the_pair_is_okabe_ito_and_neutral_series_use_neither():
    assert (palette.STANDARD, palette.ROBUST) == ("#D55E00", "#0072B2")
    assert palette.kind_of("robust (l2 3)") == "robust" and palette.kind_of("standard") == "standard"
    assert palette.kind_of("white noise") is None and palette.kind_of("non-robust") is None
    scale = palette.kind_scale(["a (standard)", "white noise", "b (robust (l2 1))"]).to_dict()
    assert scale["range"][0] == palette.STANDARD and scale["range"][2] == palette.ROBUST
    assert scale["range"][1] not in (palette.STANDARD, palette.ROBUST)


def test_zoo_accuracy_curve():
    rows = [{"model": m, "norm": n, "eps": e, "accuracy": a} for m in (STD, ROB)
            for n, e, a in (("none", 0.0, 0.9), ("linf", 0.1, 0.5), ("l2", 1.0, 0.4))]
    kind_colours(charts.accuracy_curve(rows, kinds=KINDS), {STD: "standard", ROB: "robust"})
    # names that do not say their kind (Madry's): the page passes the zoo's kinds, or rows carry them
    rows = [{**r, "model": "madry-l2-3" if r["model"] == ROB else "madry-nat",
             "kind": "robust (l2 3)" if r["model"] == ROB else "standard"} for r in rows]
    kind_colours(charts.accuracy_curve(rows), {"madry-nat": "standard", "madry-l2-3": "robust"})


@pytest.mark.parametrize("layers_b", [["a", "b"], ["c", "d"]])  # shared axis, and one panel per model
def test_layer_robustness_chart(layers_b):
    rows = [{"model": m, "kind": KINDS[m], "layer": lay, "index": i, "R": 0.5, "ci_low": 0.4, "ci_high": 0.6}
            for m, layers in ((STD, ["a", "b"]), (ROB, layers_b)) for i, lay in enumerate(layers)]
    kind_colours(CL.layer_robustness_chart(rows), {STD: "standard", ROB: "robust"})


def test_feature_charts():
    labels = {f"{m} ({k})": k.split()[0] for m, k in KINDS.items()}
    rows = [{"source": s, "rho": r, "fraction": r} for s in [*labels, "clean image (mean removed)", "white noise"]
            for r in (0.0, 0.5, 1.0)]
    kind_colours(CF.energy_chart(rows, cutoff=0.3), labels)
    result = NS(inversions=[NS(model=m, kind=k, loss_history=np.array([1.0, 0.5])) for m, k in KINDS.items()])
    kind_colours(CF.distance_chart(result), labels)
    rows = [{"model": m, "kind": k, "filter": f, "cutoff": c, "accuracy": 0.5} for m, k in KINDS.items()
            for f in ("low-pass", "high-pass") for c in (0.2, 0.8)]
    kind_colours(CF.cutoff_accuracy_chart(rows), {STD: "standard", ROB: "robust"})


def test_style_loss_chart():
    h = np.array([2.0, 1.0])
    result = NS(single_layer=False, transfers=[NS(style_model=m, kind=k, layer_text="all", loss_history=h,
                                                  style_history=h, content_history=h) for m, k in KINDS.items()])
    kind_colours(CS.loss_chart(result), {STD: "standard", ROB: "robust"})


def test_zoo_accuracy_curve_has_one_eps_axis_per_norm():
    rows = [{"model": m, "norm": n, "eps": e, "accuracy": 0.5} for m in (STD, ROB)
            for n, e in (("none", 0.0), ("linf", 0.05), ("linf", 0.1), ("l2", 1.0), ("l2", 2.0))]
    spec = charts.accuracy_curve(rows, title="t", kinds=KINDS).to_dict()
    axes = {p["encoding"]["x"]["title"]: p["encoding"]["x"]["scale"]["domain"] for p in spec["hconcat"]}
    assert axes == {"L2 eps": [0, 2.0], "Linf eps": [0, 0.1]}
    assert spec["resolve"]["scale"]["x"] == "independent"
    one = charts.accuracy_curve([r for r in rows if r["norm"] != "l2"]).to_dict()
    assert one["encoding"]["x"]["title"] == "Linf eps" and one["encoding"]["x"]["scale"]["domain"] == [0, 0.1]
