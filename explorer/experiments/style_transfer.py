"""Neural style transfer with a separate content network and style network(s): the
experiment's Config, its run (the loss from ``objectives``, a pixel optimizer) and Result.
Networks and layers are chosen in ``_style_networks``, images prepared in ``_images``.

Gatys, Ecker & Bethge (2016), "Image Style Transfer Using Convolutional Neural
Networks": starting from the content image (or noise), optimize the pixels x of an image
so that one layer of a *content network* matches the content image's and the Gram
matrices of several layers of a *style network* match the style image's:

    L(x) = a * content(x) + b * style(x) + c * TV(x)
    content(x) = mean (F_l(x) - F_l(content))^2                     (one layer l)
    style(x)   = sum_l mean (G_l(x) - G_l(style))^2,  G = F F^T / (C H W)

Nakano (Distill discussion of Ilyas et al. 2019, "Adversarially Robust Neural Style
Transfer") found that this fails with a standard ResNet-50 and works with an
adversarially robust one (MadryLab's L2 eps 3 ResNet-50): style from the outputs of the
four residual stages, content from the third, Gram matrices divided by their element
count, L-BFGS, a few hundred iterations from the content image, 512 px. The authors'
reply adds that the *style* network matters more than the content network, and that
with a single style layer the robust network's layers win: the single-layer mode runs
one transfer per (style network, layer).

Defaults per network (``default_layers``): ResNets as Nakano (style ``layer1..layer4``,
content ``layer3``); VGG as Gatys (style ``relu1_1..relu5_1``, content ``relu4_2``;
max-pooling replaced by average pooling); any other network from its named layers: the
last named layer at each resolution from 1/4 of the input down (what ResNet's four
stage outputs are) for style, the third of them for content (EfficientNet-Lite0:
``blocks.1, blocks.2, blocks.4, blocks.6``, content ``blocks.4``).

Weights. Gram and feature magnitudes differ by orders of magnitude between networks (Nakano needed a style weight of
1e9 with Adam on ResNet-50), and here the content and style networks differ, so by default (``normalize=True``) each
term is made relative: the content term is divided by mean F_l(content)^2 and each style layer's term by mean
G_l(style)^2, averaged over the layers. The weights then mean the same on every network: style 10 against content 1
keeps the content image's layout and takes on the texture (checked on EfficientNet-Lite0). ``normalize=False`` gives
the raw sums above, for Nakano's absolute weights.

1-channel networks (the Fashion-MNIST stage CNNs: convolutional and globally pooled, so any size) see the luma 0.299
R + 0.587 G + 0.114 B, inverted for white-on-black datasets (``_style_networks.GreyView``). When every network is
grey the image optimized is grey (its pixels are all the loss can see) and so is the output; with an RGB network
beside them, an RGB image.

The loss is a sum of ``objectives`` (content, style per layer, TV) read from one forward pass per network. Pixels
live in [0, 1] and are clamped after each step. L-BFGS runs one iteration (one loss-and-gradient evaluation, fixed
step ``learning_rate``) per step so progress and cancel are checked between iterations; its curvature history
carries over. The image with the lowest loss seen is returned. Deterministic for a seed on the CPU (for a fixed
number of threads: the thread count changes the last bits of the sums).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

from explorer import data, objectives
from explorer.classifier import Classifier
from explorer.devices import device_lock
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.experiments._images import resize, rgb_uint8, to_tensor
from explorer.experiments._style_networks import (BUNDLED_PAIR, LayerChoice, check_layers,  # noqa: F401
                                                   default_layers, default_networks, grey_notes, image_channels,
                                                   load_network, luma, missing_networks, prepare,
                                                   style_network_names)
from explorer.optimize import Cancelled
from explorer.surgery import has_max_pooling_stack

OPTIMIZERS = ("lbfgs", "adam")
STARTS = ("content", "noise")
MIN_SIZE, MAX_SIZE = 32, 2048
MAX_ITERATIONS = 10_000
LBFGS_HISTORY = 20
DEFAULT_LEARNING_RATE = {"lbfgs": 1.0, "adam": 0.02}
#: the ImageNet-like datasets whose networks suit photos (the one table in ``data``).
IMAGENET_LIKE = data.IMAGENET_LIKE
# LayerChoice, default_networks, style_network_names and missing_networks (from ``_style_networks``) are this
# experiment's public face too: its page shows the default networks and layers.

# --- config ------------------------------------------------------------------------------

def _check_weight(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_rgb(name: str, raw, shape) -> tuple[int, int, int]:
    if shape is None or len(shape) != 3 or int(shape[2]) != 3 or min(int(s) for s in shape) < 1:
        raise ValueError(f"{name}_shape must be (H, W, 3), got {shape!r}")
    shape = tuple(int(s) for s in shape)
    if not isinstance(raw, bytes) or len(raw) != math.prod(shape):
        raise ValueError(f"{name} must be {math.prod(shape)} bytes of uint8 RGB for shape {shape}")
    if max(shape[:2]) > 2 * MAX_SIZE:
        raise ValueError(f"{name} is {shape[1]}x{shape[0]}: shrink it first (Config.for_images does)")
    return shape


@dataclass(frozen=True)
class Config:
    """One style transfer (or one per style layer) per style network.

    Attributes:
        content, content_shape: the content image, uint8 RGB bytes and (H, W, 3).
        style, style_shape: the style image, likewise (``for_images`` builds both).
        style_models: zoo names of the style networks, shown side by side
            (``random:<arch>`` for random weights, for timing).
        content_model: the content network, fixed for every transfer; None for the first
            standard network of ``style_models`` (else the first).
        content_layer: None for the content network's default (``default_layers``).
        style_layers: per style network, its style layers (empty: its default); empty for
            every network's default.
        single_layer: one transfer per (style network, style layer), each with that layer alone.
        style_weight, content_weight, tv_weight: b, a and c of the loss.
        normalize: make the content and style terms relative (see the module docstring).
        optimizer: ``lbfgs`` or ``adam``; learning_rate: None for 1 (L-BFGS) or 0.02 (Adam).
        iterations: loss-and-gradient evaluations per transfer.
        start: ``content`` or ``noise`` (uniform, by ``seed``, the same for every transfer).
        size: the output's longer side in pixels; style_size: the style image's (None: ``size``).
        average_pooling: VGG/AlexNet-style networks average-pool instead of max-pool.
        invert_grey: 1-channel networks see 1 - luma; None for their dataset's convention.
        seed: the noise start.
        device: torch device string; None for the best device.
    """

    content: bytes
    content_shape: tuple[int, int, int]
    style: bytes
    style_shape: tuple[int, int, int]
    style_models: tuple[str, ...]
    content_model: Optional[str] = None
    content_layer: Optional[str] = None
    style_layers: tuple[tuple[str, ...], ...] = ()
    single_layer: bool = False
    style_weight: float = 10.0
    content_weight: float = 1.0
    tv_weight: float = 0.0
    normalize: bool = True
    optimizer: str = "lbfgs"
    learning_rate: Optional[float] = None
    iterations: int = 300
    start: str = "content"
    size: int = 512
    style_size: Optional[int] = None
    average_pooling: bool = True
    invert_grey: Optional[bool] = None
    seed: int = 0
    device: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "content_shape", _check_rgb("content", self.content, self.content_shape))
        object.__setattr__(self, "style_shape", _check_rgb("style", self.style, self.style_shape))
        object.__setattr__(self, "style_models", C.check_models(self.style_models))
        if self.content_model is not None and (not isinstance(self.content_model, str) or not self.content_model):
            raise ValueError(f"content_model must be a zoo name or None, got {self.content_model!r}")
        if self.content_layer is not None and (not isinstance(self.content_layer, str) or not self.content_layer):
            raise ValueError(f"content_layer must be a layer name or None, got {self.content_layer!r}")
        layers = tuple(tuple(ls) for ls in self.style_layers)
        if layers and len(layers) != len(self.style_models):
            raise ValueError(f"style_layers needs one entry per style network ({len(self.style_models)}), "
                             f"got {len(layers)}")
        for ls in layers:
            if not all(isinstance(l, str) and l for l in ls) or len(set(ls)) != len(ls):
                raise ValueError(f"style layers must be distinct layer names, got {ls!r}")
        object.__setattr__(self, "style_layers", layers)
        for name in ("style_weight", "content_weight", "tv_weight"):
            _check_weight(name, getattr(self, name))
        if self.style_weight == 0 and self.content_weight == 0:
            raise ValueError("style_weight and content_weight cannot both be 0")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        C.check_positive("learning_rate", self.learning_rate, allow_none=True)
        C.check_int("iterations", self.iterations, 1, MAX_ITERATIONS)
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")
        C.check_int("size", self.size, MIN_SIZE, MAX_SIZE)
        if self.style_size is not None:
            C.check_int("style_size", self.style_size, MIN_SIZE, MAX_SIZE)
        C.check_int("seed", self.seed, 0, 2**63 - 1)
        if self.invert_grey is not None and not isinstance(self.invert_grey, bool):
            raise ValueError(f"invert_grey must be True, False or None, got {self.invert_grey!r}")

    @classmethod
    def for_images(cls, content, style, style_models, size: int = 512, style_size: Optional[int] = None,
                   **kwargs) -> "Config":
        """A config from two images (PIL, uint8 arrays or floats in [0, 1]), resized here to
        the working resolution so the config stays small."""
        c = resize(rgb_uint8(content), size)
        s = resize(rgb_uint8(style), style_size or size)
        return cls(content=c.tobytes(), content_shape=c.shape, style=s.tobytes(), style_shape=s.shape,
                   style_models=C.check_models(style_models), size=size, style_size=style_size, **kwargs)

    @property
    def lr(self) -> float:
        return float(self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATE[self.optimizer])

    def images(self) -> tuple[np.ndarray, np.ndarray]:
        """(content, style) as uint8 [H, W, 3] at the working resolution."""
        c = np.frombuffer(self.content, dtype=np.uint8).reshape(self.content_shape)
        s = np.frombuffer(self.style, dtype=np.uint8).reshape(self.style_shape)
        return resize(c, self.size), resize(s, self.style_size or self.size)


# --- result ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Transfer:
    """One stylized image.

    Attributes:
        style_model, kind, robust: the style network.
        style_layers: the layers whose Gram matrices were matched (one in single-layer mode).
        image: the stylized image (lowest loss seen), [3, H, W] float32 in [0, 1] (grey: R = G = B).
        loss_history: total loss before each iteration and after the last, [iterations + 1];
            content_history, style_history, tv_history: the weighted terms, likewise.
        initial_loss, final_loss: the first and the lowest total loss.
        content_error: ||F(x) - F(content)|| / ||F(content)|| at the content layer, for ``image``.
        seconds: wall time of the optimization.
    """

    style_model: str
    kind: str
    robust: bool
    style_layers: tuple[str, ...]
    image: np.ndarray
    loss_history: np.ndarray
    content_history: np.ndarray
    style_history: np.ndarray
    tv_history: np.ndarray
    initial_loss: float
    final_loss: float
    content_error: float
    seconds: float

    @property
    def layer_text(self) -> str:
        return ", ".join(self.style_layers)

    @property
    def seconds_per_iteration(self) -> float:
        return self.seconds / max(len(self.loss_history) - 1, 1)


@dataclass(frozen=True)
class Result:
    """The content and style images, and one ``Transfer`` per style network (or per
    (network, layer) in single-layer mode), in the order of ``style_models``.

    Attributes:
        layer_rules: per style network, why its layers are the default (or ``chosen``).
        notes: things a reader must know (random weights, content network not ImageNet ...).
    """

    content_image: np.ndarray
    style_image: np.ndarray
    content_model: str
    content_kind: str
    content_layer: str
    style_models: tuple[str, ...]
    layer_rules: tuple[str, ...]
    transfers: tuple[Transfer, ...]
    single_layer: bool
    optimizer: str
    learning_rate: float
    iterations: int
    start: str
    style_weight: float
    content_weight: float
    tv_weight: float
    normalize: bool
    size: tuple[int, int]
    device: str
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def grid(self) -> list[tuple[str, list[Transfer]]]:
        """One row per style network: (network, its transfers in layer order)."""
        return [(m, [t for t in self.transfers if t.style_model == m]) for m in self.style_models]

    def rows(self) -> list[dict]:
        """One plain row per transfer, for a table."""
        return [{"style network": t.style_model, "kind": t.kind, "style layers": t.layer_text,
                 "initial loss": t.initial_loss, "final loss": t.final_loss,
                 "content error": t.content_error, "seconds": round(t.seconds, 2),
                 "s/iteration": round(t.seconds_per_iteration, 4)} for t in self.transfers]

    def description(self) -> str:
        h, w = self.size
        weights = (f"style {self.style_weight:g}, content {self.content_weight:g}, TV {self.tv_weight:g}"
                   f"{' (relative terms)' if self.normalize else ' (raw terms)'}")
        return (f"{w}x{h} px, {'L-BFGS' if self.optimizer == 'lbfgs' else 'Adam'} "
                f"(lr {self.learning_rate:g}), {self.iterations} iterations from the {self.start}, "
                f"weights {weights}; content: {self.content_model} {self.content_layer}")


# --- the loss and the optimization --------------------------------------------------------

TERMS = ("content", "style", "tv")


def transfer_loss(content_net: Classifier, content_layer: str, content_target: torch.Tensor,
                  style_net: Classifier, style_grams: dict[str, torch.Tensor],
                  weights: tuple[float, float, float], normalize: bool) -> dict[str, objectives.Objective]:
    """The weighted terms of one transfer as ``objectives``, by name (``content``, ``style``,
    ``tv``; a term whose weight is 0 is left out): a * content + b * sum_l style_l + c * TV.
    ``objectives.evaluate`` reads every layer they need in one forward pass per network.

    Args:
        content_net, content_layer, content_target: F_l and F_l(content).
        style_net, style_grams: the style network and G_l(style) for each style layer l.
        weights: (content, style, tv).
        normalize: divide the content term by mean F_l(content)^2 and each style layer's by
            mean G_l(style)^2, averaged over the layers.
    """
    wc, ws, wtv = weights
    if normalize:
        content_scale = 1.0 / float(content_target.pow(2).mean().clamp_min(1e-12))
        layer_scale = {l: 1.0 / (len(style_grams) * float(g.pow(2).mean().clamp_min(1e-24)))
                       for l, g in style_grams.items()}
    else:
        content_scale, layer_scale = 1.0, {l: 1.0 for l in style_grams}
    terms: dict[str, objectives.Objective] = {}
    if wc > 0:
        terms["content"] = wc * content_scale * objectives.content(content_net, content_layer, content_target)
    if ws > 0:
        per_layer = [ws * layer_scale[l] * objectives.style(style_net, {l: g}) for l, g in style_grams.items()]
        terms["style"] = sum(per_layer[1:], per_layer[0])
    if wtv > 0:
        terms["tv"] = wtv * objectives.tv()
    return terms


def loss_terms(loss: dict[str, objectives.Objective], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The scalar terms ``content``, ``style``, ``tv`` (0 where left out) and ``total`` for x [1, C, H, W]."""
    got = objectives.evaluate(loss, x)
    zero = x.new_zeros(())
    out = {k: got[k].sum() if k in got else zero for k in TERMS}
    out["total"] = out["content"] + out["style"] + out["tv"]
    return out


