"""Attack lab: one image, PGD on the standard and the robust model side by side.

Widgets -> ``ui.configs.attack_lab`` -> cached attack_lab.run -> charts. The result stays in
session state with its exact inputs (``ui.page.view``): moving a widget redraws it without
recomputing, and another image, model or setting hides it until Run is pressed again.
"""

from __future__ import annotations

from typing import Optional

import streamlit as st

from explorer import charts
from explorer.charts import attack_lab as charts_attack
from explorer.experiments import attack_lab
from ui import configs, export, links, page, registry, routing, widgets

routing.through_app()  # a deep link to a fresh server runs the page inside app.py

KEY = "attack_lab"


# --- widgets -> parameters -------------------------------------------------------

def attack_form(info, picked: Optional[widgets.PickedImage], names: tuple[str, ...]):
    """The threat model and PGD settings: the builder of the Config (``ui.configs.attack_lab`` on these
    settings; None without an image) and whether Run was pressed (or a link autoruns)."""
    norm = widgets.norm_picker(KEY)
    classes = info.class_names
    d = configs.ATTACK_LAB_DEFAULTS
    with st.form(f"{KEY}.form"):
        eps = widgets.eps_slider(info.dataset, norm, KEY)
        left, right = st.columns(2)
        steps = left.slider("Steps", 1, 200, d["steps"], key=f"{KEY}.steps", bind=links.BIND)
        step_size = right.number_input("Step size", min_value=1e-6, max_value=100.0, value=d["step_size"],
                                       format="%.5f", placeholder="2.5 × eps / steps", key=f"{KEY}.step_size",
                                       bind=links.BIND,
                                       help="Empty: 2.5 × eps / steps, the evaluation convention of Madry et al.")
        target = st.selectbox("Target class", [None, *range(len(classes))], key=f"{KEY}.target", bind=links.BIND,
                              format_func=lambda c: "none (untargeted)" if c is None else f"{c}: {classes[c]}",
                              help="Untargeted pushes away from the true class (or the model's own prediction "
                                   "when the label is unknown); targeted pulls toward the chosen class.")
        a, b, c = st.columns(3)
        random_start = a.checkbox("Random start", d["random_start"], key=f"{KEY}.random_start", bind=links.BIND)
        restarts = int(b.number_input("Restarts", 1, attack_lab.MAX_RESTARTS, d["restarts"], key=f"{KEY}.restarts",
                                      bind=links.BIND))
        seed = int(c.number_input("Seed", 0, 2**31 - 1, d["seed"], key=f"{KEY}.seed", bind=links.BIND))
        submitted = st.form_submit_button("Run", type="primary", disabled=picked is None)
    submitted = submitted or links.autorun(KEY)  # a shared link computes its view again
    if picked is None:
        return None, submitted
    params = {f"{KEY}.norm": norm, configs.eps_key(KEY, info.dataset, norm): eps, f"{KEY}.steps": steps,
              f"{KEY}.step_size": step_size, f"{KEY}.target": target, f"{KEY}.random_start": random_start,
              f"{KEY}.restarts": restarts, f"{KEY}.seed": seed}
    return lambda: configs.attack_lab(params, names, picked.image, picked.label, info.dataset), submitted


# --- drawing results -----------------------------------------------------------------

def _name(a: attack_lab.ModelAttack, c: int) -> str:
    return a.class_names[c]


