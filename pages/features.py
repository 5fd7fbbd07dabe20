"""Non-robust features, seen five ways: one tab per view, standard and robust side by side.

Widgets -> Config -> cached run (``ui.page.view``) -> ``charts_features``.
Results stay in session state with their exact inputs: moving a widget redraws them without
recomputing; another image, model pair or setting hides them until the view's button is pressed again.
"""

from __future__ import annotations

import math
from typing import Optional

import streamlit as st

from explorer import charts, data, zoo
from explorer.charts import features as charts_features
from explorer.charts import filtered_training as charts_filtered
from explorer.classifier import ClassifierInfo
from explorer.experiments import (feature_visualization, filtered_training, frequency, inversion, linear_features,
                                  perturbation_spectrum)
from explorer.experiments import tour as tour_facts
from ui import configs, export, links, page, registry, routing, saved, widgets

routing.through_app()  # a deep link to a fresh server runs the page inside app.py

KEY = "features"
TABS = ("What PGD changes", "Class synthesis", "Representation inversion", "Frequency", "Linear features")


def _key(*parts: str) -> str:
    return ".".join((KEY, *parts))


def _export(name: str, experiment: str, png: bytes) -> None:
    """PNG + JSON of view ``name`` when its config is known (``ui.export``)."""
    config = widgets.kept_config(_key(name))
    if config is not None:
        export.export(_key(name), experiment, config, f"{experiment.replace('_', '-')}", png=png,
                      page=registry.FEATURES)


def _caption_pair(names: tuple[str, ...]) -> str:
    return " and ".join(names)


# --- 1. what PGD changes ---------------------------------------------------------------------

def perturbation_tab(info: ClassifierInfo, names: tuple[str, ...]) -> None:
    st.markdown("The same PGD attack, the same eps, on both models. Ilyas et al. (2019) and Yin et al. (2019) "
                "found a standard model's perturbation spread over high frequencies, like noise, and a robust "
                "model's at low frequencies, drawing shapes; the numbers under the result say whether these "
                "models do.")
    key = _key("pgd")
    picked = widgets.image_picker(info, key)
    norm = widgets.norm_picker(key)
    with st.form(_key("pgd", "form")):
        eps = widgets.eps_slider(info.dataset, norm, key)
        steps = st.slider("Steps", 1, 200, 20, key=_key("pgd", "steps"), bind=links.BIND)
        submitted = st.form_submit_button("Attack both", type="primary", disabled=picked is None)
    submitted = submitted or links.autorun(_key("pgd"))
    build = None if picked is None else (
        lambda: perturbation_spectrum.Config.for_image(picked.image, names, label=picked.label, norm=norm, eps=eps,
                                                       steps=steps))
    result = page.view(_key("pgd"), "perturbation_spectrum", build, f"Attacking {_caption_pair(names)}",
                       run=submitted, action="Attack both")
    if result is not None:
        draw_perturbations(result)


def draw_perturbations(result: perturbation_spectrum.Result) -> None:
    st.image(charts_features.perturbation_figure(result))
    _export("pgd", "perturbation_spectrum", charts.png_bytes(charts_features.perturbation_figure(result)))
    scales = ", ".join(f"{s.model} ×{s.amplification:.1f}" for s in result.spectra)
    st.caption(f"Perturbations shown as 0.5 + scale × δ (mid-grey is no change; scale: {scales}). The spectrum "
               f"is log |DFT(δ)|² with the mean at the centre and the highest frequencies at the edges.")
    cutoff = st.slider("Frequency cutoff ρ", 0.0, 1.0, 0.25, 0.01, key=_key("pgd", "cutoff"), bind=links.BIND,
                       help="ρ is the frequency radius: 0 is the mean, 1 the corner (Nyquist on both axes).")
    cols = st.columns(len(result.spectra) + 1)
    for i, (col, s) in enumerate(zip(cols, result.spectra)):
        col.metric(f"{s.model}: energy at ρ ≤ {cutoff:.2f}", f"{result.energy_below(i, cutoff):.0%}")
    cols[-1].metric("white noise would put", f"{result.noise_below(cutoff):.0%}")
    if result.comparison(cutoff):
        st.caption(result.comparison(cutoff))
    st.altair_chart(charts_features.energy_chart(result.rows(), cutoff), width="stretch")
    st.caption(f"PGD {result.norm} eps {result.eps:g}, {result.steps} steps of {result.step_size:.3g}, on "
               f"{result.device}. The clean image's curve (mean removed) shows where natural images keep their "
               f"energy.")


