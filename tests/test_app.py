"""AppTest for app.py and its pages, on the tiny standard/robust pair of the fixture."""

from __future__ import annotations

import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from ui import registry  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 120
# A Fashion-MNIST test image (a sneaker, in the bundled subset too) that PGD-20 at Linf 0.1
# flips on tiny-standard while tiny-robust keeps it.
FLIPS_STANDARD_ONLY = 12


def test_a_page_streamlit_runs_alone_goes_through_app_py(app):
    """AppTest starts every run with a fresh PagesManager, which sees the pages/ folder and takes
    Streamlit's old-style multipage path (a page file run alone, as on a fresh server's deep link):
    ``ui.routing.through_app`` runs app.py instead, so the page has app.py's sidebar and navigation."""
    from streamlit.runtime.pages_manager import PagesManager

    assert hasattr(PagesManager, "uses_pages_directory")  # the switch ui.routing reads (a Streamlit upgrade)
    at = app.switch_page(registry.ATTACK_LAB.path).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Attack lab" and len(at.title) == 1
    assert at.sidebar.selectbox(key="pair_standard").value == "tiny-standard"
    assert at.sidebar.toggle(key="presenter") is not None


@pytest.fixture
def app(tiny_root, monkeypatch):
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _image_captions(at) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


def test_home_renders_with_the_zoo_and_the_pair(app):
    assert app.title[0].value == "Features, not bugs"
    assert "Ilyas" in _texts(app.markdown)
    # two tables: the models here now, then (in an expander) those that need a download, with the command
    here = next(df.value for df in app.table if "tiny-robust" in set(df.value["model"]))
    row = here.set_index("model").loc["tiny-standard"]
    assert row["kind"] == "standard" and "why / how to fetch" not in here.columns
    missing = next(df.value for df in app.table if "why / how to fetch" in df.value.columns)
    assert "tiny-standard" not in set(missing["model"])
    assert missing["why / how to fetch"].str.contains("python -m explorer fetch").any()
    # the sidebar: the tiny pair is the default pair, and the device is shown
    assert app.sidebar.selectbox(key="pair_standard").value == "tiny-standard"
    assert app.sidebar.selectbox(key="pair_robust").value == "tiny-robust"
    assert "CPU" in _texts(app.sidebar.caption)
    assert app.session_state["model_pair"].names == ("tiny-standard", "tiny-robust")
    # the sidebar is drawn by app.py, so it is there on every page and keeps its choice
    at = app.switch_page(registry.MODEL_ZOO.path).run()
    assert at.sidebar.selectbox(key="pair_standard").value == "tiny-standard"
    # choosing a dataset brings its own pair: ImageNet's is the offline EfficientNet-Lite0 alone
    assert at.sidebar.selectbox(key="pair_dataset").value == "fashion-mnist"
    at.sidebar.selectbox(key="pair_dataset").set_value("imagenet").run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="pair_standard").value == "efficientnet-lite0"
    assert "tiny-standard" not in at.sidebar.selectbox(key="pair_standard").options
    at.switch_page(registry.HOME.path).run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="pair_standard").value == "efficientnet-lite0"
    assert at.session_state["model_pair"].names == ("efficientnet-lite0",)


