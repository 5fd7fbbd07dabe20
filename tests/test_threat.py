import math

import pytest
import torch

from explorer.threat import L2Ball, LinfBall, Unconstrained, make_threat


@pytest.fixture
def x0():
    return torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_linf_project_and_clamp(x0):
    t = LinfBall(0.1)
    x = x0 + torch.randn_like(x0)
    p = t.project(x, x0)
    assert (p - x0).abs().max() <= 0.1 + 1e-6
    assert p.min() >= 0 and p.max() <= 1
    assert torch.allclose(t.distance(p, x0), (p - x0).flatten(1).abs().amax(1))


def test_l2_project_per_example_eps(x0):
    eps = torch.tensor([0.1, 0.2, 0.3, 0.5, 1.0, 2.0])
    t = L2Ball(eps)
    p = t.project(x0 + 5 * torch.randn_like(x0), x0)
    norms = (p - x0).flatten(1).norm(dim=1)
    assert (norms <= eps + 1e-5).all()
    assert p.min() >= 0 and p.max() <= 1


def test_l2_project_leaves_interior_points(x0):
    t = L2Ball(10.0)
    x = (x0 + 0.01).clamp(0, 1)
    assert torch.allclose(t.project(x, x0), x)


def test_l2_random_start_on_sphere():
    x0 = torch.full((4, 3, 8, 8), 0.5)
    t = L2Ball(0.5)
    s = t.random_start(x0, torch.Generator().manual_seed(1))
    # inside the box the clamp is inactive, so the start lies exactly on the sphere
    assert torch.allclose((s - x0).flatten(1).norm(dim=1), torch.full((4,), 0.5), atol=1e-5)


def test_linf_random_start_in_box(x0):
    s = LinfBall(0.05).random_start(x0, torch.Generator().manual_seed(2))
    assert (s - x0).abs().max() <= 0.05 + 1e-6
    assert (s != x0).any()


def test_l2_step_has_step_size_length():
    x = torch.full((3, 1, 4, 4), 0.5)
    g = torch.randn(3, 1, 4, 4)
    out = L2Ball(1.0).step(x, g, 0.2)
    assert torch.allclose((out - x).flatten(1).norm(dim=1), torch.full((3,), 0.2), atol=1e-6)


def test_linf_step_is_signed():
    x = torch.zeros(1, 1, 2, 2)
    g = torch.tensor([[[[1.0, -2.0], [0.5, -0.1]]]])
    out = LinfBall(1.0).step(x, g, 0.1)
    assert torch.allclose(out, torch.tensor([[[[0.1, -0.1], [0.1, -0.1]]]]))


def test_unconstrained_only_clamps(x0):
    t = Unconstrained()
    x = x0 + 3.0
    assert torch.equal(t.project(x, x0), torch.ones_like(x))
    assert math.isinf(t.eps)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_eps_refused(bad):
    with pytest.raises(ValueError, match="eps"):
        LinfBall(bad)


def test_make_threat_names():
    assert isinstance(make_threat("Linf", 0.1), LinfBall)
    assert isinstance(make_threat("L2", 0.1), L2Ball)
    with pytest.raises(ValueError, match="unknown threat"):
        make_threat("l3", 0.1)


def test_ball_norm_names():
    from explorer.threat import ball_norm

    assert [ball_norm(n) for n in ("Linf", "inf", "L-inf", "l2", "2")] == ["linf", "linf", "linf", "l2", "l2"]
    with pytest.raises(ValueError, match="norm must be one of"):
        ball_norm("unconstrained")
