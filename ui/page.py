"""The pieces every page is built from, so a page holds only its widgets, its Config and its drawing
(the first line of every page is ``routing.through_app()``):

- ``pair_or_stop()``: the sidebar's model pair with its first model loaded, or a clear stop.
- ``run_view()``: build a view's Config (a bad setting is one ``st.error``, never a traceback),
  run it through the cache and keep the Result for the next reruns.
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


def run_view(key: str, experiment: str, build: Optional[Callable[[], C]], label: Union[str, Callable[[C], str]],
             tag=None) -> Optional[C]:
    """Run view ``key``: build its Config (None: nothing was asked for), run
    ``explorer.experiments.<experiment>`` through the cache inside ``st.status`` and keep the
    Result (``widgets.keep``; ``tag``: what it belongs to, e.g. the model pair). Returns the Config."""
    if build is None:
        return None
    config = config_or_error(build)
    if config is None:
        return None
    text = label(config) if callable(label) else label
    widgets.keep(key, widgets.run_experiment(experiment, config, text), config, tag=tag)
    return config