def draw_model(result: attack_lab.Result, a: attack_lab.ModelAttack) -> None:
    """One model's column: verdict, images, top-5 before/after, loss and probability per step."""
    st.subheader(a.model)
    st.caption(a.kind)
    before, after = _name(a, a.pred_before), _name(a, a.pred_after)
    p_after = f"{a.probs_after.max():.0%}"
    if a.wrong_before:
        st.warning(f"**Wrong before the attack**: the clean image is {_name(a, a.label)} and the model already "
                   f"said {before}, so there was no right answer to flip. After the attack: {after} ({p_after}).")
    elif a.target_before:
        st.warning(f"**The target before the attack**: the model already said {before} on the clean image; "
                   f"after the attack {after} ({p_after}).")
    elif a.success:
        verb = f"pulled to {_name(a, a.target)}" if a.target is not None else "prediction flipped"
        st.error(f"**Fooled** ({verb}): {before} → {after} ({p_after})")
    else:
        st.success(f"**Holds** against this attack: {before} → {after} ({p_after})")
    amplified, scale = charts.amplify(a.perturbation, a.amplification)
    size = a.perturbation_linf if result.norm == "linf" else a.perturbation_l2
    st.image([charts.to_pil(result.original), charts.to_pil(a.adversarial), charts.to_pil(amplified)],
             caption=["original", "adversarial", f"perturbation ×{scale:.1f}"], width=150)
    st.caption(f"Perturbation: {result.norm} size {size:.4g} (Linf {a.perturbation_linf:.4g}, "
               f"L2 {a.perturbation_l2:.4g}); shown as 0.5 + {scale:.1f} × δ, so mid-grey is no change.")
    st.altair_chart(charts.topk_chart(a.probs_before, a.probs_after, a.class_names, k=5,
                                      title="top-5 classes before and after"), width="stretch")
    tracked = f"p({_name(a, a.tracked_class)})"
    st.altair_chart(charts.history_chart(a.loss_history, a.prob_history, prob_label=tracked), width="stretch")
    if a.target is None:
        pushed = f"pushed away from {'the true label' if a.label_is_true else 'its own clean prediction'}"
    else:
        pushed = "pulled toward the target"
    st.caption(f"The attack {pushed}, {_name(a, a.tracked_class)}; the lower chart follows {tracked} = exp(-loss), "
               f"read off the cross-entropy of every step. {a.seconds:.2f} s.")

def draw_result(result: attack_lab.Result) -> None:
    kind = "targeted" if result.targeted else "untargeted"
    st.header("Result")
    st.caption(f"PGD, {kind}, {result.norm} eps {charts.eps_text(result.norm, result.eps)}, "
               f"{result.steps} steps of {result.step_size:.4g}, "
               f"{result.restarts} restart(s), keep-the-best, on {result.device}.")
    for col, a in zip(st.columns(len(result.attacks)), result.attacks):
        with col:
            draw_model(result, a)
    st.subheader("Does the perturbation transfer?")
    st.markdown(result.transfer_sentence())
    if result.transfer:
        widgets.table(charts_attack.transfer_frame(result))
        st.caption("Ilyas et al. explain transfer by shared non-robust features: a perturbation that moves "
                   "features both models use fools both.")
    config = widgets.kept_config(KEY)
    if config is not None:
        export.export(KEY, "attack_lab", config, f"attack-lab-{'-vs-'.join(a.model for a in result.attacks)}",
                      png=charts_attack.attack_png(result), page=registry.ATTACK_LAB)


# --- the page ------------------------------------------------------------------------------

st.title("Attack lab")
st.markdown("PGD (Madry et al. 2018) on one image, against the standard and the robust model of the "
            "sidebar. In Ilyas et al. (2019) a standard model flips under a perturbation that leaves the object plain "
            "to us; a robust one holds, and what it takes to move it starts to look like the other class. The "
            "verdicts under the result say what these models do.")

pair, model = page.pair_or_stop(alone="attacking")
info = model.info

# Test image 1 (a pullover): at the default Linf 0.1 the bundled standard model flips and the
# robust one holds, the page's point at first sight (image 0 fools both; tests/e2e checks it).
picked = widgets.image_picker(info, KEY, default_index=1)
build, submitted = attack_form(info, picked, pair.names)
result = page.view(KEY, "attack_lab", build, lambda config: f"Attacking {' and '.join(config.models)}", run=submitted)
if result is not None:
    draw_result(result)
links.share_note()
