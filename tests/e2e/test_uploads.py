"""Hostile uploads in a real browser: a message, never a traceback; the size limit, in the browser and the server."""

from __future__ import annotations

import tomllib

import hostile
from e2e_browser import ROOT, alerts, exceptions, main_text, open_page, upload, wait_idle

LIMIT_MB = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
SAMPLES = ["random3.gif", "zero.png", "1x100.png", "bomb-30000x30000.jpg", "truncated-0.5.jpg", "page.png",
           "exif-6.jpg", "cmyk.jpg"]  # one of each kind here; tests/test_hostile_uploads.py takes all 309


def _corpus_files() -> dict[str, hostile.Case]:
    by_name: dict[str, hostile.Case] = {}
    for c in hostile.corpus():
        by_name.setdefault(c.name, c)
    return {n: by_name[n] for n in SAMPLES}


def _to_upload(page) -> None:
    page.get_by_text("Upload", exact=True).click()
    wait_idle(page)


def test_hostile_files_get_a_message_or_the_image(server, page):
    """One session uploads hostile files one after another: each is refused with an st.error
    that names it, or shown; no exception box, and the server stays up."""
    from explorer import data

    open_page(page, f"{server.url}/attack_lab")
    _to_upload(page)
    for name, case in _corpus_files().items():
        upload(page, name, case.data)
        try:
            data.decode_image(case.data)
            ok = True
        except data.ImageError:
            ok = False
        done = page.get_by_text(f"upload: {name}") if ok else page.get_by_text(f"Cannot use {name}:")
        done.first.wait_for(timeout=60_000)
        wait_idle(page)
        assert not exceptions(page), (name, exceptions(page))
        errors = alerts(page, "Error")
        if ok:
            assert not errors, (name, errors)
        else:
            assert len(errors) == 1 and errors[0].startswith(f"Cannot use {name}:"), (name, errors)
    assert server.alive()


def test_the_upload_size_limit_holds_in_the_browser_and_in_the_server(server, page):
    """A file over server.maxUploadSize is refused by the uploader before it is sent; sent
    anyway (straight to the upload endpoint, as a script would), the server answers 413."""
    open_page(page, f"{server.url}/attack_lab")
    _to_upload(page)
    small = hostile.encode(hostile.Image.fromarray(hostile.blocky_rgb()), "PNG")
    with page.expect_request("**/_stcore/upload_file/**") as sent:
        upload(page, "small.png", small, mime="image/png")
    page.get_by_text("upload: small.png").wait_for(timeout=60_000)
    wait_idle(page)
    request = sent.value
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (LIMIT_MB * 2**20 + 1)
    # the browser refuses it, and the page keeps the last good upload
    upload(page, "big.png", big, mime="image/png")
    page.get_by_text(f"File must be {LIMIT_MB:.1f}MB or smaller").wait_for(timeout=30_000)
    wait_idle(page)
    assert not exceptions(page)
    assert "Cannot use big.png" not in main_text(page)
    # the server refuses it too: the same session's upload URL, a new file id, the XSRF token
    token = request.headers.get("x-xsrftoken", "")
    url = request.url.rsplit("/", 1)[0] + "/hostile-big-file"
    over = page.request.put(url, headers={"X-Xsrftoken": token},
                            multipart={"file": {"name": "big.png", "mimeType": "image/png", "buffer": big}})
    assert over.status == 413, over.status
    under = page.request.put(url, headers={"X-Xsrftoken": token},
                             multipart={"file": {"name": "ok.png", "mimeType": "image/png", "buffer": small}})
    assert under.status in (200, 204), under.status  # the control: same request, small body
    assert server.alive()
