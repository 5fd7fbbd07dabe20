"""The layer-robustness chart: R per layer, layers in network order, one colour per model,
with the interval of each estimate (as in the figure of the authors' reply to Nakano).

Presentation only: no science, no streamlit.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import altair as alt
import pandas as pd

from explorer.charts import for_screens
from explorer.charts.palette import kind_color

COLUMNS = ["model", "kind", "layer", "index", "R", "ci_low", "ci_high"]


def layer_robustness_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """The chart's data: one row per (model, layer) with R and its interval, models in the
    order given and layers in network order (``index``)."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    df = df[[c for c in COLUMNS if c in df.columns]].copy()
    order = {m: i for i, m in enumerate(dict.fromkeys(df["model"]))}
    return df.sort_values(["model", "index"], key=lambda s: s.map(order) if s.name == "model" else s,
                          kind="stable").reset_index(drop=True)


def layer_order(df: pd.DataFrame) -> list[str]:
    """Layer names in network order, over all models (each model's order merged by position)."""
    return list(dict.fromkeys(df.sort_values("index", kind="stable")["layer"]))


def shares_layers(df: pd.DataFrame) -> bool:
    """Whether every model has the same layers (then they share one axis)."""
    sets = {m: tuple(g.sort_values("index")["layer"]) for m, g in df.groupby("model", sort=False)}
    return len(set(sets.values())) <= 1


@for_screens
def layer_robustness_chart(rows: Iterable[dict], ci_level: float = 0.95, title: str = "",
                           models: Sequence[str] | None = None) -> alt.TopLevelMixin:
    """R per layer for each model: points with interval bars, joined by lines.

    Models with the same layers share one x axis (dodged); models with different layers
    (a ResNet and a VGG) get one panel each. Lower R is more robust.
    """
    df = layer_robustness_frame(rows)
    names = list(models) if models is not None else list(dict.fromkeys(df["model"]))
    ci = f"{ci_level:.0%} interval"
    shared = shares_layers(df)
    x = alt.X("layer:N", sort=layer_order(df), title="layer (network order)", axis=alt.Axis(labelAngle=-30))
    kinds = dict(zip(df["model"], df["kind"])) if "kind" in df.columns else {}
    color = kind_color("model:N", names, kinds, legend=alt.Legend(orient="bottom", title=None))
    tooltip = ["model", "kind", "layer", alt.Tooltip("R:Q", format=".4f"),
               alt.Tooltip("ci_low:Q", format=".4f", title=f"{ci} low"),
               alt.Tooltip("ci_high:Q", format=".4f", title=f"{ci} high")]
    base = alt.Chart().encode(x=x, color=color)
    offset = {"xOffset": alt.XOffset("model:N", sort=names)} if shared and len(names) > 1 else {}
    line = base.mark_line(opacity=0.5).encode(y=alt.Y("R:Q", title="R (lower is more robust)"), **offset)
    bars = base.mark_rule(strokeWidth=2).encode(y="ci_low:Q", y2="ci_high:Q", tooltip=tooltip, **offset)
    points = base.mark_point(filled=True, size=60).encode(y="R:Q", tooltip=tooltip, **offset)
    layered = alt.layer(line, bars, points, data=df)
    titled = {"title": title} if title else {}
    if shared:
        return layered.properties(height=300, **titled)
    return (layered.properties(width=260, height=260)
            .facet(column=alt.Column("model:N", sort=names, title=None), **titled)
            .resolve_scale(x="independent"))
