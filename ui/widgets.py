"""Widget groups used by more than one page, and the cached runner every page calls.

Three kinds of function, as in Streamlit's demo apps: ones that draw widgets and
return parameters (``image_picker``, ``norm_picker``, ``eps_slider``), the cached
compute (``run_experiment``) and the results kept across reruns for their exact inputs (``keep``, ``kept``),
and ones that draw results (``zoo_table``).
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from explorer import charts, data, zoo
from explorer.classifier import ClassifierInfo
from explorer.experiments import attack_lab
from explorer.optimize import Cancelled
from ui import configs, links, models, pace

# --- images ----------------------------------------------------------------------

TEST_IMAGE = "Test image"
PHOTO = "Sample photo"
UPLOAD = "Upload"


@dataclass(frozen=True)
class PickedImage:
    """An image ready for the model: [C, H, W] float32 in [0, 1], its true label when known."""

    image: np.ndarray
    label: Optional[int]
    description: str


@st.cache_data(show_spinner=False, max_entries=32)
def _fashion_mnist(index: int) -> tuple[np.ndarray, int]:
    x, y = data.fashion_mnist_sample(index, "test")
    return x[0].numpy(), y


@st.cache_data(show_spinner=False, max_entries=32)
@st.cache_resource(show_spinner=False)
def _cifar10_test() -> data.TensorDataset:
    """CIFAR-10's test set when it is here ($CIFAR10_ROOT), else the bundled subset (100 per class)."""
    return data.cifar10("test", progress=False)


def _cifar10(index: int) -> tuple[np.ndarray, int]:
    ds = _cifar10_test()
    if not 0 <= index < len(ds):
        raise data.DataIndexError(f"{ds.name} has images 0..{len(ds) - 1}")
    return ds.float_images(slice(index, index + 1))[0].numpy(), int(ds.labels[index])


@st.cache_data(show_spinner=False, max_entries=32)
def _photo(name: str, input_size: tuple[int, int, int]) -> np.ndarray:
    return data.to_model_input(data.sample_photos()[name], input_size)[0].numpy()


@st.cache_data(show_spinner=False, max_entries=16)
def _upload(content: bytes, input_size: tuple[int, int, int]) -> np.ndarray:
    return data.to_model_input(data.decode_image(content), input_size)[0].numpy()


@st.cache_data(show_spinner=False, max_entries=16)
def _upload_domain(content: bytes, dataset: str, input_size: tuple[int, int, int]
                   ) -> tuple[data.DomainCheck, tuple[str, ...]]:
    img = data.decode_image(content)
    return data.domain_check(img, dataset, input_size), data.fitting_datasets(img)


def domain_warning(check: data.DomainCheck, fitting: Sequence[str], key: str, dataset_key: str = "") -> None:
    """When an image is far from its model's domain (``data.domain_check``): a warning that says why,
    and a button per available pair of a dataset the image fits that switches the sidebar to it
    (and the page's own dataset widget ``dataset_key``, if any)."""
    if check.fits:
        return
    st.warning(check.text(), icon=":material/warning:")
    offers = models.fitting_pairs(models.zoo_rows(), fitting, exclude=check.dataset)
    for dataset, pair in offers:
        st.button(f"Use {models.DATASET_LABELS.get(dataset, dataset)}: {' + '.join(pair.names)}",
                  key=f"{key}.fit.{dataset}", on_click=models.use_dataset, args=(dataset, dataset_key),
                  icon=":material/swap_horiz:", help="Switches the sidebar's model pair; the upload stays.")
    elsewhere = [models.DATASET_LABELS.get(d, d) for d in fitting if d != check.dataset]
    if not offers and elsewhere:
        st.caption(f"It would suit a {' or '.join(elsewhere)} model; none is available offline"
                   + (f" (ImageNet models: `{zoo.DEMO_COMMAND}`)." if "imagenet" in fitting else "."))


def image_sources(dataset: str) -> list[str]:
    """Where an image can come from for a model of ``dataset``."""
    sources = []
    if dataset in ("fashion-mnist", "cifar10"):  # both ship a test subset inside the package
        sources.append(TEST_IMAGE)
    if dataset in data.IMAGENET_LIKE:
        sources.append(PHOTO)
    return sources + [UPLOAD]