def test_attack_lab_runs_both_models_and_keeps_the_result(app, monkeypatch):
    from explorer.experiments import attack_lab

    calls = []
    real_run = attack_lab.run
    monkeypatch.setattr(attack_lab, "run", lambda *a, **k: calls.append(1) or real_run(*a, **k))
    at = app.switch_page(registry.ATTACK_LAB.path).run()
    assert not at.exception, at.exception
    at.number_input(key="attack_lab.index").set_value(FLIPS_STANDARD_ONLY).run()
    at.slider(key="attack_lab.eps.fashion-mnist.linf").set_value(0.1)
    at.slider(key="attack_lab.steps").set_value(20)
    at.button[0].click().run()  # the form's Run button
    assert not at.exception, at.exception
    assert len(calls) == 1
    headers = [h.value for h in at.subheader]
    assert "tiny-standard" in headers and "tiny-robust" in headers
    # the standard model's prediction flips, the robust one holds
    assert len(at.error) == 1 and "Fooled" in at.error[0].value and "Sneaker →" in at.error[0].value
    assert len(at.success) == 1 and "Holds" in at.success[0].value and "Sneaker → Sneaker" in at.success[0].value
    assert "tiny-standard" in _texts(at.markdown) and "tiny-robust" in _texts(at.markdown)
    transfer = at.table[-1].value
    assert list(transfer["applied to"]) == ["tiny-robust", "tiny-standard"]
    assert [b.key for b in at.get("download_button")] == ["attack_lab.export.png", "attack_lab.export.json"]
    assert len(at.get("vega_lite_chart")) == 4  # top-5 and history, per model
    assert _image_captions(at).count("adversarial") == 2
    result = at.session_state["attack_lab.result"]
    assert result.attack("tiny-standard").success and not result.attack("tiny-robust").success
    # a rerun of the page draws the kept result without attacking again
    at.run()
    assert not at.exception and len(calls) == 1 and len(at.error) == 1 and len(at.success) == 1
    # Run again with the same settings: the cached result, no second attack
    at.button[0].click().run()
    assert not at.exception and len(calls) == 1 and len(at.error) == 1
    # new settings attack again
    at.slider(key="attack_lab.steps").set_value(5)
    at.button[0].click().run()
    assert not at.exception and len(calls) == 2 and at.session_state["attack_lab.result"].steps == 5


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb, costing nothing)."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="PNG")
    raw = bytearray(buf.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(raw[24:29])
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(raw)


def _encoded(mode: str, fmt: str, size=(40, 30), **kw) -> bytes:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16))
    else:
        img = Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _animated_gif() -> bytes:
    frames = [Image.new("P", (32, 32), c) for c in (10, 200)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


UPLOADS = {  # name -> (content, usable)
    "notes.txt": (b"this is not an image\n", False),
    "empty.png": (b"", False),
    "bomb.png": (_png_header(20000, 20000), False),
    "cmyk.jpg": (_encoded("CMYK", "JPEG"), True),
    "deep.png": (_encoded("I;16", "PNG"), True),
    "anim.gif": (_animated_gif(), True),
}


@pytest.mark.parametrize("name, content, ok", [(k, *v) for k, v in UPLOADS.items()], ids=list(UPLOADS))
def test_attack_lab_upload_gives_a_message_or_an_image(app, name, content, ok):
    at = app.switch_page(registry.ATTACK_LAB.path).run()
    at.radio(key="attack_lab.source").set_value("Upload").run()
    at.file_uploader(key="attack_lab.upload").upload(name, content, "application/octet-stream").run()
    assert not at.exception, at.exception
    if ok:
        assert not at.error
        assert f"upload: {name}" in _image_captions(at)
    else:
        assert len(at.error) == 1 and at.error[0].value.startswith(f"Cannot use {name}:")


def test_model_zoo_page_shows_cards_and_curves(tiny_root, tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_root, root)
    card = json.loads((root / "tiny-standard.json").read_text())
    card["evaluation"] = {"n": 1000, "results": [
        {"norm": "none", "eps": 0.0, "accuracy": 0.81, "correct": 810, "n": 1000},
        {"norm": "linf", "eps": 0.1, "accuracy": 0.02, "correct": 20, "n": 1000}]}
    (root / "tiny-standard.json").write_text(json.dumps(card))
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(root))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page(registry.MODEL_ZOO.path).run()
    assert not at.exception, at.exception
    table = at.table[0].value.set_index("model")
    assert table.loc["tiny-standard", "clean accuracy"] == "81.0%"  # percent, like the robust accuracies
    assert "linf 0.1: 2.0%" in table.loc["tiny-standard", "robust accuracy"]
    # Fashion-MNIST's Linf slider moves in hundredths: no "= 25.5/255" under it
    assert at.slider(key="model_zoo.eps.fashion-mnist.linf").value == pytest.approx(0.1)
    assert not [c.value for c in at.caption if "/255" in c.value]
    assert "python -m explorer evaluate tiny-robust" in _texts(at.info)
    assert at.get("vega_lite_chart")  # the accuracy curve of the evaluated model
    # quick evaluation on 20 test images
    at.number_input(key="model_zoo.n").set_value(20)
    at.number_input(key="model_zoo.steps").set_value(3)
    at.button[0].click().run()  # form values are sent with the submit
    assert not at.exception, at.exception
    result = at.session_state["model_zoo.result"]
    assert result.n == 20 and result.accuracy.shape == (2, 4)
    assert np.all(np.diff(result.accuracy, axis=1) <= 0)  # accuracy never rises with eps


