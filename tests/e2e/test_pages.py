"""Every page of ui.registry.PAGES in a real browser: open it, run its default action, read the result.

One test per page, against one `streamlit run app.py` on the bundled models. Each
test opens the page by its URL path, clicks the page's main form button with the
defaults (pages whose default run takes minutes on a CPU get smaller settings first,
named in their plan), waits for the run to end, checks the rendered text, checks
that no exception box is shown, and saves a full-page screenshot under
tests/artifacts/e2e/<page>.png. A page without a plan here still gets the generic
check: the first primary form button, no exception, a title.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

from e2e_browser import (alerts, exceptions, main_text, open_page, screenshot, submit_and_wait, submit_button,
                         wait_idle)
from ui import registry


def _shrink_style_transfer(page) -> None:
    # the default (the tour's 160 px, 60 iterations) is a cache hit once the warm-up is done, else about half a
    # minute on a loaded 2-core CPU; 5 iterations at 64 px show the same page
    page.get_by_label("Iterations").fill("5")
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Output size").get_by_role("slider")
    thumb.focus()
    thumb.press("Home")  # the slider's minimum, 64 px


def _shrink_layer_robustness(page) -> None:
    # 64 images x 5 layers x 2 models can outlast the timeout on a loaded 2-core CPU; 16 show the same page
    page.get_by_role("spinbutton", name="Images").fill("16")


def _run_squares(page) -> None:
    # the discussion page's runs are plain buttons in tabs; the squares one takes seconds at its defaults
    page.get_by_role("tab", name="Adversarial squares (Nakkiran)").click()
    page.get_by_role("button", name=re.compile(r"Run the small version \(300 squares")).click()
    page.get_by_text("live run,").first.wait_for(timeout=150_000)


def sidebar_pair(page) -> list[str]:
    """The model names chosen in the sidebar's two selectboxes (without "(none available)")."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    values = [sidebar.get_by_role("combobox", name=label).input_value() for label in ("Standard model", "Robust model")]
    return [v for v in values if v and not v.startswith("(")]


@dataclass(frozen=True)
class Plan:
    """What a page's default action is and what its result must say.

    Attributes:
        submit: the label of the form button to press; None: no action (the page is its result).
        done: text that appears once the run is over.
        expect: regular expressions the page's main text must match afterwards.
        prepare: shrinks a default run that takes minutes on a CPU; with ``submit`` None, the action
            itself (clicks outside a form).
    """

    submit: Optional[str]
    done: str
    expect: tuple[str, ...] = ()
    prepare: Optional[Callable] = None
    timeout: float = 150
    shows_pair: bool = False  # the result names both models of the sidebar


PLANS = {
    registry.HOME: Plan(None, "Model zoo", (r"Features, not bugs", r"\d+ of \d+\s+models work offline now",
                                               r"CPU")),
    registry.ATTACK_LAB: Plan("Run", "Does the perturbation transfer?",
                                # the default image: the standard model is fooled, the robust one holds
                                (r"Result", r"PGD, untargeted, linf eps", r"fmnist-standard",
                                 r"Fooled", r"Holds", r"perturbation ×"), shows_pair=True),
    registry.MODEL_ZOO: Plan("Evaluate", "first 100 test images",
                               (r"Quick evaluation", r"fmnist-standard", r"\d+\.\d s")),
    registry.STYLE_TRANSFER: Plan("Run", "Download the figure (PNG)",
                                    (r"Result", r"cifar10-robust-l2", r"Content error"),
                                    prepare=_shrink_style_transfer),
    registry.LAYER_ROBUSTNESS: Plan("Run", "Download the table (CSV)", (r"Result", r"fmnist-standard", r"R = "),
                                      prepare=_shrink_layer_robustness),
    # the default tab browses what `python -m explorer construct` built; the live build takes minutes
    registry.CONSTRUCTED: Plan(None, "Browse a dataset", (r"Constructed datasets", r"D_R")),
    registry.DISCUSSION: Plan(None, "live run,", (r"The discussion's experiments", r"live run, \d+ s",
                                                     r"\d+ labels flipped", r"sign\(mean x\)"),
                                prepare=_run_squares),
    registry.FEATURES: Plan("Attack both", "Perturbations shown as 0.5 + scale",
                              (r"Non-robust features", r"PGD linf eps 0.1, 20 steps"), shows_pair=True),
}


@pytest.mark.parametrize("info", registry.PAGES, ids=[p.url_path or "home" for p in registry.PAGES])
def test_page_runs_its_default_action(server, page, artifacts, info):
    plan = PLANS.get(info, Plan("", "", ()))
    t0 = time.monotonic()
    open_page(page, f"{server.url}/{info.url_path}")
    assert not exceptions(page), exceptions(page)
    # the page of the URL is the one shown, inside app.py's navigation and sidebar
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Standard model").count() == 1
    assert page.locator('[data-testid="stSidebarNavLink"]').count() == len(registry.PAGES)
    assert page.locator("h1").count() >= 1
    if plan.submit is not None:
        if plan.prepare is not None:
            plan.prepare(page)
        buttons = submit_button(page, plan.submit) if plan.submit else \
            page.locator('[data-testid="stFormSubmitButton"] button[kind="primaryFormSubmit"]')
        if plan.submit or (buttons.count() and buttons.first.is_enabled()):  # no plan: the first enabled one
            button = buttons.first
            assert button.is_enabled(), f"{info.title}: the {plan.submit!r} button is disabled with the defaults"
            done = page.get_by_text(plan.done) if plan.done else page.locator('[data-testid="stApp"]')
            submit_and_wait(page, button, done, timeout=plan.timeout)
    else:
        if plan.prepare is not None:  # an action that is not a form (buttons, tabs)
            plan.prepare(page)
        wait_idle(page)
    text = main_text(page)
    for pattern in plan.expect:
        assert re.search(pattern, text), f"{info.title}: {pattern!r} not in the page:\n{text[:3000]}"
    assert not exceptions(page), exceptions(page)
    if plan.shows_pair:
        for name in sidebar_pair(page):
            assert name in text, f"{info.title}: {name}, chosen in the sidebar, is not in the result"
    errors = [e for e in alerts(page, "Error") if not e.startswith("Fooled")]
    assert not errors, f"{info.title}: error boxes {errors}"
    # st.table renders each cell as Markdown: an empty cell written "-" became a list item (a bullet)
    lists = page.locator('[data-testid="stTable"] td li')
    assert lists.count() == 0, f"{info.title}: table cells drawn as list items: {lists.all_inner_texts()}"
    screenshot(page, artifacts / f"{info.url_path or 'home'}.png")
    print(f"{info.title}: {time.monotonic() - t0:.1f} s")