# --- 2. class synthesis ----------------------------------------------------------------------

START_LABELS = {"mean": "The mean training image", "grey": "Flat grey", "noise": "Uniform noise",
                "image": "A test image"}


def synthesis_tab(info: ClassifierInfo, names: tuple[str, ...]) -> None:
    st.markdown("Targeted PGD with a large L2 ball, from one start toward every class. Ilyas et al. (2019) and "
                "Santurkar et al. (2019) found a robust model's gradients perceptually aligned, so that it draws "
                "the class, where a standard model reaches the same confidence with noise; the caption under the "
                "result measures whether these models do.")
    starts = [s for s in START_LABELS if s != "mean" or info.dataset in ("fashion-mnist", "cifar10")]
    start = st.radio("Start from", starts, format_func=START_LABELS.get, horizontal=True,
                     key=_key("synthesis", "start"), bind=links.BIND)
    picked = widgets.image_picker(info, _key("synthesis")) if start == "image" else None
    size = math.sqrt(math.prod(info.input_size))
    d = configs.SYNTHESIS_DEFAULTS
    with st.form(_key("synthesis", "form")):
        left, mid, right = st.columns(3)
        eps = left.slider("eps (L2 radius)", 0.5, float(math.floor(size)),
                          configs.synthesis_eps_default(info.dataset, info.input_size), 0.5,
                          key=_key("synthesis", "eps"), bind=links.BIND,
                          help=f"A {info.input_size} image of flat grey has L2 norm {size / 2:.1f}.")
        steps = mid.slider("Steps", 5, 300, d["steps"], key=_key("synthesis", "steps"), bind=links.BIND)
        seed = int(right.number_input("Seed (noise)", 0, 2**31 - 1, d["seed"], key=_key("synthesis", "seed"),
                                      bind=links.BIND))
        submitted = st.form_submit_button("Synthesize every class", type="primary",
                                          disabled=start == "image" and picked is None)
    submitted = submitted or links.autorun(_key("synthesis"))
    params = {_key("synthesis", "start"): start, _key("synthesis", "eps"): eps,
              _key("synthesis", "steps"): steps, _key("synthesis", "seed"): seed}
    result = page.view(_key("synthesis"), "class_synthesis",
                       lambda: configs.class_synthesis(params, names, info.dataset, info.input_size,
                                                       picked.image if picked is not None else None),
                       "Synthesizing every class", run=submitted, action="Synthesize every class")
    if result is not None:
        st.image(charts_features.synthesis_figure(result))
        counts = "; ".join(f"{r.model}: {r.n_reached} of {len(result.targets)} classes reached"
                           for r in result.rows)
        st.caption(f"{counts}. Targeted L2 PGD, eps {result.eps:g}, {result.steps} steps of "
                   f"{result.step_size:.3g}, keep-the-best, on {result.device}; p is the target's probability.")
        if info.dataset == "fashion-mnist" and len({r.robust for r in result.rows}) == 2:
            fact = tour_facts.synthesis(result)
            st.caption(f"{fact.text} The robust model's changes {'look' if fact.holds else 'do not look'} more "
                       "like the target class than the standard model's, by this measure.")
        _export("synthesis", "class_synthesis", charts.png_bytes(charts_features.synthesis_figure(result)))


# --- 3. representation inversion --------------------------------------------------------------