def test_attack_lab_with_the_offline_imagenet_model_and_a_photo(app):
    from explorer import zoo

    ok, why = zoo.availability(zoo.get_spec("efficientnet-lite0"))
    if not ok:
        pytest.skip(f"efficientnet-lite0 not available: {why}")
    app.sidebar.selectbox(key="pair_dataset").set_value("imagenet").run()
    assert app.sidebar.selectbox(key="pair_standard").value == "efficientnet-lite0"
    assert app.sidebar.selectbox(key="pair_robust").value == "(none available)"
    at = app.switch_page(registry.ATTACK_LAB.path).run()
    assert not at.exception, at.exception
    assert "attacking efficientnet-lite0 alone" in _texts(at.info)
    assert at.radio(key="attack_lab.source").value == "Sample photo"
    assert at.selectbox(key="attack_lab.photo").value == "chelsea"
    at.slider(key="attack_lab.eps.imagenet.linf").set_value(1 / 255)
    at.slider(key="attack_lab.steps").set_value(3)
    at.button[0].click().run()
    assert not at.exception, at.exception
    result = at.session_state["attack_lab.result"]
    assert [a.model for a in result.attacks] == ["efficientnet-lite0"] and result.transfer == ()
    assert "One model only" in _texts(at.markdown)
    assert len(at.get("download_button")) == 2  # the figure (PNG) and the settings (JSON)


def test_default_pair():
    from ui.models import ModelPair, default_pair

    def row(name, dataset, robust=False, available=True):
        return {"name": name, "dataset": dataset, "kind": "robust (linf 0.1)" if robust else "standard",
                "available": available}

    lite0 = row("efficientnet-lite0", "imagenet")
    bundled = [row("fmnist-standard", "fashion-mnist"), row("fmnist-robust-l2", "fashion-mnist", True),
               row("fmnist-robust-linf", "fashion-mnist", True)]
    assert default_pair([lite0, *bundled]) == ModelPair("fmnist-standard", "fmnist-robust-linf")
    assert default_pair([lite0, *bundled[:2]]) == ModelPair("fmnist-standard", "fmnist-robust-l2")
    assert default_pair([lite0, bundled[0]]) == ModelPair("fmnist-standard", None)
    tiny = [row("tiny-standard", "fashion-mnist"), row("tiny-robust", "fashion-mnist", True)]
    assert default_pair([lite0, row("madry-in-l2", "imagenet", True, available=False), *tiny]) == \
        ModelPair("tiny-standard", "tiny-robust")
    assert default_pair([lite0]) == ModelPair("efficientnet-lite0", None)
    assert default_pair([]) == ModelPair(None, None)


BUNDLED_PAIR = ("fmnist-standard", "fmnist-robust-linf")


@pytest.fixture
def bundled_app(monkeypatch):
    from explorer import zoo

    monkeypatch.delenv("EXPLORER_CHECKPOINTS", raising=False)
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    for name in BUNDLED_PAIR:
        try:
            ok, why = zoo.availability(zoo.get_spec(name))
        except zoo.ZooError as e:
            ok, why = False, str(e)
        if not ok:
            pytest.skip(f"bundled model {name} not available yet: {why}")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def test_attack_lab_on_the_bundled_pair(bundled_app):
    """The demo the issue asks for: on a Fashion-MNIST test image, PGD-20 at Linf 0.1 flips
    fmnist-standard while fmnist-robust-linf keeps the true class, and the page says so."""
    from explorer import data
    from explorer.experiments import attack_lab

    assert bundled_app.session_state["model_pair"].names == BUNDLED_PAIR
    index = None
    for i in range(20):  # the first such image among the first 20 test images
        x, y = data.fashion_mnist_sample(i)
        res = attack_lab.run(attack_lab.Config.for_image(x, BUNDLED_PAIR, label=y, eps=0.1, steps=20, device="cpu"))
        std, rob = res.attacks
        if std.pred_before == y == rob.pred_before and std.success and not rob.success:
            index, label = i, data.FASHION_MNIST_CLASSES[y]
            break
    assert index is not None, "no test image among the first 20 where the standard model flips and the robust holds"
    at = bundled_app.switch_page(registry.ATTACK_LAB.path).run()
    at.number_input(key="attack_lab.index").set_value(index).run()
    at.slider(key="attack_lab.eps.fashion-mnist.linf").set_value(0.1)
    at.slider(key="attack_lab.steps").set_value(20)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert [h.value for h in at.subheader][:2] == list(BUNDLED_PAIR)
    assert len(at.error) == 1 and at.error[0].value.startswith("**Fooled**") and f"{label} →" in at.error[0].value
    assert len(at.success) == 1 and f"{label} → {label}" in at.success[0].value


