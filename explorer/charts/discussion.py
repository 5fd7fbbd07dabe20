"""Charts and tables for the Distill discussion's experiments (presentation only; no streamlit).

Every function takes a result as plain JSON values (``_discussion.jsonable(result)``, or the
``result`` of a file that the CLI wrote), so saved and live runs draw the same way. Numbers
are shown in percent, ours beside the commenter's.
"""

from __future__ import annotations

from typing import Optional, Sequence

import altair as alt
import numpy as np
import pandas as pd


def _pct(v) -> Optional[float]:
    return None if v is None else round(100 * float(v), 1)


# --- 1. transferability vs learnability ---------------------------------------------------------

def transfer_learnability_frame(result: dict) -> pd.DataFrame:
    """One row per (architecture, attack): transfer %, accuracy from D_det %, clean accuracy %."""
    return pd.DataFrame([{"architecture": p["arch"], "attack": p["attack"], "transfer %": _pct(p["transfer"]),
                          "accuracy trained on D_det %": _pct(p["learned"]),
                          "clean accuracy %": _pct(p["clean_accuracy"])} for p in result["points"]])


def transfer_scatter(result: dict) -> alt.Chart:
    """Transfer rate (x) against accuracy after training on D_det (y), one point per architecture
    and attack, with the least-squares line through the PGD points (paper Figure 3)."""
    df = transfer_learnability_frame(result)
    points = alt.Chart(df).mark_point(size=120, filled=True).encode(
        x=alt.X("transfer %:Q", title="transfer rate of the source's adversarial examples (%)"),
        y=alt.Y("accuracy trained on D_det %:Q", title="test accuracy when trained on D_det (%)"),
        color=alt.Color("attack:N", title="D_det built with"),
        shape=alt.Shape("architecture:N"),
        tooltip=list(df.columns))
    slope, intercept = result.get("slope"), result.get("intercept")
    pgd = df[df["attack"] == "PGD"]
    if slope is None or intercept is None or pgd.empty:
        return points.properties(height=360)
    xs = np.linspace(0, max(float(df["transfer %"].max() or 0), 1.0), 20)
    # the fit is in fractions; in percent the slope is unchanged and the intercept scales by 100
    line = alt.Chart(pd.DataFrame({"transfer %": xs, "accuracy trained on D_det %": 100 * intercept + slope * xs})
                     ).mark_line(strokeDash=[4, 3], color="gray").encode(x="transfer %:Q",
                                                                         y="accuracy trained on D_det %:Q")
    return (line + points).properties(height=360)


# --- 2. robust feature leakage ----------------------------------------------------------------

def leakage_frame(result: dict) -> pd.DataFrame:
    """Heads on the robust / standard linear features: test accuracy per training set, the no-leakage
    control and Goh's number."""
    return pd.DataFrame([{"features": r["features"], "trained on": r["trained_on"], "test accuracy % (ours)":
                          _pct(r["accuracy"]), "control: same labels, unperturbed images %": _pct(r["control"]),
                          "Goh % (CIFAR-10)": r["commenter"]} for r in result["rows"]]).replace({np.nan: None})


def linear_models_frame(result: dict) -> pd.DataFrame:
    """The two linear models: clean and robust accuracy, Goh's usefulness numbers of their weights."""
    eps = result.get("robust_eps")
    return pd.DataFrame([{"linear model": k, "trained at L2 eps": v["train_eps"], "clean %": _pct(v["clean"]),
                          f"robust % (L2 {eps:g})": _pct(v["robust"]),
                          "usefulness (mean over classes)": round(v["usefulness"], 3),
                          f"robust usefulness (L2 {eps:g})": round(v["robust_usefulness"], 3)}
                         for k, v in result["linear"].items()])


# --- 3. adversarial squares -------------------------------------------------------------------

def squares_frame(result: dict) -> pd.DataFrame:
    """One row per model: fit of the noisy labels and test accuracy at each eps."""
    rows = []
    for r in result["rows"]:
        row = {"model": r["model"], "fits noisy train labels %": _pct(r["fit_noisy"]),
               "fits the flipped ones %": _pct(r["fit_flipped"])}
        row.update({f"eps {e:g}": _pct(a) for e, a in zip(result["eps"], r["robust"])})
        rows.append(row)
    return pd.DataFrame(rows).replace({np.nan: None})


def squares_chart(result: dict) -> alt.Chart:
    """Test accuracy against Linf eps (commenter's units), one line per model."""
    df = pd.DataFrame([{"model": r["model"], "eps": e, "accuracy %": _pct(a)}
                       for r in result["rows"] for e, a in zip(result["eps"], r["robust"])])
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("eps:O", title="Linf eps (pixels in [-1.1, 1.1])"),
        y=alt.Y("accuracy %:Q", scale=alt.Scale(domain=[0, 100]), title="test accuracy under PGD (%)"),
        color=alt.Color("model:N", legend=alt.Legend(orient="bottom", columns=2)),
        tooltip=["model", "eps", "accuracy %"]).properties(height=320)


# --- 4. non-transferable adversarial examples ------------------------------------------------

def nontransferable_frame(result: dict) -> pd.DataFrame:
    """PGD and the non-transferable attack: ours beside Nakkiran's (CIFAR-10, L2)."""
    return pd.DataFrame([{"attack": r["method"], "success on the source %": _pct(r["success"]),
                          "Nakkiran success %": r["commenter_success"],
                          "transfer to held-out models %": _pct(r["transfer"]),
                          "Nakkiran transfer %": r["commenter_transfer"],
                          "ensemble keeps the true label %": _pct(r["ensemble_kept"]),
                          "trained on its D_det: test accuracy %": _pct(r["learned"]),
                          "Nakkiran trained on D_det %": r["commenter_learned"],
                          "predicts (y + 1) mod 10 %": _pct(r["learned_shifted"])} for r in result["rows"]])


# --- 5. learning from mislabeled data --------------------------------------------------------

def mislabeled_frame(result: dict, commenter: dict) -> pd.DataFrame:
    """Weak model, size of its wrong-prediction set, fresh model: ours beside Wallace's."""
    return pd.DataFrame([
        {"quantity": "weak model, test accuracy %", "ours": _pct(result["weak_accuracy"]),
         "Wallace (CIFAR-10)": commenter["weak_accuracy"]},
        {"quantity": "training images it gets wrong (the new set)",
         "ours": f"{result['kept']} of {result['n_train']}", "Wallace (CIFAR-10)":
         f"{commenter['kept']} of {commenter['of']}"},
        {"quantity": "fresh model trained only on them, test accuracy %", "ours": _pct(result["learned"]),
         "Wallace (CIFAR-10)": commenter["learned"]},
    ]).astype({"ours": str, "Wallace (CIFAR-10)": str})


def label_counts_chart(counts: Sequence[int], class_names: Sequence[str]) -> alt.Chart:
    """Histogram of the mislabeled set's (wrong) labels."""
    df = pd.DataFrame({"label": list(class_names)[:len(counts)], "images": list(counts)})
    return alt.Chart(df).mark_bar().encode(x=alt.X("label:N", sort=None), y="images:Q").properties(height=220)
