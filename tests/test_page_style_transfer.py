"""AppTest of pages/style_transfer.py: offline it shows the bundled CIFAR-10 pair and the command that
fetches Nakano's robust ResNet-50, and runs a small transfer (side by side, then the
single-layer grid) whose image is the experiment's for the same settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from explorer import data, zoo  # noqa: E402
from explorer.experiments import style_transfer as ST  # noqa: E402
from ui import registry  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "style_transfer.py")
APP = str(ROOT / "app.py")
KEY = "style_transfer"
RESULT = f"{KEY}.result"
TIMEOUT = 300
LITE0 = "efficientnet-lite0"

pytestmark = pytest.mark.skipif(
    not any(r["name"] == LITE0 and r["available"] for r in zoo.list_models(zoo.DEFAULT_CHECKPOINTS)),
    reason="the efficientnet-lite0 pip package is not installed")


@pytest.fixture
def page(monkeypatch):
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(zoo.DEFAULT_CHECKPOINTS))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def run_small(at, size: int = 64, iterations: int = 3):
    at.slider(key=f"{KEY}.size").set_value(size)
    at.number_input(key=f"{KEY}.iterations").set_value(iterations)
    at.button[0].click().run()  # the form's Run button
    assert not at.exception, at.exception
    return at


def test_offline_defaults_and_the_fetch_command(page):
    rows = {r["name"]: r for r in zoo.list_models(zoo.DEFAULT_CHECKPOINTS)}
    expected = list(ST.default_networks(list(rows.values()), ("fmnist-standard", "fmnist-robust-linf")))
    assert page.multiselect(key=f"{KEY}.style_models").value == expected
    assert page.selectbox(key=f"{KEY}.content_model").value == expected[0]
    assert page.selectbox(key=f"{KEY}.content.sample").value == "chelsea"
    assert page.selectbox(key=f"{KEY}.style.sample").value == "brick"
    # on a CPU the defaults are the guided tour's last step, which the warm-up computes: a cache hit
    from ui import tour

    step = next(s for s in tour.STEPS if s.experiment == "style_transfer")
    assert page.slider(key=f"{KEY}.size").value == step.params["style_transfer.size"] == 160
    assert page.number_input(key=f"{KEY}.iterations").value == step.params["style_transfer.iterations"] == 60
    if tuple(expected) == ST.BUNDLED_PAIR:
        assert list(step.params["style_transfer.style_models"]) == expected
    if not rows["madry-imagenet-resnet50-l2-3"]["available"]:
        text = " ".join(e.value for e in page.info)
        assert "python -m explorer fetch madry-imagenet-resnet50-l2-3" in text and "resnet50_l2_eps3.ckpt" in text


def test_a_small_transfer_runs_on_the_page(page):
    at = run_small(page)
    result = at.session_state[RESULT]
    names = tuple(page.multiselect(key=f"{KEY}.style_models").value)
    assert result.style_models == names and len(result.transfers) == len(names)
    assert result.size == (43, 64) and not result.single_layer
    assert "Download the figure (PNG)" in [b.label for b in at.get("download_button")]
    # the page shows what the experiment computes for the same settings
    photos, textures = data.sample_photos(), data.sample_textures()
    expected = ST.run(ST.Config.for_images(photos["chelsea"], textures["brick"], names, size=64, iterations=3,
                                           content_model=names[0], device="cpu"))
    np.testing.assert_allclose(result.transfers[0].image, expected.transfers[0].image, atol=1e-5)
    assert list(at.table[0].value["style network"]) == list(names)


def test_single_layer_mode_draws_the_grid(page):
    page.checkbox(key=f"{KEY}.single_layer").check()
    at = run_small(page, size=64, iterations=2)
    result = at.session_state[RESULT]
    grid = result.grid()
    assert result.single_layer and [m for m, _ in grid] == list(result.style_models)
    layers = {m: ST.default_layers(zoo.load(m, device="cpu")).style_layers for m in result.style_models}
    assert [t.style_layers for _, row in grid for t in row] == [(l,) for m in result.style_models for l in layers[m]]
    assert len(at.table[0].value) == sum(len(v) for v in layers.values())


def test_result_survives_a_rerun_without_recomputing(page, monkeypatch):
    """A rerun redraws the kept result; another style image hides it behind a note (it was not made from
    that image); the original image brings it back, all without computing again."""
    at = run_small(page, iterations=2)
    calls = []
    monkeypatch.setattr(ST, "run", lambda *a, **k: calls.append(1))
    at.run()
    assert calls == [] and len(at.table) == 1
    at.radio(key=f"{KEY}.style.source").set_value("Upload").run()
    assert not at.exception, at.exception
    assert calls == [] and at.session_state[RESULT] is not None and len(at.table) == 0
    assert any(i.value.startswith("Inputs changed") for i in at.info)
    at.radio(key=f"{KEY}.style.source").set_value("Sample").run()
    at.selectbox(key=f"{KEY}.style.sample").set_value("chelsea").run()  # another sample: hidden too
    assert len(at.table) == 0
    at.selectbox(key=f"{KEY}.style.sample").set_value("brick").run()
    assert calls == [] and len(at.table) == 1


def test_page_in_the_app_falls_back_from_the_fashion_mnist_pair(monkeypatch):
    """In the app the sidebar holds the Fashion-MNIST pair; the page takes ImageNet networks instead."""
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(zoo.DEFAULT_CHECKPOINTS))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    assert registry.STYLE_TRANSFER in registry.PAGES
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    at = at.switch_page(registry.STYLE_TRANSFER.path).run()
    assert not at.exception, at.exception
    chosen = at.multiselect(key=f"{KEY}.style_models").value
    rows = zoo.list_models(zoo.DEFAULT_CHECKPOINTS)
    imagenet_pair = [n for n in ST.default_networks(rows) if zoo.get_spec(n).dataset == "imagenet"]
    if len(imagenet_pair) == 2:  # Nakano's networks are here (fetched)
        assert chosen == imagenet_pair
    else:  # offline: the bundled CIFAR-10 pair, a standard and a robust network on photos
        assert tuple(chosen) == ST.BUNDLED_PAIR
        assert [zoo.get_spec(n).robust for n in chosen] == [False, True]
        text = " ".join(e.value for e in at.info)
        assert "No robust ImageNet network is here yet, so the page compares cifar10-standard and " in text
    assert not set(chosen) & set(at.session_state["model_pair"].names)
