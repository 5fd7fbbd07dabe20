"""Charts and image figures for the pages, one package: the common pieces live here (images
and captioned figures from numpy, the top-k, history and accuracy charts, eps as text); one
module per page family holds the rest (``attack_lab``, ``features``, ``filtered_training``,
``constructed``, ``style``, ``discussion``, ``layers``).

Presentation only: no science, no streamlit, and nothing from ``explorer.experiments``
(results come in as duck-typed values). Images come in as float arrays in [0, 1], [C, H, W]
(the Classifier's layout) or [H, W, C], or as uint8.
"""

from __future__ import annotations

import functools
import io
import math
from typing import Iterable, Sequence

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from explorer.charts.palette import kind_color
from explorer.data.facts import display_name
from explorer.threat import eps_text  # noqa: F401  (re-exported: charts.eps_text)

#: Small images (Fashion-MNIST, CIFAR) are upscaled with nearest neighbours to at least this size.
MIN_TILE = 168
PAD = 8
FONT = 15  # px of a figure's captions; headings and the title are one px larger
LINE = 20  # one line of text in a figure
#: A figure is at most this wide: wider rows wrap onto further lines of tiles, so a laptop's column
#: (or a projector's, in the presenter look) shows it at its own size or larger, never shrunk.
FIGURE_WIDTH = 1000
BEFORE, AFTER = "before", "after"
NORM_NAMES = {"l2": "L2", "linf": "Linf", "none": "clean"}


# --- images ------------------------------------------------------------------------

def to_hwc_uint8(image: np.ndarray) -> np.ndarray:
    """[C, H, W] / [H, W, C] / [H, W] floats in [0, 1] (or uint8) -> [H, W, C] uint8, C in {1, 3}."""
    a = np.asarray(image)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 2:
        a = a[:, :, None]
    elif a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = a.transpose(1, 2, 0)
    elif a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] in (1, 3) and a.dtype != np.uint8:
        a = a.transpose(1, 2, 0)  # ambiguous tiny images: float arrays follow the Classifier's CHW
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"expected a grey or RGB image, got shape {np.asarray(image).shape}")
    if a.dtype != np.uint8:
        a = np.rint(np.clip(a.astype(np.float64), 0, 1) * 255).astype(np.uint8)
    return a


def tile_size(height: int, width: int, min_tile: int = MIN_TILE) -> tuple[int, int]:
    """Display size: an integer nearest-neighbour upscale until the longer side is >= ``min_tile``."""
    factor = max(1, math.ceil(min_tile / max(height, width)))
    return height * factor, width * factor


