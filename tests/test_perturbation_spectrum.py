"""What PGD changes: the perturbation's spectrum, on the attack lab's PGD."""

from __future__ import annotations

import numpy as np
import pytest

from bundled_models import require
from explorer.experiments import attack_lab
from explorer.experiments import perturbation_spectrum as PS

PAIR = ("tiny-standard", "tiny-robust")


@pytest.fixture(scope="module")
def result(tiny_root, fmnist_test):
    x = fmnist_test.float_images(slice(0, 1))[0]
    config = PS.Config.for_image(x, PAIR, label=int(fmnist_test.labels[0]), norm="l2", eps=1.5, steps=10,
                                 device="cpu")
    return config, PS.run(config)


def test_perturbations_are_the_attack_labs(result):
    config, res = result
    lab = attack_lab.run(config.attack_config())
    for s, a in zip(res.spectra, lab.attacks):
        np.testing.assert_array_equal(s.perturbation, a.perturbation)
        assert s.success == a.success and s.pred_after == a.pred_after
        assert s.perturbation_l2 <= 1.5 + 1e-4


def test_power_spectrum_obeys_parseval_and_the_curves_are_cumulative(result):
    _, res = result
    h, w = res.original.shape[-2:]
    for i, s in enumerate(res.spectra):
        # sum |DFT(delta)|^2 = H W ||delta||^2
        assert s.power.sum() == pytest.approx(h * w * s.perturbation_l2 ** 2, rel=1e-4)
        assert (np.diff(s.cumulative) >= -1e-12).all() and s.cumulative[-1] == pytest.approx(1.0)
        assert res.energy_below(i, 1.0) == pytest.approx(1.0)
        assert res.energy_below(i, 0.3) == pytest.approx(s.cumulative[30])
    assert res.noise_below(0.0) == pytest.approx(1 / (h * w))
    assert res.noise_below(1.0) == 1.0
    assert res.image_power[h // 2, w // 2] == pytest.approx(0.0, abs=1e-6)  # mean removed


def test_rows_cover_both_models_and_the_references(result):
    _, res = result
    sources = {r["source"] for r in res.rows()}
    assert len(sources) == 4 and "white noise" in sources


def test_the_robust_perturbation_sits_lower_in_frequency(tiny_root, fmnist_test):
    """Ilyas et al. / Yin et al.: over a few test images, the robust model's L2 perturbation
    keeps more of its energy at low frequencies than the standard model's."""
    low = []
    for k in range(4):
        x = fmnist_test.float_images(slice(k * 100, k * 100 + 1))[0]
        res = PS.run(PS.Config.for_image(x, PAIR, norm="l2", eps=1.5, steps=10, device="cpu"))
        low.append([res.energy_below(i, 0.25) for i in range(2)])
    low = np.array(low)
    assert low[:, 1].mean() > low[:, 0].mean()
    assert (low > res.noise_below(0.25)).all()  # both lower than white noise


@pytest.mark.parametrize("robust", ["fmnist-robust-linf", "fmnist-robust-l2"])
def test_bundled_robust_perturbations_sit_lower_in_frequency(monkeypatch, fmnist_test, robust):
    """PGD at Linf 0.1 on six test images: the robust model's perturbation keeps more of its
    energy at rho <= 0.25 than the standard model's, on average."""
    require(monkeypatch, "fmnist-standard", robust)
    low = []
    for k in range(6):
        x = fmnist_test.float_images(slice(k * 150, k * 150 + 1))[0]
        res = PS.run(PS.Config.for_image(x, ("fmnist-standard", robust), label=int(fmnist_test.labels[k * 150]),
                                         norm="linf", eps=0.1, device="cpu"))
        low.append([res.energy_below(i, 0.25) for i in range(2)])
    low = np.array(low)
    assert low[:, 1].mean() > low[:, 0].mean() + 0.05, low


def test_config_validates_through_the_attack_lab():
    x = np.zeros((1, 28, 28), dtype=np.float32)
    with pytest.raises(ValueError, match="eps"):
        PS.Config.for_image(x, PAIR, eps=-1)
    with pytest.raises(ValueError, match="norm"):
        PS.Config.for_image(x, PAIR, norm="l1")
