"""Models for the pages: one shared frozen Classifier per name, and the sidebar's pair."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import streamlit as st

from explorer import devices, zoo
from explorer.classifier import Classifier
from ui import links

PAIR_KEY = "model_pair"
DEFAULT_PAIR = ("fmnist-standard", "fmnist-robust-linf")


@dataclass(frozen=True)
class ModelPair:
    """The sidebar's choice: a standard model and a robust one of the same dataset (or None)."""

    standard: Optional[str]
    robust: Optional[str]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.standard, self.robust) if n)


# --- cached resources (shared by every session of the process) -------------------

@st.cache_resource(show_spinner="Loading the model...", max_entries=zoo.LOAD_CACHE.max_entries)
def _load(name: str, root: str, device: str) -> Classifier:
    return zoo.load(name, device=device, root=Path(root))


def load_model(name: str) -> Classifier:
    """The frozen Classifier ``name`` on the best device, loaded once per process."""
    return _load(name, str(zoo.checkpoints_dir()), str(devices.best_device()))


@st.cache_data(ttl=60, show_spinner=False)
def _zoo_rows(root: str) -> list[dict]:
    return zoo.list_models(Path(root))


def zoo_rows() -> list[dict]:
    """``zoo.list_models()`` for the current checkpoints folder, re-read at most once a minute."""
    return _zoo_rows(str(zoo.checkpoints_dir()))


def demo_models(rows: Sequence[dict]) -> list[tuple[str, bool]]:
    """Each model of the demo set (``zoo.DEMO_MODELS``, ``python -m explorer fetch --demo``) and
    whether it is available offline now."""
    available = {r["name"] for r in rows if r["available"]}
    return [(name, name in available) for name in zoo.DEMO_MODELS]


# --- the pair --------------------------------------------------------------------

def is_robust(row: dict) -> bool:
    return str(row["kind"]).startswith("robust")


def default_pair(rows: Sequence[dict]) -> ModelPair:
    """fmnist-standard + fmnist-robust-linf when both are available, else the first available
    standard/robust pair of one dataset, else the first available standard model alone
    (the bundled models first in each case)."""
    avail = sorted((r for r in rows if r["available"]), key=lambda r: r["name"] not in DEFAULT_PAIR)
    standard = [r for r in avail if not is_robust(r)]
    for s in standard:
        for r in avail:
            if is_robust(r) and r["dataset"] == s["dataset"]:
                return ModelPair(s["name"], r["name"])
    return ModelPair(standard[0]["name"] if standard else None, None)


def robust_options(rows: Sequence[dict], standard: str) -> list[str]:
    """Available robust models of the standard model's dataset."""
    dataset = next((r["dataset"] for r in rows if r["name"] == standard), None)
    return [r["name"] for r in rows if r["available"] and is_robust(r) and r["dataset"] == dataset]


def current_pair() -> ModelPair:
    """The pair chosen in the sidebar (the default before the sidebar ran)."""
    pair = st.session_state.get(PAIR_KEY)
    return pair if isinstance(pair, ModelPair) else default_pair(zoo_rows())


# --- the sidebar -----------------------------------------------------------------

NO_ROBUST = "(none available)"
DATASET_KEY = "pair_dataset"
DATASET_LABELS = {"fashion-mnist": "Fashion-MNIST (28x28 grey)", "cifar10": "CIFAR-10 (32x32 colour)",
                  "imagenet": "ImageNet (224x224 photos)", "restricted-imagenet": "Restricted ImageNet"}


def datasets_with_models(rows: Sequence[dict]) -> list[str]:
    """Datasets with at least one available standard model, in the zoo's order."""
    out: list[str] = []
    for r in rows:
        if r["available"] and not is_robust(r) and r["dataset"] not in out:
            out.append(r["dataset"])
    return out


def dataset_pair(rows: Sequence[dict], dataset: str) -> ModelPair:
    """The default pair among ``dataset``'s models (see :func:`default_pair`)."""
    return default_pair([r for r in rows if r["dataset"] == dataset])


def _dataset_of(rows: Sequence[dict], name) -> Optional[str]:
    return next((r["dataset"] for r in rows if r["name"] == name and r["available"]), None)


def _on_dataset_change(rows: Sequence[dict]) -> None:
    """A new dataset brings its own default pair (the old pair's models are of another dataset)."""
    pair = dataset_pair(rows, st.session_state[DATASET_KEY])
    st.session_state["pair_standard"] = pair.standard
    st.session_state["pair_robust"] = pair.robust or NO_ROBUST


