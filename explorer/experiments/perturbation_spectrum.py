"""What PGD changes: the perturbation of one image under the same eps for both models,
and where its energy sits in frequency.

Ilyas et al. (2019), "Adversarial Examples Are Not Bugs, They Are Features", and the
Distill discussion (Hendrycks & Gilmer; Yin et al. 2019): a standard model's adversarial
perturbation is spread over high frequencies and looks like noise; a robust model's is
concentrated at low frequencies and looks like the shapes of a class. The attack is the
attack lab's (``attack_lab.run``: PGD through the one loop, keep-the-best); this module
adds the power spectrum |DFT(delta)|^2 of each perturbation and its cumulative energy
against the normalized frequency radius rho of ``frequency`` (0: the mean, 1: the corner
frequency). ``Result.energy_below(i, cutoff)`` is the fraction of model i's
perturbation energy at rho <= cutoff; white noise would put ``Result.noise_below(cutoff)``
(the fraction of frequencies) there.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import numpy as np

from explorer.experiments import Cancel, Progress, attack_lab
from explorer.experiments.frequency import energy_below, power_spectrum, radius

#: rho grid of the cumulative-energy curves.
CURVE_POINTS = 101


@dataclass(frozen=True)
class Config(attack_lab.Config):
    """PGD on every model at one eps, then the spectra: the attack lab's settings (one
    definition, ``attack_lab.Config``, and its checks), with L2 eps 1.5 by default."""

    norm: str = "l2"
    eps: float = 1.5

    def attack_config(self) -> attack_lab.Config:
        """The attack lab's run of these settings."""
        return attack_lab.Config(**{f.name: getattr(self, f.name) for f in fields(attack_lab.Config)})


@dataclass(frozen=True)
class ModelSpectrum:
    """One model's perturbation and its spectrum.

    Attributes:
        perturbation: delta = adversarial - original, [C, H, W] float32.
        amplification: display scale, 0.5 + amplification * delta maps delta onto [0, 1].
        perturbation_l2, perturbation_linf: its sizes.
        power: |DFT(delta)|^2 summed over channels, fftshifted (mean at the centre), [H, W].
        cumulative: fraction of the energy at rho <= ``Result.curve_rho`` [CURVE_POINTS].
        pred_before, pred_after: predicted class on the original and the adversarial image.
        success: the attack flipped the prediction (or reached the target).
    """

    model: str
    kind: str
    robust: bool
    adversarial: np.ndarray
    perturbation: np.ndarray
    amplification: float
    perturbation_l2: float
    perturbation_linf: float
    power: np.ndarray
    cumulative: np.ndarray
    pred_before: int
    pred_after: int
    prob_after: float
    success: bool


@dataclass(frozen=True)
class Result:
    """Both models' perturbations and spectra, and the clean image's spectrum for reference."""

    original: np.ndarray
    class_names: tuple[str, ...]
    spectra: tuple[ModelSpectrum, ...]
    image_power: np.ndarray
    image_cumulative: np.ndarray
    curve_rho: np.ndarray
    noise_cumulative: np.ndarray
    norm: str
    eps: float
    steps: int
    step_size: float
    targeted: bool
    device: str

    def energy_below(self, index: int, cutoff: float) -> float:
        """Fraction of model ``index``'s perturbation energy at rho <= cutoff."""
        return energy_below(self.spectra[index].power, cutoff)

    def noise_below(self, cutoff: float) -> float:
        """What white noise would put there: the fraction of DFT entries at rho <= cutoff."""
        rho = radius(*self.image_power.shape)
        return float((rho <= cutoff + 1e-9).mean())

    def comparison(self, cutoff: float) -> str:
        """Whether the robust model's perturbation sits at lower frequencies than the standard one's,
        in the numbers of ``energy_below`` at ``cutoff`` (empty without one of each)."""
        standard = [i for i, s in enumerate(self.spectra) if not s.robust]
        robust = [i for i, s in enumerate(self.spectra) if s.robust]
        if not standard or not robust:
            return ""
        s, r = standard[0], robust[0]
        es, er = self.energy_below(s, cutoff), self.energy_below(r, cutoff)
        verdict = "lower" if er > es else "not lower"
        return (f"On this image {self.spectra[r].model}'s perturbation puts {er:.0%} of its energy at ρ ≤ "
                f"{cutoff:.2f} and {self.spectra[s].model}'s {es:.0%} (white noise {self.noise_below(cutoff):.0%}): "
                f"the robust model's perturbation is {verdict} in frequency than the standard model's.")

    def rows(self) -> list[dict]:
        """The cumulative-energy curves as plain dicts: source, rho, fraction."""
        out = []
        for name, curve in ([(f"{s.model} ({s.kind})", s.cumulative) for s in self.spectra]
                            + [("clean image (mean removed)", self.image_cumulative),
                               ("white noise", self.noise_cumulative)]):
            out += [{"source": name, "rho": float(r), "fraction": float(f)} for r, f in zip(self.curve_rho, curve)]
        return out


def cumulative_energy(power: np.ndarray, rho_grid: np.ndarray) -> np.ndarray:
    """Fraction of a shifted power spectrum at rho <= each value of ``rho_grid``."""
    return np.array([energy_below(power, float(r)) for r in rho_grid])


def work(config: Config) -> float:
    """Image-steps of the run (``explorer.experiments``' cost contract): steps x restarts x models."""
    return float(len(config.models) * config.steps * config.restarts)


def run(config: Config, progress: Optional[Progress] = None, cancel: Cancel = None) -> Result:
    """Attack each model with the attack lab's PGD, then take the perturbations' spectra."""
    attacked = attack_lab.run(config.attack_config(), progress=progress, cancel=cancel)
    grid = np.linspace(0.0, 1.0, CURVE_POINTS)
    spectra = []
    for a in attacked.attacks:
        power = power_spectrum(a.perturbation)
        spectra.append(ModelSpectrum(
            model=a.model, kind=a.kind, robust=a.robust, adversarial=a.adversarial, perturbation=a.perturbation,
            amplification=a.amplification, perturbation_l2=a.perturbation_l2,
            perturbation_linf=a.perturbation_linf, power=power, cumulative=cumulative_energy(power, grid),
            pred_before=a.pred_before, pred_after=a.pred_after, prob_after=float(a.probs_after.max()),
            success=a.success))
    x = attacked.original
    image_power = power_spectrum(x - x.mean(axis=(-2, -1), keepdims=True))
    rho = np.fft.fftshift(radius(*image_power.shape))
    noise = np.array([(rho <= r + 1e-9).mean() for r in grid])
    return Result(original=x, class_names=attacked.attacks[0].class_names, spectra=tuple(spectra),
                  image_power=image_power, image_cumulative=cumulative_energy(image_power, grid), curve_rho=grid,
                  noise_cumulative=noise, norm=attacked.norm, eps=attacked.eps, steps=attacked.steps,
                  step_size=attacked.step_size, targeted=attacked.targeted, device=attacked.device)
