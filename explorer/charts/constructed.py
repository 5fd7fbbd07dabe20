"""Figures and tables for the constructed datasets (presentation only; no streamlit).

``pairs_figure``: source images x, their start points and their constructed versions with
old and new labels; ``samples_figure``: the same images in every dataset of a table run;
``table_frame``: our Table 1 beside the paper's CIFAR-10 column.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
from PIL import Image

from explorer import charts

SMALL_TILE = 112  # 28 px images x 4


def _name(class_names: Sequence[str], label: int) -> str:
    return class_names[int(label)] if 0 <= int(label) < len(class_names) else str(label)


def pairs_figure(pairs, title: str = "", metric_label: str = "") -> Image.Image:
    """Rows: x (old label), the start image (when there is one), the constructed image (new
    label, and ``metric_label`` with the per-image statistic)."""
    names = pairs.class_names
    rows = [("x: the source image, its label", [(img, _name(names, y)) for img, y in
                                                 zip(pairs.originals, pairs.old_labels)])]
    if pairs.starts is not None:
        rows.append(("start: another training image", [(img, "") for img in pairs.starts]))
    cells = []
    for img, y_old, y_new, v in zip(pairs.constructed, pairs.old_labels, pairs.new_labels, pairs.metric):
        caption = _name(names, y_new) + (" (same)" if y_new == y_old else " (new)")
        if metric_label:
            caption += f"\n{metric_label} {v:.3f}"
        cells.append((img, caption))
    rows.append(("constructed: the new image, its label", cells))
    return charts.figure(rows, title=title, min_tile=SMALL_TILE)


def samples_figure(result) -> Image.Image:
    """One row per dataset of a ``constructed_table`` Result: the same source images in each."""
    names = result.class_names
    rows = [("x (real)", [(img, _name(names, y)) for img, y in zip(result.originals, result.old_labels)])]
    for row, images, labels in zip(result.rows, result.constructed, result.new_labels):
        if row.kind == "original":
            continue
        rows.append((f"{row.name}", [(img, _name(names, y)) for img, y in zip(images, labels)]))
    return charts.figure(rows, min_tile=SMALL_TILE, caption_lines=1)


#: The column of the share of real test images a model puts in (y + 1) mod C (D_det's rule).
INTO_NEXT = "into (y+1) % (D_det's rule)"


def table_frame(rows: Sequence[dict], eval_text: str = "", half_text: str = "") -> pd.DataFrame:
    """Our rows (``constructed_table.Result.table()`` or a saved table.json's ``rows``) beside
    the paper's CIFAR-10 numbers, in percent. The column at half the eps (the paper's ratio of
    test to training eps) shows where the rows have it (tables saved before it lack it), and so
    does the share of test images put in (y + 1) mod C."""
    robust = f"robust % ({eval_text})" if eval_text else "robust %"
    half = f"robust % ({half_text})" if half_text else "robust % (half eps)"
    with_half = any(r.get("robust % (half eps)") is not None for r in rows)
    with_next = any(r.get("into (y+1) %") is not None for r in rows)
    df = pd.DataFrame([{
        "trained on": r["dataset"], "train images": r["train images"], "clean %": r["clean %"],
        robust: r["robust %"], **({half: r.get("robust % (half eps)")} if with_half else {}),
        **({INTO_NEXT: r.get("into (y+1) %")} if with_next else {}),
        "paper clean % (CIFAR-10)": r["paper clean %"],
        "paper robust % (CIFAR-10, L2 0.25)": r["paper robust %"], "construction": r.get("construction", ""),
    } for r in rows])
    return charts.shown(df)


def paper_frame(paper: dict, names: dict) -> pd.DataFrame:
    """The paper's column alone (before any table of ours exists)."""
    return pd.DataFrame([{"trained on": names[k], "paper clean % (CIFAR-10)": v["clean"],
                          "paper robust % (CIFAR-10, L2 0.25)": v["robust"]} for k, v in paper.items()])
