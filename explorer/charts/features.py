"""Charts and figures for the feature views (features page): perturbation spectra, class
synthesis, inversion, frequency, linear features.

Presentation only: no science, no streamlit. Builds on the package's common pieces (image
tiles, the amplified perturbation, figures).
"""

from __future__ import annotations

from typing import Optional, Sequence

import altair as alt
import numpy as np
import pandas as pd

from explorer import charts
from explorer.charts.palette import kind_color

START_NAMES = {"random_image": "another image", "image": "start image", "noise": "noise", "grey": "grey"}


# --- images ------------------------------------------------------------------------------

def spectrum_image(power: np.ndarray) -> np.ndarray:
    """A (shifted) power spectrum for display: log(1 + power / max), scaled to [0, 1], [H, W]."""
    p = np.asarray(power, dtype=np.float64)
    peak = float(p.max()) if p.size else 0.0
    if peak <= 0:
        return np.zeros_like(p, dtype=np.float32)
    img = np.log1p(1e3 * p / peak)
    return (img / img.max()).astype(np.float32)


def signed_image(direction: np.ndarray) -> tuple[np.ndarray, float]:
    """A signed image (a direction, a perturbation) around mid-grey: (image, scale)."""
    return charts.amplify(direction)


def perturbation_figure(result) -> "charts.Image.Image":
    """Per model: original, adversarial, amplified perturbation, its power spectrum
    (``perturbation_spectrum.Result``)."""
    rows = []
    names = result.class_names
    for s in result.spectra:
        amp, scale = charts.amplify(s.perturbation, s.amplification)
        size = s.perturbation_l2 if result.norm == "l2" else s.perturbation_linf
        rows.append((f"{s.model} ({s.kind}): {'fooled' if s.success else 'holds'}", [
            (result.original, f"original\n{names[s.pred_before]}"),
            (s.adversarial, f"adversarial\n{names[s.pred_after]} {s.prob_after:.0%}"),
            (amp, f"perturbation x{scale:.1f}\n{result.norm} {size:.3g}"),
            (spectrum_image(s.power), "|DFT|, log\nmean at the centre"),
        ]))
    return charts.figure(rows, title=f"PGD {result.norm} eps {result.eps:g}, {result.steps} steps", min_tile=140)


def synthesis_figure(result) -> "charts.Image.Image":
    """One row per model, one column per target class (``class_synthesis.Result``)."""
    rows = []
    for r in result.rows:
        cells = [(img, f"{result.class_names[t]}\np={p:.2f}{'' if ok else ' (missed)'}")
                 for img, t, p, ok in zip(r.images, result.targets, r.target_prob, r.reached)]
        rows.append((f"{r.model} ({r.kind}): {r.n_reached} of {len(result.targets)} reached", cells))
    return charts.figure(rows, title=f"Targeted L2 PGD from {result.start}, eps {result.eps:g}, {result.steps} steps",
                         min_tile=112)


def inversion_figure(result) -> "charts.Image.Image":
    """x, the start z0 and each model's inversion, with every model's prediction on each
    (``inversion.Result``)."""
    names = result.class_names

    def preds(probs: np.ndarray) -> str:
        return "\n".join(charts.top_class_text(names, p) for p in probs)

    cells = [(result.image, "x (target)\n" + preds(result.probs_image)),
             (result.start_image, f"z0 ({START_NAMES.get(result.start, result.start)})\n" + preds(result.probs_start))]
    for inv in result.inversions:
        tag = "D_R" if inv.robust else "D_NR"
        cells.append((inv.inverted, f"{tag}: via {inv.model}\n" + preds(inv.probs)))
    order = ", then ".join(result.models)
    return charts.figure([(f"top class by {order}", cells)], title=f"Inverting the {result.layer} representation",
                         min_tile=140, caption_lines=1 + len(result.models))


def visualization_figure(result) -> "charts.Image.Image":
    """One row per model, one column per unit (``feature_visualization.Result``)."""
    rows = []
    for r in result.rows:
        cells = [(img, f"unit {u}: {a0:.2f}->{a1:.2f}\n{charts.top_class_text(result.class_names, p)}")
                 for img, u, a0, a1, p in zip(r.images, r.units, r.activation_start, r.activation_final, r.probs)]
        rows.append((f"{r.model} ({r.kind})", cells))
    return charts.figure(rows, title=f"Maximizing {result.layer} units ({result.steps} steps of {result.step_size:g})",
                         min_tile=112)


