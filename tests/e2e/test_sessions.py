"""Four browser sessions at once on the attack lab: all finish, each sees only its own upload and result."""

from __future__ import annotations

import io
import time
from urllib.parse import urljoin

import numpy as np
from PIL import Image

from e2e_browser import VIEWPORT, exceptions, main_text, submit_button, upload, wait_idle
from explorer import data

SESSIONS = 4


def session_image(k: int) -> bytes:
    """A different white shape on black per session (a bar, a band, a ring, a diagonal), 56x56 PNG."""
    a = np.zeros((56, 56), np.uint8)
    if k == 0:
        a[4:52, 22:34] = 255
    elif k == 1:
        a[22:34, 4:52] = 255
    elif k == 2:
        a[8:48, 8:48] = 255
        a[16:40, 16:40] = 0
    else:
        for i in range(56):
            a[i, max(0, i - 5):i + 5] = 255
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def model_input(content: bytes) -> np.ndarray:
    """What the attack lab feeds a Fashion-MNIST model for this upload: [28, 28] in [0, 1]."""
    return data.to_model_input(data.decode_image(content), (1, 28, 28))[0, 0].numpy()


def shown_original(page) -> np.ndarray:
    """The result's "original" image as served to the browser, back at 28x28 in [0, 1]."""
    img = page.locator('[data-testid="stImage"]').filter(has_text="original").locator("img").first
    src = img.get_attribute("src")
    body = page.request.get(urljoin(page.url, src)).body()
    pil = Image.open(io.BytesIO(body)).convert("L").resize((28, 28), Image.Resampling.BOX)
    return np.asarray(pil, np.float32) / 255


def test_four_sessions_at_once_each_see_only_their_own(server, browser):
    uploads = [session_image(k) for k in range(SESSIONS)]
    expected = [model_input(u) for u in uploads]
    contexts = [browser.new_context(viewport=VIEWPORT) for _ in range(SESSIONS)]
    try:
        pages = [c.new_page() for c in contexts]
        # each step goes to the four sessions first, then waits for them: the server works on all four
        for page in pages:
            page.goto(f"{server.url}/attack_lab")
        for page in pages:
            wait_idle(page, timeout=90)
            page.get_by_text("Upload", exact=True).click()
        for k, page in enumerate(pages):
            wait_idle(page)
            upload(page, f"session-{k}.png", uploads[k], mime="image/png")
        for k, page in enumerate(pages):
            page.get_by_text(f"upload: session-{k}.png").wait_for(timeout=60_000)
            wait_idle(page)
            # 200 steps, so that the four runs are in flight together
            thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Steps").get_by_role("slider")
            thumb.focus()
            thumb.press("End")
        clicked = []
        for page in pages:
            submit_button(page, "Run").click()
            clicked.append(time.monotonic())
        finished: list = [None] * SESSIONS
        deadline = time.monotonic() + 180
        while None in finished and time.monotonic() < deadline:
            for k, page in enumerate(pages):
                if finished[k] is None and page.get_by_text("Does the perturbation transfer?").count():
                    finished[k] = time.monotonic()
            time.sleep(0.05)
        assert None not in finished, f"sessions {[k for k, f in enumerate(finished) if f is None]} did not finish"
        assert max(clicked) < min(finished), "a run ended before the last one started: they did not overlap"
        for k, page in enumerate(pages):
            wait_idle(page)
            assert not exceptions(page), exceptions(page)
            text = main_text(page)
            assert f"upload: session-{k}.png" in text
            assert not [j for j in range(SESSIONS) if j != k and f"session-{j}.png" in text]
            assert "200 steps" in text
            # the result is computed from this session's upload, not another's
            shown = shown_original(page)
            distance = [float(np.abs(shown - e).mean()) for e in expected]
            assert int(np.argmin(distance)) == k, distance
            assert distance[k] < 0.02, distance
    finally:
        for c in contexts:
            c.close()
    assert server.alive()
