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

from explorer.charts import for_screens, shown


def _pct(v) -> Optional[float]:
    return None if v is None else round(100 * float(v), 1)


# --- 1. transferability vs learnability ---------------------------------------------------------

def _points(result: dict) -> pd.DataFrame:
    """One row per (architecture, attack), in numbers (None where a run lacks one): transfer %,
    accuracy from D_det % on the true labels and into (y + 1) mod C (the relabelling rule), clean
    accuracy %."""
    return pd.DataFrame([{"architecture": p["arch"], "attack": p["attack"], "transfer %": _pct(p["transfer"]),
                          "accuracy trained on D_det %": _pct(p["learned"]),
                          "into (y + 1) mod C %": _pct(p.get("learned_shifted")),
                          "clean accuracy %": _pct(p["clean_accuracy"])} for p in result["points"]])


def transfer_learnability_frame(result: dict) -> pd.DataFrame:
    """The points as the page's table shows them: empty cells (runs saved before the shifted labels
    were recorded) read ``MISSING``, never "None"."""
    return shown(_points(result))


def chance_percent(result: dict) -> float:
    """Chance accuracy in percent (1 / C; results saved before it was recorded: 10 classes)."""
    return 100 * float(result.get("chance") or 0.1)


@for_screens
def transfer_scatter(result: dict) -> alt.Chart:
    """Transfer rate (x) against accuracy after training on D_det (y), one point per architecture
    and attack, with the least-squares line through the PGD points (paper Figure 3) and a rule
    at chance."""
    df = _points(result)
    points = alt.Chart(df).mark_point(size=120, filled=True).encode(
        x=alt.X("transfer %:Q", title="transfer rate of the source's adversarial examples (%)"),
        y=alt.Y("accuracy trained on D_det %:Q", title="test accuracy when trained on D_det (%)"),
        color=alt.Color("attack:N", title="D_det built with"),
        shape=alt.Shape("architecture:N"),
        tooltip=list(df.columns))
    chance = pd.DataFrame({"accuracy trained on D_det %": [chance_percent(result)], "label": ["chance"]})
    rule = alt.Chart(chance).mark_rule(color="firebrick", strokeDash=[2, 2]).encode(
        y="accuracy trained on D_det %:Q", tooltip=["label:N", "accuracy trained on D_det %:Q"])
    layers = [rule, points]
    slope, intercept = result.get("slope"), result.get("intercept")
    if slope is not None and intercept is not None and not df[df["attack"] == "PGD"].empty:
        xs = np.linspace(0, max(float(df["transfer %"].max() or 0), 1.0), 20)
        # the fit is in fractions; in percent the slope is unchanged and the intercept scales by 100
        line = alt.Chart(pd.DataFrame({"transfer %": xs, "accuracy trained on D_det %": 100 * intercept + slope * xs})
                         ).mark_line(strokeDash=[4, 3], color="gray").encode(x="transfer %:Q",
                                                                             y="accuracy trained on D_det %:Q")
        layers.insert(0, line)
    return alt.layer(*layers).properties(height=360)


def transfer_fit_sentence(result: dict) -> str:
    """What the PGD points support: Pearson's r, its confidence interval and how many points lie
    above chance, in one sentence."""
    pgd = [p for p in result["points"] if p["attack"] == "PGD"]
    n, chance = len(pgd), chance_percent(result)
    above = sum(100 * p["learned"] > chance for p in pgd)
    where = f"{above} of {n} architectures above chance ({chance:.0f}%) when trained on the PGD D_det"
    r, ci = result.get("correlation"), result.get("correlation_ci") or (None, None)
    if r is None:
        return f"No correlation (the PGD points do not spread); {where}."
    lo, hi = ci
    if lo is None or hi is None:
        return f"Pearson r = {r:.2f} over {n} architectures, too few for an interval; {where}."
    level = round(100 * float(result.get("ci_level") or 0.95))
    verdict = ("the data support a rising trend" if lo > 0 else "the data support a falling trend" if hi < 0
               else "the interval includes 0: the data do not support a trend")
    return (f"Pearson r = {r:.2f}, {level}% CI [{lo:.2f}, {hi:.2f}] (Fisher z, {n} architectures): "
            f"with {n} points {verdict}; {where}{_within_above_chance(pgd, chance)}.")


def _within_above_chance(pgd: list, chance: float) -> str:
    """Pearson r among the PGD points above chance alone, when there are three or more of them and
    some below: whether the trend holds among the learners, or only rests on the gap between groups."""
    above = [p for p in pgd if 100 * p["learned"] > chance]
    if len(above) < 3 or len(above) == len(pgd):
        return ""
    x, y = np.array([p["transfer"] for p in above]), np.array([p["learned"] for p in above])
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return ""
    return f"; among those {len(above)} alone r = {float(np.corrcoef(x, y)[0, 1]):.2f}"


