"""Single-image inspector: one image through every available model of its kind at once.

Widgets -> inspector.Config -> cached inspector.run -> top-5, saliency maps, smallest flipping eps.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from explorer import charts
from explorer.experiments import inspector as I
from ui import configs, export, links, models, page, registry, routing, widgets

routing.through_app()  # a deep link to a fresh server runs the page inside app.py

KEY = "inspector"


# --- widgets -> parameters -------------------------------------------------------

def dataset_picker(rows: Sequence[dict]) -> Optional[str]:
    """The kind of image: a dataset with at least one available model (the sidebar's first)."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows if r["available"]))
    if not datasets:
        return None
    pair = models.current_pair()
    first = next((r["dataset"] for r in rows if r["name"] in pair.names), datasets[0])
    index = datasets.index(first) if first in datasets else 0
    return st.radio("Kind of image", datasets, index=index, horizontal=True, key=f"{KEY}.dataset", bind=links.BIND,
                    help="Every available model of this dataset can look at the image.")


def run_form(names: list[str], picked: Optional[widgets.PickedImage]):
    """Models, PGD steps and bisection halvings: the builder of the Config (``ui.configs.inspector``;
    None without an image or a model) and whether Inspect was pressed (or a link autoruns)."""
    d = configs.INSPECTOR_DEFAULTS
    chosen = st.multiselect("Models", names, default=names, key=f"{KEY}.models", bind=links.BIND)
    with st.form(f"{KEY}.form"):
        a, b = st.columns(2)
        steps = int(a.number_input("PGD steps per try", 1, I.MAX_STEPS, d["steps"], key=f"{KEY}.steps",
                                   bind=links.BIND))
        iterations = int(b.number_input("Bisection halvings", 1, I.MAX_ITERATIONS, d["iterations"],
                                        key=f"{KEY}.iterations", bind=links.BIND,
                                        help="The smallest eps is found within eps_max / 2^n."))
        submitted = st.form_submit_button("Inspect", type="primary", disabled=picked is None or not chosen)
    submitted = submitted or links.autorun(KEY)
    if picked is None or not chosen:
        return None, submitted
    params = {f"{KEY}.steps": steps, f"{KEY}.iterations": iterations}
    return lambda: configs.inspector(params, chosen, picked.image, picked.label), submitted


# --- drawing results -----------------------------------------------------------------

def saliency_image(g: np.ndarray) -> np.ndarray:
    """|gradient| summed over channels, scaled to [0, 1] (its 99th percentile is white), [1, H, W]."""
    a = np.abs(g).sum(0)
    top = float(np.percentile(a, 99)) or 1.0
    return np.clip(a / top, 0, 1)[None].astype(np.float32)


def eps_cell(e: float, eps_max: float) -> str:
    """A table cell: the smallest flipping eps, or what PGD searched without finding a flip."""
    return f"no flip found up to {eps_max:g}" if math.isinf(e) else f"{e:.3g}"


def draw_result(result: I.Result) -> None:
    st.header("Result")
    cols = st.columns(len(result.views))
    for col, v in zip(cols, result.views):
        with col:
            st.subheader(v.model)
            st.caption(v.kind)
            st.image([charts.to_pil(result.original, 112), charts.to_pil(saliency_image(v.saliency), 112)],
                     caption=["image", f"|input gradient|, edges {v.edge_alignment:.2f}"], width=140)
            top = v.top_k()
            widgets.table(pd.DataFrame({"class": [v.class_names[c] for c, _ in top],
                                        "probability": [p for _, p in top]}), {"probability": "{:.2f}"})
            lines = []
            for n, e, to, m in zip(result.norms, v.min_eps, v.flipped_to, result.eps_max):
                label = widgets.NORM_LABELS[n]
                if to is None:
                    lines.append(f"**{label}**: PGD found no flip up to eps {m:g}")
                else:
                    lines.append(f"**{label}**: :red[flips] at eps **{e:.3g}** → {v.class_names[to]}")
            st.markdown("  \n".join(lines))
    df = pd.DataFrame(result.rows())
    for n, m in zip(result.norms, result.eps_max):
        df[f"min eps {n}"] = [eps_cell(e, m) for e in df[f"min eps {n}"]]
    widgets.table(df, {"confidence": "{:.2f}", "edge alignment": "{:.2f}"})
    prec = ", ".join(f"{widgets.NORM_LABELS[n]} {p:.2g}" for n, p in zip(result.norms, result.precision))
    st.caption(f"Input gradient: d CE(own prediction) / d pixels, shown as its magnitude (white = the 99th "
               f"percentile). Edge alignment: correlation of that magnitude with the image's Sobel edges (Tsipras "
               f"et al. 2019 found robust models' gradients following the object's outline). "
               f"{result.edge_summary()} Smallest flipping eps: PGD "
               f"({result.steps} steps, no random start) bisected {result.iterations} times in (0, eps_max], "
               f"precision {prec}. 'No flip found' means PGD did not flip it at eps_max: a failed search, not "
               f"proof of robustness. {result.seconds:.1f} s on {result.device}.")
    config = widgets.kept_config(KEY)
    if config is not None:
        figure = charts.figure([(v.model, [(result.original, "image"),
                                           (saliency_image(v.saliency), f"edges {v.edge_alignment:.2f}")])
                                for v in result.views], min_tile=112)
        export.export(KEY, "inspector", config, "inspector", png=charts.png_bytes(figure),
                      summary={"rows": result.rows()}, page=registry.INSPECTOR)


# --- the page ------------------------------------------------------------------------------

st.title("Single-image inspector")
st.markdown("One image through every available model of its kind at once: the top-5 classes, the input gradient "
            "(saliency map) of each model side by side, and the smallest L2 and L∞ ball in which PGD flips each "
            "model's prediction, found by bisection on eps.")

rows = models.zoo_rows()
dataset = dataset_picker(rows)
if dataset is None:
    st.warning(page.NO_MODEL)
    st.stop()
names = [r["name"] for r in rows if r["available"] and r["dataset"] == dataset]
info = page.load_or_stop(names[0]).info
picked = widgets.image_picker(info, KEY, dataset_key=f"{KEY}.dataset")
build, submitted = run_form(names, picked)
result = page.view(KEY, "inspector", build, lambda config: f"Inspecting with {', '.join(config.models)}",
                   run=submitted, action="Inspect")
if result is not None:
    draw_result(result)
links.share_note()
