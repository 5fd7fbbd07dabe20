"""Fourier filters, the accuracy-vs-cutoff curve and the Fourier heat map (Hendrycks & Gilmer; Yin et al.)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bundled_models import require
from explorer.experiments import fourier_heatmap as FH
from explorer.experiments import frequency as F

PAIR = ("tiny-standard", "tiny-robust")


@pytest.fixture(scope="module")
def images(fmnist_test):
    return fmnist_test.float_images(slice(0, 4))


def test_low_pass_full_cutoff_is_the_image_and_zero_is_its_mean(images):
    np.testing.assert_allclose(F.low_pass(images, 1.0, clamp=False), images, atol=1e-6)
    flat = F.low_pass(images, 0.0, clamp=False)
    np.testing.assert_allclose(flat, images.mean(dim=(-2, -1), keepdim=True).expand_as(images), atol=1e-6)
    # the clamped version too (the image is in [0, 1] already)
    np.testing.assert_allclose(F.low_pass(images, 1.0), images, atol=1e-6)


def test_high_pass_zero_cutoff_is_the_image_and_full_is_its_mean(images):
    np.testing.assert_allclose(F.high_pass(images, 0.0, clamp=False), images, atol=1e-6)
    np.testing.assert_allclose(F.high_pass(images, 1.0, clamp=False),
                               images.mean(dim=(-2, -1), keepdim=True).expand_as(images), atol=1e-6)


@pytest.mark.parametrize("cutoff", [0.1, 0.37, 0.8])
def test_low_and_high_pass_split_the_image(images, cutoff):
    """low + high = image + mean (the mean is in both), and the two bands are orthogonal."""
    low, high = F.low_pass(images, cutoff, clamp=False), F.high_pass(images, cutoff, clamp=False)
    mean = images.mean(dim=(-2, -1), keepdim=True)
    np.testing.assert_allclose(low + high, images + mean, atol=1e-5)
    inner = ((low - mean) * (high - mean)).sum(dim=(-2, -1))
    np.testing.assert_allclose(inner, 0, atol=1e-4)


def test_radius_and_energy_of_a_pure_cosine():
    rho = F.radius(28, 28)
    assert rho[0, 0] == 0 and rho.max() == pytest.approx(1.0)
    u, v = 3, 4  # cycles per image; rho = sqrt((3/28)^2 + (4/28)^2) / sqrt(0.5) = (5/28) * sqrt(2)
    b = FH.basis_image(28, 28, u, v)
    r = 5 / 28 * np.sqrt(2)
    power = F.power_spectrum(b)
    assert F.energy_below(power, r - 1e-3) == pytest.approx(0.0, abs=1e-12)
    assert F.energy_below(power, r + 1e-3) == pytest.approx(1.0)
    # Parseval: sum |DFT|^2 = H W ||b||^2
    assert power.sum() == pytest.approx(28 * 28 * 1.0)


def test_basis_image_is_a_unit_cosine_at_one_frequency_pair():
    b = FH.basis_image(28, 28, 2, -5)
    assert np.linalg.norm(b) == pytest.approx(1.0)
    spectrum = np.abs(np.fft.fft2(b))
    nonzero = set(zip(*np.nonzero(spectrum > 1e-9)))
    assert nonzero == {(2, 23), (26, 5)}
    np.testing.assert_allclose(b, FH.basis_image(28, 28, -2, 5))
    # self-conjugate frequencies (the mean, Nyquist) are still unit images
    assert np.linalg.norm(FH.basis_image(28, 28, 14, 0)) == pytest.approx(1.0)
    assert np.allclose(FH.basis_image(28, 28, 0, 0), 1 / 28)


def test_filter_run_classifies_the_filtered_image(tiny_pair, fmnist_test):
    from explorer.experiments import _common as C

    x = fmnist_test.float_images(slice(3, 4))
    config = F.FilterConfig.for_image(x, PAIR, label=int(fmnist_test.labels[3]), kind="low", cutoff=0.2,
                                      device="cpu")
    res = F.run_filter(config)
    for i, m in enumerate(tiny_pair):
        np.testing.assert_allclose(res.probs_original[i], C.probs_of(m, x)[0], atol=1e-6)
        np.testing.assert_allclose(res.probs_filtered[i], C.probs_of(m, F.low_pass(x, 0.2))[0], atol=1e-6)
    assert 0 < res.kept < 1 and 0 < res.energy_kept < 1
    full = F.run_filter(F.FilterConfig.for_image(x, PAIR, kind="high", cutoff=0.0, device="cpu"))
    assert full.kept == 1 and full.energy_kept == pytest.approx(1.0)
    np.testing.assert_allclose(full.probs_filtered, full.probs_original, atol=1e-5)


def test_accuracy_curve_ends_at_the_clean_accuracy(tiny_root):
    res = F.run(F.Config(PAIR, n_images=40, cutoffs=(0.0, 0.3, 1.0), device="cpu"))
    assert res.accuracy.shape == (2, 2, 3) and res.n_images == 40
    np.testing.assert_allclose(res.accuracy[:, 0, -1], res.clean_accuracy)  # low-pass at 1: the image
    np.testing.assert_allclose(res.accuracy[:, 1, 0], res.clean_accuracy)   # high-pass at 0: the image
    # low-pass at 0 and high-pass at 1 both leave only the mean: the same flat images
    np.testing.assert_allclose(res.accuracy[:, 0, 0], res.accuracy[:, 1, -1])
    assert (res.accuracy[:, 0, 0] < res.clean_accuracy).all()
    assert len(res.rows()) == 12


def test_heatmap_is_symmetric_and_tiny_noise_changes_nothing(tiny_root):
    res = FH.run(FH.Config(PAIR, noise_norm=1e-4, n_images=12, device="cpu"))
    assert res.error.shape == (2, 28, 28)
    assert list(res.freq_u[:2]) == [-14, -13] and res.freq_u[14] == 0
    np.testing.assert_allclose(res.error, np.broadcast_to(res.clean_error[:, None, None], res.error.shape))


def test_heatmap_cells_match_a_direct_evaluation(tiny_pair, tiny_root):
    """Mirror frequencies share a value, and one cell recomputed by hand with the same signs agrees."""
    config = FH.Config(PAIR, noise_norm=3.0, n_images=16, max_frequency=3, seed=5, device="cpu")
    res = FH.run(config)
    assert res.error.shape == (2, 7, 7)
    np.testing.assert_array_equal(res.error, res.error[:, ::-1, ::-1])  # (u, v) and (-u, -v)
    assert res.error.max() > res.clean_error.min()  # r = 3 noise does hurt somewhere
    # recompute cell (u, v) = (1, 2) directly: the signs follow the seed in canonical-pair order
    from explorer.experiments import _common as C

    x, y, _ = C.sample_test_images("fashion-mnist", 16, 5)
    pairs = sorted({FH._canonical(int(u), int(v), 28, 28) for u in res.freq_u for v in res.freq_v})
    g = torch.Generator().manual_seed(5)
    signs = torch.randint(0, 2, (len(pairs), 16, 1, 1, 1), generator=g).float() * 2 - 1
    k = pairs.index(FH._canonical(1, 2, 28, 28))
    noisy = (x + 3.0 * signs[k] * torch.from_numpy(FH.basis_image(28, 28, 1, 2)).float()).clamp(0, 1)
    for i, m in enumerate(tiny_pair):
        with torch.no_grad():
            err = float((m(noisy).argmax(1) != y).float().mean())
        assert res.error[i, 3 + 1, 3 + 2] == pytest.approx(err)


def test_bundled_heatmaps_show_yin_et_al_pattern(monkeypatch):
    """r = 4 on 30 test images: the standard model is hurt more by high frequencies than by
    low ones, the Linf-robust model the other way round."""
    pair = ("fmnist-standard", "fmnist-robust-linf")
    require(monkeypatch, *pair)
    res = FH.run(FH.Config(pair, noise_norm=4.0, n_images=30, device="cpu"))
    rho = np.hypot(res.freq_u[:, None], res.freq_v[None, :])
    low, high = rho <= 4, rho > 9
    standard, robust = res.error
    assert standard[high].mean() > standard[low].mean() + 0.05
    assert robust[low].mean() > robust[high].mean() + 0.05


def test_frequency_configs_validate():
    with pytest.raises(ValueError, match="cutoff"):
        F.FilterConfig(("a",), b"\0" * 4, (1, 1, 1), cutoff=1.5)
    with pytest.raises(ValueError, match="kind"):
        F.FilterConfig(("a",), b"\0" * 4, (1, 1, 1), kind="band")
    with pytest.raises(ValueError, match="noise_norm"):
        FH.Config(("a",), noise_norm=0)
