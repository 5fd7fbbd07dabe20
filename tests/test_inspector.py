"""The single-image inspector: bisection against a brute-force eps grid, the saliency map, the edge score."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.experiments import inspector as I

IMAGES = (0, 1, 2, 12, 21, 40)  # positions in the bundled Fashion-MNIST test subset
GRID = 24


def _batch(fmnist_test, indices):
    x = fmnist_test.float_images(torch.tensor(indices))
    return x, fmnist_test.labels[torch.tensor(indices)].clone()


@pytest.mark.parametrize("norm,eps_max", [("linf", 0.3), ("l2", 5.0)])
def test_bisection_matches_a_brute_force_grid(tiny_pair, fmnist_test, norm, eps_max):
    """The smallest eps found by bisection agrees with the smallest flipping eps of a grid of GRID
    radii within one grid step (for most images; where bisection finds a flip below the grid's
    smallest one, that flip is checked to be real), and is never more than a step above it."""
    x, _ = _batch(fmnist_test, IMAGES)
    step = eps_max / GRID
    for model in tiny_pair:
        with torch.no_grad():
            ref = model(x).argmax(1)
        found = I.minimal_eps(model, x, ref, norm, eps_max, steps=10, iterations=9)
        grid = torch.full((len(IMAGES),), math.inf, dtype=torch.float64)
        for k in range(GRID, 0, -1):  # from the top, so the smallest flipping radius wins
            eps = torch.full((len(IMAGES),), k * step)
            ok = I.flips(model, x, ref, norm, eps, steps=10)
            grid = torch.where(ok, torch.full_like(grid, k * step), grid)
        assert torch.isinf(found).tolist() == torch.isinf(grid).tolist(), (model.name, found, grid)
        both = ~torch.isinf(found)
        assert both.any(), f"{model.name}: no image flips at {norm} {eps_max}; the test checks nothing"
        # PGD with a fixed number of steps is not exactly monotone in eps (its step size grows with eps),
        # so bisection may land on a flip below the grid's smallest one; then that flip must be real.
        below = both & (found < grid - step - 1e-9)
        if below.any():
            assert I.flips(model, x[below], ref[below], norm, found[below].float(), steps=10).all(), (
                model.name, norm, found.tolist(), grid.tolist())
        assert (found[both] <= grid[both] + step + 1e-9).all(), (model.name, norm, found.tolist(), grid.tolist())
        assert ((found[both] - grid[both]).abs() <= step + 1e-9).float().mean() >= 0.5, (
            model.name, norm, found.tolist(), grid.tolist())


def test_bisection_answer_flips_and_half_a_precision_less_is_close(tiny_pair, fmnist_test):
    x, _ = _batch(fmnist_test, IMAGES[:3])
    model = tiny_pair[0]
    with torch.no_grad():
        ref = model(x).argmax(1)
    found = I.minimal_eps(model, x, ref, "linf", 0.3, steps=10, iterations=8)
    assert torch.isfinite(found).all()
    assert I.flips(model, x, ref, "linf", found.float(), steps=10).all()  # hi always flips
    assert (found <= 0.3).all() and (found > 0).all()


def test_sobel_and_edge_alignment():
    img = np.zeros((1, 8, 8), np.float32)
    img[:, :, 4:] = 1.0  # a vertical edge between columns 3 and 4
    mag = I.sobel_magnitude(img)
    assert mag[:, 3:5].min() == pytest.approx(4.0) and mag[:, :2].max() == 0 and mag[:, 6:].max() == 0
    assert I.edge_alignment(mag[None], img) == pytest.approx(1.0)
    assert I.edge_alignment(-mag[None], img) == pytest.approx(1.0)  # the sign of the gradient does not count
    assert I.edge_alignment(np.zeros_like(img), img) == 0.0


def test_input_gradient_matches_finite_differences(tiny_pair, fmnist_test):
    model = tiny_pair[1]
    x, y = _batch(fmnist_test, (0,))
    g = I.input_gradient(model, x, y)
    d = torch.zeros_like(x)
    d[0, 0, 14, 10:18] = 1e-3
    with torch.no_grad():
        ce = lambda z: torch.nn.functional.cross_entropy(model(z), y)  # noqa: E731
        fd = (ce(x + d) - ce(x - d)) / 2
    assert float((g * d).sum()) == pytest.approx(float(fd), rel=0.05, abs=1e-6)
    assert all(p.grad is None for p in model.parameters())


def test_run_on_the_tiny_pair(tiny_root, fmnist_test):
    x, y = _batch(fmnist_test, (12,))
    config = I.Config.for_image(x[0].numpy(), ("tiny-standard", "tiny-robust"), label=int(y[0]), steps=10,
                                iterations=6, device="cpu")
    result = I.run(config)
    assert [v.model for v in result.views] == ["tiny-standard", "tiny-robust"]
    for v in result.views:
        assert v.probs.shape == (10,) and v.probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert [c for c, _ in v.top_k()] == list(np.argsort(-v.probs)[:5])
        assert v.saliency.shape == (1, 28, 28) and np.abs(v.saliency).max() > 0
        for norm, e, to in zip(result.norms, v.min_eps, v.flipped_to):
            assert (to is None) == math.isinf(e)
            assert to is None or to != v.prediction
    assert result.precision == (5.0 / 64, 0.3 / 64)
    # the robust tiny model needs a larger Linf ball than the standard one on this image
    assert result.view("tiny-standard").eps("linf") < result.view("tiny-robust").eps("linf")


def test_config_validation():
    img = np.zeros((1, 28, 28), np.float32)
    with pytest.raises(ValueError):
        I.Config.for_image(img, ("a",), norms=("l3",))
    with pytest.raises(ValueError):
        I.Config.for_image(img, ("a",), eps_max=(1.0,))  # one per norm
    with pytest.raises(ValueError):
        I.Config.for_image(img, ("a", "a"))
    with pytest.raises(ValueError):
        I.Config.for_image(img, ("a",), iterations=99)
    assert I.Config.for_image(img, "a").eps_limits("fashion-mnist") == (5.0, 0.3)
