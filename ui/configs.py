"""From a page's URL parameters to its experiment's Config: one pure function per view.

A page's widgets carry their values in the URL (``ui.links``: a widget's key is its
parameter). The page calls the function below with its widgets' values, the guided tour
(``ui.tour``) with a step's parameters, and the warm-up with the tour's and with none (a slow
page's default, ``ui.warmup.PAGE_DEFAULTS``): so a tour link, the page it opens, a page opened
fresh and the warm-up's cache entry build the same Config. A parameter a link leaves
out takes the widget's default, from the ``*_DEFAULTS`` here, which the page's widgets use as
their defaults too. No streamlit here; images and the models are arguments (what a link
names, the page and the tour load).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from explorer import construct
from explorer.experiments import attack_lab as AL
from explorer.experiments import class_synthesis as CS
from explorer.experiments import constructed_table as CT
from explorer.experiments import feature_visualization as FV
from explorer.experiments import filtered_training as FT
from explorer.experiments import fourier_heatmap as FH
from explorer.experiments import frequency as FQ
from explorer.experiments import inspector as I
from explorer.experiments import inversion as INV
from explorer.experiments import layer_robustness as LR
from explorer.experiments import leakage as LK
from explorer.experiments import linear_features as LF
from explorer.experiments import mislabeled as ML
from explorer.experiments import nontransferable as NT
from explorer.experiments import squares as SQ
from explorer.experiments import style_transfer as ST
from explorer.experiments import transfer_learnability as TL
from explorer.experiments import zoo_report as ZR

Params = Mapping[str, Any]

#: The threat model's norms as the widgets show them (and as a link writes them).
NORM_LABELS = {"linf": "L∞", "l2": "L2"}


def norm_of(value: str) -> str:
    """``linf`` / ``l2`` from either the code or its label (a link holds the label)."""
    by_label = {label: code for code, label in NORM_LABELS.items()}
    return by_label.get(value, value)


def _settings(prefix: str, defaults: Params, params: Params) -> dict[str, Any]:
    """The page's defaults overlaid with the parameters under ``prefix.`` (prefix removed)."""
    out = dict(defaults)
    out.update({k[len(prefix) + 1:]: v for k, v in params.items() if k.startswith(prefix + ".")})
    return out


def eps_key(prefix: str, dataset: str, norm: str) -> str:
    """The eps slider's parameter: one per dataset and norm, so a link keeps each one's value."""
    return f"{prefix}.eps.{dataset}.{norm}"


def eps_or_default(prefix: str, params: Params, dataset: str, norm: str) -> float:
    """The link's eps for ``dataset`` and ``norm``, else the dataset's default radius (its facts)."""
    return float(params.get(eps_key(prefix, dataset, norm), AL.eps_range(dataset, norm).default))


# --- the attack lab --------------------------------------------------------------------------

ATTACK_LAB = "attack_lab"
ATTACK_LAB_DEFAULTS = {"norm": "linf", "steps": 20, "step_size": None, "target": None, "random_start": False,
                       "restarts": 1, "seed": 0}


def attack_lab(params: Params, models: Sequence[str], image: np.ndarray, label: Optional[int],
               dataset: str) -> AL.Config:
    """The attack lab's Config: PGD on ``image`` against ``models`` with the link's settings."""
    s = _settings(ATTACK_LAB, ATTACK_LAB_DEFAULTS, params)
    norm = norm_of(s["norm"])
    return AL.Config.for_image(image, tuple(models), label=label, norm=norm,
                               eps=eps_or_default(ATTACK_LAB, params, dataset, norm), steps=int(s["steps"]),
                               step_size=s["step_size"], target=s["target"], random_start=bool(s["random_start"]),
                               restarts=int(s["restarts"]), seed=int(s["seed"]))


# --- the features page: class synthesis ------------------------------------------------------

SYNTHESIS = "features.synthesis"
#: Default L2 radius of class synthesis per dataset (an image of flat grey is sqrt(C H W) / 2 away from black).
SYNTHESIS_EPS = {"fashion-mnist": 8.0, "cifar10": 10.0}
SYNTHESIS_EPS_DEFAULT = 40.0  # Santurkar et al.'s ImageNet radius
SYNTHESIS_DEFAULTS = {"start": "mean", "steps": 60, "seed": 0}


def synthesis_eps_default(dataset: str, input_size: Sequence[int]) -> float:
    """The class-synthesis radius a page opens with: the dataset's, at most the image's own size."""
    return min(SYNTHESIS_EPS.get(dataset, SYNTHESIS_EPS_DEFAULT), math.floor(math.sqrt(math.prod(input_size))))


