"""The one pair of colours for standard vs robust models, used by every chart that tells them apart.

Okabe & Ito's colour-blind-safe palette, vermillion for standard and blue for robust. Both stay
distinguishable under deuteranopia, protanopia and tritanopia, and both keep a contrast of 3:1 or
more against a white background (vermillion ~3.9:1, blue ~5.1:1), so they survive a washed-out
projector; Okabe-Ito orange (#E69F00, ~2:1 on white) fades there. Series that are neither
(a clean image, white noise) get black and greys.

Presentation only: no streamlit.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional

import altair as alt

STANDARD = "#D55E00"  # Okabe-Ito vermillion
ROBUST = "#0072B2"  # Okabe-Ito blue
KIND_COLOURS = {"standard": STANDARD, "robust": ROBUST}
#: For series that are neither standard nor robust, in order.
NEUTRAL = ("#000000", "#7f7f7f", "#b0b0b0", "#404040")


def kind_of(text) -> Optional[str]:
    """``robust`` or ``standard`` from a kind text (``robust (linf eps 0.1)``, ``standard``) or a
    label that contains one (``fmnist-robust-linf (robust (linf eps 0.1))``); None for neither."""
    t = str(text).lower()
    if "robust" in t and "non-robust" not in t:
        return "robust"
    if "standard" in t:
        return "standard"
    return None


def kind_scale(labels: Iterable[str], kinds: Optional[Mapping[str, str]] = None) -> alt.Scale:
    """A colour scale over ``labels`` (in order): the standard colour for standard ones, the robust
    colour for robust ones, neutral colours for the rest. ``kinds`` maps a label to its kind
    text; without an entry the label itself is read (``kind_of``)."""
    labels = list(dict.fromkeys(str(v) for v in labels))
    kinds = kinds or {}
    neutral = iter(NEUTRAL * (len(labels) // len(NEUTRAL) + 1))
    colours = []
    for label in labels:
        kind = kind_of(kinds.get(label, label))
        colours.append(KIND_COLOURS[kind] if kind else next(neutral))
    return alt.Scale(domain=labels, range=colours)


def kind_color(field: str, labels: Iterable[str], kinds: Optional[Mapping[str, str]] = None,
               **kwargs) -> alt.Color:
    """``alt.Color(field)`` coloured by kind (``kind_scale``), sorted in the order of ``labels``."""
    labels = list(dict.fromkeys(str(v) for v in labels))
    return alt.Color(field, sort=labels, scale=kind_scale(labels, kinds), **kwargs)