# --- altair -------------------------------------------------------------------------------

@charts.for_screens
def energy_chart(rows: Sequence[dict], cutoff: Optional[float] = None) -> alt.LayerChart | alt.Chart:
    """Cumulative energy against the normalized frequency radius, one line per source
    (``perturbation_spectrum.Result.rows()``), with a rule at the cutoff."""
    df = pd.DataFrame(list(rows))
    lines = alt.Chart(df).mark_line().encode(
        x=alt.X("rho:Q", title="frequency radius ρ (0 = mean, 1 = corner)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("fraction:Q", title="energy at ≤ ρ", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        color=kind_color("source:N", df["source"], legend=alt.Legend(orient="right", title=None)),
        strokeDash=alt.condition(alt.datum.source == "white noise", alt.value([4, 3]), alt.value([1, 0])),
        tooltip=["source", alt.Tooltip("rho:Q", format=".2f"), alt.Tooltip("fraction:Q", format=".1%")],
    ).properties(height=240)
    if cutoff is None:
        return lines
    rule = alt.Chart(pd.DataFrame({"rho": [float(cutoff)]})).mark_rule(color="grey").encode(x="rho:Q")
    return alt.layer(lines, rule)


@charts.for_screens
def distance_chart(result) -> alt.Chart:
    """Relative representation distance per step, one line per model, log scale
    (``inversion.Result``)."""
    frames = [pd.DataFrame({"model": f"{inv.model} ({inv.kind})", "step": np.arange(len(inv.loss_history)),
                            "distance": np.maximum(inv.loss_history, 1e-6)}) for inv in result.inversions]
    df = pd.concat(frames, ignore_index=True)
    return alt.Chart(df).mark_line().encode(
        x=alt.X("step:Q"), y=alt.Y("distance:Q", scale=alt.Scale(type="log"), title="‖g(z) − g(x)‖ / ‖g(x)‖"),
        color=kind_color("model:N", _in_order(df["model"]), legend=alt.Legend(orient="right", title=None)),
        tooltip=["model", "step", alt.Tooltip("distance:Q", format=".4f")],
    ).properties(height=220)


@charts.for_screens
def cutoff_accuracy_chart(rows: Sequence[dict]) -> alt.Chart:
    """Accuracy against the cutoff, one line per model, one panel per filter
    (``frequency.Result.rows()``)."""
    df = pd.DataFrame(list(rows))
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("cutoff:Q", title="cutoff ρ", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=kind_color("model:N", _in_order(df["model"]), dict(zip(df["model"], df["kind"])) if "kind" in df
                         else None, legend=alt.Legend(orient="bottom", title=None)),
        column=alt.Column("filter:N", title=None, sort=["low-pass", "high-pass"]),
        tooltip=["model", "filter", alt.Tooltip("cutoff:Q", format=".2f"), alt.Tooltip("accuracy:Q", format=".1%")],
    ).properties(width=260, height=200)


@charts.for_screens
def heatmap_chart(rows: Sequence[dict], size: int = 260) -> alt.Chart:
    """Error rate per frequency (u, v), one panel per model, one colour scale [0, 1]
    (``fourier_heatmap.Result.rows()``)."""
    df = pd.DataFrame(list(rows))
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("v:O", title="horizontal frequency v", axis=alt.Axis(labelAngle=0, values=_ticks(df["v"]))),
        y=alt.Y("u:O", title="vertical frequency u", sort="descending", axis=alt.Axis(values=_ticks(df["u"]))),
        color=alt.Color("error:Q", scale=alt.Scale(domain=[0, 1], scheme="viridis"), title="error"),
        column=alt.Column("model:N", title=None, sort=_in_order(df["model"])),
        tooltip=["model", "u", "v", alt.Tooltip("error:Q", format=".1%")],
    ).properties(width=size, height=size)


def _in_order(values) -> list[str]:
    """Distinct values in order of appearance (the config's model order, not alphabetical)."""
    return list(dict.fromkeys(str(v) for v in values))


