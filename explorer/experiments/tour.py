"""The guided tour's key facts: each step's claim, checked on that step's Result.

The tour (``ui/tour.py``) opens a page with settings; the page runs an ordinary
experiment. The functions here read that experiment's Result and say, with the
measured numbers, whether the paper's claim for the step holds on these models. They
are what the home page reports once the tour is warm and what ``tests/test_tour.py``
asserts on the bundled models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from explorer import data


@dataclass(frozen=True)
class Fact:
    """A step's claim on measured numbers: ``holds`` and the sentence that says why."""

    holds: bool
    text: str


def _pair(items, robust_attr="robust"):
    standard = [i for i in items if not getattr(i, robust_attr)]
    robust = [i for i in items if getattr(i, robust_attr)]
    if not standard or not robust:
        raise ValueError("the step needs a standard and a robust model")
    return standard[0], robust[0]


def flip(result) -> Fact:
    """Attack lab: the standard model, right on the clean image, is fooled; the robust one is not fooled by
    the same attack (``attack_lab.Result``)."""
    s, r = _pair(result.attacks)
    names = s.class_names
    text = (f"{s.model}: {names[s.pred_before]} → {names[s.pred_after]} ({s.verdict}); "
            f"{r.model}: {names[r.pred_before]} → {names[r.pred_after]} ({r.verdict}) "
            f"at {result.norm} eps {result.eps:g}.")
    return Fact(s.verdict == "fooled" and r.verdict == "not fooled", text)


def class_means(dataset: str = "fashion-mnist") -> np.ndarray:
    """Mean training image per class, [K, C, H, W] (Fashion-MNIST's bundled, balanced subset)."""
    if dataset != "fashion-mnist":
        raise data.DataError("class means are only bundled for Fashion-MNIST")
    ds = data.bundled_fashion_mnist("train")
    x = ds.float_images().numpy()
    y = ds.labels.numpy()
    return np.stack([x[y == k].mean(0) for k in range(int(y.max()) + 1)])


def looks_like_target(images: np.ndarray, start: np.ndarray, targets: np.ndarray, means: np.ndarray) -> float:
    """Fraction of synthesized images whose change from the start, x - x0, correlates best with
    the change toward their own target class's mean image, means[t] - x0 (among all classes)."""
    change = (images - start[None]).reshape(len(images), -1)
    toward = (means - start[None]).reshape(len(means), -1)
    change = change - change.mean(1, keepdims=True)
    toward = toward - toward.mean(1, keepdims=True)
    corr = (change / (np.linalg.norm(change, axis=1, keepdims=True) + 1e-12)) @ \
        (toward / (np.linalg.norm(toward, axis=1, keepdims=True) + 1e-12)).T
    return float((corr.argmax(1) == np.asarray(targets)).mean())


def synthesis(result, means: np.ndarray | None = None) -> Fact:
    """Class synthesis (``class_synthesis.Result``): the robust model's perturbation toward a class
    looks like that class (its change matches the class's mean image) more often than the
    standard model's, while both reach most targets."""
    means = class_means() if means is None else means
    s, r = _pair(result.rows)
    score = {m.model: looks_like_target(m.images, result.start_image, result.targets, means) for m in (s, r)}
    text = (f"Change toward the target's mean image, best match among {len(means)} classes: {s.model} "
            f"{score[s.model]:.0%}, {r.model} {score[r.model]:.0%} (targets reached {s.n_reached} and "
            f"{r.n_reached} of {len(result.targets)}).")
    return Fact(score[r.model] > score[s.model], text)


def saliency(result) -> Fact:
    """Inspector (``inspector.Result``): every robust model's input gradient follows the image's
    edges more than every standard model's, and needs a larger eps to flip in every norm."""
    standard = [v for v in result.views if not v.robust]
    robust = [v for v in result.views if v.robust]
    if not standard or not robust:
        raise ValueError("the step needs a standard and a robust model")
    edges = min(v.edge_alignment for v in robust) > max(v.edge_alignment for v in standard)
    harder = all(min(v.eps(n) for v in robust) > max(v.eps(n) for v in standard) for n in result.norms)
    def at(v, n, eps_max):  # a search that found nothing is no proof of robustness: say what was searched
        return (f"PGD flips it at {n} eps {v.eps(n):.3g}" if math.isfinite(v.eps(n))
                else f"PGD found no {n} flip up to eps {eps_max:g}")

    parts = [f"{v.model}: edge alignment {v.edge_alignment:.2f}, "
             + ", ".join(at(v, n, m) for n, m in zip(result.norms, result.eps_max)) for v in result.views]
    return Fact(edges and harder, "; ".join(parts) + ".")


def det_generalizes(rows: Sequence[dict], n_test: int, num_classes: int = 10) -> Fact:
    """Table 1 (``constructed_table`` rows): the model trained on D_det, where every label is
    wrong, beats chance on the real test set by more than 3 binomial standard errors."""
    det = next((r for r in rows if r.get("kind") == "det"), None)
    if det is None:
        return Fact(False, "No D_det row in this table.")
    chance = 1 / num_classes
    se = math.sqrt(chance * (1 - chance) / max(n_test, 1))
    acc = float(det["clean %"]) / 100
    text = (f"D_det: {det.get('train images', '?')} training images, every label (y + 1) mod {num_classes}, so 0% of them "
            f"correct; the model trained on it scores {acc:.1%} on {n_test} real test images (chance "
            f"{chance:.0%}, {(acc - chance) / se:.0f} standard errors above).")
    return Fact(acc - chance > 3 * se, text)


def layers(result) -> Fact:
    """Layer robustness (``layer_robustness.Result``): the robust model's R is lower than the
    standard model's on every layer both have."""
    rows = result.rows()
    by_model: dict[str, dict[str, float]] = {}
    robust = {m.model: ("robust" in m.kind) for m in result.models}
    for row in rows:
        by_model.setdefault(row["model"], {})[row["layer"]] = float(row["R"])
    s = next(m for m in by_model if not robust[m])
    r = next(m for m in by_model if robust[m])
    shared = [layer for layer in by_model[s] if layer in by_model[r]]
    lower = [layer for layer in shared if by_model[r][layer] < by_model[s][layer]]
    text = (f"R lower for {r} than for {s} on {len(lower)} of {len(shared)} layers ("
            + ", ".join(f"{layer} {by_model[r][layer]:.3f} vs {by_model[s][layer]:.3f}" for layer in shared) + ").")
    return Fact(bool(shared) and len(lower) == len(shared), text)


def style(result) -> Fact:
    """Style transfer (``style_transfer.Result``): with the content network fixed, the robust style
    network matches the style image's Gram matrices better (a lower style term at the last iteration)
    than the standard one."""
    s, r = _pair(result.transfers)
    s_style, r_style = float(s.style_history[-1]), float(r.style_history[-1])
    text = (f"Style term after {result.iterations} iterations: {r_style:.3g} with {r.style_model} as the style "
            f"network against {s_style:.3g} with {s.style_model} (content network {result.content_model}).")
    return Fact(r_style < s_style, text)
