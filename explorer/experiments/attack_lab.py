"""Attack lab: one image, PGD on a standard and a robust model side by side.

The single-image view of Ilyas et al. (2019), "Adversarial Examples Are Not Bugs,
They Are Features": a standard model is flipped by a perturbation too small to see,
a robust model (adversarial training, Madry et al., 2018) is not, and its
perturbations look like the target class. The cross-check asks the question of the
paper's transfer section: does the perturbation made on one model fool the other?

PGD follows ``explorer.attacks.pgd`` (MadryLab conventions: untargeted maximizes the
cross-entropy of the reference class, targeted minimizes the cross-entropy of the
target, keep-the-best per restart). The probability of the tracked class (the target,
or the reference class when untargeted) at every step is ``exp(-loss)``: for the
cross-entropy ``CE(z, c) = -log softmax(z)_c``, so no second forward pass is needed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from explorer import attacks, data, zoo
from explorer.devices import best_device, device_lock
from explorer.experiments import Cancel, Progress
from explorer.experiments._common import image_to_bytes
from explorer.threat import BALLS
from explorer.threat import ball_norm as _check_norm

NORMS = BALLS  # the threat module owns the names
MAX_STEPS = 5000
MAX_RESTARTS = 50


EpsRange = data.EpsRange


def eps_range(dataset: str, norm: str) -> EpsRange:
    """The eps slider range for a dataset and norm (ImageNet's for unknown datasets)."""
    norm = _check_norm(norm)
    return data.DATASETS.get(dataset.removesuffix("-bundled"), data.DATASETS["imagenet"]).eps_range(norm)


@dataclass(frozen=True)
class Config:
    """One attack-lab run.

    Attributes:
        models: one or two zoo names; two are attacked side by side (standard, robust).
        image: the clean image as float32 bytes of shape ``image_shape`` (C, H, W), in
            [0, 1] (bytes keep the config hashable; build it with ``Config.for_image``).
        image_shape: (C, H, W); must be the models' input size.
        label: the true class when known; None attacks away from each model's own
            clean prediction.
        norm: ``linf`` or ``l2``.
        eps: radius of the ball.
        steps: PGD steps per restart.
        step_size: None for 2.5 * eps / steps.
        target: None (untargeted) or the class to push toward.
        random_start: start each restart at a random point of the ball.
        restarts: independent runs; the best per model is kept.
        seed: seeds the random starts.
        device: torch device string; None for ``best_device()``.
    """

    models: tuple[str, ...]
    image: bytes
    image_shape: tuple[int, int, int]
    label: Optional[int] = None
    norm: str = "linf"
    eps: float = 0.1
    steps: int = 20
    step_size: Optional[float] = None
    target: Optional[int] = None
    random_start: bool = False
    restarts: int = 1
    seed: int = 0
    device: Optional[str] = None

    def __post_init__(self):
        if isinstance(self.models, str):
            object.__setattr__(self, "models", (self.models,))
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        object.__setattr__(self, "norm", _check_norm(self.norm))
        if not 1 <= len(self.models) <= 2 or not all(isinstance(m, str) and m for m in self.models):
            raise ValueError(f"models must be one or two zoo names, got {self.models!r}")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"the two models must differ, got {self.models!r}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W), got {self.image_shape!r}")
        expected = 4 * math.prod(self.image_shape)
        if not isinstance(self.image, bytes) or len(self.image) != expected:
            raise ValueError(f"image must be {expected} bytes of float32 for shape {self.image_shape}, "
                             f"got {len(self.image) if isinstance(self.image, bytes) else type(self.image).__name__}")
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be a finite number > 0, got {self.eps!r}")
        limit = 1.0 if self.norm == "linf" else math.sqrt(math.prod(self.image_shape))
        if self.eps > limit:
            raise ValueError(f"eps {self.eps:g} is larger than the whole [0, 1] image box in {self.norm} "
                             f"(at most {limit:g} for a {self.image_shape} image)")
        if not (isinstance(self.steps, int) and 1 <= self.steps <= MAX_STEPS):
            raise ValueError(f"steps must be an integer in 1..{MAX_STEPS}, got {self.steps!r}")
        if self.step_size is not None and not (math.isfinite(self.step_size) and self.step_size > 0):
            raise ValueError(f"step_size must be a finite number > 0 or None, got {self.step_size!r}")
        if not (isinstance(self.restarts, int) and 1 <= self.restarts <= MAX_RESTARTS):
            raise ValueError(f"restarts must be an integer in 1..{MAX_RESTARTS}, got {self.restarts!r}")
        for what, value in (("label", self.label), ("target", self.target)):
            if value is not None and not (isinstance(value, (int, np.integer)) and value >= 0):
                raise ValueError(f"{what} must be a class index >= 0 or None, got {value!r}")

    @classmethod
    def for_image(cls, image: np.ndarray | torch.Tensor, models, **kwargs) -> "Config":
        """A config for ``image``: [C, H, W] or [1, C, H, W] floats in [0, 1]."""
        image_bytes, shape = image_to_bytes(image)
        return cls(models=tuple(models) if not isinstance(models, str) else (models,), image=image_bytes,
                   image_shape=shape, **kwargs)

    def image_array(self) -> np.ndarray:
        """The clean image, [C, H, W] float32."""
        return np.frombuffer(self.image, dtype="<f4").reshape(self.image_shape).copy()

    @property
    def targeted(self) -> bool:
        return self.target is not None

    def resolved_step_size(self) -> float:
        return float(self.step_size) if self.step_size is not None else 2.5 * self.eps / self.steps