# --- 2. robust feature leakage ----------------------------------------------------------------

def leakage_frame(result: dict) -> pd.DataFrame:
    """Heads on the robust / standard linear features: test accuracy per training set, the no-leakage
    control and Goh's number."""
    return shown(pd.DataFrame([{"features": r["features"], "trained on": r["trained_on"], "test accuracy % (ours)":
                          _pct(r["accuracy"]), "control: same labels, unperturbed images %": _pct(r["control"]),
                          "Goh % (CIFAR-10)": r["commenter"]} for r in result["rows"]]))


def linear_models_frame(result: dict) -> pd.DataFrame:
    """The two linear models: clean and robust accuracy, Goh's usefulness numbers of their weights."""
    eps = result.get("robust_eps")
    return shown(pd.DataFrame([{"linear model": k, "trained at L2 eps": v["train_eps"], "clean %": _pct(v["clean"]),
                          f"robust % (L2 {eps:g})": _pct(v["robust"]),
                          "usefulness (mean over classes)": round(v["usefulness"], 3),
                          f"robust usefulness (L2 {eps:g})": round(v["robust_usefulness"], 3)}
                         for k, v in result["linear"].items()]))


# --- 3. adversarial squares -------------------------------------------------------------------

def squares_frame(result: dict) -> pd.DataFrame:
    """One row per model: fit of the noisy labels and test accuracy at each eps (an eps a model was not
    measured at reads ``MISSING``)."""
    rows = []
    for r in result["rows"]:
        row = {"model": r["model"], "fit noisy labels %": _pct(r["fit_noisy"]),
               "fit flipped %": _pct(r["fit_flipped"])}
        row.update({f"eps {e:g}": _pct(a) for e, a in zip(result["eps"], r["robust"])})
        rows.append(row)
    return shown(pd.DataFrame(rows))


@for_screens
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

#: The non-transferable table's rows: (quantity, our key, Nakkiran's key or None where he gives none).
NONTRANSFERABLE_ROWS = (
    ("success on the source model %", "success", "commenter_success"),
    ("transfer to held-out models %", "transfer", "commenter_transfer"),
    ("ensemble keeps the true label %", "ensemble_kept", None),
    ("trained on its D_det: test accuracy %", "learned", "commenter_learned"),
    ("trained on its D_det: predicts (y + 1) mod 10 %", "learned_shifted", None),
)


def nontransferable_frame(result: dict) -> pd.DataFrame:
    """PGD and the non-transferable attack, ours beside Nakkiran's (CIFAR-10, L2): one row per
    quantity, two columns per attack (five narrow columns, where one row per attack took nine wide
    ones and ran past a 1600-px screen). What he gives no number for reads ``MISSING``."""
    rows = []
    for quantity, ours, theirs in NONTRANSFERABLE_ROWS:
        row = {"quantity": quantity}
        for r in result["rows"]:
            row[f"{r['method']} (ours)"] = _pct(r.get(ours))
            row[f"{r['method']} (Nakkiran)"] = r.get(theirs) if theirs else None
        rows.append(row)
    return shown(pd.DataFrame(rows))


# --- 5. learning from mislabeled data --------------------------------------------------------

def mislabeled_frame(result: dict, commenter: dict) -> pd.DataFrame:
    """Weak model, size of its wrong-prediction set, fresh model: ours beside Wallace's."""
    return shown(pd.DataFrame([
        {"quantity": "weak model, test accuracy %", "ours": _pct(result["weak_accuracy"]),
         "Wallace (CIFAR-10)": commenter["weak_accuracy"]},
        {"quantity": "training images it gets wrong (the new set)",
         "ours": f"{result['kept']} of {result['n_train']}", "Wallace (CIFAR-10)":
         f"{commenter['kept']} of {commenter['of']}"},
        {"quantity": "fresh model trained only on them, test accuracy %", "ours": _pct(result["learned"]),
         "Wallace (CIFAR-10)": commenter["learned"]},
    ])).astype({"ours": str, "Wallace (CIFAR-10)": str})


@for_screens
def label_counts_chart(counts: Sequence[int], class_names: Sequence[str]) -> alt.Chart:
    """Histogram of the mislabeled set's (wrong) labels."""
    df = pd.DataFrame({"label": list(class_names)[:len(counts)], "images": list(counts)})
    return alt.Chart(df).mark_bar().encode(x=alt.X("label:N", sort=None), y="images:Q").properties(height=220)
