"""A kept result belongs to its exact inputs (``ui.page.view``): on the inspector, the features page and
the model zoo, a result computed for one image or one model pair is not shown once the inputs on screen
differ; a short note says to run again, and going back to the old inputs shows it again.

(The attack lab, layer robustness, style transfer, constructed and discussion pages have the same check
in their own test files.)"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGES = Path(__file__).resolve().parent.parent / "pages"
TIMEOUT = 300
PAIR = ("tiny-standard", "tiny-robust")


def _page(name: str, pair=PAIR) -> AppTest:
    from ui.models import ModelPair

    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=TIMEOUT)
    at.session_state["model_pair"] = ModelPair(*pair)
    at.run()
    assert not at.exception, at.exception
    return at


def _click(at, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, at.exception
    return at


def _note(at) -> list[str]:
    return [i.value for i in at.info if i.value.startswith("Inputs changed")]


@pytest.fixture
def cpu(tiny_root, monkeypatch):
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")


def test_inspector_hides_the_result_of_another_image_and_never_says_holds(cpu):
    at = _page("inspector")
    at.number_input(key="inspector.index").set_value(3).run()
    at.number_input(key="inspector.steps").set_value(2)
    at.number_input(key="inspector.iterations").set_value(2)
    _click(at, "Inspect")
    result = at.session_state["inspector.result"]
    assert "Result" in [h.value for h in at.header] and not _note(at)
    # every model and norm reads "flips at eps" or "PGD found no flip up to eps": a failed search is no robustness
    text = "\n".join(m.value for m in at.markdown)
    for v in result.views:
        for n, m in zip(result.norms, result.eps_max):
            e = v.eps(n)
            line = f":red[flips] at eps **{e:.3g}**" if math.isfinite(e) else f"PGD found no flip up to eps {m:g}"
            assert line in text
    everything = text + "\n".join(c.value for c in at.caption) + str(at.table[-1].value.to_dict())
    assert not re.search(r"holds (up to|at)|\[holds\]", everything)
    at.number_input(key="inspector.index").set_value(4).run()  # another image
    assert "Result" not in [h.value for h in at.header] and "**Inspect**" in _note(at)[0]
    at.number_input(key="inspector.index").set_value(3).run()  # back: shown again, not recomputed
    assert "Result" in [h.value for h in at.header] and at.session_state["inspector.result"] is result


def test_features_views_hide_the_result_of_another_pair_or_image(cpu):
    at = _page("features")
    at.slider(key="features.pgd.steps").set_value(2)
    _click(at, "Attack both")
    assert any(m.label.startswith("tiny-standard: energy at") for m in at.metric)
    at.number_input(key="features.pgd.index").set_value(5).run()  # another image
    assert not any("energy at" in m.label for m in at.metric)
    assert any("**Attack both**" in n for n in _note(at))
    at.number_input(key="features.pgd.index").set_value(0).run()
    assert any(m.label.startswith("tiny-standard: energy at") for m in at.metric)

    from ui.models import ModelPair

    at.session_state["model_pair"] = ModelPair("tiny-robust", "tiny-standard")  # the sidebar's pair changed
    at.run()
    assert not at.exception, at.exception
    assert not any("energy at" in m.label for m in at.metric) and _note(at)


def test_model_zoo_quick_evaluation_hides_the_result_of_another_pair(cpu):
    at = _page("model_zoo")
    at.number_input(key="model_zoo.n").set_value(10)
    at.number_input(key="model_zoo.steps").set_value(1)
    _click(at, "Evaluate")
    assert at.session_state["model_zoo.result"].n == 10
    shown = len(at.table)
    from ui.models import ModelPair

    at.session_state["model_pair"] = ModelPair("tiny-standard", None)
    at.run()
    assert not at.exception, at.exception
    assert len(at.table) == shown - 1 and "**Evaluate**" in _note(at)[0]
