"""Figures and charts for style transfer (presentation only: no science, no streamlit).

Built on the package's common pieces: the captioned PNG figure (inputs, then one row per style network,
one column per transfer: the single-layer grid of the authors' reply to Nakano) and the
loss per iteration as an altair chart.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image

from explorer import charts
from explorer.charts.palette import kind_color


def fit_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` ([3, H, W] floats in [0, 1]) scaled to cover ``height x width`` and
    center-cropped to it, so it can share a figure with images of that size."""
    pil = charts.to_pil(image, min_tile=None)
    scale = max(height / pil.height, width / pil.width)
    w, h = max(width, round(pil.width * scale)), max(height, round(pil.height * scale))
    pil = pil.resize((w, h), Image.Resampling.BICUBIC)
    left, top = (w - width) // 2, (h - height) // 2
    a = np.asarray(pil.crop((left, top, left + width, top + height)), dtype=np.float32) / 255.0
    return a.transpose(2, 0, 1)


def network_heading(result, model: str) -> str:
    transfer = next(t for t in result.transfers if t.style_model == model)
    return f"style network: {model} ({transfer.kind})"


def transfer_figure(result, title: str | None = None) -> Image.Image:
    """The inputs (content, style cropped to the output's shape) and every stylized image:
    one row per style network, one column per transfer (per layer in single-layer mode)."""
    h, w = result.content_image.shape[1:]
    inputs = [(result.content_image, f"content\n{result.content_model} {result.content_layer}"),
              (fit_to(result.style_image, h, w), "style image")]
    rows = [("inputs", inputs)]
    for model, transfers in result.grid():
        cells = [(t.image, f"{t.layer_text if result.single_layer else 'layers ' + t.layer_text}\n"
                           f"loss {t.initial_loss:.3g} -> {t.final_loss:.3g}") for t in transfers]
        rows.append((network_heading(result, model), cells))
    if title is None:
        title = ("Style transfer, one style layer at a time" if result.single_layer else "Style transfer") + \
            f": {result.description()}"
    return charts.figure(rows, title=title)


def transfer_png(result) -> bytes:
    """``transfer_figure`` as PNG bytes (the page's and the CLI's download)."""
    return charts.png_bytes(transfer_figure(result))


def image_png(image: np.ndarray) -> bytes:
    """One stylized image, at its own resolution, as PNG bytes."""
    return charts.png_bytes(charts.to_pil(image, min_tile=None))


def transfer_label(result, transfer) -> str:
    return f"{transfer.style_model} {transfer.layer_text}" if result.single_layer else transfer.style_model


def loss_frame(result) -> pd.DataFrame:
    """Long format: transfer, iteration, total loss, and the weighted style and content terms."""
    frames = []
    for t in result.transfers:
        n = len(t.loss_history)
        frames.append(pd.DataFrame({"transfer": transfer_label(result, t), "iteration": np.arange(n),
                                    "loss": t.loss_history, "style": t.style_history,
                                    "content": t.content_history}))
    return pd.concat(frames, ignore_index=True)


@charts.for_screens
def loss_chart(result) -> alt.Chart:
    """Total loss per iteration, one line per transfer, on a log scale."""
    df = loss_frame(result)
    df = df[df["loss"] > 0]
    order = list(dict.fromkeys(df["transfer"]))
    return alt.Chart(df).mark_line().encode(
        x=alt.X("iteration:Q", title="iteration"),
        y=alt.Y("loss:Q", scale=alt.Scale(type="log"), title="total loss"),
        color=kind_color("transfer:N", order, {transfer_label(result, t): t.kind for t in result.transfers},
                         title=None),
        tooltip=["transfer", "iteration", alt.Tooltip("loss:Q", format=".4g"),
                 alt.Tooltip("style:Q", format=".4g"), alt.Tooltip("content:Q", format=".4g")],
    ).properties(height=240)