def _ticks(values) -> list[int]:
    v = sorted(set(int(x) for x in values))
    step = max(1, len(v) // 7)
    return [x for x in v if x % step == 0]


#: Name of the click selection on the basis directions of ``features_scatter`` (field ``index``).
PICK = "pick"


@charts.for_screens
def features_scatter(rows: Sequence[dict], selected: Optional[int] = None,
                     extra: Sequence[dict] = (), eps_text: str = "") -> alt.LayerChart:
    """Goh's plot: usefulness against non-robustness for each basis direction, the Pareto
    frontier as a line, constructed features as diamonds and the picked one ringed
    (``linear_features.Result.rows()``; ``extra`` rows have feature, usefulness, non_robustness).
    Clicking a direction selects its ``index`` in the point selection ``PICK``."""
    df = pd.DataFrame(list(rows))
    df["group"] = np.where(df["pareto"], "Pareto frontier", np.where(df["non_robust"], "non-robust", "robust"))
    y = alt.Y("non_robustness:Q", scale=alt.Scale(type="log"),
              title=f"non-robustness ε‖a‖*/‖a‖Σ {eps_text}".strip())
    x = alt.X("usefulness:Q", title="usefulness E[y f(x)]")
    tooltip = ["feature", alt.Tooltip("usefulness:Q", format=".3f"), alt.Tooltip("non_robustness:Q", format=".3f"),
               alt.Tooltip("robust:Q", format=".3f", title="robust usefulness")]
    pick = alt.selection_point(name=PICK, fields=["index"], on="click")
    points = alt.Chart(df).mark_circle(size=45, opacity=0.8).add_params(pick).encode(
        x=x, y=y, color=alt.Color("group:N", scale=alt.Scale(domain=["Pareto frontier", "robust", "non-robust"],
                                                              range=["#e45756", "#4c78a8", "#bab0ac"]),
                                  legend=alt.Legend(orient="bottom", title=None)),
        tooltip=tooltip)
    front = alt.Chart(df[df["pareto"]].sort_values("usefulness")).mark_line(color="#e45756").encode(x=x, y=y)
    # robust usefulness = 0 where non-robustness equals usefulness
    lo = max(float(df["non_robustness"].min()), 1e-4)
    diag = pd.DataFrame({"usefulness": [lo, 1.0], "non_robustness": [lo, 1.0]})
    zero = alt.Chart(diag).mark_line(color="grey", strokeDash=[4, 3]).encode(x=x, y=y)
    layers = [zero, points, front]
    if len(extra):
        ex = pd.DataFrame(list(extra))
        layers.append(alt.Chart(ex).mark_point(shape="diamond", size=160, filled=True, color="#54a24b").encode(
            x=x, y=y, tooltip=["feature", alt.Tooltip("usefulness:Q", format=".3f"),
                               alt.Tooltip("non_robustness:Q", format=".3f")]))
        layers.append(alt.Chart(ex).mark_text(dx=8, align="left", color="#54a24b").encode(x=x, y=y, text="feature"))
    if selected is not None:
        sel = df[df["index"] == selected]
        layers.append(alt.Chart(sel).mark_point(size=300, color="black", strokeWidth=2).encode(x=x, y=y))
    return alt.layer(*layers).properties(height=360)


@charts.for_screens
def containment_chart(curve: Sequence[dict], norm: str, alpha: Optional[float] = None) -> alt.LayerChart:
    """Usefulness and robust usefulness of (1 − α) a_nonrobust + α a_robust against α."""
    df = pd.DataFrame(list(curve))
    long = pd.concat([pd.DataFrame({"alpha": df["alpha"], "quantity": "usefulness", "value": df["usefulness"]}),
                      pd.DataFrame({"alpha": df["alpha"], "quantity": f"robust usefulness ({norm})",
                                    "value": df[f"robust_{norm}"]})], ignore_index=True)
    lines = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("alpha:Q", title="α (share of the robust direction)"), y=alt.Y("value:Q", title=None),
        color=alt.Color("quantity:N", legend=alt.Legend(orient="right", title=None)),
        tooltip=["quantity", "alpha", alt.Tooltip("value:Q", format=".3f")]).properties(height=220)
    zero = alt.Chart(pd.DataFrame({"value": [0.0]})).mark_rule(color="grey", strokeDash=[4, 3]).encode(y="value:Q")
    layers = [zero, lines]
    if alpha is not None:
        layers.append(alt.Chart(pd.DataFrame({"alpha": [float(alpha)]})).mark_rule(color="grey").encode(x="alpha:Q"))
    return alt.layer(*layers)
