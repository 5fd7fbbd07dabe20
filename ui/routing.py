"""A page always runs inside app.py, also when it is the first request of a fresh server.

Streamlit treats an app with a folder named pages/ beside its main script as an old-style
(v1) multipage app until ``st.navigation`` runs once in the process: until then a link like
/attack_lab executes pages/attack_lab.py by itself, without app.py's navigation, sidebar
(model pair, device, presenter look) or page list. pages/ stays where it is; instead every
page's first line is ``through_app()``. Light on purpose (no torch): the home page calls it
before its first paint.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

APP = Path(__file__).resolve().parent.parent / "app.py"


def streamlit_runs_pages_alone() -> bool:
    """Whether Streamlit is in its old-style multipage mode, where it executes a file of pages/ by
    itself. It takes that mode when a folder named pages/ sits beside the main script, until
    ``st.navigation`` runs once in the process (``PagesManager.uses_pages_directory``, the one
    switch Streamlit keeps for it); on a fresh server that is every deep link until someone
    opens the root."""
    return bool(getattr(PagesManager, "uses_pages_directory", False))


def through_app() -> None:
    """Make the page run inside app.py (navigation, the sidebar's pair, device, presenter look).

    Called first by every page. When Streamlit ran the page alone (a deep link to a fresh
    server), it runs app.py in its place: app.py's ``st.navigation`` switches the process to
    its own routing for good and runs this page again, through it, with the link's page and
    settings; the lone run then stops. Otherwise (through app.py, or a page run alone on
    purpose, as AppTest does) it does nothing."""
    if streamlit_runs_pages_alone():
        runpy.run_path(str(APP), run_name="__main__")
        st.stop()
