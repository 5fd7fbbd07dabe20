"""Shareable views in a real browser: a copied link with settings in the URL gives the same view.

The shared ``server`` fixture has served / once; a deep link as a fresh server's very first
request is test_routing.py's.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from e2e_browser import alerts, exceptions, main_text, open_page, submit_and_wait, submit_button, wait_idle


def verdicts(page) -> tuple[list[str], list[str]]:
    return alerts(page, "Error"), alerts(page, "Success")


# Test image 16, a pullover: PGD at Linf 0.1 flips the bundled standard model, not the robust one.
# Not the page's default image (1), so the link must carry it.
SHARED_IMAGE = "16"


def test_a_copied_link_restores_and_reruns_the_view(server, browser, page):
    open_page(page, f"{server.url}/attack_lab")
    index = page.get_by_label("Fashion-MNIST test image index")
    index.fill(SHARED_IMAGE)
    index.press("Enter")
    wait_idle(page)
    submit_and_wait(page, submit_button(page, "Run"), page.get_by_text("Does the perturbation transfer?"))
    assert not exceptions(page)
    fooled, held = verdicts(page)
    assert len(fooled) == 1 and "Pullover →" in fooled[0] and len(held) == 1 and "Pullover → Pullover" in held[0]
    link = page.url
    query = parse_qs(urlparse(link).query)
    assert query["attack_lab.index"] == [SHARED_IMAGE] and query["run"] == ["attack_lab"], link

    # the copied link in another browser (its own cookies, so its own session)
    other = browser.new_context(viewport=page.viewport_size)
    try:
        p2 = other.new_page()
        open_page(p2, link, timeout=150)
        p2.get_by_text("Does the perturbation transfer?").wait_for(timeout=150_000)
        wait_idle(p2)
        assert not exceptions(p2)
        assert p2.get_by_label("Fashion-MNIST test image index").input_value() == SHARED_IMAGE
        assert verdicts(p2) == (fooled, held)
        assert "fmnist-standard" in main_text(p2) and "fmnist-robust-linf" in main_text(p2)
    finally:
        other.close()


def test_a_tour_link_opens_its_page_with_its_settings(server, page):
    open_page(page, f"{server.url}/")
    page.get_by_role("link", name="1. A standard model is fooled, a robust one is not").click()
    page.get_by_text("Does the perturbation transfer?").wait_for(timeout=150_000)
    wait_idle(page)
    assert not exceptions(page)
    assert "/attack_lab" in page.url and "run=attack_lab" in page.url
    fooled, held = verdicts(page)
    assert "Fooled" in fooled[0] and "Holds" in held[0]


def test_the_presenter_look_from_the_url(server, page):
    open_page(page, f"{server.url}/?presenter=true")
    assert not exceptions(page)
    # larger type through the root font size (Streamlit's rem units), not a page zoom that Vega cannot measure
    root = page.evaluate("() => getComputedStyle(document.documentElement).fontSize")
    assert float(root.removesuffix("px")) > 1.2 * 16
    zoom = page.evaluate("""() => getComputedStyle(document.querySelector(
        '[data-testid="stMainBlockContainer"]')).zoom""")
    assert float(zoom) == 1
    assert page.locator('[data-testid="stSidebar"]').get_attribute("data-collapsed") == "true"