def optimize_image(loss: dict[str, objectives.Objective], x0: torch.Tensor, optimizer: str, iterations: int, lr: float,
                   progress=None, cancel: Cancel = None) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """Minimize the sum of the ``loss`` terms over the pixels from ``x0`` with L-BFGS or Adam, clamping to [0, 1]
    after each step. Returns the lowest-loss image seen and the terms' histories
    ([iterations + 1] each: before every iteration and after the last)."""
    x = x0.detach().clone().requires_grad_(True)
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=LBFGS_HISTORY)
    else:
        opt = torch.optim.Adam([x], lr=lr)
    history = {k: [] for k in ("total", "content", "style", "tv")}
    best = {"loss": math.inf, "x": x0.detach().clone()}

    def record(terms: dict[str, torch.Tensor]) -> float:
        for k in history:
            history[k].append(float(terms[k].detach()))
        total = history["total"][-1]
        if total < best["loss"]:  # the loss belongs to x as it is now, before the step
            best["loss"], best["x"] = total, x.detach().clone()
        return total

    def closure():
        opt.zero_grad()
        terms = loss_terms(loss, x)
        terms["total"].backward()
        record(terms)
        return terms["total"]

    for it in range(iterations):
        if optimizer == "lbfgs":
            opt.step(closure)
        else:
            closure()
            opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
        if progress is not None:
            progress(it + 1, iterations, {"loss": history["total"][-1]})
        if cancel is not None and cancel():
            raise Cancelled(f"cancelled after {it + 1} of {iterations} iterations")
    with torch.no_grad():
        record(loss_terms(loss, x))
    return best["x"], {k: np.asarray(v, dtype=np.float64) for k, v in history.items()}


