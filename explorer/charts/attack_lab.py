"""The attack lab's download figure and its transfer table (presentation only; no streamlit).

``result`` is an ``explorer.experiments.attack_lab.Result`` (read by attribute, never imported).
"""

from __future__ import annotations

import pandas as pd
from PIL import Image

from explorer.charts import amplify, eps_text, figure, png_bytes, top_class_text


def attack_figure(result) -> Image.Image:
    """Side by side for the download: per model, original | adversarial | amplified perturbation."""
    rows = []
    for a in result.attacks:
        amp, scale = amplify(a.perturbation, a.amplification)
        norm = a.perturbation_linf if result.norm == "linf" else a.perturbation_l2
        rows.append((f"{a.model} ({a.kind}): {a.verdict}", [
            (result.original, "original\n" + top_class_text(a.class_names, a.probs_before)),
            (a.adversarial, "adversarial\n" + top_class_text(a.class_names, a.probs_after)),
            (amp, f"perturbation x{scale:.1f}\n{result.norm} size {norm:.3g}"),
        ]))
    kind = "targeted" if result.targeted else "untargeted"
    title = f"PGD {kind}, {result.norm} eps {eps_text(result.norm, result.eps)}, {result.steps} steps x {result.restarts}"
    return figure(rows, title=title)


def attack_png(result) -> bytes:
    """``attack_figure`` as PNG bytes (the page's download)."""
    return png_bytes(attack_figure(result))


def transfer_frame(result) -> pd.DataFrame:
    """The transfer cross-check as a table: perturbation from, applied to, prediction, fooled."""
    rows = []
    for t in result.transfer:
        names = result.attack(t.victim).class_names
        rows.append({"perturbation made on": t.source, "applied to": t.victim,
                     "its class before": names[t.victim_label], "prediction": names[t.victim_pred],
                     "p(tracked class)": round(t.victim_prob, 3), "fooled": t.fooled})
    return pd.DataFrame(rows)
