"""Chart and table of the filtered-training experiment (Hendrycks & Gilmer; presentation only).

Both take the result as plain JSON values (the ``result`` of the file ``python -m explorer
filtered-training`` writes, or ``_discussion.jsonable`` of a live run), so saved and live runs
draw the same way. Accuracies are shown in percent.
"""

from __future__ import annotations

from typing import Optional

import altair as alt
import pandas as pd

from explorer.charts import for_screens

FILTERS = ("low-pass", "high-pass")
REAL, FILTERED = "real (unfiltered)", "filtered the same way"
COLOURS = ("#1f77b4", "#d62728")  # low-pass, high-pass


def _pct(v) -> Optional[float]:
    return None if v is None else round(100 * float(v), 1)


def _band(kind: str, cutoff: float) -> str:
    return f"ρ ≤ {cutoff:g}" if kind == "low" else f"ρ > {cutoff:g} (and the mean)"


def accuracy_frame(result: dict) -> pd.DataFrame:
    """Long form: one row per (setting, test set): filter, cutoff, test set, accuracy %."""
    rows = []
    for i, kind in enumerate(result["kinds"]):
        for test, key in ((REAL, "real_accuracy"), (FILTERED, "filtered_accuracy")):
            rows.append({"filter": f"{kind}-pass", "cutoff": float(result["cutoffs"][i]), "test set": test,
                         "accuracy %": _pct(result[key][i]), "energy kept %": _pct(result["energy_kept"][i])})
    return pd.DataFrame(rows)


@for_screens
def accuracy_chart(result: dict) -> alt.LayerChart:
    """Accuracy against the cutoff of the models trained on filtered images: one colour per
    filter, solid on the real test set (layer 0), dashed on the filtered one (layer 1); grey
    rules at the model trained on unfiltered images and at chance (layer 2)."""
    df = accuracy_frame(result)
    encoding = dict(
        x=alt.X("cutoff:Q", title="cutoff ρ of the training images' filter", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("accuracy %:Q", title="test accuracy (%)", scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("filter:N", sort=list(FILTERS), title="trained on",
                        scale=alt.Scale(domain=list(FILTERS), range=list(COLOURS))),
        tooltip=["filter", "cutoff", "test set", "accuracy %", "energy kept %"])
    real = alt.Chart(df[df["test set"] == REAL]).mark_line(point=True).encode(**encoding)
    same = alt.Chart(df[df["test set"] == FILTERED]).mark_line(point=True, strokeDash=[5, 3], opacity=0.6).encode(
        **encoding)
    levels = pd.DataFrame([{"line": "trained on unfiltered images", "accuracy %": _pct(result["baseline_accuracy"])},
                           {"line": "chance", "accuracy %": _pct(result["chance"])}])
    rules = alt.Chart(levels).mark_rule(color="gray", strokeDash=[2, 2]).encode(
        y="accuracy %:Q", tooltip=["line", "accuracy %"])
    labels = alt.Chart(levels).mark_text(align="left", dx=4, dy=-6, color="gray").encode(
        x=alt.value(0), y="accuracy %:Q", text="line:N")
    title = alt.TitleParams("Models trained on filtered images", subtitle=f"solid: tested on the {REAL} test set; "
                            f"dashed: on the test set {FILTERED}", anchor="start")
    return alt.layer(real, same, rules, labels).properties(height=300, title=title)


def table_frame(result: dict, commenter: dict) -> pd.DataFrame:
    """One row per trained model (the baseline first): the filter and its band, what it keeps,
    the model's accuracy on the real and on the filtered test set, the baseline's on that
    filtered set, and the commenter's ImageNet number for the same filter."""
    theirs_column = f"Hendrycks & Gilmer, {commenter['dataset']} top-1 %"
    theirs = {"low": f"> {commenter['low_pass_top1_above']:g}", "high": f"> {commenter['high_pass_top1_above']:g}"}
    rows = [{"trained on": "unfiltered images", "frequencies kept %": 100.0, "energy kept %": 100.0,
             "real test set %": _pct(result["baseline_accuracy"]), theirs_column: "",
             "filtered test set %": None, "unfiltered-trained model, filtered test set %": None}]
    for i, kind in enumerate(result["kinds"]):
        rows.append({"trained on": f"{kind}-pass, {_band(kind, float(result['cutoffs'][i]))}",
                     "frequencies kept %": _pct(result["frequencies_kept"][i]),
                     "energy kept %": _pct(result["energy_kept"][i]),
                     "real test set %": _pct(result["real_accuracy"][i]), theirs_column: theirs[kind],
                     "filtered test set %": _pct(result["filtered_accuracy"][i]),
                     "unfiltered-trained model, filtered test set %": _pct(result["baseline_on_filtered"][i])})
    return pd.DataFrame(rows)
