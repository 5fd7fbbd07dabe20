"""The guided tour: the paper's story in six clicks on the bundled models (Fashion-MNIST; CIFAR-10 for style).

All of the tour lives here: each step's title, two-sentence caption, the page it opens,
the URL parameters that set that page's widgets (``ui.links``: a widget's key is its
parameter), and, for the steps that compute, the experiment Config the page builds from
those settings, so the warm-up (``ui.warmup``) can compute it before anyone clicks and
the page finds it in the cache. The claim each step makes is checked on its Result by
``explorer.experiments.tour``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import streamlit as st

from ui import links, registry

STANDARD, ROBUST_LINF, ROBUST_L2 = "fmnist-standard", "fmnist-robust-linf", "fmnist-robust-l2"
#: step 6's pair: the bundled CIFAR-10 ResNet-9s (``style_transfer.BUNDLED_PAIR``)
STYLE_PAIR = ("cifar10-standard", "cifar10-robust-l2")
MODELS = (STANDARD, ROBUST_LINF, ROBUST_L2)
TOUR = "tour"
IMAGE = 1  # Fashion-MNIST test image 1, a pullover: PGD at Linf 0.1 flips the standard model, not the robust one


@dataclass(frozen=True)
class Step:
    """One click of the tour.

    Attributes:
        title, caption: what the home page shows (the caption is two sentences).
        page: the page it opens (a ``ui.registry`` constant).
        params: URL parameters (widget keys -> values; ``run`` names the views to compute).
        experiment: the ``explorer.experiments`` module the page runs, or None (nothing to compute).
        fact: the name of the ``explorer.experiments.tour`` function that checks the claim.
    """

    title: str
    caption: str
    page: registry.PageInfo
    params: dict = field(default_factory=dict)
    experiment: Optional[str] = None
    fact: Optional[str] = None

    @property
    def number(self) -> int:
        return STEPS.index(self) + 1

    @property
    def query_params(self) -> dict[str, list[str] | str]:
        """``params`` as strings, the form ``st.page_link`` and ``st.switch_page`` take, plus ``tour``
        (the step's number, so the page shows the step's caption and a link to the next one)."""
        out = {k: [links.encode(i) for i in v] if isinstance(v, (list, tuple)) else links.encode(v)
               for k, v in self.params.items()}
        return {**out, TOUR: str(self.number)}

    def config(self):
        """The Config the page builds from ``params`` (None when the step computes nothing)."""
        builder = _CONFIGS.get(self.experiment)
        return builder(self, _configs()) if builder else None


def _models(robust: str) -> dict:
    return {"pair_standard": STANDARD, "pair_robust": robust}


STEPS: tuple[Step, ...] = (
    Step("1. A standard model is fooled, a robust one is not",
         "PGD changes this pullover by at most 0.1 per pixel, a visible grain on a 28-pixel image that leaves it "
         "plainly a pullover to us, and the standard model now sees another class. The adversarially trained "
         "model still sees a pullover.",
         registry.ATTACK_LAB,
         {**_models(ROBUST_LINF), "attack_lab.source": "Test image", "attack_lab.index": IMAGE,
          links.RUN: "attack_lab"}, "attack_lab", "flip"),
    Step("2. The robust model's perturbation draws the target class",
         "Targeted PGD in a large L2 ball pulls the average image toward every class: the robust model's change "
         "paints a shoe, a bag, a trouser. The standard model reaches the same classes with noise.",
         registry.FEATURES,
         {**_models(ROBUST_LINF), "features.tab": "Class synthesis", links.RUN: "features.synthesis"},
         "class_synthesis", "synthesis"),
    Step("3. Robust input gradients follow the object's edges",
         "One image through all three bundled models: how closely each input gradient follows the garment's "
         "edges, which robust models' gradients should do more than a standard model's. The inspector also "
         "bisects the smallest ball in which PGD flips each.",
         registry.INSPECTOR,
         {"inspector.source": "Test image", "inspector.index": IMAGE, "inspector.models": list(MODELS),
          links.RUN: "inspector"}, "inspector", "saliency"),
    Step("4. Wrong labels, right answers: D_det",
         "Every training image is nudged toward class (y + 1) mod 10 and relabelled with it, so every label looks "
         "wrong. A model trained only on them beats chance on the real test set: the features PGD adds are real.",
         registry.CONSTRUCTED, {"constructed.tab": "Table 1"}, None, "det_generalizes"),
    Step("5. Robust layers move less",
         "How far can each layer's output be pushed inside an L2 ball of radius 1.5, relative to how far apart "
         "two images' outputs are? Every layer of the L2-robust model moves less than the standard model's.",
         registry.LAYER_ROBUSTNESS,
         {**_models(ROBUST_L2), "layer_robustness.models": [STANDARD, ROBUST_L2], "layer_robustness.norm": "L2",
          "layer_robustness.n_images": 16, "layer_robustness.steps": 10, links.RUN: "layer_robustness"},
         "layer_robustness", "layers"),
    Step("6. Style transfer: robust against standard features",
         "Nakano found that style transfer works with a robust ResNet-50's features and fails with a standard "
         "one's. With the bundled CIFAR-10 ResNet-9s (a cat painted with bricks, the content network fixed) the "
         "robust style network matches the bricks' texture statistics more closely (a lower style loss), though "
         "both outputs show bricks; `python -m explorer fetch --demo` gets Nakano's ResNet-50s.",
         registry.STYLE_TRANSFER,
         {"style_transfer.style_models": list(STYLE_PAIR), "style_transfer.content_model": STYLE_PAIR[0],
          "style_transfer.content.sample": "chelsea", "style_transfer.style.sample": "brick",
          "style_transfer.size": 160, "style_transfer.iterations": 60, links.RUN: "style_transfer"},
         "style_transfer", "style"),
)


# --- the configs the pages build from the steps' settings -------------------------------------------

def _configs():
    # ui.configs imports the experiments (torch): not before the home page's first paint
    from ui import configs

    return configs


def _test_image(index: int):
    from explorer import data

    x, y = data.fashion_mnist_sample(index, "test")
    return x[0].numpy(), int(y)


def _pair(step: Step) -> tuple[str, str]:
    return step.params["pair_standard"], step.params["pair_robust"]


def _attack_lab(step: Step, configs):
    image, label = _test_image(step.params["attack_lab.index"])
    return configs.attack_lab(step.params, _pair(step), image, label, "fashion-mnist")


def _class_synthesis(step: Step, configs):
    return configs.class_synthesis(step.params, _pair(step), "fashion-mnist", (1, 28, 28))


def _inspector(step: Step, configs):
    image, label = _test_image(step.params["inspector.index"])
    return configs.inspector(step.params, (), image, label)


def _layer_robustness(step: Step, configs):
    return configs.layer_robustness(step.params, (), "fashion-mnist")


def _style_transfer(step: Step, configs):
    from explorer import data

    content = data.sample_photos()[step.params["style_transfer.content.sample"]]
    style = data.sample_textures()[step.params["style_transfer.style.sample"]]
    return configs.style_transfer(step.params, content, style, (), None, gpu=False)


_CONFIGS: dict[Optional[str], Callable[[Step, object], object]] = {
    "attack_lab": _attack_lab, "class_synthesis": _class_synthesis, "inspector": _inspector,
    "layer_robustness": _layer_robustness, "style_transfer": _style_transfer,
}


def fact(step: Step, result):
    """The step's claim checked on ``result`` (an ``explorer.experiments.tour.Fact``)."""
    from explorer.experiments import tour

    return getattr(tour, step.fact)(result)


