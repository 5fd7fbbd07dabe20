"""Every page opens on the bundled CIFAR-10 pair (issue 17), through app.py as on a server: the sidebar
takes the pair from a link, no page raises, the attack lab's default runs on a CIFAR-10 test image and
the image it shows is the 32x32 one the models see."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from bundled_models import require  # noqa: E402
from ui import registry  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 300
PAIR = ("cifar10-standard", "cifar10-robust-l2")


#: every rerun goes through app.py, as on a server (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("navigation_runs_app_py")


def _open(page: registry.PageInfo, monkeypatch) -> AppTest:
    require(monkeypatch, *PAIR)
    monkeypatch.setenv("EXPLORER_WARMUP", "0")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["pair_standard"] = PAIR[0]
    at.query_params["pair_robust"] = PAIR[1]
    at.run()
    assert not at.exception, at.exception
    at.switch_page(page.path).run()
    assert not at.exception, (page.title, at.exception)
    return at


@pytest.mark.parametrize("page", [p for p in registry.PAGES if p is not registry.HOME], ids=lambda p: p.url_path)
def test_every_page_opens_on_the_cifar10_pair(page, monkeypatch):
    at = _open(page, monkeypatch)
    assert at.sidebar.selectbox(key="pair_standard").value == PAIR[0]
    assert at.sidebar.selectbox(key="pair_robust").value == PAIR[1]
    assert not at.error, (page.title, [e.value for e in at.error])


def test_attack_lab_runs_on_a_cifar10_test_image(monkeypatch):
    at = _open(registry.ATTACK_LAB, monkeypatch)
    assert "= 8/255" in [c.value for c in at.caption]  # the Linf slider's radius as papers write it
    run = [b for b in at.button if b.label == "Run"]
    assert run, [b.label for b in at.button]
    run[0].click().run()
    assert not at.exception, at.exception
    result = at.session_state["attack_lab.result"]
    result = result[1] if isinstance(result, tuple) else result
    assert [a.model for a in result.attacks] == list(PAIR)
    assert result.original.shape[-3:] in ((32, 32, 3), (3, 32, 32))  # the 32x32 colour image the models see
    assert result.norm == "linf" and abs(result.eps - 8 / 255) < 1e-6  # CIFAR-10's default radius (its facts)
    from explorer import data

    bundled = "bundled" in data.cifar10("test", progress=False).name  # the label says which test set
    label = at.number_input(key="attack_lab.index").label
    assert label == ("CIFAR-10 test (bundled subset) image index" if bundled else "CIFAR-10 test image index")
    text = " ".join(str(m.value) for m in at.markdown)
    assert "cifar10-standard" in text and "cifar10-robust-l2" in text


def test_experiments_read_the_bundled_cifar10_subset_without_the_test_set(monkeypatch, tmp_path):
    """A fresh clone has no CIFAR-10 test set: the experiments sample the bundled subset and say so."""
    from explorer.experiments import _common as C

    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cache/explorer/cifar10 either
    x, y, where = C.sample_test_images("cifar10", 8, seed=0)
    assert x.shape == (8, 3, 32, 32) and y.shape == (8,) and "bundled subset" in where
