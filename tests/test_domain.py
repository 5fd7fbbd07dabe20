"""Uploads far from a model's domain (issue 21, item 6): ``explorer.data.domain`` measured on the bundled
images and the sample photos, and the upload widget's warning with the switch to a pair that fits (AppTest)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import data, zoo
from explorer.data import domain

REPO = Path(__file__).resolve().parent.parent


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_round_trip(a: np.ndarray, quality: int = 75) -> Image.Image:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    return data.decode_image(buf.getvalue())


@pytest.fixture(scope="module")
def fmnist_images() -> np.ndarray:
    return data.bundled_fashion_mnist("test").images[:, 0].numpy()  # [N, 28, 28] uint8


@pytest.fixture(scope="module")
def cifar_images() -> np.ndarray:
    return data.bundled_cifar10("test").images.permute(0, 2, 3, 1).numpy()  # [N, 32, 32, 3] uint8


# --- the library ----------------------------------------------------------------------------

def test_every_sample_photo_is_far_from_fashion_mnist_and_fits_imagenet():
    for name, photo in data.sample_photos().items():
        check = data.domain_check(photo, "fashion-mnist")
        assert not check.fits, name
        assert check.text().startswith("This image is far from what Fashion-MNIST"), name
        assert "to 28x28 grey" in check.scale_text, name
        assert data.domain_check(photo, "imagenet").fits, name
        assert "imagenet" in data.fitting_datasets(photo), name
    astronaut = data.domain_check(data.sample_photos()["astronaut"], "fashion-mnist")
    assert {s.name for s in astronaut.signals} == {"colour", "background"}
    assert astronaut.scale_text == "512x512 shrunk 18x to 28x28 grey"
    # the grey photo is caught by its background, the black sky by what the shrink loses
    assert [s.name for s in data.domain_check(data.sample_photos()["camera"], "fashion-mnist").signals] == ["background"]
    hubble = data.domain_check(data.sample_photos()["hubble_deep_field"], "fashion-mnist")
    assert [s.name for s in hubble.signals] == ["detail"] and hubble.signals[0].value > 0.7
    assert data.fitting_datasets(data.sample_photos()["hubble_deep_field"]) == ("imagenet",)
    assert data.fitting_datasets(data.sample_photos()["chelsea"]) == ("imagenet", "cifar10")


def test_fashion_mnist_images_fit_their_model_as_png_jpeg_or_enlarged(fmnist_images):
    for i, g in enumerate(fmnist_images):
        assert data.domain_check(g, "fashion-mnist").fits, i
    for i, g in enumerate(fmnist_images[::10]):
        rgb = np.repeat(g[..., None], 3, axis=2)
        assert data.domain_check(jpeg_round_trip(rgb), "fashion-mnist").fits, i
        big = Image.fromarray(g).resize((280, 280), Image.Resampling.NEAREST)  # a screenshot: 10x, not a photo
        assert data.domain_check(big, "fashion-mnist").fits, i
        assert not data.domain_check(g, "cifar10").fits and not data.domain_check(g, "imagenet").fits
    assert data.fitting_datasets(fmnist_images[0]) == ("fashion-mnist",)
    check = data.domain_check(fmnist_images[0], "cifar10")
    assert [s.name for s in check.signals] == ["fashion_mnist"]


def test_cifar10_test_images_fit_cifar10_but_for_the_grey_ones_on_black(cifar_images):
    flagged = [i for i, a in enumerate(cifar_images) if not data.domain_check(a, "cifar10").fits]
    assert len(flagged) == 5  # the module docstring's count: grey ships, trucks and a plane on black
    for i in flagged:
        assert [s.name for s in data.domain_check(cifar_images[i], "cifar10").signals] == ["fashion_mnist"]
    # a CIFAR-10 image is enlarged 7x for a 224 px model: far from ImageNet
    assert [s.name for s in data.domain_check(cifar_images[0], "imagenet").signals] == ["enlarged"]


def test_the_thresholds_sit_between_the_measured_groups(fmnist_images):
    """The numbers of the module docstring: each threshold separates what it claims to separate."""
    photos = data.sample_photos()
    rings = [domain.ring_dark(Image.fromarray(g)) for g in fmnist_images]
    assert min(rings) > 0.47 > domain.RING_DARK_FMNIST > domain.RING_DARK_MIN
    assert max(domain.ring_dark(Image.fromarray(a)) for n, a in photos.items() if n != "hubble_deep_field") < 0.2
    colourful = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")
    assert min(domain.chroma(domain._small(Image.fromarray(photos[n]), 28)) for n in colourful) > 0.14
    assert domain.chroma(np.repeat(fmnist_images[0][..., None], 3, axis=2)) == 0.0
    lost = {n: domain.detail_lost(Image.fromarray(a), 28) for n, a in photos.items()}
    assert lost["hubble_deep_field"] > 0.7 > domain.DETAIL_LOST_MAX > 0.35 > max(
        v for n, v in lost.items() if n != "hubble_deep_field")
    enlarged = [domain.detail_lost(Image.fromarray(g).resize((280, 280), Image.Resampling.NEAREST), 28)
                for g in fmnist_images[::5]]
    assert max(enlarged) < 0.3


def test_size_signals_and_other_datasets():
    small = np.full((20, 20, 3), 128, np.uint8)
    check = data.domain_check(small, "imagenet")
    assert [s.name for s in check.signals] == ["enlarged"] and check.scale_text == "20x20 enlarged 11x to 224x224"
    assert data.domain_check(small, "cifar10").fits  # 32 / 20: no more than a CIFAR-10 image's own scale
    # an image folder dataset gets the size signals only, at the model's own input size
    assert data.domain_check(small, "folder:/somewhere", (3, 32, 32)).fits
    assert not data.domain_check(small, "folder:/somewhere").fits  # 224 px by default


# --- the upload widget (AppTest) -----------------------------------------------------------

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from ui import registry  # noqa: E402

APP = str(REPO / "app.py")


@pytest.fixture(scope="module")
def cifar_root(tiny_root, tmp_path_factory) -> Path:
    """The tiny Fashion-MNIST pair's checkpoints plus the bundled ``cifar10-standard``."""
    root = tmp_path_factory.mktemp("checkpoints-cifar")
    for f in tiny_root.iterdir():
        if f.is_file():
            shutil.copy(f, root / f.name)
    for f in (REPO / "checkpoints").glob("cifar10-standard.*"):
        shutil.copy(f, root / f.name)
    zoo.write_manifest_entry(zoo.get_spec("cifar10-standard", REPO / "checkpoints"), root)
    return root


