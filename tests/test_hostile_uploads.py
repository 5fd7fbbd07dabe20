"""Hostile uploads: every file of the generated corpus (tests/hostile.py) gets a clear message or the right image.

The decoder is ``explorer.data.decode_image``, the one entry point of every upload;
then each accepted image goes through every model-input transform the pages use.
An AppTest uploads one file of each category through the attack lab's uploader, and
the upload size limit is read back from .streamlit/config.toml.
"""

from __future__ import annotations

import collections
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hostile
from explorer import data

ROOT = Path(__file__).resolve().parent.parent
CORPUS = hostile.corpus()
SECONDS_PER_FILE = 2.0  # generous for a loaded 2-core CI machine; most take milliseconds
MODEL_INPUTS = [(1, 28, 28), (3, 32, 32), (3, 224, 224)]


def decode(case: hostile.Case):
    """(image or None, message or None, seconds); anything but ImageError propagates."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL warns about odd EXIF and big headers; the outcome is what counts
        try:
            return data.decode_image(case.data), None, time.perf_counter() - t0
        except data.ImageError as e:
            return None, str(e), time.perf_counter() - t0


def test_the_corpus_covers_the_issue_list():
    counts = collections.Counter(c.category for c in CORPUS)
    assert len(CORPUS) >= 200, counts
    for category in ["random bytes", "truncated", "wrong extension", "degenerate size", "decompression bomb header",
                     "palette + transparency", "1-bit", "16-bit", "CMYK", "multi-frame", "EXIF orientation",
                     "format outside the allow list", "corrupted"]:
        assert counts[category] >= 1, category
    names = {c.name for c in CORPUS}
    assert {"zero.png", "1x100.png", "100x1.png", "bomb-30000x30000.png", "bomb-30000x30000.jpg"} <= names
    assert {f"exif-{o}.jpg" for o in range(1, 9)} <= names
    # the corpus is the same every time (generated, not downloaded)
    assert [c.data for c in hostile.corpus()[:50]] == [c.data for c in CORPUS[:50]]


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_each_file_gets_a_clear_message_or_the_right_image(case):
    img, message, seconds = decode(case)
    assert seconds < SECONDS_PER_FILE, f"{case.id} took {seconds:.2f} s"
    if img is None:
        assert case.expect in (hostile.REFUSE, hostile.EITHER), f"{case.id} refused: {message}"
        # one line a person can read: no traceback, no object reprs, not empty, not a wall of text
        assert message and "\n" not in message and len(message) <= 200, message
        assert "Traceback" not in message and "object at 0x" not in message and "<" not in message, message
        if case.message:
            assert case.message in message, message
        return
    assert case.expect in (hostile.IMAGE, hostile.EITHER), f"{case.id} decoded to {img.size} {img.mode}"
    assert img.mode == "RGB"
    if case.size is not None:
        assert img.size == case.size
    assert min(img.size) >= data.MIN_SIDE and img.size[0] * img.size[1] <= data.MAX_PIXELS
    if case.expected is not None:
        got = np.asarray(img).astype(int)
        assert got.shape == case.expected.shape
        diff = np.abs(got - case.expected.astype(int))
        assert diff.max() <= case.tol, f"{case.id}: max difference {diff.max()}"
        if case.mean_tol is not None:
            assert diff.mean() <= case.mean_tol, f"{case.id}: mean difference {diff.mean():.2f}"


EXIF_JPEGS = [c for c in CORPUS if c.category == "EXIF orientation" and c.name[5:6].isdigit() and
              c.name.endswith(".jpg")]


@pytest.mark.parametrize("case", EXIF_JPEGS, ids=[c.name for c in EXIF_JPEGS])
def test_jpeg_exif_orientation_is_the_nearest_of_the_eight(case):
    """JPEG is lossy, so the tolerance alone could hide a wrong rotation of a symmetric
    image: the decoded image must be nearer to its own orientation than to the other seven."""
    img = np.asarray(data.decode_image(case.data)).astype(float)
    stored = hostile.blocky_rgb(seed=20)
    dist = {o: np.abs(img - f(stored)).mean() if f(stored).shape == img.shape else np.inf
            for o, f in hostile.ORIENT.items()}
    assert min(dist, key=dist.get) == int(case.name[5])


ACCEPTED = [c for c in CORPUS if c.expect != hostile.REFUSE]


def test_every_accepted_image_becomes_every_model_input_quickly():
    """What the pages do next with an upload: the attack lab's model input (28 px gray, 32 px,
    224 px) and the style transfer's resize. Shapes, range, and no long stalls."""
    from explorer.experiments import style_transfer as ST

    n = 0
    for case in ACCEPTED:
        img, _, _ = decode(case)
        if img is None:
            continue
        for size in MODEL_INPUTS:
            t0 = time.perf_counter()
            x = data.to_model_input(img, size)
            assert x.shape == (1, *size) and 0 <= x.min() and x.max() <= 1, case.id
            assert time.perf_counter() - t0 < SECONDS_PER_FILE, case.id
        a = np.asarray(img)
        out = ST.resize(a, min(ST.MAX_SIZE, max(a.shape[:2])))
        assert out.ndim == 3 and out.shape[2] == 3 and min(out.shape[:2]) >= 1, case.id
        n += 1
    assert n >= 60