def image_picker(info: ClassifierInfo, key: str, default_index: int = 0,
                 dataset_key: str = "") -> Optional[PickedImage]:
    """Widgets that pick one image for models like ``info``; None until one is chosen.
    ``default_index``: the test image shown first.

    Fashion-MNIST / CIFAR-10 test images by index, scikit-image photos for ImageNet
    models, or an upload (decoded safely; a bad file gives a message, never a traceback).
    An upload far from the model's domain (a photo for a 28x28 grey model) gets a warning
    and the pairs it fits (``domain_warning``; ``dataset_key``: the page's own dataset widget).
    """
    sources = image_sources(info.dataset)
    source = st.radio("Image", sources, horizontal=True, key=f"{key}.source", bind=links.BIND)
    size = tuple(info.input_size)
    picked: Optional[PickedImage] = None
    if source == TEST_IMAGE:
        # CIFAR-10: the bundled subset's 1,000 images when the full test set is not here (the label says which)
        name = f"{data.display_name(info.dataset)} test"
        if info.dataset == "cifar10" and "bundled" in _cifar10_test().name:
            name += " (bundled subset)"
        top = len(_cifar10_test()) - 1 if info.dataset == "cifar10" else 9999
        index = int(st.number_input(f"{name} image index", 0, top, min(default_index, top), 1, key=f"{key}.index",
                                    bind=links.BIND))
        try:
            image, label = (_fashion_mnist if info.dataset == "fashion-mnist" else _cifar10)(index)
        except (data.DataError, IndexError) as e:
            st.warning(str(e))
            return None
        picked = PickedImage(image, label, f"test image {index}: {info.class_names[label]}")
    elif source == PHOTO:
        photos = list(data.sample_photos())
        default = photos.index("chelsea") if "chelsea" in photos else 0
        name = st.selectbox("Photo (scikit-image)", photos, index=default, key=f"{key}.photo", bind=links.BIND)
        picked = PickedImage(_photo(name, size), None, f"photo: {name}")
    else:
        upload = st.file_uploader("Upload an image (PNG, JPEG, WebP, GIF, BMP, TIFF)", key=f"{key}.upload")
        st.caption("An uploaded image stays out of a shared link: whoever opens the link uploads it again.")
        if upload is None:
            st.info("Choose an image file to attack.")
            return None
        try:
            picked = PickedImage(_upload(upload.getvalue(), size), None, f"upload: {upload.name}")
            check, fitting = _upload_domain(upload.getvalue(), info.dataset, size)
        except (data.DataError, ValueError, TypeError) as e:
            st.error(f"Cannot use {upload.name}: {e}")
            return None
        domain_warning(check, fitting, key, dataset_key)
    st.image(charts.to_pil(picked.image, min_tile=112), caption=picked.description)
    return picked


# --- threat model ---------------------------------------------------------------------

NORM_LABELS = configs.NORM_LABELS


def norm_picker(key: str) -> str:
    """The threat model's norm (outside a form: the eps range depends on it)."""
    return st.radio("Norm", list(NORM_LABELS), format_func=NORM_LABELS.get, horizontal=True, key=f"{key}.norm",
                    bind=links.BIND)


def eps_slider(dataset: str, norm: str, key: str) -> float:
    """eps with the range and default of the dataset and norm; a Linf radius on a dataset whose slider
    moves in steps of 1/255 (or half of it) is also shown as k/255, as papers write it."""
    r = attack_lab.eps_range(dataset, norm)
    fmt = "%.4f" if r.maximum < 0.1 else "%.3f" if r.maximum < 1 else "%.2f"
    eps = st.slider(f"eps ({NORM_LABELS[norm]} radius)", min_value=r.step, max_value=r.maximum, value=r.default,
                    step=r.step, format=fmt, key=f"{key}.eps.{dataset}.{norm}", bind=links.BIND)
    if norm == "linf" and abs(r.step * 510 - round(r.step * 510)) < 1e-6:
        st.caption(f"= {round(eps * 255, 2):g}/255")
    return float(eps)


# --- running experiments ----------------------------------------------------------------

class _NotCached(Exception):
    """Raised inside ``_results`` on a miss; exceptions are never cached."""


@st.cache_data(show_spinner=False, max_entries=64)
def _results(experiment: str, config, _result=None):
    """st.cache_data as a store keyed by (experiment, config): a miss without ``_result``
    raises, a miss with it stores it. The experiment itself runs outside, because a cached
    function may not update a progress bar created outside it (Streamlit replays such calls)."""
    if _result is None:
        raise _NotCached
    return _result


def cached_result(experiment: str, config):
    """The cached Result of ``experiment`` for ``config``, or None."""
    try:
        return _results(experiment, config)
    except _NotCached:
        return None


def store_result(experiment: str, config, result, seconds: Optional[float] = None) -> None:
    """Put ``result`` in the cache for (experiment, config), as a run would (the warm-up's way in);
    ``seconds``, the run's wall time, sets this server's pace for the next estimate (``ui.pace``)."""
    _results(experiment, config, _result=result)
    if seconds is not None:
        pace.record(experiment, config, seconds)


def time_left(elapsed: float, step: int, total: int) -> str:
    """"about N s left" at the pace of the first ``step`` of ``total`` steps (empty before a second has
    passed, before the first step, or at the end: too early or too late to say)."""
    if step <= 0 or step >= total or elapsed < 1.0:
        return ""
    left = elapsed / step * (total - step)
    return f"about {left:.0f} s left" if left < 90 else f"about {left / 60:.0f} min left"


