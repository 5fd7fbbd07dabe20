"""Adversarial squares (Nakkiran's Distill comment): adversarial examples that are bugs.

Preetum Nakkiran, "Adversarial Examples are Just Bugs, Too", in the Distill discussion of
Ilyas et al. (2019). Each image is a square of one sign: x = s (1 + u), u uniform in
[-0.1, 0.1] per pixel, s a random sign that is the label. Every pixel lies at least 0.9 from
zero, so the linear classifier sign(mean x) is correct and robust to every Linf perturbation
below 0.9: the distribution has no non-robust features to exploit. Flip 10% of the training
labels and train a network until it fits them: to fit the flipped squares it must carve tiny
pockets around them, and it becomes vulnerable at tiny eps (his ResNet-18, Adam 1e-5, 20
epochs: flipped by Linf 0.01), while the same network stopped early (1 epoch), or trained on
clean labels, stays robust. Adversarial examples can arise from fitting noise: bugs.

Pixel values live in [-1.1, 1.1] (the commenter's units, and every eps here is in them); the
models see (x + 1 + noise) / (2 (1 + noise)) in [0, 1], so an Linf eps becomes
eps / (2 (1 + noise)) for the attack (``attacks.robust_accuracy``: PGD with a random start).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import torch

from explorer.attacks import robust_accuracy
from explorer.experiments import Cancel, Progress
from explorer.experiments import _common as C
from explorer.experiments import _discussion as D

#: Nakkiran's numbers: a robust linear classifier to Linf 0.9; the noisy-label ResNet-18 flipped at 0.01.
COMMENTER = {"robust_linear_eps": 0.9, "noisy_fit_flipped_at": 0.01, "label_noise": 0.1, "epochs": 20}
CLASS_NAMES = ("-1", "+1")


@dataclass(frozen=True)
class Config:
    """Attributes:
        size: the square's side in pixels (one channel).
        n_train, n_test: images drawn.
        label_noise: fraction of training labels flipped (exactly round(label_noise * n_train)).
        pixel_noise: half-width of the uniform pixel noise u.
        arch, epochs, lr, batch_size: the network and its Adam training (no weight decay).
        fit_until: None (default): ``epochs`` with a cosine learning rate. A fraction: Nakkiran's
            "train until the noisy labels are fit": a constant ``lr`` (his: Adam 1e-5) until the
            noisy run fits this fraction of its training labels and of the *flipped* ones among
            them (checked after each epoch), at most ``epochs``; the clean run gets as many epochs.
        early_epochs: the early-stopped snapshot of the noisy run.
        eps: Linf radii in the commenter's units.
        attack_steps: PGD steps per eps.
        seed, device: as everywhere.
    """

    size: int = 16
    n_train: int = 1000
    n_test: int = 500
    label_noise: float = 0.1
    pixel_noise: float = 0.1
    arch: str = "resnet_small"
    epochs: int = 20
    lr: float = 1e-3
    fit_until: Optional[float] = None
    batch_size: int = 64
    early_epochs: int = 1
    eps: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 0.9)
    attack_steps: int = 10
    seed: int = 0
    device: str = ""

    def __post_init__(self):
        object.__setattr__(self, "eps", tuple(float(e) for e in self.eps))
        C.check_int("size", self.size, 4, 64)
        C.check_int("n_train", self.n_train, 10, 100000)
        C.check_int("n_test", self.n_test, 10, 100000)
        if not 0 <= self.label_noise < 0.5:
            raise ValueError(f"label_noise must lie in [0, 0.5), got {self.label_noise!r}")
        if not 0 <= self.pixel_noise < 1:
            raise ValueError(f"pixel_noise must lie in [0, 1), got {self.pixel_noise!r}")
        C.check_int("epochs", self.epochs, 1, 1000)
        C.check_int("early_epochs", self.early_epochs, 1, self.epochs)
        C.check_positive("lr", self.lr)
        if self.fit_until is not None and not 0 < self.fit_until <= 1:
            raise ValueError(f"fit_until must be a fraction in (0, 1], got {self.fit_until!r}")
        C.check_int("batch_size", self.batch_size, 1, 100000)
        C.check_int("attack_steps", self.attack_steps, 1, 1000)
        if not self.eps or any(not (0 < e <= 2) for e in self.eps):
            raise ValueError(f"eps must be one or more numbers in (0, 2], got {self.eps!r}")

    @classmethod
    def full(cls, **kw) -> "Config":
        """Nakkiran's size: 32 x 32 squares, 10,000 training and 2,000 test images."""
        return cls(**{"size": 32, "n_train": 10000, "n_test": 2000, **kw})