@pytest.fixture
def app(cifar_root, monkeypatch):
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(cifar_root))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _far(at) -> list[str]:
    return [w.value for w in at.warning if str(w.value).startswith("This image is far from")]


def _upload(at, key: str, name: str, content: bytes):
    at.radio(key=f"{key}.source").set_value("Upload").run()
    at.file_uploader(key=f"{key}.upload").upload(name, content, "image/png").run()
    assert not at.exception, at.exception
    return at


def test_a_photo_on_the_fashion_mnist_pair_is_warned_and_the_switch_brings_cifar10(app):
    at = app.switch_page(registry.ATTACK_LAB.path).run()
    assert at.sidebar.selectbox(key="pair_dataset").value == "fashion-mnist"
    _upload(at, "attack_lab", "astronaut.png", png(data.sample_photos()["astronaut"]))
    far = _far(at)
    assert len(far) == 1 and "512x512 shrunk 18x to 28x28 grey" in far[0] and "colour image" in far[0]
    offers = [b.key for b in at.button if ".fit." in str(b.key)]
    assert "attack_lab.fit.cifar10" in offers and "attack_lab.fit.fashion-mnist" not in offers
    at.button(key="attack_lab.fit.cifar10").click().run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="pair_dataset").value == "cifar10"
    assert at.sidebar.selectbox(key="pair_standard").value == "cifar10-standard"
    assert at.session_state["model_pair"].standard == "cifar10-standard"
    assert not _far(at)  # the photo fits a CIFAR-10 model
    assert "upload: astronaut.png" in [i.caption for el in at.get("image") for i in el.proto.imgs]


def test_a_fashion_mnist_test_image_uploaded_is_not_warned(app):
    x, _ = data.fashion_mnist_sample(0, "test")
    image = (x[0, 0].numpy() * 255).round().astype(np.uint8)
    at = _upload(app.switch_page(registry.ATTACK_LAB.path).run(), "attack_lab", "ankle-boot.png", png(image))
    assert not _far(at) and not [b for b in at.button if ".fit." in str(b.key)]
    assert "upload: ankle-boot.png" in [i.caption for el in at.get("image") for i in el.proto.imgs]


def test_the_inspector_switch_changes_its_own_kind_of_image_too(app):
    at = app.switch_page(registry.INSPECTOR.path).run()
    assert at.radio(key="inspector.dataset").value == "fashion-mnist"
    _upload(at, "inspector", "chelsea.png", png(data.sample_photos()["chelsea"]))
    assert len(_far(at)) == 1
    at.button(key="inspector.fit.cifar10").click().run()
    assert not at.exception, at.exception
    assert at.radio(key="inspector.dataset").value == "cifar10"
    assert at.sidebar.selectbox(key="pair_standard").value == "cifar10-standard"
    assert not _far(at)


def test_without_a_model_that_fits_the_warning_says_so(tiny_root, monkeypatch):
    """On the tiny pair's checkpoints (no CIFAR-10 model): grey noise is far from Fashion-MNIST, would suit
    a CIFAR-10 model, and none is here, so no switch is offered, only those words."""
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(tiny_root))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(APP, default_timeout=120).run()
    at = at.switch_page(registry.ATTACK_LAB.path).run()
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    _upload(at, "attack_lab", "noise.png", png(noise))
    assert len(_far(at)) == 1 and "border is plain black" in _far(at)[0]
    assert not [b for b in at.button if ".fit." in str(b.key)]
    assert any("would suit a CIFAR-10 (32x32 colour) model; none is available offline." in str(c.value)
               for c in at.caption)