def run_experiment(experiment: str, config, label: str):
    """``explorer.experiments.<experiment>.run(config)`` inside ``st.status`` with a progress
    bar, cached on (experiment, config). Returns the Result, or None after showing the error."""
    hit = cached_result(experiment, config)
    if hit is not None:
        return hit
    module = importlib.import_module(f"explorer.experiments.{experiment}")
    with st.status(label, expanded=True) as status:
        expected = pace.line(experiment, config)  # said before the run starts, when this server has run it before
        if expected:
            st.caption(expected)
        bar = st.progress(0.0, text="starting")
        started = time.monotonic()

        def progress(step: int, total: int, metrics: dict) -> None:
            text = f"step {step} of {total}"
            if "model" in metrics:
                text += f" ({metrics['model']})"
            if "loss" in metrics:
                text += f", loss {metrics['loss']:.3f}"
            # the experiment's own estimate when it has one (the constructed table's phases), else the pace so far
            eta = metrics.get("eta")
            left = time_left(time.monotonic() - started, step, total) if eta is None else \
                ("" if eta == "?" else f"about {eta} left")
            if left:
                text += f", {left}"
            bar.progress(min(step / max(total, 1), 1.0), text=text)

        try:
            result = module.run(config, progress=progress)
        except (ValueError, zoo.ZooError, data.DataError, Cancelled) as e:
            status.update(label=f"{label}: failed", state="error", expanded=True)
            st.error(str(e))
            return None
        pace.record(experiment, config, time.monotonic() - started)
        bar.progress(1.0, text="done")
        status.update(label=f"{label}: done", state="complete", expanded=False)
    return _results(experiment, config, _result=result)


def keep(key: str, result, config) -> None:
    """Keep view ``key``'s Result with the Config that made it in session state (``KEY.result``,
    ``KEY.config``), so moving a widget redraws it without recomputing, and record in the URL
    that the view ran. The Config is the key of the Result: it holds its exact inputs (the
    image's bytes, the models, every setting), and ``kept`` returns the Result only for an equal
    one. A failed run (None) keeps the last result."""
    if result is not None:
        st.session_state[f"{key}.result"] = result
        st.session_state[f"{key}.config"] = config
        links.ran(key)


def kept(key: str, config):
    """The Result ``keep`` kept for view ``key`` if it was computed from ``config`` (the inputs on
    screen now), else None."""
    if config is None or f"{key}.result" not in st.session_state or st.session_state.get(f"{key}.config") != config:
        return None
    return st.session_state[f"{key}.result"]


def kept_elsewhere(key: str, config) -> bool:
    """Whether view ``key`` holds a Result computed from other inputs than ``config``."""
    return f"{key}.result" in st.session_state and kept(key, config) is None


def kept_config(key: str):
    """The Config of the Result ``keep`` kept for view ``key``, or None."""
    return st.session_state.get(f"{key}.config")


# --- tables ---------------------------------------------------------------------------------

def table(data, formats: Mapping[str, str] | None = None) -> None:
    """A result table that fits its column on a projector: ``st.table`` (static HTML: headers and text
    wrap) and not ``st.dataframe``, whose grid keeps every column at its content's width and scrolls the
    last ones out of sight. Numbers read as ``charts.cell_text`` (counts whole, others to 4 significant
    digits) unless ``formats`` (column -> format string, e.g. ``"{:.2f}"``) says otherwise; the values
    stay numbers (a download or a test reads them)."""
    df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))
    fmt = {c: charts.cell_text for c in df.columns if pd.api.types.is_float_dtype(df[c])}
    fmt.update({c: f for c, f in (formats or {}).items() if c in df.columns})
    st.table(df.style.format(fmt, na_rep=charts.MISSING), hide_index=True)


# --- the zoo table --------------------------------------------------------------------------

ZOO_LABELS = {"name": "model", "why": "why / how to fetch"}


#: the columns of the models that need a download (in an expander under the table of those here)
FETCH_COLUMNS = ("name", "dataset", "kind", "source", "why")


def zoo_table(rows: Sequence[dict], columns: Sequence[str]) -> None:
    """The zoo as tables: the models here now with ``columns`` (one row per ``zoo.list_models`` row, maybe
    with card numbers), then, in an expander, those that need a download and how to fetch them. Two narrow
    tables, not one wide one: a grid wider than its column hides its last columns on a projector."""
    here = [r for r in rows if r.get("available")]
    away = [r for r in rows if not r.get("available")]
    if here:
        table(charts.zoo_frame(here, [c for c in columns if c not in ("available", "why")]).rename(columns=ZOO_LABELS))
    if away:
        with st.expander(f"{len(away)} more models need their weights once: which, and the command"):
            table(charts.zoo_frame(away, FETCH_COLUMNS).rename(columns=ZOO_LABELS))
            commands = [r["fetch"] for r in away if r.get("fetch")]
            if commands:
                st.code("\n".join(commands), language="bash")