def fitting_pairs(rows: Sequence[dict], datasets: Sequence[str], exclude: str = "") -> list[tuple[str, ModelPair]]:
    """The default pair of each of ``datasets`` (but ``exclude``) that has an available model: the
    datasets with a robust model first (the comparison is the point), else in the given order."""
    offers = [(d, dataset_pair(rows, d)) for d in datasets if d != exclude and d in datasets_with_models(rows)]
    return sorted(offers, key=lambda o: o[1].robust is None)


def use_dataset(dataset: str, also: str = "") -> None:
    """Callback: put ``dataset`` and its default pair in the sidebar (and ``dataset`` in the widget
    ``also``, a page's own dataset choice), as choosing the dataset there would."""
    pair = dataset_pair(zoo_rows(), dataset)
    st.session_state[DATASET_KEY] = dataset
    st.session_state["pair_standard"] = pair.standard
    st.session_state["pair_robust"] = pair.robust or NO_ROBUST
    if also:
        st.session_state[also] = dataset


def follow_link(rows: Sequence[dict]) -> None:
    """On the run that opens a page from a link (a tour step's, a shared one), the models the link names
    replace the ones this session chose before. Streamlit seeds a widget bound to the URL only on the
    session's first run; later the session's value wins, so tour step 5's link to the L2-robust model
    would open beside a sidebar still showing the Linf one."""
    if not links.entered():
        return
    standard = st.query_params.get("pair_standard")
    if _dataset_of(rows, standard) is not None and standard != st.session_state.get("pair_standard"):
        st.session_state["pair_standard"] = standard
    standard = st.session_state.get("pair_standard", standard)
    robust, options = st.query_params.get("pair_robust"), robust_options(rows, standard)
    if robust in options and robust != st.session_state.get("pair_robust"):
        st.session_state["pair_robust"] = robust
    elif st.session_state.get("pair_robust", NO_ROBUST) not in [*options, NO_ROBUST]:  # the old dataset's model
        st.session_state["pair_robust"] = options[0] if options else NO_ROBUST


def pair_sidebar() -> ModelPair:
    """Draw the dataset and model-pair widgets in the sidebar; store and return the pair.

    A link (or a test) that names a standard model of another dataset than the one shown
    brings that dataset along; a link opened later in a session brings its models along too
    (``follow_link``)."""
    rows = zoo_rows()
    follow_link(rows)
    default = default_pair(rows)
    datasets = datasets_with_models(rows)
    with st.sidebar:
        st.subheader("Models")
        if not datasets:
            st.warning("No standard model is available offline. See the Model zoo page for the fetch commands.")
            pair = ModelPair(None, None)
        else:
            asked = st.session_state.get("pair_standard", st.query_params.get("pair_standard"))
            asked_dataset = _dataset_of(rows, asked)
            if asked_dataset in datasets and asked_dataset != st.session_state.get(DATASET_KEY):
                st.session_state[DATASET_KEY] = asked_dataset
            default_dataset = _dataset_of(rows, default.standard) or datasets[0]
            dataset = st.selectbox("Dataset", datasets, index=datasets.index(default_dataset), key=DATASET_KEY,
                                   bind=links.BIND, format_func=lambda d: DATASET_LABELS.get(d, d),
                                   on_change=_on_dataset_change, args=(rows,),
                                   help="The data the pair was trained on; images, eps ranges and classes follow it.")
            mine = [r for r in rows if r["dataset"] == dataset]
            default = dataset_pair(rows, dataset) if dataset != default_dataset else default
            standard_names = [r["name"] for r in mine if r["available"] and not is_robust(r)]
            index = standard_names.index(default.standard) if default.standard in standard_names else 0
            standard = st.selectbox("Standard model", standard_names, index=index, key="pair_standard",
                                    bind=links.BIND, help="A model trained the usual way, on clean images.")
            robust_names = robust_options(rows, standard) or [NO_ROBUST]
            index = robust_names.index(default.robust) if default.robust in robust_names else 0
            robust = st.selectbox("Robust model", robust_names, index=index, key="pair_robust",
                                  bind=links.BIND,
                                  help="An adversarially trained model of the same dataset (Madry et al. 2018).")
            pair = ModelPair(standard, None if robust == NO_ROBUST else robust)
    st.session_state[PAIR_KEY] = pair
    return pair


def _memory_text(device) -> str:
    if device.type == "cuda":
        return ""  # device_summary already says free / total GPU memory
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        return f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB RAM free"
    except (ValueError, OSError, AttributeError):
        return ""


def device_text() -> str:
    """The device in use and its memory, in one line."""
    device = devices.best_device()
    memory = _memory_text(device)
    return devices.device_summary(device) + (f"; {memory}" if memory else "")


def device_sidebar() -> None:
    devices.use_server_threads()  # once per process: a core left for Streamlit and the rest of the server
    with st.sidebar:
        st.subheader("Device")
        st.caption(device_text())