def test_a_link_naming_another_datasets_model_brings_its_dataset(tiny_root, monkeypatch):
    from explorer import zoo

    ok, why = zoo.availability(zoo.get_spec("efficientnet-lite0"))
    if not ok:
        pytest.skip(f"efficientnet-lite0 not available: {why}")
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["pair_standard"] = "efficientnet-lite0"
    at.switch_page(registry.MODEL_ZOO.path).run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="pair_dataset").value == "imagenet"
    assert at.sidebar.selectbox(key="pair_standard").value == "efficientnet-lite0"
    assert at.session_state["model_pair"].names == ("efficientnet-lite0",)


def _random_png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (28, 28), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _shows_result(at) -> bool:
    return "Result" in [h.value for h in at.header]


def test_attack_lab_hides_a_result_once_the_image_or_the_models_change(app):
    """A kept result belongs to its exact inputs: after a second upload, or another model pair, the
    page shows no result of the old inputs, only a note to run again (issue: the first image's result
    stayed under the second upload's preview)."""
    from ui.models import ModelPair

    at = app.switch_page(registry.ATTACK_LAB.path).run()
    at.radio(key="attack_lab.source").set_value("Upload").run()
    at.file_uploader(key="attack_lab.upload").upload("first.png", _random_png(0), "image/png").run()
    at.slider(key="attack_lab.steps").set_value(2)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert _shows_result(at) and not any(i.value.startswith("Inputs changed") for i in at.info)
    first = at.session_state["attack_lab.config"]
    at.file_uploader(key="attack_lab.upload").upload("second.png", _random_png(1), "image/png").run()
    assert not at.exception, at.exception
    assert "upload: second.png" in _image_captions(at)  # the preview changed ...
    assert not _shows_result(at) and not at.get("download_button")  # ... and the old result is gone
    assert any(i.value.startswith("Inputs changed") and "**Run**" in i.value for i in at.info)
    at.button[0].click().run()  # Run again: the result of the second image
    assert _shows_result(at) and at.session_state["attack_lab.config"].image != first.image

    # another model pair (as when the sidebar's standard model changes): the result is hidden too
    page = AppTest.from_file(str(Path(APP).parent / registry.ATTACK_LAB.path), default_timeout=TIMEOUT)
    page.session_state["model_pair"] = ModelPair("tiny-standard", "tiny-robust")
    page.run()
    page.slider(key="attack_lab.steps").set_value(2)
    page.button[0].click().run()
    assert _shows_result(page)
    page.session_state["model_pair"] = ModelPair("tiny-robust", None)
    page.run()
    assert not page.exception, page.exception
    assert not _shows_result(page) and any(i.value.startswith("Inputs changed") for i in page.info)


def _first_wrong_test_image(model_name: str) -> tuple[int, str, str]:
    """The first bundled test image the model gets wrong: (index, true class, predicted class)."""
    import torch

    from explorer import data, zoo

    model = zoo.load(model_name, device="cpu")
    for i in range(200):
        x, y = data.fashion_mnist_sample(i, "test")
        with torch.no_grad():
            pred = int(model(x).argmax(1))
        if pred != y:
            return i, data.FASHION_MNIST_CLASSES[y], data.FASHION_MNIST_CLASSES[pred]
    pytest.skip(f"{model_name} gets the first 200 test images right")


def test_attack_lab_says_when_the_model_was_wrong_before_the_attack(app):
    """A model already wrong on the clean image is not 'fooled (prediction flipped)': the verdict says it
    was wrong before the attack (issue: 'Fooled (prediction flipped): Sandal → Sandal', true Ankle boot)."""
    index, true, predicted = _first_wrong_test_image("tiny-standard")
    at = app.switch_page(registry.ATTACK_LAB.path).run()
    at.number_input(key="attack_lab.index").set_value(index).run()
    at.slider(key="attack_lab.steps").set_value(2)
    at.button[0].click().run()
    assert not at.exception, at.exception
    result = at.session_state["attack_lab.result"]
    standard = result.attack("tiny-standard")
    assert standard.wrong_before and standard.verdict == "wrong before the attack"
    warnings = [w.value for w in at.warning if w.value.startswith("**Wrong before the attack**")]
    assert len(warnings) == sum(a.wrong_before for a in result.attacks)
    assert f"the clean image is {true}" in warnings[0] and f"said {predicted}" in warnings[0]
    assert len(at.error) == sum(a.verdict == "fooled" for a in result.attacks)  # no "Fooled" for a wrong model
    assert "tiny-standard was wrong before any attack" in result.transfer_sentence()
