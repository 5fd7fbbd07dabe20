"""Saved or live: a Distill-discussion experiment's results file, or a small run on the page.

The CLI (``python -m explorer <command>``) writes ``results/discussion/<module>.json``
(``$EXPLORER_DISCUSSION_RESULTS``); a page shows that file, and after its button a live small
run instead (kept for its exact Config by ``ui.page.view``; a copied link that ran it runs it
again). The discussion page's tabs and the features page's filtered-training view use it.
"""

from __future__ import annotations

from typing import Optional

import streamlit as st

from explorer.experiments import _discussion as D
from ui import links, page


def saved_or_live(key: str, name: str, command: str, config, label: str, *,
                  disabled: bool = False) -> Optional[tuple[dict, str]]:
    """The saved result of experiment ``name`` or, after the button, a live small run of
    ``config``; (result as JSON values, where it came from: the command and its time, or the
    live run's time), or None (with a note naming the command) when there is neither.

    Args:
        key: the widget key prefix of the calling view.
        name: the experiment's module under ``explorer.experiments``.
        command: the CLI command that writes the results file.
        config: the small run's Config (None: no live run offered).
        label: what the button says the small run is.
    """
    doc = D.read_results(name)
    live_key = f"{key}.{name}.live"
    clicked = st.button(f"Run the small version ({label})", key=f"{key}.{name}.run",
                        disabled=disabled or config is None)
    # the live run is shown only for the Config it ran on (``ui.page.view``): other settings or models hide it
    live = page.view(live_key, name, None if config is None else (lambda: config), f"Running {name}",
                     run=clicked or links.autorun(live_key), action="Run the small version")
    if live is not None:
        live = D.jsonable(live)
        return live, f"live run, {live['seconds']:.0f} s"
    if doc is not None:
        return doc["result"], f"`{doc['command']}` ({doc['result']['seconds']:.0f} s)"
    st.info(f"No saved result yet: run `{command}` (writes {D.results_dir() / (name + '.json')}), "
            "or the small version here.")
    return None


def saved_on(dataset: str, name: str) -> Optional[tuple[dict, str]]:
    """The saved result of experiment ``name`` on ``dataset`` (``results/discussion/<dataset>/<name>.json``)
    and where it came from, or None when there is none."""
    doc = D.read_results(name, dataset)
    if doc is None:
        return None
    return doc["result"], f"`{doc['command']}` ({doc['result']['seconds']:.0f} s)"
