"""Layer robustness: R per layer for several models (the authors' reply to Nakano).

Widgets -> ``ui.configs.layer_robustness`` -> cached layer_robustness.run -> charts_layers.
The result stays in session state with its exact inputs (``ui.page.view``): moving a widget
redraws it without recomputing; other models or settings hide it until Run is pressed again.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import streamlit as st

from explorer.charts import layers as charts_layers
from explorer.experiments import layer_robustness as LR
from ui import configs, export, links, models, page, registry, routing, widgets

routing.through_app()  # a deep link to a fresh server runs the page inside app.py

KEY = "layer_robustness"
MAX_IMAGES = 512
TABLE_COLUMNS = ["model", "kind", "layer", "R", "ci_low", "ci_high", "numerator", "denominator", "dims", "seconds"]


# --- widgets -> parameters -------------------------------------------------------

def model_picker(rows: Sequence[dict], default: Sequence[str]) -> list[str]:
    """Several available models; the sidebar's pair by default."""
    names = [r["name"] for r in rows if r["available"]]
    chosen = st.multiselect("Models", names, default=[n for n in default if n in names], key=f"{KEY}.models",
                            bind=links.BIND,
                            help="Every named layer of each model is measured. The sidebar's pair is the default.")
    datasets = {r["name"]: r["dataset"] for r in rows}
    if len({datasets[n] for n in chosen}) > 1:
        st.warning("These models come from different datasets: each is measured on its own images, "
                   "so their R values are not measured on the same inputs.")
    return chosen


def run_form(names: list[str], dataset: str):
    """eps, number of images, steps and the finer settings: the builder of the Config
    (``ui.configs.layer_robustness``; None without a model) and whether Run was pressed (or a link
    autoruns)."""
    d = configs.LAYER_ROBUSTNESS_DEFAULTS
    norm = widgets.norm_picker(KEY)
    with st.form(f"{KEY}.form"):
        eps = widgets.eps_slider(dataset, norm, KEY)
        left, right = st.columns(2)
        n_images = int(left.number_input("Images", 2, MAX_IMAGES, d["n_images"], 8, key=f"{KEY}.n_images",
                                         bind=links.BIND,
                                         help="Test images, drawn by the seed; the pairs are drawn among them."))
        steps = int(right.number_input("Steps", 1, 200, d["steps"], key=f"{KEY}.steps", bind=links.BIND,
                                       help="Gradient steps of each layer's maximization (step 2.5 × eps / steps)."))
        with st.expander("More settings"):
            a, b, c = st.columns(3)
            restarts = int(a.number_input("Restarts", 1, LR.MAX_RESTARTS, d["restarts"], key=f"{KEY}.restarts",
                                          bind=links.BIND))
            pairs = int(b.number_input("Pairs per image", 1, 64, d["pairs"], key=f"{KEY}.pairs", bind=links.BIND))
            seed = int(c.number_input("Seed", 0, 2**31 - 1, d["seed"], key=f"{KEY}.seed", bind=links.BIND))
            include_logits = st.checkbox("Include the logits layer", d["logits"], key=f"{KEY}.logits",
                                         bind=links.BIND)
        submitted = st.form_submit_button("Run", type="primary", disabled=not names)
    submitted = submitted or links.autorun(KEY)
    if not names:
        return None, submitted
    params = {f"{KEY}.norm": norm, configs.eps_key(KEY, dataset, norm): eps, f"{KEY}.n_images": n_images,
              f"{KEY}.steps": steps, f"{KEY}.restarts": restarts, f"{KEY}.pairs": pairs, f"{KEY}.seed": seed,
              f"{KEY}.logits": include_logits}
    return lambda: configs.layer_robustness(params, names, dataset), submitted


# --- drawing results -----------------------------------------------------------------

def result_table(result: LR.Result) -> pd.DataFrame:
    df = pd.DataFrame(result.rows())
    return df[[c for c in TABLE_COLUMNS if c in df.columns]]


def draw_result(result: LR.Result) -> None:
    st.header("Result")
    st.markdown(f"**{LR.summary(result)}**")
    st.altair_chart(charts_layers.layer_robustness_chart(result.rows(), result.ci_level,
                                                         models=[m.model for m in result.models]),
                    width="stretch")
    st.caption(f"R = mean over images of the largest ||f(x + δ) - f(x)||₂ found in the {result.norm} ball of "
               f"radius {result.eps:g} ({result.steps} steps, random start), over the mean ||f(x) - f(x')||₂ of "
               f"random pairs of distinct images. Bars: {result.ci_level:.0%} {result.ci_method} "
               f"({result.bootstrap} resamples). The numerator is what the optimization found, a lower bound. "
               f"{result.n_images} images, {result.seconds:.1f} s on {result.device}.")
    for note in result.notes:
        st.info(note)
    df = result_table(result)
    widgets.table(df, {c: "{:.4f}" for c in ("R", "ci_low", "ci_high")})
    st.download_button("Download the table (CSV)", df.to_csv(index=False).encode(),
                       file_name="layer-robustness.csv", mime="text/csv", key=f"{KEY}.download", on_click="ignore")
    for m in result.models:
        st.caption(f"{m.model} ({m.kind}): images from {m.images}.")
    if widgets.kept_config(KEY) is not None:
        export.export(KEY, "layer_robustness", widgets.kept_config(KEY), "layer-robustness",
                      summary={"rows": result.rows()}, page=registry.LAYER_ROBUSTNESS)


# --- the page ------------------------------------------------------------------------------

st.title("Layer robustness")
st.markdown("How far can a layer's output be pushed inside a small ball, compared with how far apart two "
            "images' outputs are? The authors' measure from their reply to Nakano (Distill discussion of "
            "Ilyas et al. 2019): R(f) = E[max ||f(x + δ) − f(x)||] / E[||f(x) − f(x')||]. Lower is more robust. "
            "They use it to explain why VGG and AlexNet still do style transfer: their early layers are nearly "
            "as robust as a robust ResNet's.")

rows = models.zoo_rows()
chosen = model_picker(rows, models.current_pair().names)
dataset = next((r["dataset"] for r in rows if chosen and r["name"] == chosen[0]), "fashion-mnist")
build, submitted = run_form(chosen, dataset)
result = page.view(KEY, "layer_robustness", build, lambda config: f"Measuring {', '.join(config.models)}",
                   run=submitted)
if result is not None:
    draw_result(result)
links.share_note(uploads=False)