def class_synthesis(params: Params, models: Sequence[str], dataset: str, input_size: Sequence[int],
                    image: Optional[np.ndarray] = None) -> CS.Config:
    """Class synthesis from the link's start (``image`` when the start is an image)."""
    s = _settings(SYNTHESIS, SYNTHESIS_DEFAULTS, params)
    eps = float(s.get("eps", synthesis_eps_default(dataset, input_size)))
    if s["start"] == "image":
        if image is None:
            raise ValueError("class synthesis from an image needs the image")
        return CS.Config.for_image(image, tuple(models), eps=eps, steps=int(s["steps"]), seed=int(s["seed"]))
    return CS.Config(tuple(models), start=s["start"], eps=eps, steps=int(s["steps"]), seed=int(s["seed"]))


# --- the inspector -----------------------------------------------------------------------------

INSPECTOR = "inspector"
INSPECTOR_DEFAULTS = {"steps": 20, "iterations": 8}


def inspector(params: Params, models: Sequence[str], image: np.ndarray, label: Optional[int]) -> I.Config:
    """The inspector's Config: ``image`` through ``models`` (the link's ``inspector.models``, when it names them)."""
    s = _settings(INSPECTOR, INSPECTOR_DEFAULTS, params)
    return I.Config.for_image(image, tuple(s.get("models", models)), label=label, steps=int(s["steps"]),
                              iterations=int(s["iterations"]))


# --- layer robustness ------------------------------------------------------------------------

LAYER_ROBUSTNESS = "layer_robustness"
LAYER_ROBUSTNESS_DEFAULTS = {"norm": "linf", "n_images": 64, "steps": 20, "restarts": 1, "pairs": 4, "seed": 0,
                             "logits": False}


def layer_robustness(params: Params, models: Sequence[str], dataset: str) -> LR.Config:
    """R per layer of ``models`` (the link's ``layer_robustness.models``, when it names them)."""
    s = _settings(LAYER_ROBUSTNESS, LAYER_ROBUSTNESS_DEFAULTS, params)
    norm = norm_of(s["norm"])
    return LR.Config(models=tuple(s.get("models", models)), norm=norm,
                     eps=eps_or_default(LAYER_ROBUSTNESS, params, dataset, norm), n_images=int(s["n_images"]),
                     steps=int(s["steps"]), restarts=int(s["restarts"]), pairs_per_image=int(s["pairs"]),
                     include_logits=bool(s["logits"]), seed=int(s["seed"]))


# --- style transfer ----------------------------------------------------------------------------

STYLE_TRANSFER = "style_transfer"
#: ``size`` / ``iterations`` None: Nakano's 512 px and a few hundred iterations on a GPU; on a CPU the
#: tour's last step (160 px, 60 iterations), which the warm-up computes, so the default answers at once.
STYLE_TRANSFER_DEFAULTS = {"size": None, "iterations": None, "optimizer": "lbfgs", "start": "content",
                           "single_layer": False, "ws": 10.0, "wc": 1.0, "wtv": 0.0, "seed": 0, "normalize": True,
                           "lr": 0.0, "content_layer": None}
STYLE_TRANSFER_SAMPLES = {"content": "chelsea", "style": "brick"}
STYLE_TRANSFER_GPU = {"size": 512, "iterations": 300}
STYLE_TRANSFER_CPU = {"size": 160, "iterations": 60}


def style_transfer_size(gpu: bool) -> int:
    return (STYLE_TRANSFER_GPU if gpu else STYLE_TRANSFER_CPU)["size"]


def style_transfer_iterations(gpu: bool) -> int:
    return (STYLE_TRANSFER_GPU if gpu else STYLE_TRANSFER_CPU)["iterations"]


def style_transfer(params: Params, content: np.ndarray, style: np.ndarray, style_models: Sequence[str],
                   content_model: Optional[str], gpu: bool, style_layers: Sequence[Sequence[str]] = ()) -> ST.Config:
    """The style transfer's Config: ``content`` painted with ``style`` by each of ``style_models`` (the
    link's ``style_transfer.style_models`` / ``.content_model`` when it names them); ``style_layers`` per
    network, empty for its default."""
    s = _settings(STYLE_TRANSFER, STYLE_TRANSFER_DEFAULTS, params)
    layers = tuple(tuple(x) for x in style_layers)
    return ST.Config.for_images(
        content, style, tuple(s.get("style_models", style_models)),
        size=int(s["size"] or style_transfer_size(gpu)), content_model=s.get("content_model", content_model),
        content_layer=s["content_layer"] or None, style_layers=layers if any(layers) else (),
        single_layer=bool(s["single_layer"]), style_weight=float(s["ws"]), content_weight=float(s["wc"]),
        tv_weight=float(s["wtv"]), normalize=bool(s["normalize"]), optimizer=s["optimizer"],
        learning_rate=float(s["lr"]) or None, iterations=int(s["iterations"] or style_transfer_iterations(gpu)),
        start=s["start"], seed=int(s["seed"]))