@pytest.mark.parametrize("w, h", [(200_000, 8), (8, 200_000), (5_000_000, 8)])
def test_long_thin_images_cost_only_their_crop(w, h):
    """An 8x200000 PNG is 1.6 KB; resizing all of it for a 224 px model took ~5 GB and raised
    MemoryError. Only the region the center crop keeps is resampled now."""
    img = data.decode_image(hostile.encode(Image.new("L", (w, h), 200), "PNG"))
    for size in MODEL_INPUTS:
        t0 = time.perf_counter()
        x = data.to_model_input(img, size)
        assert time.perf_counter() - t0 < 1.0
        assert x.shape == (1, *size)
        assert torch_allclose(x, 200 / 255) or (size[0] == 1 and size[1] == 28 and torch_allclose(x, 55 / 255))


def torch_allclose(x, value: float) -> bool:
    return bool((x - value).abs().max() <= 1 / 255 + 1e-6)


def test_the_crop_only_resize_equals_resize_then_crop_for_bilinear():
    """Where the crop-only path starts (aspect ratio beyond 16:1), it gives torchvision's
    pixels (resize the whole image, then crop the center) within one level of 255."""
    rng = np.random.default_rng(0)
    for w, h, size in [(2000, 40, (3, 224, 224)), (40, 3000, (3, 224, 160)), (900, 30, (1, 28, 28)),
                       (600, 20, (3, 32, 32))]:
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        got = data.to_model_input(a, size, invert=False)
        c, oh, ow = size
        crop = 1.0 if min(oh, ow) < 64 else 224 / 256
        sh, sw = round(oh / crop), round(ow / crop)
        if sh / h >= sw / w:
            nh, nw = sh, max(sw, int(sh * w / h))
        else:
            nw, nh = sw, max(sh, int(sw * h / w))
        assert nw * nh > 16 * sh * sw  # the crop-only path
        pil = Image.fromarray(a).convert("L" if c == 1 else "RGB").resize((nw, nh), Image.Resampling.BILINEAR)
        top, left = int(round((nh - oh) / 2.0)), int(round((nw - ow) / 2.0))
        ref = np.asarray(pil)[top:top + oh, left:left + ow].astype(np.float32) / 255
        ref = ref[None] if c == 1 else ref.transpose(2, 0, 1)
        np.testing.assert_allclose(got[0].numpy(), ref, atol=1 / 255 + 1e-6, rtol=0)


# --- the upload size limit -----------------------------------------------------------------

def test_upload_size_limit_is_set_in_the_streamlit_config(monkeypatch):
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    limit_mb = config["server"]["maxUploadSize"]
    assert isinstance(limit_mb, int) and 1 <= limit_mb <= 50, limit_mb  # Streamlit's default is 200 MB
    # the decoder's pixel limit is the second lock: a file under the size limit can still claim 900 MP
    assert data.MAX_PIXELS <= 50_000_000
    # a server started from the repository root reads it (what `streamlit run app.py` does)
    from streamlit import config as st_config

    monkeypatch.chdir(ROOT)
    st_config.get_config_options(force_reparse=True, options_from_flags={})
    try:
        assert st_config.get_option("server.maxUploadSize") == limit_mb
    finally:
        st_config.get_config_options(force_reparse=True)


# --- through the attack lab's uploader (AppTest) ---------------------------------------------

def _one_per_category() -> list[hostile.Case]:
    seen, out = set(), []
    for c in CORPUS:
        if c.category not in seen:
            seen.add(c.category)
            out.append(c)
    return out


def test_attack_lab_uploader_shows_a_message_or_the_image_never_a_traceback(tiny_root, monkeypatch):
    """One file of every category through the attack lab's uploader in one session,
    one after the other: an st.error that names the file, or the image, and no exception."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from ui import registry

    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page(registry.ATTACK_LAB.path).run()
    at.radio(key="attack_lab.source").set_value("Upload").run()
    cases = _one_per_category()
    assert len(cases) >= 15
    for case in cases:
        at.file_uploader(key="attack_lab.upload").upload(case.name, case.data, "application/octet-stream").run()
        assert not at.exception, (case.id, at.exception)
        img, message, _ = decode(case)
        captions = [i.caption for el in at.get("image") for i in el.proto.imgs]
        if img is None:
            assert [e.value for e in at.error] == [f"Cannot use {case.name}: {message}"], case.id
            assert f"upload: {case.name}" not in captions
        else:
            assert not at.error, (case.id, [e.value for e in at.error])
            assert f"upload: {case.name}" in captions, case.id
