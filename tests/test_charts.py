"""charts: amplification, image conversion, the downloadable figure and the altair specs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from explorer import charts
from explorer.charts import attack_lab as charts_attack
from explorer.experiments import attack_lab as AL


def test_amplify_maps_zero_to_half_and_peak_to_the_ends():
    d = np.array([[[0.0, 0.02, -0.05, 0.05]]], np.float32)
    img, scale = charts.amplify(d)
    assert scale == pytest.approx(10.0)
    np.testing.assert_allclose(img[0, 0], [0.5, 0.7, 0.0, 1.0], atol=1e-6)
    zero, s0 = charts.amplify(np.zeros((1, 2, 2)))
    assert np.all(zero == 0.5) and s0 == 1.0
    # a given scale is used as is, and clipped to [0, 1]
    img, scale = charts.amplify(d, scale=20.0)
    assert scale == 20.0 and img.max() == 1.0 and img[0, 0, 1] == pytest.approx(0.9)


def test_amplify_agrees_with_the_experiments_factor():
    d = np.random.default_rng(0).normal(0, 0.03, (3, 8, 8)).astype(np.float32)
    assert charts.amplify(d)[1] == pytest.approx(AL.amplification_factor(d))


def test_to_pil_layouts_and_upscale():
    chw = np.zeros((1, 28, 28), np.float32)
    chw[0, 0, 0] = 1.0
    pil = charts.to_pil(chw)
    assert pil.mode == "L" and pil.size == (168, 168)  # 28 * 6
    assert pil.getpixel((5, 5)) == 255 and pil.getpixel((6, 6)) == 0  # nearest: one pixel -> 6x6 block
    rgb = charts.to_pil(np.full((3, 224, 224), 0.5, np.float32))
    assert rgb.mode == "RGB" and rgb.size == (224, 224) and rgb.getpixel((0, 0)) == (128, 128, 128)
    hwc = charts.to_pil(np.zeros((32, 40, 3), np.uint8), min_tile=None)
    assert hwc.size == (40, 32)
    with pytest.raises(ValueError):
        charts.to_pil(np.zeros((4, 4, 4)))


def test_figure_png_has_the_expected_size():
    img = np.random.default_rng(1).random((1, 28, 28)).astype(np.float32)
    rows = [("standard", [(img, "a\nb"), (img, "c"), (img, "d")]), ("robust", [(img, "e"), (img, "f"), (img, "g")])]
    png = charts.png_bytes(charts.figure(rows, title="t"))
    fig = Image.open(io.BytesIO(png))
    # 3 tiles of 168 px and 4 gaps of 8; title line + 2 rows of (heading, tile, 2 caption lines, gap) + gap
    assert charts.LINE == 20 and charts.PAD == 8
    assert fig.size == (3 * 168 + 4 * 8, (20 + 8) + 2 * (20 + 168 + 2 * 20 + 8) + 8) == (536, 508)
    assert fig.mode == "RGB"
    # the first tile sits below the top gap, the title line and the heading: y = 8 + 28 + 20
    tile = np.asarray(fig)[56:56 + 168, 8:8 + 168, 0].astype(int)
    expected = np.rint(np.kron(img[0], np.ones((6, 6))) * 255)
    assert np.abs(tile - expected).max() <= 1


def test_a_wide_figure_row_wraps_evenly_and_keeps_its_tile_size():
    """Ten 112-px tiles do not fit in FIGURE_WIDTH: two lines of five, each tile still 112 px (a
    figure shown shrunk to its column had 65-px tiles with 10-px labels on a projector)."""
    assert charts.figure_columns(8, 112) == 8  # 8 x 120 + 8 = 968 <= 1000
    assert charts.figure_columns(10, 112) == 5 and charts.figure_columns(9, 112) == 5
    assert charts.figure_columns(16, 112) == 8 and charts.figure_columns(17, 112) == 6
    assert charts.figure_columns(3, 2000) == 1
    img = np.zeros((1, 28, 28), np.float32)
    marked = img.copy()
    marked[0, :, :] = 1.0
    cells = [(img, "x")] * 5 + [(marked, "sixth")] + [(img, "x")] * 4
    fig = charts.figure([("row", cells)], min_tile=112)
    assert fig.size == charts.figure_size(1, 5, (112, 112), title=False, lines=2) == (5 * 112 + 6 * 8, 20 + 2 * (112 + 40 + 8) + 8)
    assert fig.width <= charts.FIGURE_WIDTH
    # the sixth tile (white) opens the second line, below the first line's tiles and captions
    y = 8 + 20 + 112 + 2 * 20 + 8
    a = np.asarray(fig)
    assert a[y + 1:y + 111, 9:119, 0].min() == 255
    assert a[8 + 20 + 1:8 + 20 + 111, 9:119, 0].max() == 0


def test_figure_rejects_mixed_sizes():
    with pytest.raises(ValueError, match="one size"):
        charts.figure([("x", [(np.zeros((1, 28, 28)), ""), (np.zeros((1, 32, 32)), "")])])


def test_topk_frame_is_the_union_of_both_top_ks():
    before = np.array([0.5, 0.3, 0.1, 0.05, 0.05])
    after = np.array([0.05, 0.05, 0.1, 0.2, 0.6])
    df = charts.topk_frame(before, after, list("abcde"), k=2)
    assert list(dict.fromkeys(df["class"])) == ["a", "b", "e", "d"]
    assert df[(df["class"] == "e") & (df["stage"] == "after")]["probability"].item() == pytest.approx(0.6)
    spec = charts.topk_chart(before, after, list("abcde"), k=2).to_dict()
    assert spec["mark"]["type"] == "bar"


def test_history_and_accuracy_charts_build():
    loss = np.array([[2.0, 1.0, 0.5], [2.0, 0.9, 0.4]])
    df = charts.history_frame(loss, np.exp(-loss))
    assert len(df) == 6 and list(df["step"]) == [0, 1, 2, 0, 1, 2]
    assert charts.history_chart(loss, np.exp(-loss)).to_dict()["vconcat"]
    rows = [{"model": "m", "norm": "none", "eps": 0, "accuracy": 0.9},
            {"model": "m", "norm": "linf", "eps": 0.1, "accuracy": 0.5}]
    spec = charts.accuracy_curve(rows).to_dict()
    values = next(iter(spec["datasets"].values()))
    assert [(v["norm"], v["eps"]) for v in values] == [("linf", 0.0), ("linf", 0.1)]


def test_attack_lab_png_and_transfer_table(tiny_root, fmnist_test):
    x, y = fmnist_test.float_images(slice(0, 1)), int(fmnist_test.labels[0])
    res = AL.run(AL.Config.for_image(x, ("tiny-standard", "tiny-robust"), label=y, steps=3, device="cpu"))
    fig = Image.open(io.BytesIO(charts_attack.attack_png(res)))
    assert fig.size == (536, 508)  # two models x (original, adversarial, perturbation), as above
    df = charts_attack.transfer_frame(res)
    assert list(df["perturbation made on"]) == ["tiny-standard", "tiny-robust"]
    assert list(df["fooled"]) == [t.fooled for t in res.transfer]


def test_eps_text():
    assert charts.eps_text("linf", 8 / 255) == "8/255"
    assert charts.eps_text("linf", 0.1) == "0.1"
    assert charts.eps_text("l2", 3 / 255) == "0.0118"
    assert charts.eps_text("linf", 4.0 / 255) == "4/255" and charts.eps_text("l2", 0.25) == "0.25"
    assert charts.eps_text(None, None) == "-"
    # a radius typed to 7 digits (cifar10-robust-l2's card: 0.0313725) is still 8/255; 0.0314 is not
    assert charts.eps_text("linf", 0.0313725) == "8/255" and charts.eps_text("linf", 0.0314) == "0.0314"
    # a round hundredth on the 1/255 grid (Fashion-MNIST's 0.2 = 51/255) reads as typed
    assert [charts.eps_text("linf", e) for e in (0.2, 0.4, 1.0, 0.05, 0.1)] == ["0.2", "0.4", "1", "0.05", "0.1"]


def test_charts_is_one_package_on_the_bottom_floor():
    """Every chart module lives in explorer/charts/ and imports neither streamlit nor the experiments."""
    import ast
    from pathlib import Path

    root = Path(charts.__file__).parent
    assert not list(root.parent.glob("charts_*.py"))
    for f in root.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for n in names:
                assert not n.startswith(("streamlit", "explorer.experiments", "ui")), (f.name, n)


def test_charts_keep_their_labels_and_fit_their_column_by_width():
    """Every chart function goes through ``for_screens``: legend labels never cut, axis labels up to
    AXIS_LABEL_LIMIT px; a single view fits its column's width only (fit-x: its plot keeps its height),
    while a concatenation, which cannot fit, has its legend below so two panels fit a laptop's column."""
    single = charts.topk_chart(np.full(10, 0.1), np.full(10, 0.1), [f"class {i}" for i in range(10)]).to_dict()
    assert single["autosize"] == {"type": "fit-x", "contains": "padding"}
    assert single["config"]["legend"]["labelLimit"] == 0
    assert single["config"]["axis"]["labelLimit"] == charts.AXIS_LABEL_LIMIT > 100
    rows = [{"model": m, "norm": n, "eps": e, "accuracy": 0.5} for m in ("a-standard", "b-robust")
            for n, e in (("none", 0), ("l2", 1.0), ("linf", 0.1))]
    both = charts.accuracy_curve(rows).to_dict()
    assert "hconcat" in both and "autosize" not in both and both["config"]["legend"]["labelLimit"] == 0
    assert both["hconcat"][0]["encoding"]["color"]["legend"]["orient"] == "bottom"
    one = charts.accuracy_curve([r for r in rows if r["norm"] != "l2"]).to_dict()
    assert one["autosize"]["type"] == "fit-x"
    assert charts.topk_chart.__name__ == "topk_chart"  # functools.wraps: the docstring and name stay
