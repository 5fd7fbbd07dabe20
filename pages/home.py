"""Home: what the explorer is, the guided tour, its pages and where they come from, the zoo, the device."""

import streamlit as st

from ui import registry, routing, tour, warmup

routing.through_app()  # a deep link to a fresh server runs the page inside app.py

st.title("Features, not bugs")
st.markdown(
    """
An explorer for **"Adversarial Examples Are Not Bugs, They Are Features"** (Ilyas, Santurkar,
Tsipras, Engstrom, Tran and Madry, NeurIPS 2019) and the **Distill discussion** that followed it
(comments by Gabriel Goh; Dan Hendrycks and Justin Gilmer; Reiichiro Nakano; Preetum Nakkiran;
Eric Wallace; and the authors' replies).

The paper's claim in plain words: a classifier is sensitive to tiny adversarial changes because
the data holds *non-robust features*: patterns that really do predict the label, but that people
cannot see. A **standard** model uses them; a **robust** model, trained against worst-case
perturbations (Madry et al. 2018), mostly cannot, and what it uses looks more like what we see.
Every page here puts a standard and a robust model side by side so you can see the difference on
single images, on real models.

Pick the pair in the sidebar; the choice follows you from page to page.
"""
)


REFRESH_S = None if warmup.started().done() else 2.0


@st.fragment(run_every=REFRESH_S)
def tour_section() -> None:
    """The tour's links and the warm-up's status, refreshed every two seconds: once everything is warm,
    each step also shows its key fact on the measured numbers."""
    w = warmup.started()
    st.caption(w.status_line())
    warm = w.tour_done() and not w.note
    if warm:
        st.caption("Every tour step is computed: its first click answers from the cache.")
    if w.done() and not w.note:
        st.caption("The slow pages' default views are computed too.")
    for step in tour.STEPS:
        st.page_link(step.page.path, label=step.title, icon=":material/play_circle:", query_params=step.query_params)
        st.caption(step.caption)
        fact = tour.measured(step) if warm else None
        if fact is not None:
            st.caption(f"{'Measured' if fact.holds else 'Measured, and the claim does not hold here'}: {fact.text}")
    if REFRESH_S and w.done():
        st.rerun()  # the whole page once more, so the fragment stops refreshing


st.header("Guided tour")
st.markdown(f"The paper's story in {len(tour.STEPS)} clicks on the bundled Fashion-MNIST models "
            f"({', '.join(tour.MODELS)}). Each link opens a page with its settings and computes the view; the "
            "page then links the next step.")
tour_section()

st.header("Pages")
for p in registry.PAGES:
    if p is registry.HOME:
        continue
    st.page_link(p.path, label=p.title, icon=p.icon)
    st.markdown(p.summary)
    if p.source:
        st.caption(f"From: {p.source}")

st.header("Model zoo")
from explorer import zoo  # noqa: E402 - torch, pandas: after the tour, so its links paint first
from ui import models, widgets  # noqa: E402

rows = models.zoo_rows()
available = sum(r["available"] for r in rows)
st.markdown(f"**{available} of {len(rows)}** models work offline now. The others need their weights: "
            "the list under the table names the command that downloads them (`python -m explorer fetch NAME`).")
widgets.zoo_table(rows, ["name", "dataset", "kind", "source", "available", "why"])

st.subheader("Preparing a talk")
demo = models.demo_models(rows)
missing = [name for name, here in demo if not here]
st.markdown("Beyond the bundled models a talk needs MadryLab's robust ResNet-50 (L2, eps 3) and the standard "
            "ResNet-50 and VGG-19 that Nakano compared. With them the sidebar's ImageNet pair is a standard and a "
            "robust ResNet-50 and style transfer uses Nakano's networks, all offline.  \n"
            + "  \n".join(f"{':material/check_circle:' if here else ':material/radio_button_unchecked:'} "
                           f"`{name}`: {'here, offline' if here else 'not downloaded'}" for name, here in demo))
if missing:
    st.markdown(f"Get {'it' if len(missing) == 1 else 'them'} where there is internet, the night before: "
                f"`{zoo.DEMO_COMMAND}` shows each file's source, size and sha256, then downloads "
                "(an interrupted download resumes; `--dry-run` only lists).")
else:
    st.markdown("All of them are here: the talk runs offline.")

st.header("Device")
st.markdown(models.device_text())
