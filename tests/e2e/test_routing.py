"""Links to a page: the first request a fresh server gets may be a deep link (a shared URL)."""

from __future__ import annotations

import pytest

from e2e_browser import exceptions, open_page
from ui import registry


@pytest.mark.xfail(strict=True, reason=(
    "Streamlit runs a page straight from the pages/ folder (multipage v1: no app.py, no sidebar pair, every "
    "file of pages/ in the navigation, registered or not) until the first run of app.py calls st.navigation; "
    "so a fresh server's first visitor through a link like /attack_lab gets the wrong app. Fix: move the "
    "pages out of a folder named pages/ (st.navigation takes any path); a DESIGN.md change"))
def test_a_deep_link_to_a_fresh_server_gets_the_app(start_server, page):
    server = start_server()
    open_page(page, f"{server.url}/attack_lab")
    assert not exceptions(page)
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Standard model").count() == 1
    assert page.locator('[data-testid="stSidebarNavLink"]').count() == len(registry.PAGES)
