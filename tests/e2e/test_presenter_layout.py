"""The presenter look on every page of ui.registry.PAGES: nothing runs past its column.

Per page, in the presenter look (``?presenter=true``) at 1280x720: open it, run its default
action as tests/e2e/test_pages.py does (its ``PLANS``, shrunk where a default run takes minutes),
then check every chart (the Vega canvas/svg), table and image against the column it sits in: its
right edge may not pass the column's by more than ``SLACK`` px (a CSS zoom once cut axes, so a
100% bar read 73%, and dropped tables' last columns), and every data grid against its own columns: none
may hide a column behind a horizontal scroll bar. Then the same page at 1920x1080, every tab
of the page, and the normal look (the sidebar's toggle) at 1280x720. Screenshots go to the
git-ignored tests/artifacts/e2e/<page>-presenter-<size>.png and <page>-normal-1280x720.png.
"""

from __future__ import annotations

import pytest
from e2e_browser import (
    exceptions,
    open_page,
    screenshot,
    submit_and_wait,
    submit_button,
    wait_idle,
)
from test_pages import PLANS, Plan

from ui import registry

SIZES = ((1280, 720), (1920, 1080))
SLACK = 2  # px: sub-pixel rounding

#: Charts (Vega draws into a canvas or an svg inside the element), tables and images of the main
#: area that end right of their column (the nearest st.columns column, else the main block's
#: content box); hidden ones (other tabs) are skipped.
OVERFLOWS_JS = """(slack) => {
    const main = document.querySelector('[data-testid="stMainBlockContainer"]');
    const mainRight = main.getBoundingClientRect().right - parseFloat(getComputedStyle(main).paddingRight);
    const selector = ['[data-testid="stVegaLiteChart"] canvas', '[data-testid="stVegaLiteChart"] svg.marks',
                      '[data-testid="stDataFrame"]', '[data-testid="stTable"] table', '[data-testid="stImage"] img'];
    const out = [];
    for (const el of main.querySelectorAll(selector.join(', '))) {
        const box = el.getBoundingClientRect();
        if (box.width === 0 || box.height === 0) continue;
        const column = el.closest('[data-testid="stColumn"]');
        const right = column ? column.getBoundingClientRect().right : mainRight;
        if (box.right > right + slack) {
            const owner = el.closest('[data-testid^="st"]');
            const label = owner.getAttribute('aria-label') || owner.innerText || el.getAttribute('alt') || '';
            out.push(`${owner.dataset.testid} ${el.tagName.toLowerCase()} ${Math.round(box.width)} px wide ends at `
                     + `${Math.round(box.right)}, its column at ${Math.round(right)} (${label.slice(0, 60).trim()})`);
        }
    }
    // a data grid narrower than its columns scrolls them out of sight: the last ones are lost on a projector
    for (const el of main.querySelectorAll('[data-testid="stDataFrame"]')) {
        const scroller = el.querySelector('.dvn-scroller');
        if (!scroller || el.getBoundingClientRect().width === 0) continue;
        if (scroller.scrollWidth > scroller.clientWidth + slack) {
            out.push(`stDataFrame hides ${scroller.scrollWidth - scroller.clientWidth} px of its columns behind a `
                     + `scroll bar (${(el.innerText || '').slice(0, 60).trim()})`);
        }
    }
    return out;
}"""


def overflows(page) -> list[str]:
    page.wait_for_timeout(800)  # charts re-layout to a new width
    return page.evaluate(OVERFLOWS_JS, SLACK)


def run_default_action(page, plan: Plan) -> None:
    """test_pages' default action: the plan's form button (shrunk first by ``prepare``), or its
    ``prepare`` alone where the action is not a form; a page without a plan: its first enabled primary
    form button."""
    if plan.submit is None:
        if plan.prepare is not None:
            plan.prepare(page)
        wait_idle(page)
        return
    if plan.prepare is not None:
        plan.prepare(page)
    buttons = submit_button(page, plan.submit) if plan.submit else \
        page.locator('[data-testid="stFormSubmitButton"] button[kind="primaryFormSubmit"]')
    if not buttons.count() or not buttons.first.is_enabled():
        return
    done = page.get_by_text(plan.done) if plan.done else page.locator('[data-testid="stApp"]')
    submit_and_wait(page, buttons.first, done, timeout=plan.timeout)


def tab_overflows(page) -> list[str]:
    """Overflows in each tab of the main area after the selected one (then back to the first)."""
    tabs = page.locator('[data-testid="stMain"] [role="tab"]')
    found = []
    for i in range(1, tabs.count()):
        tab = tabs.nth(i)
        name = tab.inner_text().strip()
        tab.click()
        wait_idle(page, timeout=150)
        found += [f"tab {name!r}: {o}" for o in overflows(page)]
    if tabs.count() > 1:
        tabs.first.click()
        wait_idle(page, timeout=150)
    return found


def set_presenter(page, on: bool) -> None:
    """The sidebar's toggle (the sidebar starts collapsed in the presenter look)."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    if sidebar.get_attribute("aria-expanded") == "false" or sidebar.get_attribute("data-collapsed") == "true":
        page.locator('[data-testid="stExpandSidebarButton"]').click()
    toggle = sidebar.locator('[data-testid="stCheckbox"]').filter(has_text="Presenter look")
    if toggle.locator("input").is_checked() != on:
        toggle.get_by_text("Presenter look").click()
    wait_idle(page, timeout=150)


@pytest.mark.parametrize("info", registry.PAGES, ids=[p.url_path or "home" for p in registry.PAGES])
def test_nothing_runs_past_its_column_in_the_presenter_look(server, browser, artifacts, info):
    name = info.url_path or "home"
    width, height = SIZES[0]
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        open_page(page, f"{server.url}/{info.url_path}?presenter=true")
        assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") != "16px"
        found = [f"{width}x{height}, before the run: {o}" for o in overflows(page)]
        run_default_action(page, PLANS.get(info, Plan("", "")))
        assert not exceptions(page), exceptions(page)
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            found += [f"{width}x{height}: {o}" for o in overflows(page)]
            screenshot(page, artifacts / f"{name}-presenter-{width}x{height}.png")
            found += [f"{width}x{height}, {o}" for o in tab_overflows(page)]
        width, height = SIZES[0]
        page.set_viewport_size({"width": width, "height": height})
        set_presenter(page, False)
        assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "16px"
        found += [f"normal look, sidebar open, {width}x{height}: {o}" for o in overflows(page)]
        screenshot(page, artifacts / f"{name}-normal-{width}x{height}.png")
        assert not exceptions(page), exceptions(page)
        assert not found, f"{info.title}: wider than its column:\n" + "\n".join(found)
    finally:
        context.close()
