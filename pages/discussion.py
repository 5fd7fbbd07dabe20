"""The Distill discussion's experiments, one tab per comment.

Each tab shows the results file that ``python -m explorer <command>`` wrote (under
``results/discussion/``) with the commenter's number beside ours, and can run a small version
itself through ``ui.page.view`` (shown only while the sidebar's model and the tab's settings are
the ones it ran with). The chosen tab and the settings are part of the page's link.
"""

from __future__ import annotations

from typing import Optional

import streamlit as st

from explorer.charts import discussion as CD
from explorer import zoo
from explorer.experiments import mislabeled, squares, transfer_learnability
from ui import configs, links, models, routing, saved, widgets

routing.through_app()  # a deep link to a fresh server runs the page inside app.py

KEY = "discussion"


# --- shared pieces ---------------------------------------------------------------------------------

def _source(pair: models.ModelPair) -> Optional[str]:
    """The sidebar's standard model when it is a Fashion-MNIST one (the live runs need it)."""
    if pair.standard and zoo.get_spec(pair.standard).dataset == "fashion-mnist":
        return pair.standard
    return None


def saved_or_live(name: str, command: str, config, label: str, *, disabled: bool = False) -> Optional[tuple]:
    """``ui.saved.saved_or_live`` under this page's key."""
    return saved.saved_or_live(KEY, name, command, config, label, disabled=disabled)


def _saved_on_cifar10(name: str, draw) -> None:
    """The saved CIFAR-10 run of experiment ``name`` (the commenters' own dataset), drawn as the tab's result is,
    under its own heading; nothing when there is none."""
    got = saved.saved_on("cifar10", name)
    if got is not None:
        st.subheader("On CIFAR-10, the dataset of the numbers quoted above (saved run)")
        draw(*got)


def _sizes(name: str) -> tuple[dict, int]:
    """The tab's training images and epochs (defaults: ``configs.DISCUSSION_DEFAULTS``): its parameters for
    the ``ui.configs`` builder, and the number of images."""
    d = configs.DISCUSSION_DEFAULTS[name]
    a, b = st.columns(2)
    n = int(a.number_input("Training images", 50, 60000, d["n_train"], 50, key=f"{KEY}.{name}.n_train",
                           bind=links.BIND))
    e = int(b.number_input("Epochs", 1, 100, d["epochs"], key=f"{KEY}.{name}.epochs", bind=links.BIND))
    return {f"{KEY}.{name}.n_train": n, f"{KEY}.{name}.epochs": e}, n


# --- 1. transferability vs learnability ----------------------------------------------------------

def transfer_tab(pair: models.ModelPair) -> None:
    st.markdown("Ilyas et al. (Figure 3): architectures that the source model's adversarial examples **transfer** "
                "to are also the ones that **learn** most from its D_det. Each point is one architecture trained on "
                "the same clean images (transfer) and on the source's D_det (accuracy on the real test set); the "
                "dashed line is fitted through the PGD points, the red rule is chance. Below chance, a model has "
                "learned the relabelling (the original class's features under the label y + 1: see the column "
                "'into (y + 1) mod C'). The D_det of Nakkiran's non-transferable attack should sit on the same "
                "line, low and low (the authors' reply).")
    source = _source(pair)
    params, n = _sizes("transfer_learnability")
    config = configs.transfer_learnability(params, source) if source else None
    got = saved_or_live("transfer_learnability", "python -m explorer transfer-learnability", config,
                        f"{source}, {n} images", disabled=source is None)
    if got is not None:
        draw_transfer(*got)
    _saved_on_cifar10("transfer_learnability", draw_transfer)


def draw_transfer(result: dict, where: str) -> None:
    st.altair_chart(CD.transfer_scatter(result), width="stretch")
    widgets.table(CD.transfer_learnability_frame(result))
    rates = ", ".join(f"{k} {100 * v:.1f}% of the attacked test images, {100 * result['det_success'][k]:.1f}% of "
                      "D_det" for k, v in result["success"].items())
    st.caption(f"{where}. {CD.transfer_fit_sentence(result)} Fisher's interval assumes a roughly normal scatter; "
               f"with a handful of architectures, read the table too. Targeted success on the source: {rates}; "
               f"{result['n_train']} training images, {result['n_attack']} attacked test images, "
               f"{result['n_test']} real test images, L2 eps {result['eps']:g}, {result['steps']} steps. "
               + transfer_learnability.COMMENTER["figure"] + ".")


