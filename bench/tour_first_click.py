"""Seconds from a fresh `streamlit run app.py` until the first tour step answers, in chromium.

    OMP_NUM_THREADS=1 taskset -c 1 python bench/tour_first_click.py

Starts a server on the bundled models (tests/e2e/e2e_browser.Server), opens the home
page as soon as the server answers, clicks the tour's first step as soon as the home page
has finished drawing, and times the attack lab's verdict ("Fooled") and its whole result.
Then, in the same browser session, waits until the warm-up reports every step warm and
clicks step 1 again; and once more as a new visitor (a fresh browser context). Prints one
JSON line with the timings (seconds since the server process was started, or since the click).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e2e_browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Server, wait_idle  # noqa: E402

STEP1 = "1. A standard model is fooled, a robust one is not"
DONE = "Does the perturbation transfer?"


def click_step1(page, t0: float) -> dict:
    """Click step 1 on the home page shown in ``page``; time the verdict and the whole result."""
    status = page.get_by_text("Warm-up", exact=False).first.inner_text()
    clicked = time.monotonic()
    page.get_by_role("link", name=STEP1).click()
    page.locator('[data-testid="stAlertContentError"]').filter(has_text="Fooled").wait_for(timeout=300_000)
    verdict = time.monotonic()
    page.get_by_text(DONE).wait_for(timeout=300_000)
    answered = time.monotonic()
    wait_idle(page, 120)
    return {"warm_up_status_at_click": status, "click_s": round(clicked - t0, 2),
            "click_to_verdict_s": round(verdict - clicked, 2), "click_to_answer_s": round(answered - clicked, 2),
            "answered_s": round(answered - t0, 2)}


def open_home(page, url: str, t0: float) -> dict:
    requested = time.monotonic() - t0
    page.goto(url)
    page.get_by_role("heading", name="Guided tour").wait_for(timeout=120_000)
    painted = time.monotonic() - t0
    wait_idle(page, 120)
    return {"home_requested_s": round(requested, 2), "home_painted_s": round(painted, 2),
            "home_idle_s": round(time.monotonic() - t0, 2)}


def main() -> int:
    from playwright.sync_api import sync_playwright

    log = Path(tempfile.mkdtemp()) / "server.log"
    t_start = time.monotonic()
    server = Server(log)  # returns once /_stcore/health answers
    out = {"server_healthy_s": round(time.monotonic() - t_start, 2)}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport=VIEWPORT).new_page()
            out["cold"] = {**open_home(page, server.url + "/", t_start), **click_step1(page, t_start)}
            page.goto(server.url + "/")  # the same session, back home: wait for the warm-up to finish
            page.get_by_text("Every tour step is computed").wait_for(timeout=600_000)
            out["all_warm_s"] = round(time.monotonic() - t_start, 2)
            wait_idle(page, 120)
            out["warm_same_session"] = click_step1(page, t_start)
            fresh = browser.new_context(viewport=VIEWPORT).new_page()  # a first visitor, everything warm
            out["warm_new_visitor"] = {**open_home(fresh, server.url + "/", t_start), **click_step1(fresh, t_start)}
            browser.close()
    finally:
        server.stop()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
