"""The pieces every page is built from, so a page holds only its widgets, its Config and its drawing
(the first line of every page is ``routing.through_app()``):

- ``pair_or_stop()``: the sidebar's model pair with its first model loaded, or a clear stop.
- ``view()``: build a view's Config from the inputs on screen (a bad setting is one ``st.error``,
  never a traceback), run it through the cache when asked, keep the Result for the next reruns,
  and give it back only while the inputs on screen are the ones it was computed from.
"""

from __future__ import annotations

from typing import Callable, Optional, TypeVar, Union

import streamlit as st

from explorer import zoo
from explorer.classifier import Classifier
from ui import models, widgets

NO_MODEL = "No model is available. See the Model zoo page for what to fetch."

C = TypeVar("C")


# --- the preamble -----------------------------------------------------------------------------

def load_or_stop(name: str) -> Classifier:
    """The shared Classifier ``name``, or the zoo's one-line error and a stop."""
    try:
        return models.load_model(name)
    except zoo.ZooError as e:
        st.error(str(e))
        st.stop()


def pair_or_stop(alone: str = "showing") -> tuple[models.ModelPair, Classifier]:
    """The sidebar's pair and its first model, loaded; a warning and a stop when no model is
    available. Without a robust model it says so (``alone``: the verb of that sentence)."""
    pair = models.current_pair()
    if not pair.names:
        st.warning(NO_MODEL)
        st.stop()
    model = load_or_stop(pair.names[0])
    if pair.robust is None:
        st.info(f"No robust {model.info.dataset} model is available: {alone} {pair.standard} alone.")
    return pair, model


# --- running a view -----------------------------------------------------------------------------

def config_or_error(build: Callable[[], C]) -> Optional[C]:
    """``build()``, or None after showing its ValueError (a setting the Config refuses) as one line."""
    try:
        return build()
    except ValueError as e:
        st.error(str(e))
        return None


STALE = ("Inputs changed since the last result (image, models or settings): press **{action}** to compute it "
         "for these.")


def _quiet(build: Callable[[], C]) -> Optional[C]:
    """``build()``, or None when the settings on screen make no Config (said only when Run is pressed)."""
    try:
        return build()
    except ValueError:
        return None


def view(key: str, experiment: str, build: Optional[Callable[[], C]], label: Union[str, Callable[[C], str]], *,
         run: bool, action: str = "Run"):
    """The Result of view ``key`` for the inputs on screen, or None.

    ``build`` makes the Config from the widgets' current values (None: an input is missing, e.g.
    no image yet); it is called on every rerun, because the Config is the key of the Result: its
    image bytes, models and settings. When ``run`` (the button was pressed, or a link autoruns),
    ``explorer.experiments.<experiment>`` runs on it through the cache inside ``st.status`` and
    the Result is kept (``widgets.keep``). A Result kept for other inputs (another image, model
    pair or setting) is never returned as current: a short note says to press ``action`` again."""
    config = None
    if build is not None:
        config = config_or_error(build) if run else _quiet(build)
    if run and config is not None:
        text = label(config) if callable(label) else label
        widgets.keep(key, widgets.run_experiment(experiment, config, text), config)
    result = widgets.kept(key, config)
    if result is None and widgets.kept_elsewhere(key, config):
        st.info(STALE.format(action=action))
    return result
