"""Shareable views: every page keeps its settings in the URL.

Widgets carry their own state in the URL with Streamlit's ``bind="query-params"``
(``BIND``; the widget's key is the parameter's name, and a value equal to the default
is left out). What a widget cannot say, this module says with one more parameter,
``run``: which of a page's views were computed, so that opening the link computes
them again (``autorun``) instead of showing the settings and waiting for a click.

Rules: a link reruns its views once, on the run that opens the page (a page switch or
a new session); later reruns of the page only redraw. A bundled sample image is part
of the link (its index or name is a widget); an uploaded file is not (``share_note``).
"""

from __future__ import annotations

import streamlit as st

BIND = "query-params"
RUN = "run"
PRESENTER = "presenter"
_PAGE = "_links.page"
_ENTERED = "_links.entered"
_AUTORAN = "_links.autoran"


def track_page(name: str) -> None:
    """Called by app.py before the page runs: remember whether this run entered the page."""
    st.session_state[_ENTERED] = st.session_state.get(_PAGE) != name
    st.session_state[_PAGE] = name


def entered() -> bool:
    """Whether this run opened the page (a new session, a link, a page switch)."""
    return bool(st.session_state.get(_ENTERED, True))


def _first_time(view: str) -> bool:
    """Without app.py (a page run alone) there is no page tracking: a view autoruns once per session."""
    if _PAGE in st.session_state:
        return True
    done = st.session_state.setdefault(_AUTORAN, set())
    if view in done:
        return False
    done.add(view)
    return True


def _ran() -> list[str]:
    value = st.query_params.get(RUN, "")
    return [v for v in str(value).split(",") if v]


def autorun(view: str) -> bool:
    """True on the run that opened a link whose ``run`` names ``view``: compute it again."""
    return entered() and _first_time(view) and view in _ran()


def ran(view: str) -> None:
    """Record in the URL that ``view`` was computed with the current settings."""
    views = _ran()
    if view not in views:
        st.query_params[RUN] = ",".join([*views, view])


def share_note(uploads: bool = True) -> None:
    """The caption that tells what a copied link keeps."""
    text = ("The address bar holds this page's settings and the sidebar's models: copy it to share this view; "
            "opening it recomputes the results.")
    if uploads:
        text += (" A bundled sample image is part of the link; an uploaded file is not (whoever opens it uploads "
                 "it again).")
    st.caption(text)


def encode(value) -> str:
    """A widget value as Streamlit's URL binding writes it (booleans in lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
