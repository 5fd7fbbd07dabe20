"""Seconds from a fresh `streamlit run app.py` until the first tour step answers, in chromium.

    OMP_NUM_THREADS=1 taskset -c 1 python bench/tour_first_click.py

Starts a server on the bundled models (tests/e2e/e2e_browser.Server), opens the home
page as soon as the server answers, clicks the tour's first step the moment the home page
has painted, and waits for the attack lab's result. Then, on the same server, waits until
the warm-up reports every step warm and clicks step 1 again in a new session. Prints one
JSON line with the timings (seconds since the server process was started).
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


def click_step1(context, url: str, t0: float) -> dict:
    page = context.new_page()
    requested = time.monotonic() - t0
    page.goto(url)
    page.get_by_role("heading", name="Guided tour").wait_for(timeout=120_000)
    painted = time.monotonic() - t0
    status = page.get_by_text("Warm-up", exact=False).first.inner_text()
    clicked = time.monotonic()
    page.get_by_role("link", name=STEP1).click()
    page.get_by_text(DONE).wait_for(timeout=300_000)
    answered = time.monotonic()
    wait_idle(page, 120)
    page.close()
    return {"home_requested_s": round(requested, 2), "home_painted_s": round(painted, 2), "warm_up_status_at_click": status,
            "click_to_answer_s": round(answered - clicked, 2), "answered_s": round(answered - t0, 2)}


def main() -> int:
    from playwright.sync_api import sync_playwright

    log = Path(tempfile.mkdtemp()) / "server.log"
    t_start = time.monotonic()
    server = Server(log)  # returns once /_stcore/health answers
    t_health = time.monotonic() - t_start
    out = {"server_healthy_s": round(t_health, 2)}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            out["cold"] = click_step1(browser.new_context(viewport=VIEWPORT), server.url + "/", t_start)
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(server.url + "/")
            page.get_by_text("Every tour step is computed").wait_for(timeout=600_000)
            out["all_warm_s"] = round(time.monotonic() - t_start, 2)
            page.close()
            out["warm"] = click_step1(browser.new_context(viewport=VIEWPORT), server.url + "/", t_start)
            browser.close()
    finally:
        server.stop()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