def current_step(query_params) -> Optional[Step]:
    """The tour step a page was opened from (the URL's ``tour``), if any."""
    try:
        n = int(query_params.get(TOUR, ""))
    except (TypeError, ValueError):
        return None
    return STEPS[n - 1] if 1 <= n <= len(STEPS) else None


def banner() -> None:
    """On a page opened from the tour: the step's caption and the link to the next step (app.py)."""
    step = current_step(st.query_params)
    if step is None:
        return
    with st.container(border=True):
        st.markdown(f"**Tour, step {step.number} of {len(STEPS)}: {step.title.split('. ', 1)[-1]}**  \n"
                    f"{step.caption}")
        if step.number < len(STEPS):
            nxt = STEPS[step.number]
            st.page_link(nxt.page.path, label=f"Next: {nxt.title}", icon=":material/arrow_forward:",
                         query_params=nxt.query_params)
        else:
            st.page_link(registry.HOME.path, label="End of the tour: back to the start", icon=":material/home:")


def measured(step: Step):
    """The step's key fact on the numbers already computed (by the warm-up or an earlier visit), or None.
    Call it only once the warm-up is done: it imports the library."""
    from ui import widgets

    if step.experiment:
        result = widgets.cached_result(step.experiment, step.config())
        return fact(step, result) if result is not None else None
    if step.fact == "det_generalizes":
        return _det_fact()
    return None


@st.cache_data(ttl=60, show_spinner=False)
def _det_rows() -> Optional[tuple[list[dict], int]]:
    """The rows and test-set size of the saved Fashion-MNIST Table 1 (the tour's dataset) with a D_det row that
    the Table 1 tab shows first: the most complete (more rows, then more training images)."""
    from explorer import construct

    tables = [t for _, t in construct.find_tables()
              if t.get("config", {}).get("dataset", "fashion-mnist") == "fashion-mnist"
              and any(r.get("kind") == "det" for r in t.get("rows", []))]
    if not tables:
        return None
    t = max(tables, key=lambda t: (len(t["rows"]), max(r.get("train images", 0) for r in t["rows"])))
    return t["rows"], int(t["eval"]["n_test"])


def _det_fact():
    from explorer.experiments import tour as facts

    found = _det_rows()
    return facts.det_generalizes(*found) if found else None
