"""Links to a page: the first request a fresh server gets may be a deep link (a shared URL).

Streamlit runs a file of pages/ alone (old-style multipage: no app.py) until st.navigation has
run once in the process; ``ui.routing.through_app`` makes such a run go through app.py. Each
test starts its own server and sends the deep link first.
"""

from __future__ import annotations

from e2e_browser import alerts, exceptions, open_page, wait_idle
from ui import registry


def sidebar_nav(page) -> list[str]:
    """The navigation's page titles (a link's text also holds its icon's name, on a line before)."""
    return [a.inner_text().strip().split("\n")[-1] for a in page.locator('[data-testid="stSidebarNavLink"]').all()]


def assert_the_app(page) -> None:
    """app.py ran: the registry's pages and nothing else in the navigation, the sidebar's pair
    and device, the presenter toggle."""
    assert not exceptions(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_by_text("Standard model").count() == 1
    assert sidebar.get_by_text("Device").count() == 1
    assert sidebar.get_by_text("Presenter look").count() == 1
    assert sidebar_nav(page) == [p.title for p in registry.PAGES]


def test_a_deep_link_to_a_fresh_server_gets_the_app(start_server, page):
    server = start_server()
    open_page(page, f"{server.url}/{registry.ATTACK_LAB.url_path}")
    assert_the_app(page)
    assert page.get_by_role("heading", name="Attack lab").count() == 1
    assert "/attack_lab" in page.url


def test_a_tour_link_as_the_first_request_restores_and_computes_its_view(start_server, page):
    """The tour's first step, opened as the very first request: its settings, its run, its verdicts."""
    from ui import tour

    step = tour.STEPS[0]
    server = start_server()
    query = "&".join(f"{k}={v}" for k, v in step.query_params.items())
    open_page(page, f"{server.url}/{step.page.url_path}?{query}", timeout=150)
    page.get_by_text("Does the perturbation transfer?").wait_for(timeout=150_000)
    wait_idle(page)
    assert_the_app(page)
    assert page.get_by_label("Fashion-MNIST test image index").input_value() == str(tour.IMAGE)
    assert any("Fooled" in a for a in alerts(page, "Error")) and any("Holds" in a for a in alerts(page, "Success"))
    assert page.get_by_text(f"Tour, step 1 of {len(tour.STEPS)}").count() == 1
    assert "presenter" not in page.url


def test_a_second_deep_link_still_gets_the_app(start_server, browser, page):
    """Not only the first request: a reload, and another page in another browser context."""
    server = start_server()
    open_page(page, f"{server.url}/{registry.LAYER_ROBUSTNESS.url_path}")
    assert_the_app(page)
    page.reload()
    wait_idle(page)
    assert_the_app(page)
    other = browser.new_context(viewport=page.viewport_size)
    try:
        p2 = other.new_page()
        open_page(p2, f"{server.url}/{registry.MODEL_ZOO.url_path}")
        assert_the_app(p2)
    finally:
        other.close()
    assert "Traceback" not in server.log(), server.log()
