"""Every page's default action, timed in Debian's chromium: the ``app`` rows of ``python -m bench``.

One ``streamlit run app.py`` on the bundled models (tests/e2e/e2e_browser.Server), as a
lecturer starts it: the home page is opened first and the warm-up (the tour's steps computed
in the background) is waited for, so that the actions below do not share the CPU with it.
Then, for each page in ``ACTIONS``, a fresh browser session (its own cookies) opens the page,
waits until it is idle and times its default action from the click (or, for a page that
computes on load, from ``page.goto``) until the action's result is on screen and the script
run is over. The server's caches are shared, as they are between a lecturer's visitors: a
default that equals a tour step is answered from what the warm-up computed, and the row says
``warm-up`` in its ``cache`` column when the warm-up's status names that step.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 10.0  # issue 21: every default action under 10 s on a quiet 2-core CPU


@dataclass(frozen=True)
class Action:
    """One page's default action.

    Attributes:
        page: the page's URL path ("" for home).
        name: what is timed, in the words of the page (the button's label, or "open").
        done: text that is on screen once the action's result is drawn.
        click: the button (a form's submit button, or a plain button with ``plain``) whose press is
            timed; None: the page computes on load, and loading it is what is timed.
        tab: a tab to open first (not timed).
        plain: ``click`` is a plain ``st.button``, matched by the start of its label.
        tour_step: the warm-up item that computes this very default ahead (a tour step, "step 1", or a
            page default of ``ui.warmup.PAGE_DEFAULTS``, "inversion"), if any.
    """

    page: str
    name: str
    done: str
    click: str | None = None
    tab: str | None = None
    plain: bool = False
    tour_step: str | None = None


ACTIONS: tuple[Action, ...] = (
    Action("", "open", "Model zoo"),
    Action("attack_lab", "Run", "Does the perturbation transfer?", click="Run", tour_step="step 1"),
    Action("model_zoo", "Evaluate", "first 100 test images", click="Evaluate"),
    Action("inspector", "Inspect", "Smallest flipping eps", click="Inspect"),
    Action("features", "open (every tab's on-load views)", "Useful, non-robust constructions"),
    Action("features", "What PGD changes: Attack both", "Perturbations shown as 0.5 + scale", click="Attack both"),
    Action("features", "Class synthesis: Synthesize every class", "classes reached", click="Synthesize every class",
           tab="Class synthesis", tour_step="step 2"),
    Action("features", "Representation inversion: Invert", "Normalized L2 steps on the", click="Invert",
           tab="Representation inversion", tour_step="inversion"),
    Action("features", "Representation inversion: Maximize", "Each model gets its own units", click="Maximize",
           tab="Representation inversion", tour_step="units"),
    Action("features", "Frequency: Measure", "; clean accuracy", click="Measure", tab="Frequency",
           tour_step="frequency"),
    Action("features", "Frequency: Compute the heat maps", "Error rate on", click="Compute the heat maps",
           tab="Frequency", tour_step="heat maps"),
    Action("layer_robustness", "Run", "Download the table (CSV)", click="Run", tour_step="layer robustness"),
    Action("style_transfer", "Run", "Download the figure (PNG)", click="Run", tour_step="step 6"),
    Action("constructed", "open (browse, Table 1)", "Browse a dataset"),
    Action("constructed", "Live (small): Build, train and test", "real test images (robust: PGD",
           click="Build, train and test", tab="Live (small)", tour_step="live table"),
    Action("discussion", "open (saved results)", "Transfer vs learnability"),
    Action("discussion", "Adversarial squares: Run the small version", "live run,",
           click="Run the small version", tab="Adversarial squares (Nakkiran)", plain=True,
           tour_step="squares"),
)


def _button(page, action: Action):
    if action.plain:
        return page.get_by_role("button", name=re.compile("^" + re.escape(action.click))).first
    return page.locator('[data-testid="stFormSubmitButton"] button').filter(has_text=action.click).first


def time_action(E, page, url: str, action: Action, timeout: float) -> dict:
    """Seconds of one action in a fresh page; the page's exceptions, if any, are counted."""
    target = f"{url}/{action.page}"
    if action.click is None:
        t0 = time.monotonic()
        page.goto(target)
        # attached, not visible: a page that computes on load may draw the text in a tab not open
        page.get_by_text(action.done).first.wait_for(state="attached", timeout=timeout * 1000)
        E.wait_idle(page, timeout)
        seconds = time.monotonic() - t0
    else:
        E.open_page(page, target, timeout)
        if action.tab:
            page.get_by_role("tab", name=action.tab).click()
            E.wait_idle(page, timeout)
        button = _button(page, action)
        t0 = time.monotonic()
        button.click()
        page.get_by_text(action.done).first.wait_for(timeout=timeout * 1000)
        E.wait_idle(page, timeout)
        seconds = time.monotonic() - t0
    return {"seconds": seconds, "exceptions": len(E.exceptions(page))}


def warm_up_status(E, page, timeout: float) -> tuple[str, float]:
    """Wait (up to ``timeout`` s) for the home page to say the warm-up is over (every tour step and every
    slow page default computed); the warm-up's status line then, and the seconds waited."""
    # optional: only the app rows need playwright
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    t0 = time.monotonic()
    with contextlib.suppress(PlaywrightTimeout):  # measure anyway: the status line says what was still computing
        page.get_by_text("default views are computed too").first.wait_for(timeout=timeout * 1000)
    status = page.get_by_text("Warm-up", exact=False).first
    return (status.inner_text() if status.count() else ""), time.monotonic() - t0


def page_rows(log_dir: Path, timeout: float = 900, only: Callable[[Action], bool] | None = None,
              warm_up_timeout: float = 900) -> list[dict]:
    """One ``app`` row per action of ``ACTIONS`` (those ``only`` keeps): seconds, or the error."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    import e2e_browser as E

    why = E.missing_browser()
    if why:
        return [{"group": "app", "page": "-", "action": "-", "skipped": why}]
    from playwright.sync_api import sync_playwright

    log_dir.mkdir(parents=True, exist_ok=True)
    actions = [a for a in ACTIONS if only is None or only(a)]
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=E.CHROMIUM, args=E.CHROMIUM_ARGS)
        server = E.Server(log_dir / "bench-pages-server.log")
        try:
            home = browser.new_context(viewport=E.VIEWPORT).new_page()
            E.open_page(home, server.url + "/", 300)
            status, waited = warm_up_status(E, home, warm_up_timeout)
            home.context.close()
            for action in actions:
                context = browser.new_context(viewport=E.VIEWPORT)
                row = {"group": "app", "page": action.page or "home", "action": action.name,
                       "cache": "warm-up" if action.tour_step and re.search(
                           rf"warm: [^.;]*\b{action.tour_step}\b", status) else "none",
                       "warm_up_s": waited}
                try:
                    row.update(time_action(E, context.new_page(), server.url, action, timeout))
                    row["under_target"] = row["seconds"] < TARGET_S
                except Exception as e:  # noqa: BLE001 - one page that breaks or times out must not lose the others
                    row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                finally:
                    context.close()
                print(row, flush=True)
                rows.append(row)
        finally:
            server.stop()
            browser.close()
    return rows


def markdown(rows: list[dict]) -> list[str]:
    """The table of the page rows (``run.markdown`` adds it under the app's start-up table)."""
    if not rows:
        return []
    out = ["### Every page's default action in the browser (chromium, bundled Fashion-MNIST pair)", "",
           (f"Seconds from the click (or from opening a page that computes on load) to the result drawn and "
           f"the script run over, each in a fresh browser session, after the warm-up. Target (issue 21): "
           f"under {TARGET_S:g} s on a quiet 2-core CPU."), "",
           "| page | default action | seconds | under target | answered from |", "|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            out.append(f"| - | skipped: {r['skipped']} | | | |")
            continue
        if "error" in r:
            out.append(f"| {r['page']} | {r['action']} | failed: {r['error']} | | |")
            continue
        cache = "the warm-up's cache" if r.get("cache") == "warm-up" else "a fresh run"
        out.append(f"| {r['page']} | {r['action']} | {r['seconds']:.1f} | "
                   f"{'yes' if r['under_target'] else '**no**'} | {cache} |")
    out.append("")
    return out