INVERSION_STARTS = {"random_image": "A random test image of another class", "image": "A test image I pick",
                    "noise": "Uniform noise", "grey": "Flat grey"}
SCHEDULES = {(1.0, 0.3, 0.1): "1 → 0.3 → 0.1 (default)", (0.1,): "0.1 (the paper's, CIFAR)",
             (2.0, 0.5, 0.1): "2 → 0.5 → 0.1"}


def inversion_tab(info: ClassifierInfo, names: tuple[str, ...], layers: list[str]) -> None:
    st.markdown("Find an image z whose representation matches x's: minimize ||g(z) − g(x)|| / ||g(x)|| from a "
                "start z0 with normalized L2 steps (Ilyas et al. 2019, §3.1). In the paper, through the robust "
                "model the result looks like x (a **D_R** sample: only x's robust features); through the standard "
                "one it still looks like z0 but is classified as x (a **D_NR** sample). The caption under the "
                "result says, in pixel distances, which each result is nearer here.")
    left, right = st.columns(2)
    with left:
        st.markdown("**x: the image to match**")
        target = widgets.image_picker(info, _key("inversion", "x"))
    with right:
        st.markdown("**z0: where to start**")
        start = st.radio("Start from", list(INVERSION_STARTS), format_func=INVERSION_STARTS.get, horizontal=True,
                         key=_key("inversion", "start"), bind=links.BIND)
        start_image = widgets.image_picker(info, _key("inversion", "z")) if start == "image" else None
    d = configs.INVERSION_DEFAULTS
    with st.form(_key("inversion", "form")):
        a, b, c = st.columns(3)
        layer = a.selectbox("Representation g", layers, index=layers.index(d["layer"])
                            if d["layer"] in layers else 0, key=_key("inversion", "layer"), bind=links.BIND)
        steps = b.slider("Steps", 10, 3000, d["steps"], 10, key=_key("inversion", "steps"), bind=links.BIND)
        step_sizes = c.selectbox("L2 step sizes", list(SCHEDULES), index=list(SCHEDULES).index(d["schedule"]),
                                 format_func=SCHEDULES.get, key=_key("inversion", "schedule"), bind=links.BIND,
                                 help="The steps are split evenly over the stages; each stage starts from the "
                                      "best point so far.")
        seed = int(st.number_input("Seed (random image or noise start)", 0, 2**31 - 1, d["seed"],
                                   key=_key("inversion", "seed"), bind=links.BIND))
        submitted = st.form_submit_button("Invert", type="primary",
                                          disabled=target is None or (start == "image" and start_image is None))
    submitted = submitted or links.autorun(_key("inversion"))
    params = {_key("inversion", "start"): start, _key("inversion", "layer"): layer,
              _key("inversion", "steps"): steps, _key("inversion", "schedule"): step_sizes,
              _key("inversion", "seed"): seed}
    build = None if target is None else (lambda: configs.inversion(
        params, names, target.image, target.label, start_image=start_image.image if start_image else None,
        start_label=start_image.label if start_image else None))
    result = page.view(_key("inversion"), "inversion", build, "Inverting the representation", run=submitted,
                       action="Invert")
    if result is not None:
        draw_inversion(result)
        if any(inv.robust and "linf" in inv.kind for inv in result.inversions):
            st.info("Ilyas et al. built D_R with an L2-robust model. An L∞-robust Fashion-MNIST model's "
                    "representation is hard to invert from another image (measured: the distance falls only "
                    "2-4×, against 100× and more with the L2-robust model): pick an L2-robust model in the "
                    "sidebar for cleaner D_R samples.")
    st.subheader("Maximize one unit of the representation")
    visualization_form(names, layers)


