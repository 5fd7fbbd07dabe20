import pytest
import torch

from explorer.optimize import Cancelled, optimize
from explorer.threat import L2Ball, LinfBall, Unconstrained


def quad_loss(target):
    return lambda x: -((x - target) ** 2).flatten(1).sum(1)


def test_maximize_reaches_interior_target():
    """Maximizing -||x - t||^2 with t inside the ball converges to t."""
    x0 = torch.full((2, 1, 4, 4), 0.5)
    t = x0 + 0.03
    res = optimize(quad_loss(t), x0, LinfBall(0.1), steps=100, step_size=0.001)
    assert torch.allclose(res.x, t, atol=2e-3)


def test_minimize_flag_descends():
    x0 = torch.full((2, 1, 4, 4), 0.5)
    t = torch.full_like(x0, 0.9)
    res = optimize(lambda x: ((x - t) ** 2).flatten(1).sum(1), x0, Unconstrained(), steps=50, step_size=0.05,
                   maximize=False)
    assert res.loss.max() < 1e-3
    assert (res.history[0, -1] <= res.history[0, 0]).all()


def test_keep_best_never_worse_than_any_iterate():
    """With a step size too large the iterates oscillate; keep-the-best returns the best one seen."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(5, 1, 6, 6, generator=g) * 0.5 + 0.25
    t = x0 + 0.01 * torch.randn(x0.shape, generator=g)
    res = optimize(quad_loss(t), x0, LinfBall(0.2), steps=15, step_size=0.13, random_start=True, restarts=3,
                   generator=g)
    best_seen = res.history.flatten(0, 1).max(0).values
    assert torch.allclose(res.loss, best_seen)
    assert torch.allclose(quad_loss(t)(res.x), res.loss, atol=1e-6)
    last = optimize(quad_loss(t), x0, LinfBall(0.2), steps=15, step_size=0.13, keep_best=False)
    assert (res.loss >= last.loss - 1e-6).all()


def test_progress_and_cancel():
    calls = []
    x0 = torch.rand(2, 1, 4, 4)
    optimize(quad_loss(x0), x0, L2Ball(1.0), steps=4, restarts=2, random_start=True,
             progress=lambda s, total, m: calls.append((s, total, m["loss"])))
    assert [c[0] for c in calls] == list(range(1, 9)) and all(c[1] == 8 for c in calls)
    with pytest.raises(Cancelled, match="after 3 of 10"):
        optimize(quad_loss(x0), x0, L2Ball(1.0), steps=10, cancel=lambda: len(calls) >= 11,
                 progress=lambda s, t, m: calls.append(s))


def test_loss_must_be_per_example():
    with pytest.raises(ValueError, match="one loss per example"):
        optimize(lambda x: x.sum(), torch.rand(3, 1, 2, 2), L2Ball(1.0), steps=1)


def test_x_init_is_projected():
    x0 = torch.full((1, 1, 4, 4), 0.5)
    res = optimize(lambda x: x.flatten(1).sum(1) * 0, x0, LinfBall(0.1), steps=0, x_init=torch.ones_like(x0))
    assert torch.allclose(res.x, torch.full_like(x0, 0.6))
