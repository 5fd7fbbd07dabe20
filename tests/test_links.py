"""Shareable state and export: settings from the URL, the rerun marker, the JSON a view exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from ui import registry  # noqa: E402

from explorer import cli, data, views  # noqa: E402
from explorer.experiments import attack_lab, inspector  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 300


@pytest.fixture
def app(tiny_root, monkeypatch):
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    monkeypatch.setenv("EXPLORER_WARMUP", "0")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


LINK = {"pair_standard": "tiny-standard", "pair_robust": "tiny-robust", "attack_lab.index": "12",
        "attack_lab.norm": "L2", "attack_lab.eps.fashion-mnist.l2": "0.7", "attack_lab.steps": "7",
        "attack_lab.random_start": "true", "run": "attack_lab"}


def open_link(at, page: str, params: dict):
    at.query_params.clear()
    at.query_params.update(params)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_a_link_restores_the_settings_and_computes_the_view_once(app, monkeypatch):
    calls = []
    real = attack_lab.run
    monkeypatch.setattr(attack_lab, "run", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    at = open_link(app, registry.ATTACK_LAB.path, LINK)
    assert at.number_input(key="attack_lab.index").value == 12
    assert at.radio(key="attack_lab.norm").value == "l2"
    assert at.slider(key="attack_lab.eps.fashion-mnist.l2").value == pytest.approx(0.7)
    assert at.slider(key="attack_lab.steps").value == 7
    assert at.checkbox(key="attack_lab.random_start").value is True
    # the view was computed on opening, with exactly those settings
    (config,) = calls
    assert (config.models, config.norm, config.eps, config.steps, config.random_start) == \
        (("tiny-standard", "tiny-robust"), "l2", pytest.approx(0.7), 7, True)
    x, _ = data.fashion_mnist_sample(12, "test")
    assert np.array_equal(config.image_array(), x[0].numpy())
    assert at.session_state["attack_lab.result"].steps == 7
    # later reruns of the page redraw without computing again (the link runs once)
    at.slider(key="attack_lab.steps").set_value(9).run()
    assert not at.exception and len(calls) == 1
    # the sidebar pair came from the link too
    assert at.sidebar.selectbox(key="pair_robust").value == "tiny-robust"


def test_a_link_without_run_restores_settings_but_waits_for_the_button(app, monkeypatch):
    calls = []
    monkeypatch.setattr(attack_lab, "run", lambda *a, **k: calls.append(1))
    at = open_link(app, registry.ATTACK_LAB.path, {k: v for k, v in LINK.items() if k != "run"})
    assert at.slider(key="attack_lab.steps").value == 7 and calls == []
    assert "attack_lab.result" not in at.session_state


def test_the_upload_is_not_part_of_the_link(app):
    at = open_link(app, registry.INSPECTOR.path, {"inspector.source": "Upload"})
    captions = " ".join(c.value for c in at.caption)
    assert "uploaded image stays out of a shared link" in captions
    assert "sample image is part of the link; an uploaded file is not" in captions


def test_the_inspector_from_a_link(app):
    params = {"inspector.source": "Test image", "inspector.index": "12", "inspector.models": ["tiny-standard",
              "tiny-robust"], "inspector.steps": "5", "inspector.iterations": "4", "run": "inspector"}
    at = open_link(app, registry.INSPECTOR.path, params)
    result = at.session_state["inspector.result"]
    assert [v.model for v in result.views] == ["tiny-standard", "tiny-robust"]
    assert result.steps == 5 and result.iterations == 4
    assert len([i for el in at.get("image") for i in el.proto.imgs]) >= 4  # image + saliency per model
    keys = [b.key for b in at.get("download_button")]
    assert keys == ["inspector.export.png", "inspector.export.json"]


def test_the_exported_json_reproduces_the_view_from_the_cli(tiny_root, tmp_path, fmnist_test, capsys):
    x = fmnist_test.float_images(slice(3, 4))[0].numpy()
    config = inspector.Config.for_image(x, ("tiny-standard", "tiny-robust"), steps=5, iterations=4, device="cpu")
    record = views.view_record("inspector", config, page=registry.INSPECTOR.path, url_query="run=inspector")
    text = json.dumps(record, default=float)
    back = json.loads(text)
    assert [m["name"] for m in back["models"]] == ["tiny-standard", "tiny-robust"]
    assert all(len(m["sha256"]) == 64 for m in back["models"])
    assert back["versions"]["explorer"] and back["versions"]["torch"]
    experiment, again = views.config_from_record(back)
    assert experiment == "inspector" and again == config  # every field, the image bytes included
    path = tmp_path / "view.json"
    path.write_text(text)
    out = tmp_path / "rows.json"
    assert cli.main(["rerun", str(path), "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    expected = inspector.run(config).rows()
    assert [r["model"] for r in rows] == ["tiny-standard", "tiny-robust"]
    for r, e in zip(rows, expected):
        assert r["min eps linf"] == pytest.approx(e["min eps linf"]) and r["prediction"] == e["prediction"]


def test_a_changed_model_is_reported(tiny_root):
    record = views.view_record("attack_lab", attack_lab.Config.for_image(np.zeros((1, 28, 28), np.float32),
                                                                        ("tiny-standard",)))
    record["models"][0]["sha256"] = "0" * 64
    assert views.check_models(record) and "tiny-standard" in views.check_models(record)[0]
    with pytest.raises(ValueError):
        views.config_from_record({**record, "format": "something else"})