def to_pil(image: np.ndarray, min_tile: int | None = MIN_TILE) -> Image.Image:
    """A PIL image (mode L or RGB), upscaled with nearest neighbours so pixels stay visible."""
    a = to_hwc_uint8(image)
    pil = Image.fromarray(a[:, :, 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB")
    if min_tile:
        h, w = tile_size(a.shape[0], a.shape[1], min_tile)
        if (h, w) != (a.shape[0], a.shape[1]):
            pil = pil.resize((w, h), Image.NEAREST)
    return pil


def amplify(perturbation: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """The perturbation made visible: ``0.5 + scale * delta`` with ``scale = 1 / (2 max|delta|)``.

    Zero maps to mid-grey 0.5 and the largest change to 0 or 1. Returns (image, scale).
    """
    d = np.asarray(perturbation, dtype=np.float32)
    if scale is None:
        peak = float(np.abs(d).max()) if d.size else 0.0
        scale = 1.0 / (2.0 * peak) if peak > 0 else 1.0
    return np.clip(0.5 + scale * d, 0, 1).astype(np.float32), float(scale)


def _font(size: int = FONT) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, width: int, font) -> None:
    """Draw ``text`` cut to fit ``width`` pixels."""
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    draw.text(xy, text, fill=(0, 0, 0), font=font)


def figure_columns(cells: int, tile_width: int, max_width: int = FIGURE_WIDTH) -> int:
    """Tiles per line of a figure row of ``cells`` tiles: all of them if they fit in ``max_width``,
    else as many lines as needed with the tiles spread evenly over them (10 -> 5 + 5, not 8 + 2)."""
    fit = max(1, (max_width - PAD) // (tile_width + PAD))
    if cells <= fit:
        return max(cells, 1)
    return math.ceil(cells / math.ceil(cells / fit))


def figure_size(rows: int, cols: int, tile: tuple[int, int], caption_lines: int = 2,
                title: bool = True, lines: int | None = None) -> tuple[int, int]:
    """(width, height) of ``figure``: a title line, then per row a heading line and its lines of
    tiles (``lines`` in all, default one per row), each with ``caption_lines`` lines of caption,
    everything separated by ``PAD``."""
    th, tw = tile
    lines = rows if lines is None else lines
    width = cols * tw + (cols + 1) * PAD
    height = (LINE + PAD if title else 0) + rows * LINE + lines * (th + caption_lines * LINE + PAD) + PAD
    return width, height


def figure(rows: Sequence[tuple[str, Sequence[tuple[np.ndarray, str]]]], title: str = "",
           min_tile: int = MIN_TILE, caption_lines: int = 2, max_width: int = FIGURE_WIDTH) -> Image.Image:
    """A white RGB figure: one row per (heading, [(image, caption), ...]); captions may
    hold ``\\n`` for a second line. All images must have one size. A row wider than
    ``max_width`` wraps (``figure_columns``), so the figure is shown at its own size, where
    tiles and ``FONT``-px captions read from the back of a room."""
    if not rows or not any(cells for _, cells in rows):
        raise ValueError("a figure needs at least one image")
    shapes = {to_hwc_uint8(img).shape[:2] for _, cells in rows for img, _ in cells}
    if len(shapes) != 1:
        raise ValueError(f"all images of a figure must have one size, got {sorted(shapes)}")
    th, tw = tile_size(*shapes.pop(), min_tile)
    cols = figure_columns(max(len(cells) for _, cells in rows), tw, max_width)
    lines = sum(max(1, math.ceil(len(cells) / cols)) for _, cells in rows)
    size = figure_size(len(rows), cols, (th, tw), caption_lines, bool(title), lines)
    fig = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(fig)
    font, bold = _font(FONT), _font(FONT + 1)
    y = PAD
    if title:
        _text(draw, (PAD, y), title, size[0] - 2 * PAD, bold)
        y += LINE + PAD
    for heading, cells in rows:
        _text(draw, (PAD, y), heading, size[0] - 2 * PAD, bold)
        y += LINE
        for start in range(0, max(len(cells), 1), cols):
            for c, (img, caption) in enumerate(cells[start:start + cols]):
                x = PAD + c * (tw + PAD)
                fig.paste(to_pil(img, min_tile).convert("RGB"), (x, y))
                for k, line in enumerate(caption.split("\n")[:caption_lines]):
                    _text(draw, (x, y + th + 2 + k * LINE), line, tw, font)
            y += th + caption_lines * LINE + PAD
    return fig


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# --- charts ------------------------------------------------------------------------

#: Axis labels are cut at this many px (Streamlit's chart theme cuts them at 100, which a class name
#: reaches in the presenter look's larger type); legend labels are never cut.
AXIS_LABEL_LIMIT = 240
_FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


def for_screens(make):
    """Decorator of the chart functions: legend labels in full and axis labels up to
    ``AXIS_LABEL_LIMIT`` px, and a single view (not a concatenation or facet, which cannot fit)
    fits its column's width while its height stays its plot's (Streamlit's default fit squeezed
    the plot by the height of the axes, title and legend)."""

    @functools.wraps(make)
    def chart(*args, **kwargs):
        c = make(*args, **kwargs)
        faceted = isinstance(c, alt.Chart) and any(
            getattr(c.encoding, f, alt.Undefined) is not alt.Undefined for f in ("row", "column", "facet"))
        if isinstance(c, (alt.Chart, alt.LayerChart)) and not faceted:
            c = c.properties(autosize=_FIT_WIDTH)
        return c.configure_legend(labelLimit=0).configure_axis(labelLimit=AXIS_LABEL_LIMIT)

    return chart


def topk_frame(probs_before: np.ndarray, probs_after: np.ndarray, class_names: Sequence[str],
               k: int = 5) -> pd.DataFrame:
    """Long table of the union of the top-k classes before and after: class, stage, probability."""
    pb, pa = np.asarray(probs_before, dtype=float), np.asarray(probs_after, dtype=float)
    order = list(np.argsort(-pb, kind="stable")[:k])
    order += [i for i in np.argsort(-pa, kind="stable")[:k] if i not in order]
    rows = []
    for i in order:
        for stage, p in ((BEFORE, pb), (AFTER, pa)):
            rows.append({"class": str(class_names[i]), "index": int(i), "stage": stage, "probability": float(p[i])})
    return pd.DataFrame(rows)


@for_screens
def topk_chart(probs_before: np.ndarray, probs_after: np.ndarray, class_names: Sequence[str], k: int = 5,
               title: str = "") -> alt.Chart:
    """Grouped horizontal bars: the top-k classes before and after the attack."""
    df = topk_frame(probs_before, probs_after, class_names, k)
    order = list(dict.fromkeys(df["class"]))
    return alt.Chart(df, title=title or alt.Undefined).mark_bar().encode(
        y=alt.Y("class:N", sort=order, title=None),
        yOffset=alt.YOffset("stage:N", sort=[BEFORE, AFTER]),
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), title="probability"),
        color=alt.Color("stage:N", sort=[BEFORE, AFTER], scale=alt.Scale(range=["#4c78a8", "#e45756"]),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["class", "stage", alt.Tooltip("probability:Q", format=".3f")],
    ).properties(height=alt.Step(9))


def history_frame(loss_history: np.ndarray, prob_history: np.ndarray) -> pd.DataFrame:
    """Long table: restart, step, loss, probability ([restarts, steps + 1] inputs)."""
    loss, prob = np.atleast_2d(loss_history), np.atleast_2d(prob_history)
    restarts, steps = loss.shape
    return pd.DataFrame({
        "restart": np.repeat(np.arange(1, restarts + 1), steps).astype(str),
        "step": np.tile(np.arange(steps), restarts),
        "loss": loss.ravel().astype(float),
        "probability": prob.ravel().astype(float),
    })


@for_screens
def history_chart(loss_history: np.ndarray, prob_history: np.ndarray, prob_label: str = "probability",
                  height: int = 110) -> alt.VConcatChart:
    """Loss and tracked-class probability per step, one line per restart."""
    df = history_frame(loss_history, prob_history)
    base = alt.Chart(df).encode(
        x=alt.X("step:Q", title="step"),
        color=alt.Color("restart:N", legend=alt.Legend(orient="bottom") if df["restart"].nunique() > 1 else None),
    )
    loss = base.mark_line(point=len(df) <= 60).encode(
        y=alt.Y("loss:Q", title="cross-entropy"), tooltip=["restart", "step", alt.Tooltip("loss:Q", format=".3f")],
    ).properties(height=height)
    prob = base.mark_line(point=len(df) <= 60).encode(
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), title=prob_label),
        tooltip=["restart", "step", alt.Tooltip("probability:Q", format=".3f")],
    ).properties(height=height)
    return alt.vconcat(loss, prob)