# --- the features page: representation inversion and unit maximization -----------------------

INVERSION = "features.inversion"
INVERSION_DEFAULTS = {"start": "random_image", "layer": INV.PENULTIMATE, "steps": 900,
                      "schedule": INV.DEFAULT_STEP_SIZES, "seed": 0}


def inversion(params: Params, models: Sequence[str], image: np.ndarray, label: Optional[int],
              start_image: Optional[np.ndarray] = None, start_label: Optional[int] = None) -> INV.Config:
    """Inversion of ``image``'s representation from the link's start (``start_image`` when it is an image)."""
    s = _settings(INVERSION, INVERSION_DEFAULTS, params)
    return INV.Config.for_images(image, tuple(models), start_image=start_image if s["start"] == "image" else None,
                                 label=label, start=s["start"], start_label=start_label, layer=s["layer"],
                                 steps=int(s["steps"]), step_sizes=tuple(s["schedule"]), seed=int(s["seed"]))


UNITS = "features.units"
UNITS_DEFAULTS = {"layer": "penultimate", "n": 6, "steps": 200, "start": "noise"}


def units(params: Params, models: Sequence[str]) -> FV.Config:
    """Maximize the ``n`` most active units of the link's layer on each model."""
    s = _settings(UNITS, UNITS_DEFAULTS, params)
    return FV.Config(tuple(models), n_units=int(s["n"]), layer=s["layer"], steps=int(s["steps"]), start=s["start"])


# --- the features page: frequency ---------------------------------------------------------------

CURVE = "features.frequency"
#: 200 test images: each point of the curves is within about ±3.5 points (one standard error) of the full test
#: set's, enough to read where each curve falls; 500 took 17 s of one CPU core.
CURVE_DEFAULTS = {"n_images": 200}


def frequency_curve(params: Params, models: Sequence[str]) -> FQ.Config:
    """Accuracy on low- and high-pass filtered test images against the cutoff."""
    s = _settings(CURVE, CURVE_DEFAULTS, params)
    return FQ.Config(tuple(models), n_images=int(s["n_images"]))


HEATMAP = "features.heatmap"
HEATMAP_DEFAULTS = {"r": 4.0, "n_images": 100, "max_frequency": 6}


def fourier_heatmap(params: Params, models: Sequence[str], side: int) -> FH.Config:
    """Yin et al.'s heat map: every frequency of a small image, a grid of low ones (``max_frequency``) above 32 px."""
    s = _settings(HEATMAP, HEATMAP_DEFAULTS, params)
    return FH.Config(tuple(models), noise_norm=float(s["r"]), n_images=int(s["n_images"]),
                     max_frequency=int(s["max_frequency"]) if side > 32 else None)


# --- the discussion page: adversarial squares ----------------------------------------------------

SQUARES = "discussion.squares"
# 16 x 16, 300 squares, 30 epochs: the noisy-label fit is already flipped at 0.01-0.03
SQUARES_DEFAULTS = {"noise": 0.1, "size": 16, "n_train": 300, "epochs": 30}


def squares(params: Params) -> SQ.Config:
    """Nakkiran's squares, the small version the page runs."""
    s = _settings(SQUARES, SQUARES_DEFAULTS, params)
    return SQ.Config(size=int(s["size"]), n_train=int(s["n_train"]), n_test=200, label_noise=float(s["noise"]),
                     epochs=int(s["epochs"]), eps=(0.01, 0.03, 0.1, 0.3, 0.9), attack_steps=5)


# --- the constructed datasets: the live version ----------------------------------------------------

CONSTRUCTED_LIVE = "constructed.live"
CONSTRUCTED_LIVE_DEFAULTS = {"subset": 300, "epochs": 10, "test": 500, "steps": 100, "attack_steps": 50,
                             "eval_steps": 10, "kinds": construct.KINDS, "seed": 0}