def draw_inversion(result: inversion.Result) -> None:
    st.image(charts_features.inversion_figure(result))
    _export("inversion", "inversion", charts.png_bytes(charts_features.inversion_figure(result)))
    st.caption(f"Under each image: the top class of each model, in the order {', '.join(result.models)}.")
    cols = st.columns(len(result.inversions))
    for col, inv in zip(cols, result.inversions):
        col.metric(f"{inv.model}: distance {inv.start_distance:.3f} → {inv.final_distance:.3f}",
                   f"{inv.reduction:.1f}× lower")
    st.altair_chart(charts_features.distance_chart(result), width="stretch")
    st.caption(f"{result.summary()} Normalized L2 steps on the {result.layer} layer ({result.schedule_text()}), "
               f"keep-the-best, [0, 1] clamp only, on {result.device}.")


def visualization_form(names: tuple[str, ...], layers: list[str]) -> None:
    st.markdown("Gradient ascent on single coordinates of the representation, from noise, with no "
                "regularizer. Engstrom et al. (2019) found that a robust ImageNet model draws patterns this way and "
                "a standard one noise; the caption under the result measures whether these models do.")
    d = configs.UNITS_DEFAULTS
    with st.form(_key("units", "form")):
        a, b, c, e = st.columns(4)
        layer = a.selectbox("Layer", layers, index=layers.index(d["layer"]) if d["layer"] in layers else 0,
                            key=_key("units", "layer"), bind=links.BIND)
        n_units = int(b.number_input("Units (most active first)", 1, feature_visualization.MAX_UNITS, d["n"],
                                     key=_key("units", "n"), bind=links.BIND))
        steps = c.slider("Steps", 10, 1000, d["steps"], 10, key=_key("units", "steps"), bind=links.BIND)
        start = e.radio("Start", list(feature_visualization.STARTS),
                        index=list(feature_visualization.STARTS).index(d["start"]), key=_key("units", "start"),
                        bind=links.BIND)
        submitted = st.form_submit_button("Maximize", type="primary")
    submitted = submitted or links.autorun(_key("units"))
    params = {_key("units", "layer"): layer, _key("units", "n"): n_units, _key("units", "steps"): steps,
              _key("units", "start"): start}
    result = page.view(_key("units"), "feature_visualization", lambda: configs.units(params, names),
                       "Maximizing units", run=submitted, action="Maximize")
    if result is not None:
        st.image(charts_features.visualization_figure(result))
        _export("units", "feature_visualization", charts.png_bytes(charts_features.visualization_figure(result)))
        st.caption(f"{result.summary()} Each model gets its own units (unit numbers mean nothing across models): "
                   "the ones most active on the start, since a unit that is zero after its ReLU has no gradient. "
                   "Under each image: the unit's value at the start → at the end, and the model's top class.")


# --- 4. frequency ------------------------------------------------------------------------------

KIND_LABELS = {"low": "Low-pass", "high": "High-pass"}


@st.cache_data(show_spinner=False, max_entries=64)
def _filtered(config: frequency.FilterConfig) -> frequency.FilterResult:
    return frequency.run_filter(config)


