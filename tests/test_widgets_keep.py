"""Results kept across reruns for their exact inputs (``ui.widgets.keep`` / ``kept``, ``ui.page.view``),
which every page uses."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from ui import widgets

    step = st.session_state.get("step", 0)
    if step == 0:
        widgets.keep("view", "first result", config=("image bytes", "standard", "robust", 0.1))
    elif step == 1:  # a failed run returns None
        widgets.keep("view", None, config=("image bytes", "standard", "robust", 0.2))
    st.session_state["seen"] = (widgets.kept("view", ("image bytes", "standard", "robust", 0.1)),
                                widgets.kept("view", ("image bytes", "standard", "other", 0.1)),
                                widgets.kept("view", ("other bytes", "standard", "robust", 0.1)),
                                widgets.kept("view", None),
                                widgets.kept_elsewhere("view", ("image bytes", "standard", "robust", 0.2)),
                                widgets.kept_config("view"))


def test_a_kept_result_shows_for_its_exact_inputs_only_and_a_failed_run_keeps_the_last():
    at = AppTest.from_function(_script).run()
    assert not at.exception
    first = ("image bytes", "standard", "robust", 0.1)
    assert at.session_state["seen"] == ("first result", None, None, None, True, first)
    assert at.query_params["run"] == "view"  # the URL says the view ran
    at.session_state["step"] = 1
    at.run()
    assert at.session_state["seen"] == ("first result", None, None, None, True, first)


def _view_script():
    import streamlit as st

    from ui import page

    value = st.number_input("setting", 0, 10, 1, key="setting")
    run = st.button("Run", key="go")
    st.session_state["shown"] = page.view("v", "unused", lambda: ("config", value), "label", run=False)
    if run:  # a stand-in for the experiment: keep a result under this Config, as page.view does after a run
        from ui import widgets

        widgets.keep("v", f"result for {value}", ("config", value))
        st.session_state["shown"] = widgets.kept("v", ("config", value))


def test_view_hides_a_result_of_other_inputs_behind_a_note():
    at = AppTest.from_function(_view_script).run()
    assert at.session_state["shown"] is None and not at.info  # nothing kept, nothing said
    at.button(key="go").click().run()
    assert at.session_state["shown"] == "result for 1"
    at.run()  # a rerun with the same inputs shows it
    assert at.session_state["shown"] == "result for 1" and not at.info
    at.number_input(key="setting").set_value(2).run()  # other inputs: not shown, and the page says why
    assert at.session_state["shown"] is None
    assert len(at.info) == 1 and at.info[0].value.startswith("Inputs changed") and "**Run**" in at.info[0].value
    at.number_input(key="setting").set_value(1).run()  # back to its inputs: shown again
    assert at.session_state["shown"] == "result for 1" and not at.info