def constructed_live(params: Params, standard: str, robust: str, dataset: str) -> CT.Config:
    """The live version of Table 1: every dataset built from a few hundred training images of ``dataset``
    (D_R from ``robust``, the others from ``standard``), a small model trained on each."""
    s = _settings(CONSTRUCTED_LIVE, CONSTRUCTED_LIVE_DEFAULTS, params)
    subset, attack_steps = int(s["subset"]), int(s["attack_steps"])
    return CT.Config(dataset=dataset, standard=standard, robust=robust, kinds=tuple(s["kinds"]), subset=subset,
                     inversion_steps=int(s["steps"]), attack_steps=attack_steps,
                     attack_step_size=2.5 * construct.defaults_for(dataset).attack_eps / attack_steps,
                     epochs=int(s["epochs"]), test_limit=int(s["test"]), eval_steps=int(s["eval_steps"]),
                     seed=int(s["seed"]), shard_size=max(subset, 1), batch_size_construct=250)


# --- the discussion page's small live versions ---------------------------------------------------

DISCUSSION = "discussion"
#: training images and epochs of each comment's small live version (the tab's two number inputs)
DISCUSSION_DEFAULTS = {"transfer_learnability": {"n_train": 500, "epochs": 2}, "leakage": {"n_train": 500, "epochs": 3},
                       "nontransferable": {"n_train": 500, "epochs": 3}, "mislabeled": {"n_train": 1500, "epochs": 3}}


def discussion_sizes(name: str, params: Params) -> tuple[int, int]:
    """(training images, epochs) of the discussion tab ``name``: the link's, else the defaults."""
    s = _settings(f"{DISCUSSION}.{name}", DISCUSSION_DEFAULTS[name], params)
    return int(s["n_train"]), int(s["epochs"])


def transfer_learnability(params: Params, source: str) -> TL.Config:
    n, e = discussion_sizes("transfer_learnability", params)
    return TL.Config(source=source, n_train=n, epochs=e, n_attack=200, n_test=1000, ensemble_size=2)


def leakage(params: Params, source: str) -> LK.Config:
    n, e = discussion_sizes("leakage", params)
    return LK.Config(source=source, n_train=n, linear_epochs=e, robust_images=3000, steps=10, n_test=1000)


def nontransferable(params: Params, source: str) -> NT.Config:
    n, e = discussion_sizes("nontransferable", params)
    return NT.Config(source=source, n_train=n, epochs=e, learn_epochs=e, n_attack=200, n_test=1000, ensemble_size=2,
                     heldout_archs=("stage_cnn_tiny", "mlp"), learn_arch="stage_cnn_tiny")


def mislabeled(params: Params) -> ML.Config:
    n, e = discussion_sizes("mislabeled", params)
    return ML.Config(arch="stage_cnn_tiny", n_train=n, weak_images=min(500, n), weak_epochs=2, epochs=e, n_test=1000)


# --- the features page: trained on filtered images, Goh's linear features ---------------------------------

FILTERED = "features.filtered"
FILTERED_DEFAULTS = {"n_train": 2000, "epochs": 3}


def filtered_training(params: Params) -> FT.Config:
    """Hendrycks & Gilmer's trained-on-filtered experiment, the small version the page runs."""
    s = _settings(FILTERED, FILTERED_DEFAULTS, params)
    return FT.Config(arch="stage_cnn_tiny", n_train=int(s["n_train"]), n_test=1000, epochs=int(s["epochs"]))


LINEAR = "features.linear"
# classes 7 and 9: Sneaker against Ankle boot
LINEAR_DEFAULTS = {"a": 7, "b": 9, "norm": "l2", "eps_l2": 0.5, "eps_linf": 0.02, "n": 100, "alpha": 0.05}


def linear_features(params: Params) -> LF.Config:
    """Goh's linear features along Fashion-MNIST's principal directions (ValueError for one class twice)."""
    s = _settings(LINEAR, LINEAR_DEFAULTS, params)
    return LF.Config(class_a=int(s["a"]), class_b=int(s["b"]), norm=norm_of(str(s["norm"])), eps_l2=float(s["eps_l2"]),
                     eps_linf=float(s["eps_linf"]), n_directions=int(s["n"]), alpha=float(s["alpha"]))


# --- the model zoo's quick evaluation ---------------------------------------------------------------

ZOO = "model_zoo"
ZOO_DEFAULTS = {"norm": "linf", "points": 3, "n": 100, "steps": 10}


def zoo_report(params: Params, models: Sequence[str], dataset: str) -> ZR.Config:
    """Clean and PGD accuracy of ``models`` at ``points`` radii up to the link's eps (the dataset's default)."""
    s = _settings(ZOO, ZOO_DEFAULTS, params)
    norm = norm_of(str(s["norm"]))
    eps_max, points = eps_or_default(ZOO, params, dataset, norm), int(s["points"])
    eps = tuple(float(e) for e in np.linspace(eps_max / points, eps_max, points))
    return ZR.Config(models=tuple(models), norm=norm, eps=eps, n=int(s["n"]), steps=int(s["steps"]))