# --- 2. robust feature leakage -------------------------------------------------------------------

#: What D_rand's target rule does to the control (results saved before the rule was a choice used "other").
LEAKAGE_TARGETS = {
    "uniform": "D_rand's targets are uniform over all classes, independent of y (the paper's rule): about a tenth "
               "of its labels equal y, and the control is what the head learns from those alone.",
    "other": "This D_rand's targets are the other classes only (not the paper's rule), so a head that sees the true "
             "class alone learns 'anything but y' and its control is near 0%, not 10%.",
}


def leakage_tab(pair: models.ModelPair) -> None:
    st.markdown("Goh: how much do D_rand and D_det leak **robust** features? A linear head on the 10 weight vectors "
                "of a robust linear classifier, trained on D_rand or D_det, tested on real images (Goh, CIFAR-10: "
                "**23.5%** from D_rand, **6.81%** from D_det). The control trains the same head on the unperturbed "
                "images with the same labels: no leakage at all.")
    source = _source(pair)
    params, n = _sizes("leakage")
    config = configs.leakage(params, source) if source else None
    got = saved_or_live("leakage", "python -m explorer leakage", config, f"{source}, {n} images",
                        disabled=source is None)
    if got is not None:
        draw_leakage(*got)
    _saved_on_cifar10("leakage", draw_leakage)


def draw_leakage(result: dict, where: str) -> None:
    widgets.table(CD.leakage_frame(result))
    widgets.table(CD.linear_models_frame(result))
    st.caption(f"{where}. Targeted success of the construction on the source: "
               + ", ".join(f"{k} {100 * v:.1f}%" for k, v in result["attack_success"].items() if v is not None)
               + f"; {result['n_test']} real test images. " + LEAKAGE_TARGETS[result.get("targets", "other")])


# --- 3. adversarial squares ------------------------------------------------------------------------

def squares_tab() -> None:
    st.markdown("Nakkiran: squares of one sign (+-1 with 10% pixel noise); the sign is the label, and "
                "sign(mean x) is right and robust to Linf **0.9**. A net that fits 10% flipped labels must carve "
                "pockets around them and is flipped at tiny eps (his ResNet-18: **0.01**); stopped early, or "
                "trained on clean labels, it is not. Adversarial examples from fitting noise: bugs.")
    a, b, c, d = st.columns(4)
    s = configs.SQUARES_DEFAULTS
    noise = float(a.slider("Label noise", 0.0, 0.4, s["noise"], 0.05, key=f"{KEY}.squares.noise", bind=links.BIND))
    size = int(b.number_input("Side (pixels)", 4, 32, s["size"], key=f"{KEY}.squares.size", bind=links.BIND))
    n = int(c.number_input("Training images", 50, 20000, s["n_train"], 50, key=f"{KEY}.squares.n_train",
                           bind=links.BIND))
    epochs = int(d.number_input("Epochs", 2, 100, s["epochs"], key=f"{KEY}.squares.epochs", bind=links.BIND))
    # the warm-up computes the default (ui.warmup): its first click answers from the cache
    config = configs.squares({f"{KEY}.squares.noise": noise, f"{KEY}.squares.size": size,
                              f"{KEY}.squares.n_train": n, f"{KEY}.squares.epochs": epochs})
    got = saved_or_live("squares", "python -m explorer squares", config, f"{n} squares of {size} x {size}")
    if got is not None:
        draw_squares(*got)