def frequency_tab(info: ClassifierInfo, names: tuple[str, ...]) -> None:
    st.markdown("Which frequencies do models use? The first two views filter **test** images and show them to "
                "the sidebar's models, which were trained on normal images. The third trains models **on** "
                "filtered images (Hendrycks & Gilmer, Distill discussion). Yin et al. (2019): natural models are "
                "hurt by high-frequency noise, adversarially trained ones by low-frequency noise.")
    st.subheader("One image through a filter (test time)")
    picked = widgets.image_picker(info, _key("frequency"))
    left, right = st.columns(2)
    kind = left.radio("Filter", list(KIND_LABELS), format_func=KIND_LABELS.get, horizontal=True,
                      key=_key("frequency", "kind"), bind=links.BIND)
    cutoff = right.slider("Cutoff ρ", 0.0, 1.0, 0.3, 0.01, key=_key("frequency", "cutoff"), bind=links.BIND,
                          help="Normalized frequency radius: 0 is the mean, 1 the corner. Low-pass keeps ρ ≤ "
                               "cutoff; high-pass keeps ρ > cutoff and the mean.")
    if picked is not None:
        try:
            fr = _filtered(frequency.FilterConfig.for_image(picked.image, names, label=picked.label, kind=kind,
                                                            cutoff=cutoff))
        except (ValueError, zoo.ZooError) as e:
            st.error(str(e))
        else:
            draw_filter(fr)
    st.subheader("Accuracy on filtered test images (models trained on normal images)")
    with st.form(_key("frequency", "curve")):
        n_images = int(st.number_input("Test images", 10, 10_000, configs.CURVE_DEFAULTS["n_images"], 50,
                                       key=_key("frequency", "n_images"), bind=links.BIND))
        submitted = st.form_submit_button("Measure", type="primary")
    submitted = submitted or links.autorun(_key("curve"))
    curve = page.view(_key("curve"), "frequency",
                      lambda: configs.frequency_curve({_key("frequency", "n_images"): n_images}, names),
                      "Classifying filtered test images", run=submitted, action="Measure")
    if curve is not None:
        st.altair_chart(charts_features.cutoff_accuracy_chart(curve.rows()), width="stretch")
        clean = ", ".join(f"{m} {a:.1%}" for m, a in zip(curve.models, curve.clean_accuracy))
        st.caption(f"{curve.images}; clean accuracy {clean}. {curve.seconds:.1f} s on {curve.device}.")
    filtered_training_section()
    heatmap_section(info, names)


def draw_filter(fr: frequency.FilterResult) -> None:
    st.image([charts.to_pil(fr.original, 112), charts.to_pil(fr.filtered, 112)],
             caption=["original", f"{fr.kind}-pass at ρ = {fr.cutoff:.2f}"], width=150)
    st.caption(f"The filter keeps {fr.kept:.0%} of the frequencies and {fr.energy_kept:.0%} of the image's "
               f"energy (mean removed).")
    for col, name, kind, po, pf in zip(st.columns(len(fr.models)), fr.models, fr.kinds, fr.probs_original,
                                       fr.probs_filtered):
        with col:
            top = int(pf.argmax())
            verdict = (st.success if fr.label is None or top == fr.label else st.error)
            verdict(f"**{name}** ({kind}): {fr.class_names[int(po.argmax())]} → {fr.class_names[top]} "
                    f"({pf[top]:.0%})")
            st.altair_chart(charts.topk_chart(po, pf, fr.class_names, k=3, title="before = original, "
                                              "after = filtered"), width="stretch")


def filtered_training_section() -> None:
    st.subheader("Trained on filtered images (Hendrycks & Gilmer)")
    them = filtered_training.COMMENTER
    st.markdown(f"Hendrycks & Gilmer trained {them['dataset']} models on filtered images: on high-pass filtered "
                f"ones they reach more than {them['high_pass_top1_above']:g}% top-1, on low-pass filtered ones more "
                f"than {them['low_pass_top1_above']:g}%. Here a fresh model is trained on the training images "
                "filtered at each cutoff ρ (the filters above) and tested on the real, unfiltered test set, and on "
                "the test set filtered the same way.")
    a, b = st.columns(2)
    d = configs.FILTERED_DEFAULTS
    n = int(a.number_input("Training images", 50, 60000, d["n_train"], 50, key=_key("filtered", "n_train"),
                           bind=links.BIND))
    epochs = int(b.number_input("Epochs", 1, 100, d["epochs"], key=_key("filtered", "epochs"), bind=links.BIND))
    config = configs.filtered_training({_key("filtered", "n_train"): n, _key("filtered", "epochs"): epochs})
    got = saved.saved_or_live(KEY, "filtered_training", "python -m explorer filtered-training", config,
                              f"stage_cnn_tiny, {n} Fashion-MNIST images, {epochs} epochs")
    if got is None:
        return
    result, where = got
    st.altair_chart(charts_filtered.accuracy_chart(result), width="stretch")
    for sentence in _filtered_training_story(result):
        st.markdown(sentence)
    widgets.table(charts_filtered.table_frame(result, them))
    st.caption(f"{where}. Departures from Hendrycks & Gilmer: {result['dataset']} ({len(result['class_names'])} "
               f"classes, chance {result['chance']:.0%}) instead of {them['dataset']}, {result['arch']} instead of "
               f"their ImageNet network, {result['images']} for training, "
               f"{result['epochs']} epochs, {result['n_test']} test images, one model per setting; the cutoffs are "
               "ours. Energy: the training images' spectral energy (each image's mean removed) in the kept band.")