@dataclass(frozen=True)
class ModelAttack:
    """PGD on one model.

    Attributes:
        model, kind, robust: which model (``kind`` as the zoo says it).
        class_names: the model's classes.
        label: reference class: the true label, or the model's clean prediction.
        label_is_true: whether ``label`` is the true label.
        target: the target class, or None (untargeted).
        tracked_class: the class whose probability ``prob_history`` follows (target or label).
        adversarial, perturbation: [C, H, W] float32; ``perturbation = adversarial - original``.
        perturbation_linf, perturbation_l2: sizes of the perturbation.
        amplification: factor that maps the perturbation onto [0, 1] for display:
            ``0.5 + amplification * perturbation`` (``1 / (2 max|delta|)``).
        probs_before, probs_after: softmax over all classes, [K] float32.
        loss_history: cross-entropy of the tracked class per step, [restarts, steps + 1].
        prob_history: ``exp(-loss_history)``, the tracked class probability per step.
        success: untargeted: the prediction left ``label``; targeted: it reached ``target``.
        seconds: wall time of the attack.
    """

    model: str
    kind: str
    robust: bool
    class_names: tuple[str, ...]
    label: int
    label_is_true: bool
    target: Optional[int]
    tracked_class: int
    adversarial: np.ndarray
    perturbation: np.ndarray
    perturbation_linf: float
    perturbation_l2: float
    amplification: float
    probs_before: np.ndarray
    probs_after: np.ndarray
    loss_history: np.ndarray
    prob_history: np.ndarray
    success: bool
    seconds: float

    @property
    def pred_before(self) -> int:
        return int(self.probs_before.argmax())

    @property
    def pred_after(self) -> int:
        return int(self.probs_after.argmax())

    @property
    def wrong_before(self) -> bool:
        """Untargeted, the clean prediction already misses the true label: the attack had nothing to flip."""
        return self.target is None and self.label_is_true and self.pred_before != self.label

    @property
    def target_before(self) -> bool:
        """Targeted, the clean prediction already is the target: the attack had nothing to pull."""
        return self.target is not None and self.pred_before == self.target

    @property
    def verdict(self) -> str:
        """The outcome in a few words: ``wrong before the attack``, ``target before the attack``,
        ``fooled``, or ``not fooled`` (this PGD run did not move it at this eps: a failed search, no proof
        of robustness)."""
        if self.wrong_before:
            return "wrong before the attack"
        if self.target_before:
            return "target before the attack"
        return "fooled" if self.success else "not fooled"

    def top_k(self, k: int = 5, after: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(class indices, probabilities) of the ``k`` most likely classes, best first."""
        probs = self.probs_after if after else self.probs_before
        idx = np.argsort(-probs, kind="stable")[:k]
        return idx, probs[idx]


@dataclass(frozen=True)
class Transfer:
    """The perturbation found on ``source`` applied to ``victim``.

    Attributes:
        victim_label: the victim's reference class (true label or its clean prediction).
        victim_pred: the victim's prediction on the source's adversarial image.
        victim_prob: the victim's probability of the tracked class (target, or its label).
        fooled: untargeted: ``victim_pred != victim_label``; targeted: ``victim_pred == target``.
    """

    source: str
    victim: str
    victim_label: int
    victim_pred: int
    victim_prob: float
    fooled: bool


@dataclass(frozen=True)
class Result:
    """Attacks on every model of the pair and the transfer cross-check."""

    original: np.ndarray
    attacks: tuple[ModelAttack, ...]
    transfer: tuple[Transfer, ...]
    norm: str
    eps: float
    steps: int
    step_size: float
    restarts: int
    targeted: bool
    device: str

    def attack(self, model: str) -> ModelAttack:
        for a in self.attacks:
            if a.model == model:
                return a
        raise KeyError(f"no attack on {model!r}; models: {[a.model for a in self.attacks]}")

    def transfer_sentence(self) -> str:
        """The cross-check in plain words."""
        if not self.transfer:
            return "One model only: no transfer cross-check."
        parts = []
        for t in self.transfer:
            victim = self.attack(t.victim)
            names = victim.class_names
            if victim.wrong_before or victim.target_before:  # nothing to fool: say so, not "fools"
                already = "wrong" if victim.wrong_before else "on the target"
                parts.append(f"{t.victim} was {already} before any attack ({names[victim.pred_before]}); with the "
                             f"perturbation made on {t.source} it predicts {names[t.victim_pred]}")
                continue
            verb = "fools" if t.fooled else "does not fool"
            parts.append(f"the perturbation made on {t.source} {verb} {t.victim} "
                         f"(it predicts {names[t.victim_pred]})")
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + "."




def amplification_factor(perturbation: np.ndarray) -> float:
    """``1 / (2 max|delta|)``: maps the perturbation to [0, 1] around 0.5 (1 for delta = 0)."""
    peak = float(np.abs(perturbation).max()) if perturbation.size else 0.0
    return 1.0 / (2.0 * peak) if peak > 0 else 1.0


def _load_models(config: Config, device: torch.device):
    models = [zoo.load(name, device=device) for name in config.models]
    for m in models:
        if tuple(m.info.input_size) != config.image_shape:
            raise ValueError(f"{m.name} takes {tuple(m.info.input_size)} images, the image is "
                             f"{config.image_shape}; resize it to the model's input size first")
    if len(models) == 2 and len(models[0].class_names) != len(models[1].class_names):
        raise ValueError(f"{models[0].name} and {models[1].name} do not share a label space "
                         f"({len(models[0].class_names)} vs {len(models[1].class_names)} classes)")
    num_classes = len(models[0].class_names)
    for what, value in (("label", config.label), ("target", config.target)):
        if value is not None and value >= num_classes:
            raise ValueError(f"{what} {value} is out of range: the models have {num_classes} classes")
    return models


def work(config: Config) -> float:
    """Image-steps of the run (``explorer.experiments``' cost contract): steps x restarts x models."""
    return float(len(config.models) * config.steps * config.restarts)


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Attack every model of ``config.models`` on the image, then cross-check transfer.

    ``progress(step, total, metrics)`` counts steps over all models and restarts;
    ``metrics`` holds ``model`` and the mean ``loss``.
    """
    device = torch.device(config.device) if config.device else best_device()
    models = _load_models(config, device)
    x_cpu = torch.from_numpy(config.image_array())[None]
    step_size = config.resolved_step_size()
    per_model = config.steps * config.restarts
    total = per_model * len(models)

    with device_lock(device):
        x = x_cpu.to(device)
        attacks_out: list[ModelAttack] = []
        adversarials: list[torch.Tensor] = []
        for i, model in enumerate(models):
            def model_progress(step, _total, metrics, i=i, name=model.name):
                if progress is not None:
                    progress(i * per_model + step, total, {**metrics, "model": name})

            t0 = time.perf_counter()
            with torch.no_grad():
                probs_before = model(x).float().softmax(1)[0]
            label = config.label if config.label is not None else int(probs_before.argmax())
            y = torch.tensor([label], device=device)
            res = attacks.pgd(model, x, y, config.norm, config.eps, config.steps, step_size,
                              target=config.target, random_start=config.random_start, restarts=config.restarts,
                              keep_best=True, seed=config.seed, progress=model_progress, cancel=cancel)
            seconds = time.perf_counter() - t0
            loss = res.loss_history[:, :, 0].double()
            delta = res.perturbation[0].detach().float().cpu().numpy()
            adversarials.append(res.x_adv)
            attacks_out.append(ModelAttack(
                model=model.name, kind=model.info.kind, robust=bool(model.info.robust),
                class_names=tuple(model.class_names), label=label, label_is_true=config.label is not None,
                target=config.target, tracked_class=int(res.target[0]),
                adversarial=res.x_adv[0].detach().float().cpu().numpy(), perturbation=delta,
                perturbation_linf=float(np.abs(delta).max()), perturbation_l2=float(np.linalg.norm(delta.ravel())),
                amplification=amplification_factor(delta),
                probs_before=probs_before.cpu().numpy().astype(np.float32),
                probs_after=res.logits_adv[0].float().softmax(0).cpu().numpy().astype(np.float32),
                loss_history=loss.float().numpy(), prob_history=torch.exp(-loss).float().numpy(),
                success=bool(res.success[0]), seconds=seconds))

        transfers: list[Transfer] = []
        for s, source in enumerate(attacks_out):
            for v, victim in enumerate(attacks_out):
                if s == v:
                    continue
                with torch.no_grad():
                    probs = models[v](adversarials[s]).float().softmax(1)[0].cpu().numpy()
                pred = int(probs.argmax())
                tracked = config.target if config.targeted else victim.label
                fooled = pred == config.target if config.targeted else pred != victim.label
                transfers.append(Transfer(source=source.model, victim=victim.model, victim_label=victim.label,
                                          victim_pred=pred, victim_prob=float(probs[tracked]), fooled=bool(fooled)))

    return Result(original=config.image_array(), attacks=tuple(attacks_out), transfer=tuple(transfers),
                  norm=config.norm, eps=float(config.eps), steps=config.steps, step_size=step_size,
                  restarts=config.restarts, targeted=config.targeted, device=str(device))