@for_screens
def accuracy_curve(rows: Iterable[dict], title: str = "", kinds: dict | None = None) -> alt.TopLevelMixin:
    """Accuracy against eps, one line per model, one chart per norm side by side, each with its own
    eps axis (L2 runs to 2 where Linf stops at 0.1): rows with model, norm, eps, accuracy (and
    maybe kind). ``kinds`` maps a model to its kind text, for the standard / robust colours
    (default: each row's ``kind``, else the model's name).

    Clean rows (norm ``none``, eps 0) start every norm's line."""
    rows = list(rows)
    kinds = {**{r["model"]: r["kind"] for r in rows if r.get("kind")}, **(kinds or {})}
    norms = sorted({r["norm"] for r in rows if r["norm"] != "none"}) or ["none"]
    out = []
    for r in rows:
        for n in (norms if r["norm"] == "none" else [r["norm"]]):
            out.append({"model": r["model"], "norm": n, "eps": float(r["eps"]), "accuracy": float(r["accuracy"])})
    df = pd.DataFrame(out, columns=["model", "norm", "eps", "accuracy"])
    # below the panels, two entries a line: a legend on the right ran past a laptop's column
    color = kind_color("model:N", df["model"], kinds,
                       legend=alt.Legend(orient="bottom", columns=2) if len(norms) > 1 else alt.Undefined)
    panels = []
    for n in norms:
        part = df[df["norm"] == n]
        top = float(part["eps"].max()) if len(part) else 0.0
        panels.append(alt.Chart(part).mark_line(point=True).encode(
            x=alt.X("eps:Q", title=f"{NORM_NAMES.get(n, n)} eps",
                    scale=alt.Scale(domain=[0, top]) if top > 0 else alt.Undefined),
            y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            color=color,
            tooltip=["model", "norm", "eps", alt.Tooltip("accuracy:Q", format=".1%")],
        ).properties(width=220, height=180))
    titled = {"title": title} if title else {}
    if len(panels) == 1:
        return panels[0].properties(**titled)
    return alt.hconcat(*panels, **titled).resolve_scale(x="independent")