def _filtered_training_story(result: dict) -> list[str]:
    """One sentence per filter, on its harshest cutoff, every number from ``result``."""
    out = []
    for kind, pick in (("high", max), ("low", min)):
        at = [i for i, k in enumerate(result["kinds"]) if k == kind]
        if not at:
            continue
        i = pick(at, key=lambda j: result["cutoffs"][j])
        band = f"ρ > {result['cutoffs'][i]:g}" if kind == "high" else f"ρ ≤ {result['cutoffs'][i]:g}"
        out.append(f"Trained on **{kind}-pass** images ({band}: {result['energy_kept'][i]:.0%} of the energy), the "
                   f"model scores **{result['real_accuracy'][i]:.1%}** on the real test set and "
                   f"{result['filtered_accuracy'][i]:.1%} on the test set filtered the same way, where the model "
                   f"trained on unfiltered images scores {result['baseline_on_filtered'][i]:.1%} (chance "
                   f"{result['chance']:.0%}; on the real test set that model scores "
                   f"{result['baseline_accuracy']:.1%}).")
    return out


def heatmap_section(info: ClassifierInfo, names: tuple[str, ...]) -> None:
    st.subheader("Fourier heat map (Yin et al. 2019)")
    side = max(info.input_size[1:])
    d = configs.HEATMAP_DEFAULTS
    with st.form(_key("heatmap", "form")):
        a, b, c = st.columns(3)
        r = a.slider("Noise L2 norm r", 0.5, 10.0, d["r"], 0.5, key=_key("heatmap", "r"), bind=links.BIND,
                     help="Yin et al. used r = 4 on 32×32×3 CIFAR-10. On 28×28 Fashion-MNIST r = 2 leaves the "
                          "robust models untouched; r = 4 shows the pattern.")
        n_images = int(b.number_input("Test images", 10, 10_000, d["n_images"], 10, key=_key("heatmap", "n_images"),
                                      bind=links.BIND,
                                      help="Yin et al. used 1000; each image is evaluated once per frequency."))
        params = {_key("heatmap", "r"): r, _key("heatmap", "n_images"): n_images}
        if side > 32:
            params[_key("heatmap", "max_frequency")] = int(c.number_input(
                "Highest frequency |u|, |v|", 1, side // 2, d["max_frequency"], key=_key("heatmap", "max_frequency"),
                bind=links.BIND, help="Large images: a grid of low frequencies."))
        else:
            c.caption(f"All {side}×{side} frequencies; (u, v) and (−u, −v) share one evaluation.")
        submitted = st.form_submit_button("Compute the heat maps", type="primary")
    submitted = submitted or links.autorun(_key("heatmap"))
    result = page.view(_key("heatmap"), "fourier_heatmap", lambda: configs.fourier_heatmap(params, names, side),
                       "Adding Fourier noise", run=submitted, action="Compute the heat maps")
    if result is not None:
        st.altair_chart(charts_features.heatmap_chart(result.rows()))
        clean = ", ".join(f"{m} {e:.1%}" for m, e in zip(result.models, result.clean_error))
        st.caption(f"Error rate on {result.images} plus r·s·U(u,v), r = {result.noise_norm:g}, s = ±1 at random; "
                   f"the mean is at the centre. Clean error: {clean}. {result.seconds:.1f} s on {result.device}.")
        hi = int(max(abs(result.freq_u).max(), 1))
        examples = [(0, 1), (hi // 3, hi // 3), (hi, hi)]
        st.image([charts.to_pil(result.noisy_example(u, v), 112) for u, v in examples],
                 caption=[f"(u, v) = ({u}, {v})" for u, v in examples], width=112)


# --- 5. linear features ------------------------------------------------------------------------


def linear_tab() -> None:
    st.markdown("Goh (Distill discussion): for a linear feature f(x) = aᵀx / ‖a‖_Σ of centred data, robust "
                "usefulness = E[y f(x)] − ε‖a‖* / ‖a‖_Σ in closed form (dual norm: L2 for an L2 ball, L1 "
                "for L∞). Along the data's principal directions, high-variance directions are robust; low-variance "
                "ones are not, and barely useful on their own. Combining them gives useful, non-robust features.")
    classes, dl = data.FASHION_MNIST_CLASSES, configs.LINEAR_DEFAULTS
    norms = list(widgets.NORM_LABELS)
    a, b, c = st.columns(3)
    class_a = a.selectbox("Class y = +1", range(10), index=dl["a"], format_func=classes.__getitem__,
                          key=_key("linear", "a"), bind=links.BIND)
    class_b = b.selectbox("Class y = −1", range(10), index=dl["b"], format_func=classes.__getitem__,
                          key=_key("linear", "b"), bind=links.BIND)
    norm = c.radio("Ball", norms, index=norms.index(dl["norm"]), format_func=widgets.NORM_LABELS.get,
                   horizontal=True, key=_key("linear", "norm"), bind=links.BIND)
    d, e, f, g = st.columns(4)
    eps_l2 = d.slider("eps (L2)", 0.05, 3.0, dl["eps_l2"], 0.05, key=_key("linear", "eps_l2"), bind=links.BIND)
    eps_linf = e.slider("eps (L∞)", 0.005, 0.2, dl["eps_linf"], 0.005, format="%.3f", key=_key("linear", "eps_linf"),
                        bind=links.BIND)
    n_directions = f.slider("Principal directions", 10, 784, dl["n"], 10, key=_key("linear", "n"), bind=links.BIND)
    alpha = g.slider("Containment α", 0.0, 1.0, dl["alpha"], 0.01, key=_key("linear", "alpha"), bind=links.BIND)
    if class_a == class_b:
        st.warning("Pick two different classes.")
        return
    config = configs.linear_features({_key("linear", k): v for k, v in (
        ("a", class_a), ("b", class_b), ("norm", norm), ("eps_l2", eps_l2), ("eps_linf", eps_linf),
        ("n", n_directions), ("alpha", alpha))})
    result = widgets.run_experiment("linear_features", config, "Computing the principal directions")
    if result is not None:
        draw_linear(result)


def _feature_rows(result: linear_features.Result) -> list[dict]:
    out = []
    for feat in (result.ensemble, result.containment):
        if feat is not None:
            out.append({"feature": feat.name.split(" (")[0], "usefulness": feat.usefulness,
                        "non_robustness": feat.usefulness - feat.robust(result.norm)})
    return out


def _clicked_index(event, n: int) -> Optional[int]:
    """The basis direction clicked in the scatter, if any."""
    try:
        points = event.selection[charts_features.PICK]
    except (AttributeError, KeyError, TypeError):
        return None
    indices = [p.get("index") for p in points if isinstance(p, dict)] if isinstance(points, list) else []
    indices = [int(i) for i in indices if isinstance(i, (int, float)) and 0 <= i < n]
    return indices[0] if indices else None


def draw_linear(result: linear_features.Result) -> None:
    norm_label = widgets.NORM_LABELS[result.norm]
    eps = result.eps_l2 if result.norm == "l2" else result.eps_linf
    options = [f"a{i + 1}" for i in range(len(result.usefulness))]
    options += [name for name, feat in (("ensemble", result.ensemble), ("containment", result.containment)) if feat]
    default = options.index(f"a{result.nonrobust_index + 1}") if result.nonrobust_index is not None else 0
    pick = st.selectbox("Feature to look at", options, index=default, key=_key("linear", "pick"), bind=links.BIND,
                        help="aᵢ is the i-th principal direction (largest variance first). Clicking a point "
                             "of the scatter picks it too.")
    selected = options.index(pick) if pick.startswith("a") else None
    left, right = st.columns([3, 2])
    with left:
        event = st.altair_chart(charts_features.features_scatter(result.rows(), selected, _feature_rows(result),
                                                                 f"({norm_label}, ε = {eps:g})"),
                                width="stretch", on_select="rerun", selection_mode=charts_features.PICK,
                                key=_key("linear", "scatter"))
        clicked = _clicked_index(event, len(result.usefulness))
        if clicked is not None:
            selected, pick = clicked, options[clicked]
        st.caption(f"{result.images}, {result.class_names[0]} (y = +1) vs {result.class_names[1]} (y = −1). "
                   f"Red line: the Pareto frontier (no direction is both more useful and less non-robust). "
                   f"Dashed: robust usefulness = 0; directions above it are non-robust. Green diamonds: the two "
                   f"constructions.")
    with right:
        feat = result.feature(selected) if selected is not None else (
            result.ensemble if pick == "ensemble" else result.containment)
        img, scale = charts_features.signed_image(feat.direction)
        st.image(charts.to_pil(img, 168), caption=f"{feat.name}: a as an image (0.5 + {scale:.1f} a)", width=200)
        st.markdown(f"usefulness **{feat.usefulness:.3f}**  \nrobust usefulness: L2 (ε {result.eps_l2:g}) "
                    f"**{feat.robust_l2:.3f}**, L∞ (ε {result.eps_linf:g}) **{feat.robust_linf:.3f}**  \n"
                    f"standard deviation ‖a‖_Σ {feat.sigma_norm:.3g}")
    st.subheader("Useful, non-robust constructions")
    if result.ensemble is not None:
        st.markdown(f"**Ensemble**: the normalized sum of the {len(result.nonrobust)} useful but non-robust "
                    f"directions ({norm_label}): usefulness {result.ensemble.usefulness:.3f}, more than any of them "
                    f"alone (best {result.usefulness[result.nonrobust].max():.3f}), robust usefulness "
                    f"{result.ensemble.robust(result.norm):.3f}.")
    if result.containment is not None:
        st.markdown(f"**Containment**: (1 − α) a{result.nonrobust_index + 1} + α a{result.robust_index + 1}, the "
                    f"most robust-useful direction with a useless non-robust one added (the least useful of the "
                    f"non-robust directions, usefulness {result.usefulness[result.nonrobust_index]:.3f}). All the "
                    f"usefulness comes from the robust part; the non-robust part, which says nothing about the "
                    f"label, makes it brittle.")
        st.altair_chart(charts_features.containment_chart(result.containment_curve, result.norm, result.alpha),
                        width="stretch")
    first = [(charts_features.signed_image(result.directions[i])[0],
              f"a{i + 1}: use {result.usefulness[i]:.2f}\nrobust {result.robust()[i]:.2f}")
             for i in range(min(8, len(result.usefulness)))]
    st.image(charts.figure([("The first principal directions (largest variance first)", first)], min_tile=84))


# --- the page ------------------------------------------------------------------------------

st.title("Non-robust features")
st.markdown("What the standard and the robust model of the sidebar pay attention to: their adversarial "
            "perturbations, what their gradients draw, what their representations keep, which frequencies they "
            "use, and, for linear features, the closed form (Ilyas et al. 2019 and its Distill discussion).")

pair, model = page.pair_or_stop(alone="showing")
info = model.info

tabs = st.tabs(list(TABS), key=_key("tab"), bind=links.BIND)
with tabs[0]:
    perturbation_tab(info, pair.names)
with tabs[1]:
    synthesis_tab(info, pair.names)
with tabs[2]:
    inversion_tab(info, pair.names, model.layer_names)
with tabs[3]:
    frequency_tab(info, pair.names)
with tabs[4]:
    linear_tab()
links.share_note()