@dataclass(frozen=True)
class Squares:
    """Attributes:
        x: images in the commenter's units, [N, 1, size, size].
        y: true labels (1 for +1, 0 for -1); noisy: the training labels (some flipped).
    """

    x: torch.Tensor
    y: torch.Tensor
    noisy: torch.Tensor


def squares(n: int, size: int, pixel_noise: float, label_noise: float, seed: int) -> Squares:
    """``n`` squares x = s (1 + u); label = (s > 0); exactly round(label_noise * n) labels flipped."""
    g = torch.Generator().manual_seed(int(seed))
    s = torch.randint(0, 2, (n,), generator=g)
    u = (2 * torch.rand(n, 1, size, size, generator=g) - 1) * pixel_noise
    x = (2 * s - 1).float().view(-1, 1, 1, 1) * (1 + u)
    flip = torch.randperm(n, generator=g)[:int(round(label_noise * n))]
    noisy = s.clone()
    noisy[flip] = 1 - noisy[flip]
    return Squares(x, s, noisy)


def to_unit(x: torch.Tensor, pixel_noise: float) -> torch.Tensor:
    """Commenter's units [-(1 + noise), 1 + noise] -> [0, 1]."""
    return (x + 1 + pixel_noise) / (2 * (1 + pixel_noise))


