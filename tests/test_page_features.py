"""AppTest for pages/features.py: every tab renders and runs, on the tiny pair (always)
and on the bundled pair (when its robust model has landed)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from bundled_models import require  # noqa: E402

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "features.py")
TIMEOUT = 300
BUNDLED_PAIR = ("fmnist-standard", "fmnist-robust-linf")
TABS = ["What PGD changes", "Class synthesis", "Representation inversion", "Frequency", "Linear features"]


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _click(at, label: str):
    buttons = [b for b in at.button if b.label == label]
    assert buttons, f"no button {label!r}; have {[b.label for b in at.button]}"
    buttons[0].click().run()
    assert not at.exception, at.exception
    return at


def _page(pair: tuple[str, str]) -> AppTest:
    from ui.models import ModelPair

    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["model_pair"] = ModelPair(*pair)
    at.run()
    assert not at.exception, at.exception
    return at


def _run_every_view(at, pair: tuple[str, str], steps: dict) -> None:
    """Click every Run button of every tab with small settings; check each view drew both models."""
    assert [t.label for t in at.tabs] == TABS
    # linear features ran on their own: the scatter, the constructions
    assert "Ensemble" in _texts(at.markdown) and "Containment" in _texts(at.markdown)
    # frequency: the single-image filter verdicts name both models
    verdicts = _texts(at.success) + _texts(at.error)
    assert all(name in verdicts for name in pair)

    at.slider(key="features.pgd.steps").set_value(steps["pgd"])
    _click(at, "Attack both")
    labels = [m.label for m in at.metric]
    assert all(any(l.startswith(f"{name}: energy at") for l in labels) for name in pair)
    assert any(l == "white noise would put" for l in labels)

    at.slider(key="features.synthesis.steps").set_value(steps["synthesis"])
    _click(at, "Synthesize every class")
    caption = _texts(at.caption)
    assert all(f"{name}: " in caption and "classes reached" in caption for name in pair)

    at.slider(key="features.inversion.steps").set_value(steps["inversion"])
    _click(at, "Invert")
    inv = [m for m in at.metric if "distance" in m.label]
    assert [m.label.split(":")[0] for m in inv] == list(pair)
    assert all(m.value.endswith("× lower") for m in inv)

    at.slider(key="features.units.steps").set_value(10)
    at.number_input(key="features.units.n").set_value(2)
    _click(at, "Maximize")
    assert "most active on the start" in _texts(at.caption)

    at.number_input(key="features.frequency.n_images").set_value(20)
    _click(at, "Measure")
    assert "clean accuracy" in _texts(at.caption)

    at.number_input(key="features.heatmap.n_images").set_value(10)
    _click(at, "Compute the heat maps")
    assert "Clean error" in _texts(at.caption)
    assert not at.error or all("Cannot" not in e.value for e in at.error)


def test_every_view_on_the_tiny_pair(tiny_root, monkeypatch):
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = _page(("tiny-standard", "tiny-robust"))
    _run_every_view(at, ("tiny-standard", "tiny-robust"), {"pgd": 5, "synthesis": 5, "inversion": 10})


def test_filter_and_linear_widgets_redraw_without_rerunning(tiny_root, monkeypatch):
    """Moving the cutoff slider re-filters the image (cheap) and the linear-feature pick
    redraws; neither starts a PGD run."""
    from explorer.experiments import perturbation_spectrum

    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    calls = []
    real = perturbation_spectrum.run
    monkeypatch.setattr(perturbation_spectrum, "run", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = _page(("tiny-standard", "tiny-robust"))
    at.radio(key="features.frequency.kind").set_value("high")
    at.slider(key="features.frequency.cutoff").set_value(1.0).run()
    assert not at.exception, at.exception
    assert "keeps 0% of the frequencies" in _texts(at.caption) or "keeps 1% of the frequencies" in _texts(at.caption)
    at.selectbox(key="features.linear.pick").set_value("ensemble").run()
    assert not at.exception, at.exception
    assert any("ensemble: a as an image" in img.caption for el in at.get("image") for img in el.proto.imgs)
    assert calls == []


def test_every_view_on_the_bundled_pair(monkeypatch):
    require(monkeypatch, *BUNDLED_PAIR)
    at = _page(BUNDLED_PAIR)
    _run_every_view(at, BUNDLED_PAIR, {"pgd": 20, "synthesis": 20, "inversion": 50})