# --- tables ----------------------------------------------------------------------------

#: What an empty cell of a shown table reads (never "None" or "nan"). An en dash, not "-": st.table
#: renders a cell as Markdown, where a lone hyphen is a list item and shows as a bullet.
MISSING = "\u2013"


def cell_text(value) -> str:
    """A table cell as text: whole numbers as integers (10,000), others to 4 significant digits."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"  # a count (10000 test images) reads 10,000, not 1e+04
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def shown(df: pd.DataFrame) -> pd.DataFrame:
    """A table as a page shows it: every None / NaN cell reads ``MISSING``. Columns without gaps
    keep their values and type; a column with gaps becomes text (numbers to 4 significant digits)."""
    out = df.copy()
    for column in out.columns:
        gaps = out[column].isna()
        if gaps.any():
            out[column] = [MISSING if gap else cell_text(v) for v, gap in zip(out[column], gaps)]
    return out


def zoo_frame(rows: Iterable[dict], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The zoo table as shown: models available offline first (otherwise in the given order),
    ``columns`` in order where present, datasets by the names people write (``CIFAR-10``), clean
    accuracy in percent like the robust accuracies beside it, empty cells as ``MISSING``."""
    df = pd.DataFrame(list(rows))
    if "dataset" in df.columns:
        df["dataset"] = df["dataset"].map(lambda d: display_name(d) if isinstance(d, str) else d)
    if "clean accuracy" in df.columns:
        df["clean accuracy"] = df["clean accuracy"].map(
            lambda a: f"{a:.1%}" if isinstance(a, float) and not math.isnan(a) else None)
    if "available" in df.columns:
        df = df.sort_values("available", ascending=False, kind="stable",
                            key=lambda s: s.fillna(False).astype(bool)).reset_index(drop=True)
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    return shown(df)


# --- text ----------------------------------------------------------------------------

def top_class_text(names: Sequence[str], probs: np.ndarray) -> str:
    """The most probable class and its probability, e.g. ``Pullover 93%``."""
    i = int(np.argmax(probs))
    return f"{names[i]} {probs[i]:.0%}"
