"""Export a view: the figure as PNG and the exact settings as JSON (``explorer.views``), so
``python -m explorer rerun VIEW.json`` computes it again. One helper for every page."""

from __future__ import annotations

import json
from typing import Optional

import streamlit as st

from explorer import views
from ui.registry import PageInfo


def _query() -> str:
    from urllib.parse import urlencode

    return urlencode([(k, v) for k in st.query_params for v in st.query_params.get_all(k)])


def export(key: str, experiment: str, config, name: str, png: Optional[bytes] = None,
           summary: Optional[dict] = None, page: Optional[PageInfo] = None) -> None:
    """Two download buttons: the figure (when there is one) and the view's JSON record (``page``: the
    page it was made on, a ``ui.registry`` constant)."""
    record = views.view_record(experiment, config, page=page.path if page else "", url_query=_query(),
                               summary=summary)
    left, right = st.columns(2)
    if png is not None:
        left.download_button("Download the figure (PNG)", png, file_name=f"{name}.png", mime="image/png",
                             key=f"{key}.export.png", on_click="ignore")
    right.download_button("Download the settings (JSON)", json.dumps(record, indent=1, default=float),
                          file_name=f"{name}.json", mime="application/json", key=f"{key}.export.json",
                          on_click="ignore", help="Exact settings, model names and sha256, versions: "
                          "`python -m explorer rerun FILE.json` computes the same view.")
