"""Real-browser fixtures: `streamlit run app.py` on 127.0.0.1 and Debian's chromium through playwright.

Every test here skips, with the reason, when /usr/bin/chromium (or ``$EXPLORER_CHROMIUM``)
or the playwright package is missing. No browser is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Server, missing_browser, open_page

MISSING = missing_browser()


@pytest.fixture(autouse=True)
def _needs_browser():
    if MISSING:
        pytest.skip(MISSING)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """tests/artifacts/e2e/ (git-ignored): one screenshot per page of the last run; a test run rewrites no tracked file."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser():
    if MISSING:
        pytest.skip(MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def start_server(tmp_path_factory):
    """A factory of fresh servers; all are stopped at the end of the session."""
    servers: list[Server] = []

    def start() -> Server:
        server = Server(tmp_path_factory.mktemp("streamlit") / "server.log")
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def server(start_server, browser):
    """The shared server, warmed by one visit to / (from then on st.navigation owns routing).
    At the end it must still be alive and must not have logged a traceback."""
    s = start_server()
    page = browser.new_page(viewport=VIEWPORT)
    open_page(page, s.url + "/")
    page.close()
    yield s
    assert s.alive(), f"the server died:\n{s.log()}"
    assert "Traceback" not in s.log(), f"the server logged a traceback:\n{s.log()}"


@pytest.fixture
def page(browser):
    """A fresh browser context (its own cookies, so its own Streamlit session)."""
    context = browser.new_context(viewport=VIEWPORT)
    p = context.new_page()
    yield p
    context.close()