def linear_robust_accuracy(x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
    """Exact Linf robust accuracy of sign(mean x): an eps ball moves the mean by at most eps."""
    margin = (2 * y - 1).float() * x.flatten(1).mean(1)
    return float((margin > eps).float().mean())


@dataclass(frozen=True)
class Row:
    """One model: its fit of the noisy training labels and its test accuracy per eps (eps 0 first)."""

    model: str
    epochs: int
    train_labels: str
    fit_noisy: float
    fit_flipped: float
    robust: tuple[float, ...]


@dataclass(frozen=True)
class Result:
    rows: tuple[Row, ...]
    eps: tuple[float, ...]
    flipped: int
    n_train: int
    n_test: int
    size: int
    seconds: float


def work(config: Config) -> float:
    """Image-steps of the run (``explorer.experiments``' cost contract): two trainings (noisy and clean labels,
    ``epochs`` at most), then PGD on three models at every eps."""
    return float(2 * config.n_train * config.epochs + 3 * config.n_test * len(config.eps) * config.attack_steps)


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Fit noisy labels (and keep an early snapshot), fit clean labels, attack all three."""
    t0 = time.perf_counter()
    device = C.resolve_device(config.device or None)
    train = squares(config.n_train, config.size, config.pixel_noise, config.label_noise, config.seed)
    test = squares(config.n_test, config.size, config.pixel_noise, 0.0, config.seed + 1)
    x_tr, x_te = to_unit(train.x, config.pixel_noise), to_unit(test.x, config.pixel_noise)
    phases = D.Phases(progress, 5)
    flipped = train.noisy != train.y
    schedule = "cosine" if config.fit_until is None else "constant"
    kw = dict(class_names=CLASS_NAMES, seed=config.seed, batch_size=config.batch_size, lr=config.lr,
              optimizer="adam", weight_decay=0.0, mean=(0.5,), std=(0.5,), device=device, cancel=cancel,
              schedule=schedule)

    def fitted(epoch: int, model) -> bool:  # Nakkiran: until the noisy labels are fit
        if config.fit_until is None or not bool(flipped.any()):
            return False
        pred = D.predict(model, x_tr)  # both: a net that flips every label fits the flipped ones too
        fit_all = float((pred == train.noisy).float().mean())
        return min(fit_all, float((pred[flipped] == train.noisy[flipped]).float().mean())) >= config.fit_until

    noisy = D.fit(config.arch, x_tr, train.noisy, keep=(config.early_epochs,), name="noisy labels",
                  progress=phases.next("fitting the noisy labels"), epochs=config.epochs, stop=fitted, **kw)
    ran = max(noisy)
    clean = D.train(config.arch, x_tr, train.y, name="clean labels", progress=phases.next("fitting clean labels"),
                    epochs=ran, **kw)
    models = [(f"noisy labels, {ran} epochs", ran, "noisy", noisy[ran]),
              (f"noisy labels, stopped after {config.early_epochs} epoch{'s' if config.early_epochs > 1 else ''}",
               config.early_epochs, "noisy",
               noisy[config.early_epochs]),
              (f"clean labels, {ran} epochs", ran, "clean", clean)]
    scale = 2 * (1 + config.pixel_noise)
    eps01 = [0.0] + [e / scale for e in config.eps]
    rows = []
    for name, epochs, labels, model in models:
        cb = phases.next(f"attacking: {name}")
        pred = D.predict(model, x_tr)
        acc = robust_accuracy(model, [(x_te[i:i + 500], test.y[i:i + 500]) for i in range(0, len(x_te), 500)],
                              "linf", eps01, config.attack_steps, seed=config.seed)
        if cb is not None:
            cb(1, 1)
        rows.append(Row(model=name, epochs=epochs, train_labels=labels,
                        fit_noisy=float((pred == train.noisy).float().mean()),
                        fit_flipped=float((pred[flipped] == train.noisy[flipped]).float().mean())
                        if bool(flipped.any()) else float("nan"),
                        robust=tuple(acc[e] for e in eps01)))
    rows.append(Row(model="linear: sign(mean x)", epochs=0, train_labels="none",
                    fit_noisy=float(((train.x.flatten(1).mean(1) > 0).long() == train.noisy).float().mean()),
                    fit_flipped=0.0,
                    robust=tuple(linear_robust_accuracy(test.x, test.y, e) for e in [0.0, *config.eps])))
    return Result(rows=tuple(rows), eps=(0.0, *config.eps), flipped=int(flipped.sum()), n_train=config.n_train,
                  n_test=config.n_test, size=config.size, seconds=time.perf_counter() - t0)


def flip_rate(data: Squares) -> float:
    """Fraction of labels that differ from the sign (the label noise actually applied)."""
    return int((data.noisy != data.y).sum()) / len(data.y)


def summary(result: dict) -> str:
    """What the table shows, in its own numbers: each model's test accuracy clean and at the smallest
    eps, and the largest eps ``sign(mean x)`` survives (``result``: a saved or live run, as a dict)."""
    eps = list(result["eps"])
    small = next(i for i, e in enumerate(eps) if e > 0)
    parts = [f"{r['model']} {100 * r['robust'][0]:.0f}% clean, {100 * r['robust'][small]:.0f}% at eps {eps[small]:g}"
             for r in result["rows"] if not r["model"].startswith("linear")]
    text = "Here: " + "; ".join(parts) + "."
    linear = next((r for r in result["rows"] if r["model"].startswith("linear")), None)
    if linear is not None:
        kept = [e for e, a in zip(eps, linear["robust"]) if a >= 0.99]
        text += (f" {linear['model']} keeps at least 99% up to eps {max(kept):g}." if kept
                 else f" {linear['model']} keeps under 99% even clean.")
    return text
