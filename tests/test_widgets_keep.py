"""Results kept across reruns (``ui.widgets.keep`` / ``kept``), which every page uses."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from ui import widgets

    step = st.session_state.get("step", 0)
    if step == 0:
        widgets.keep("view", "first result", config="first config", tag=("standard", "robust"))
    elif step == 1:  # a failed run returns None
        widgets.keep("view", None, config="second config", tag=("standard", "robust"))
    st.session_state["seen"] = (widgets.kept("view", tag=("standard", "robust")),
                                widgets.kept("view", tag=("standard", "other")), widgets.kept("view"),
                                widgets.kept_config("view"))


def test_a_kept_result_shows_under_its_tag_only_and_a_failed_run_keeps_the_last():
    at = AppTest.from_function(_script).run()
    assert not at.exception
    assert at.session_state["seen"] == ("first result", None, None, "first config")
    assert at.query_params["run"] == "view"  # the URL says the view ran
    at.session_state["step"] = 1
    at.run()
    assert at.session_state["seen"] == ("first result", None, None, "first config")