def draw_squares(result: dict, where: str) -> None:
    st.altair_chart(CD.squares_chart(result), width="stretch")
    widgets.table(CD.squares_frame(result))
    st.caption(f"{where}. {result['n_train']} training squares of {result['size']} x {result['size']} "
               f"({result['flipped']} labels flipped), {result['n_test']} clean test squares; eps in the "
               f"commenter's units. Nakkiran: robust linear classifier to 0.9, the noisy-label fit flipped at 0.01. "
               f"{squares.summary(result)}")


# --- 4. non-transferable adversarial examples --------------------------------------------------------

def nontransferable_tab(pair: models.ModelPair) -> None:
    st.markdown("Nakkiran: a targeted attack on one model that keeps an ensemble of others on the true label "
                "fools the model but barely transfers (his CIFAR-10: PGD **82.5%**, his **1.7%**), and a model "
                "trained on its D_det learns little of the target (his **2.8%** vs PGD's 33.2% on the true labels).")
    source = _source(pair)
    params, n = _sizes("nontransferable")
    config = configs.nontransferable(params, source) if source else None
    got = saved_or_live("nontransferable", "python -m explorer nontransferable", config, f"{source}, {n} images",
                        disabled=source is None)
    if got is not None:
        draw_nontransferable(*got)
    _saved_on_cifar10("nontransferable", draw_nontransferable)


def draw_nontransferable(result: dict, where: str) -> None:
    widgets.table(CD.nontransferable_frame(result))
    st.caption(f"{where}. Test accuracy: source {100 * result['source_accuracy']:.1f}%, "
               + ", ".join(f"{m} {100 * a:.1f}%" for m, a in zip(result["heldout"], result["heldout_accuracy"]))
               + f"; L2 eps {result['eps']:g}, {result['steps']} steps of {result['step_size']:g}. Transfer counts the "
               "successful examples a held-out model also puts in the target class.")


# --- 5. learning from mislabeled data --------------------------------------------------------------

def mislabeled_tab() -> None:
    st.markdown("Wallace: train a model briefly, keep only the training images it gets **wrong**, labelled with its "
                "wrong predictions, and train a fresh model on them alone. Every label it sees is wrong; on the real "
                "test set it still scores **49.7%** (CIFAR-10).")
    params, n = _sizes("mislabeled")
    config = configs.mislabeled(params)
    got = saved_or_live("mislabeled", "python -m explorer mislabeled", config, f"{n} images")
    if got is not None:
        draw_mislabeled(*got)
    _saved_on_cifar10("mislabeled", draw_mislabeled)


def draw_mislabeled(result: dict, where: str) -> None:
    widgets.table(CD.mislabeled_frame(result, mislabeled.COMMENTER))
    st.altair_chart(CD.label_counts_chart(result["label_counts"], result["class_names"]), width="stretch")
    labels = ("every kept label is wrong, as the recipe requires" if result["all_wrong"] else
              "some kept labels are right, against the recipe (a defect: report it)")
    st.caption(f"{where}. The fresh model agrees with the weak one on {100 * result['agrees_with_weak']:.1f}% of "
               f"the test images; {labels}.")


# --- the page ----------------------------------------------------------------------------------------

st.title("The discussion's experiments")
st.markdown("Five comments from the Distill discussion of Ilyas et al. (2019), each rerun on Fashion-MNIST with the "
            "commenter's CIFAR-10 number beside ours (compare the pattern, not the values), and on CIFAR-10 itself "
            "where a saved run exists (below the Fashion-MNIST result, with its sizes).")
pair = models.current_pair()
if _source(pair) is None:
    st.warning("The live runs of tabs 1, 2 and 4 attack the sidebar's standard model: pick a Fashion-MNIST one.")
tabs = st.tabs(["Transfer vs learnability", "Robust feature leakage (Goh)", "Adversarial squares (Nakkiran)",
                "Non-transferable examples (Nakkiran)", "Mislabeled data (Wallace)"], key=f"{KEY}.tab",
               bind=links.BIND)
with tabs[0]:
    transfer_tab(pair)
with tabs[1]:
    leakage_tab(pair)
with tabs[2]:
    squares_tab()
with tabs[3]:
    nontransferable_tab(pair)
with tabs[4]:
    mislabeled_tab()
links.share_note(uploads=False)
