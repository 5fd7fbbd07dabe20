"""Goh's linear features: the closed forms against brute force and against PGD (the one loop)."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.experiments import linear_features as L

# 200 images per class (the bundled subset has exactly that many, so CI without the full set
# sees the same images); scale 0.8 maps pixels into [0.1, 0.9], so a
# perturbation of at most 0.1 per pixel never meets the [0, 1] clamp (Goh's setting).
CONFIG = L.Config(class_a=7, class_b=9, per_class=200, n_directions=60, eps_l2=0.5, eps_linf=0.02, scale=0.8)


@pytest.fixture(scope="module")
def result():
    return L.run(CONFIG)


@pytest.fixture(scope="module")
def pair():
    x, y, names, _ = L.pair_data(CONFIG)
    return x, y


def _f(result, feature, x):
    return L.linear_feature(feature.direction, result.mean, feature.sigma_norm)(x).double()


def test_pair_data_is_scaled_into_the_interior(pair):
    x, y = pair
    assert float(x.min()) >= 0.1 - 1e-6 and float(x.max()) <= 0.9 + 1e-6
    assert set(y.tolist()) == {-1.0, 1.0} and int((y == 1).sum()) == 200


def test_features_have_unit_variance_and_usefulness_is_a_correlation(result, pair):
    x, y = pair
    for i in (0, 1, 5, 30):
        f = _f(result, result.feature(i), x)
        assert float(f.mean()) == pytest.approx(0.0, abs=1e-6)
        assert float((f ** 2).mean()) == pytest.approx(1.0, rel=1e-5)
        assert float((y.double() * f).mean()) == pytest.approx(result.usefulness[i], rel=1e-5, abs=1e-7)
    assert (result.usefulness >= 0).all() and (result.usefulness <= 1).all()
    # the principal directions come largest variance first and are orthonormal
    assert (np.diff(result.variance) <= 1e-12).all()
    flat = result.directions.reshape(len(result.variance), -1).astype(np.float64)
    np.testing.assert_allclose(flat @ flat.T, np.eye(len(flat)), atol=1e-5)


def test_dual_norms_in_the_closed_form(result):
    sd = np.sqrt(result.variance)
    np.testing.assert_allclose(result.robust_l2, result.usefulness - CONFIG.eps_l2 / sd, rtol=1e-12)
    flat = result.directions.reshape(len(sd), -1).astype(np.float64)
    np.testing.assert_allclose(result.robust_linf, result.usefulness - CONFIG.eps_linf * np.abs(flat).sum(1) / sd,
                               rtol=1e-5)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_closed_form_robust_usefulness_matches_pgd_within_2_percent(result, pair, norm):
    x, y = pair
    eps = CONFIG.eps(norm)
    features = [result.feature(i) for i in (0, 2, 10, 40)] + [result.ensemble, result.containment]
    for feat in features:
        # the worst-case perturbation stays inside the box: the clamp is inactive
        worst = eps * (np.abs(feat.direction).max() / np.linalg.norm(feat.direction) if norm == "l2" else 1.0)
        assert worst < 0.1
        closed = feat.robust(norm)
        estimate = L.pgd_robust_usefulness(feat, result.mean, x, y, norm, eps, steps=10)
        assert estimate == pytest.approx(closed, rel=0.02), (feat.name, norm, closed, estimate)
        # and the ball really costs something: PGD lowers E[y f] by the non-robustness
        assert estimate < feat.usefulness - 0.5 * (feat.usefulness - closed)


def test_a_wrong_dual_norm_would_be_caught(result, pair):
    """The PGD check tells L1 from L2: for Linf, eps * ||a||_2 (the wrong dual) is far off."""
    x, y = pair
    feat = result.feature(10)
    wrong = feat.usefulness - CONFIG.eps_linf * np.linalg.norm(feat.direction) / feat.sigma_norm
    estimate = L.pgd_robust_usefulness(feat, result.mean, x, y, "linf", CONFIG.eps_linf, steps=10)
    assert abs(estimate - wrong) > 0.1 * abs(wrong)


def test_pareto_front():
    x = np.array([0.9, 0.5, 0.4, 0.8, 0.1])
    y = np.array([-0.5, -0.1, -0.3, -0.6, -0.05])  # maximize both
    assert L.pareto_front(x, y).tolist() == [4, 1, 0]


def test_frontier_and_constructions(result):
    nr = result.non_robustness()
    for i in result.pareto:  # nobody beats a frontier point in both
        assert not np.any((result.usefulness > result.usefulness[i]) & (nr < nr[i]))
    # the ensemble of non-robust directions is more useful than any of them, and still not robust
    members = result.nonrobust
    assert len(members) > 10 and (result.robust_l2[members] < 0).all()
    assert result.ensemble.usefulness > result.usefulness[members].max()
    assert result.ensemble.robust_l2 < 0
    # containment: alpha 0 is the non-robust direction, alpha 1 the robust one
    curve = result.containment_curve
    nr_i, r_i = result.nonrobust_index, result.robust_index
    assert curve[0]["usefulness"] == pytest.approx(result.usefulness[nr_i], rel=1e-9)
    assert curve[-1]["robust_l2"] == pytest.approx(result.robust_l2[r_i], rel=1e-9)
    assert result.robust_l2[r_i] > 0 > result.robust_l2[nr_i]
    # at the default alpha the mixture is useful (more than its non-robust part) yet not robust
    c = L.run(L.Config(class_a=7, class_b=9, per_class=200, n_directions=60, scale=0.8)).containment
    assert c.usefulness > 1.5 * result.usefulness[nr_i] and c.robust_l2 < 0


def test_config_validation():
    with pytest.raises(ValueError, match="differ"):
        L.Config(class_a=3, class_b=3)
    with pytest.raises(ValueError, match="scale"):
        L.Config(scale=0)
    with pytest.raises(ValueError, match="norm"):
        L.Config(norm="l3")


def test_deterministic():
    a, b = L.run(CONFIG), L.run(CONFIG)
    np.testing.assert_array_equal(a.usefulness, b.usefulness)
    np.testing.assert_array_equal(a.directions, b.directions)


def test_containment_adds_a_useless_non_robust_direction_to_a_robust_one(result):
    """Goh's containment: the most robust-useful direction plus the LEAST useful non-robust one (not the
    most useful), and the mixture's numbers equal the closed form of two Sigma-orthogonal directions."""
    robust = result.robust()
    brittle = np.flatnonzero(robust < 0)
    nr_i, r_i = result.nonrobust_index, result.robust_index
    assert nr_i == brittle[np.argmin(result.usefulness[brittle])]
    assert r_i == np.flatnonzero(robust >= 0)[np.argmax(robust[robust >= 0])]
    most_useful = brittle[np.argmax(result.usefulness[brittle])]
    assert nr_i != most_useful and result.usefulness[nr_i] < 0.1 * result.usefulness[most_useful]
    # a = (1 - alpha) a_nr + alpha a_r with unit eigenvectors: ||a||_Sigma^2 = (1-alpha)^2 var_nr + alpha^2 var_r,
    # E[y a^T x] = (1-alpha) u_nr sd_nr + alpha u_r sd_r, ||a||_2 = sqrt((1-alpha)^2 + alpha^2)
    u, var = result.usefulness, result.variance
    for row in result.containment_curve:
        a = row["alpha"]
        s = np.sqrt((1 - a) ** 2 * var[nr_i] + a ** 2 * var[r_i])
        useful = ((1 - a) * u[nr_i] * np.sqrt(var[nr_i]) + a * u[r_i] * np.sqrt(var[r_i])) / s
        assert row["usefulness"] == pytest.approx(useful, rel=1e-6, abs=1e-9)
        assert row["robust_l2"] == pytest.approx(useful - CONFIG.eps_l2 * np.hypot(1 - a, a) / s, rel=1e-6, abs=1e-9)
    # the mixture is useful only through its robust part, and not robust
    c = result.containment
    a = result.alpha
    only_robust = a * u[r_i] * np.sqrt(var[r_i]) / np.sqrt((1 - a) ** 2 * var[nr_i] + a ** 2 * var[r_i])
    assert c.usefulness == pytest.approx(only_robust, abs=0.05)
    assert c.usefulness > 5 * u[nr_i] and c.robust(result.norm) < 0