def start_image(config: Config, content: torch.Tensor) -> torch.Tensor:
    """x0: the content image, or uniform noise drawn by the seed, its shape [1, C, H, W], on the CPU."""
    if config.start == "content":
        return content.clone()
    g = torch.Generator().manual_seed(int(config.seed))
    return torch.rand(content.shape, generator=g)


def resolve_content_model(config: Config, style_nets: Sequence[Classifier]) -> str:
    """The content network's name: as configured, else the first standard style network, else the first."""
    if config.content_model is not None:
        return config.content_model
    standard = [m.name for m in style_nets if not m.info.robust]
    return standard[0] if standard else style_nets[0].name


def work(config: Config) -> float:  # the cost contract of explorer.experiments: style nets x iterations x pixels
    return float(len(config.style_models) * config.iterations * config.size * config.size)


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Stylize the content image with every style network (every (network, layer) in
    single-layer mode), the content network fixed."""
    t_start = time.perf_counter()
    device = C.resolve_device(config.device)
    loaded = {name: load_network(name, device) for name in config.style_models}
    content_name = resolve_content_model(config, list(loaded.values()))
    if content_name not in loaded:
        loaded[content_name] = load_network(content_name, device)
    nets = {name: prepare(m, config.average_pooling, config.invert_grey) for name, m in loaded.items()}
    channels = image_channels(nets.values())
    content_net = nets[content_name]
    content_layer = config.content_layer or default_layers(content_net).content_layer
    check_layers(content_net, [content_layer], "content")

    plans, rules = [], []
    for i, name in enumerate(config.style_models):
        net = nets[name]
        chosen = config.style_layers[i] if config.style_layers else ()
        if chosen:
            layers, rule = tuple(chosen), "chosen"
        else:
            d = default_layers(net)
            layers, rule = d.style_layers, d.rule
        check_layers(net, layers, "style")
        rules.append(rule)
        if config.single_layer:
            plans.extend((name, (l,)) for l in layers)
        else:
            plans.append((name, layers))

    content_u8, style_u8 = config.images()
    content_cpu, style_cpu = to_tensor(content_u8), to_tensor(style_u8)
    x0_cpu = start_image(config, luma(content_cpu) if channels == 1 else content_cpu)
    total = len(plans) * config.iterations
    transfers = []
    with device_lock(device):
        content_x, style_x, x0 = content_cpu.to(device), style_cpu.to(device), x0_cpu.to(device)
        with torch.no_grad():
            content_target = content_net.features(content_x, [content_layer])[content_layer]
        grams_by_net: dict[str, dict[str, torch.Tensor]] = {}
        for k, (name, layers) in enumerate(plans):
            net = nets[name]
            if name not in grams_by_net:
                all_layers = list(dict.fromkeys(l for n, ls in plans if n == name for l in ls))
                with torch.no_grad():
                    feats = net.features(style_x, all_layers)
                grams_by_net[name] = {l: objectives.gram_matrix(feats[l]) for l in all_layers}
            grams = {l: grams_by_net[name][l] for l in layers}
            loss = transfer_loss(content_net, content_layer, content_target, net, grams,
                                 (config.content_weight, config.style_weight, config.tv_weight), config.normalize)

            def step_progress(step, _total, metrics, k=k, name=name, layers=layers):
                if progress is not None:
                    progress(k * config.iterations + step, total,
                             {**metrics, "model": name if len(layers) > 1 or not config.single_layer
                              else f"{name} {layers[0]}"})

            t0 = time.perf_counter()
            image, hist = optimize_image(loss, x0, config.optimizer, config.iterations, config.lr,
                                         step_progress, cancel)
            seconds = time.perf_counter() - t0
            with torch.no_grad():
                f = content_net.features(image, [content_layer])[content_layer]
                error = float((f - content_target).norm() / content_target.norm().clamp_min(1e-12))
            info = net.info
            transfers.append(Transfer(
                style_model=name, kind="random weights" if info.extra.get("random_weights") else info.kind,
                robust=bool(info.robust), style_layers=tuple(layers),
                image=image[0].float().cpu().repeat(3 // channels, 1, 1).numpy(),
                loss_history=hist["total"], content_history=hist["content"], style_history=hist["style"],
                tv_history=hist["tv"], initial_loss=float(hist["total"][0]), final_loss=float(hist["total"].min()),
                content_error=error, seconds=seconds))

    notes = grey_notes(nets.values(), channels)
    for name, net in nets.items():
        if net.info.extra.get("random_weights"):
            notes.append(f"{name} has random weights: its images time the computation and show nothing learned.")
        elif net.info.dataset not in data.IMAGENET_LIKE:
            notes.append(f"{name} was trained on {net.info.dataset}, not on ImageNet photos.")
    for name in config.style_models:
        if config.average_pooling and has_max_pooling_stack(loaded[name]):
            notes.append(f"{name}: max-pooling replaced by average pooling, as Gatys et al. and Nakano do.")
    return Result(
        content_image=content_cpu[0].numpy(), style_image=style_cpu[0].numpy(), content_model=content_name,
        content_kind=content_net.info.kind, content_layer=content_layer, style_models=config.style_models,
        layer_rules=tuple(rules), transfers=tuple(transfers), single_layer=config.single_layer,
        optimizer=config.optimizer, learning_rate=config.lr, iterations=config.iterations, start=config.start,
        style_weight=float(config.style_weight), content_weight=float(config.content_weight),
        tv_weight=float(config.tv_weight), normalize=config.normalize, size=tuple(content_u8.shape[:2]),
        device=str(device), seconds=time.perf_counter() - t_start, notes=tuple(notes))
