"""layer_robustness: closed forms on linear layers, the denominator against a direct
computation, robust-vs-standard ordering, determinism, progress/cancel and the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

from explorer import zoo
from explorer.classifier import Classifier, ClassifierInfo
from explorer.experiments import layer_robustness as LR
from explorer.optimize import Cancelled
from explorer.threat import make_threat

PAIR = ("tiny-standard", "tiny-robust")


def linear_classifier(weight: torch.Tensor, side: int = 4) -> Classifier:
    """f(x) = W x on [1, side, side] images, as a Classifier with one named layer ``linear``
    (found through a hook, the path of torchvision/timm models)."""
    k, d = weight.shape
    assert d == side * side
    net = nn.Sequential(nn.Flatten(), nn.Linear(d, k, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(weight)
    info = ClassifierInfo(name="linear", dataset="none", class_names=tuple(str(i) for i in range(k)),
                          input_size=(1, side, side))
    return Classifier(net, info, (0.0,), (1.0,), layers={"linear": "1"})


def inside_box(n: int, side: int = 4, seed: int = 0) -> torch.Tensor:
    """Images in [0.3, 0.7]: a ball of radius < 0.3 never touches the [0, 1] box."""
    g = torch.Generator().manual_seed(seed)
    return 0.3 + 0.4 * torch.rand(n, 1, side, side, generator=g)


def known_spectrum(singular_values, d: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    k = len(singular_values)
    u, _ = torch.linalg.qr(torch.randn(k, k, generator=g))
    v, _ = torch.linalg.qr(torch.randn(d, k, generator=g))
    return u @ torch.diag(torch.tensor(singular_values)) @ v.T


# --- closed forms -----------------------------------------------------------------------

def test_l2_numerator_is_eps_times_top_singular_value():
    """max_{||d||_2 <= eps} ||W d||_2 = eps * sigma_max(W); PGD from a random start climbs to
    the top right-singular direction (step = eps: a damped power iteration)."""
    w = known_spectrum([3.0, 2.0, 1.5, 1.0, 0.5, 0.25])
    sigma = float(torch.linalg.matrix_norm(w, ord=2))
    assert sigma == pytest.approx(3.0, rel=1e-5)
    model, x, eps = linear_classifier(w), inside_box(12), 0.05
    partners = LR.random_partners(12, 3, torch.Generator().manual_seed(0))
    out = LR.measure(model, x, ["linear"], make_threat("l2", eps), 50, partners, step_size=eps, batch_size=5)
    dev = out["linear"][0]
    assert np.all(dev <= eps * sigma * (1 + 1e-4))  # never above the true maximum
    assert np.all(dev >= 0.98 * eps * sigma), dev / (eps * sigma)
    assert dev.mean() == pytest.approx(eps * sigma, rel=0.02)


def test_linf_numerator_is_eps_times_l1_norm():
    """For one output w.x: max_{||d||_inf <= eps} |w.d| = eps * ||w||_1 (the corner eps*sign(w)),
    with the loop's default step size."""
    w = torch.randn(1, 16, generator=torch.Generator().manual_seed(1))
    model, x, eps = linear_classifier(w), inside_box(10), 0.05
    partners = LR.random_partners(10, 2, torch.Generator().manual_seed(0))
    out = LR.measure(model, x, ["linear"], make_threat("linf", eps), 20, partners)
    dev = out["linear"][0]
    bound = eps * float(w.abs().sum())
    assert np.all(dev <= bound * (1 + 1e-4))
    assert np.all(dev >= 0.98 * bound), dev / bound


def test_denominator_matches_direct_computation_on_a_linear_layer():
    w = known_spectrum([2.0, 1.0, 0.5])
    model, x = linear_classifier(w), inside_box(9, seed=3)
    partners = LR.random_partners(9, 4, torch.Generator().manual_seed(5))
    # batch 4: partners both inside and outside each batch
    dev, dist, dims, _ = LR.measure(model, x, ["linear"], make_threat("l2", 0.05), 2, partners, batch_size=4)["linear"]
    flat = x.flatten(1).double()
    direct = np.array([[float((w.double() @ (flat[i] - flat[j])).norm()) for j in partners[i].tolist()]
                       for i in range(9)])
    np.testing.assert_allclose(dist, direct, rtol=1e-5)
    assert dims == 3
    s = LR.summarize(dev, dist)
    assert s["denominator"] == pytest.approx(direct.mean(), rel=1e-6)
    assert s["ratio"] == pytest.approx(dev.mean() / direct.mean(), rel=1e-6)


def test_random_partners_are_distinct_and_cover_the_others():
    p = LR.random_partners(5, 400, torch.Generator().manual_seed(0))
    assert p.shape == (5, 400) and p.dtype == torch.int64
    assert not (p == torch.arange(5)[:, None]).any()
    for i in range(5):
        assert set(p[i].tolist()) == set(range(5)) - {i}
    with pytest.raises(ValueError):
        LR.random_partners(1, 1, torch.Generator())


def test_summarize_interval_and_fallback():
    rng = np.random.default_rng(0)
    dev = rng.uniform(1, 2, 200)
    dist = rng.uniform(3, 5, (200, 4))
    s = LR.summarize(dev, dist, ci_level=0.9, bootstrap=2000, seed=1)
    assert s["ci_low"] < s["ratio"] < s["ci_high"]
    assert s["numerator_se"] == pytest.approx(dev.std(ddof=1) / np.sqrt(200))
    d = LR.summarize(dev, dist, ci_level=0.9, bootstrap=0)
    assert d["ratio"] == s["ratio"]
    # delta method and bootstrap agree on the width to within a third
    assert (d["ci_high"] - d["ci_low"]) == pytest.approx(s["ci_high"] - s["ci_low"], rel=0.33)
    # constant data: a zero-width interval
    c = LR.summarize(np.ones(10), np.full((10, 2), 4.0))
    assert c["ratio"] == c["ci_low"] == c["ci_high"] == 0.25


# --- on the tiny pair -------------------------------------------------------------------

def _config(**kw):
    base = dict(models=PAIR, norm="linf", eps=0.1, n_images=12, steps=5, pairs_per_image=3, batch_size=8,
                bootstrap=200, seed=0, device="cpu")
    base.update(kw)
    return LR.Config(**base)


@pytest.fixture(scope="module")
def tiny_result(tiny_root):
    return LR.run(_config())


def test_result_layout(tiny_result, tiny_pair):
    std, _ = tiny_pair
    expected = [l for l in std.layer_names if l != "logits"]
    assert [m.model for m in tiny_result.models] == list(PAIR)
    assert [(r.model, r.layer) for r in tiny_result.layers] == [(m, l) for m in PAIR for l in expected]
    assert [r.index for r in tiny_result.layers[:len(expected)]] == list(range(len(expected)))
    assert tiny_result.partners.shape == (12, 3)
    for r in tiny_result.layers:
        assert r.deviations.shape == (12,) and r.distances.shape == (12, 3)
        assert r.ci_low <= r.ratio <= r.ci_high
        assert r.ratio == pytest.approx(r.deviations.mean() / r.distances.mean())
        assert np.all(r.deviations > 0)
    rows = tiny_result.rows()
    assert len(rows) == len(tiny_result.layers) and rows[0]["kind"] == "standard"
    json.dumps(rows)  # plain numbers only
    assert tiny_result.models[1].robust and not tiny_result.models[0].robust
    np.testing.assert_array_equal(tiny_result.models[0].image_indices, tiny_result.models[1].image_indices)


def test_denominator_matches_direct_computation_on_the_tiny_models(tiny_result, tiny_pair):
    ds_images, idx, _, _ = LR.load_images("fashion-mnist", (1, 28, 28), 12, seed=0)
    np.testing.assert_array_equal(idx, tiny_result.models[0].image_indices)
    for model in tiny_pair:
        with torch.no_grad():
            feats = model.features(ds_images, model.layer_names)
        for l in tiny_result.models[0].layers:
            f = feats[l].flatten(1).double()
            p = torch.from_numpy(tiny_result.partners)
            direct = (f[:, None, :] - f[p]).norm(dim=2).numpy()
            r = tiny_result.layer(model.name, l)
            np.testing.assert_allclose(r.distances, direct, rtol=1e-4)
            assert r.denominator == pytest.approx(direct.mean(), rel=1e-4)


def test_small_ball_moves_a_layer_less_than_another_image_does(tiny_pair, fmnist_test):
    """Inside an L2 ball of radius 0.5 (a faint change) a layer moves less than between two images."""
    model = tiny_pair[0]
    x = fmnist_test.float_images(slice(0, 6))
    partners = LR.random_partners(6, 1, torch.Generator().manual_seed(0))
    out = LR.measure(model, x, ["stage2"], make_threat("l2", 0.5), 3, partners)
    dev = out["stage2"][0]
    assert 0 < dev.mean() < out["stage2"][1].mean()


def test_deterministic_for_a_seed(tiny_result):
    again = LR.run(_config())
    for a, b in zip(tiny_result.layers, again.layers):
        np.testing.assert_array_equal(a.deviations, b.deviations)
        np.testing.assert_array_equal(a.distances, b.distances)
        assert (a.ratio, a.ci_low, a.ci_high) == (b.ratio, b.ci_low, b.ci_high)
    other = LR.run(_config(seed=1))
    assert not np.array_equal(other.models[0].image_indices, tiny_result.models[0].image_indices)


def test_batch_size_changes_only_the_random_starts(tiny_result):
    """The denominator does not depend on the batch size at all; the numerator only through
    the random starts, so its mean moves little."""
    small = LR.run(_config(batch_size=5))
    for a, b in zip(tiny_result.layers, small.layers):
        np.testing.assert_allclose(a.distances, b.distances, rtol=1e-5)
        assert b.numerator == pytest.approx(a.numerator, rel=0.1)


def test_robust_model_has_lower_R_on_the_tiny_pair(tiny_result):
    """Adversarial training in Linf 0.1 makes every stage move less inside the Linf 0.1
    ball, relative to the spread of the images."""
    c = LR.comparisons(tiny_result)
    assert len(c) == 1 and c[0]["robust"] == "tiny-robust"
    assert c[0]["lower"] == c[0]["shared"], {l: (tiny_result.layer(PAIR[0], l).ratio,
                                                tiny_result.layer(PAIR[1], l).ratio) for l in c[0]["shared"]}
    text = LR.summary(tiny_result)
    n = len(c[0]["shared"])
    assert f"tiny-robust has lower R than tiny-standard at {n} of {n} layers" in text


def _bundled_available(*names: str) -> bool:
    available = {r["name"]: r["available"] for r in zoo.list_models(zoo.DEFAULT_CHECKPOINTS)}
    return all(available.get(n) for n in names)


# Stage 1 of the bundled Linf-robust model is the exception: it is one 3x3 conv + BN + ReLU whose
# worst case moves it more than the standard model's (R 0.82 vs 0.45 at 64 images, 20 steps;
# numerator 21.3 vs 16.8, denominator 26.0 vs 36.9), though its Lipschitz bound is smaller
# (33.6 vs 74.7). Robustness is built from stage 2 on. The L2-robust model is lower everywhere.
DEEPER = ["stage2", "stage3", "stage4", "penultimate"]


@pytest.mark.parametrize("robust, norm, eps, layers", [
    ("fmnist-robust-linf", "linf", 0.1, DEEPER),
    ("fmnist-robust-l2", "l2", 1.5, ["stage1", *DEEPER]),
])
def test_bundled_robust_model_has_lower_R(monkeypatch, robust, norm, eps, layers):
    """At the eps each robust model was trained for, its layers move less than the standard
    model's, with intervals that do not overlap."""
    if not _bundled_available("fmnist-standard", robust):
        pytest.skip(f"the bundled fmnist-standard / {robust} have not landed in checkpoints/")
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(zoo.DEFAULT_CHECKPOINTS))
    res = LR.run(LR.Config(models=("fmnist-standard", robust), norm=norm, eps=eps, n_images=16, steps=10,
                           bootstrap=200, device="cpu"))
    c = LR.comparisons(res)[0]
    assert set(layers) <= set(c["separated"]), res.rows()


def test_layers_option_and_logits(tiny_root):
    res = LR.run(_config(models=("tiny-standard",), layers=("stage3", "stage1"), n_images=4, steps=2))
    assert [r.layer for r in res.layers] == ["stage1", "stage3"]  # network order
    res = LR.run(_config(models=("tiny-standard",), include_logits=True, n_images=4, steps=2))
    assert res.layers[-1].layer == "logits"
    with pytest.raises(ValueError, match="no model has"):
        LR.run(_config(layers=("stage1", "nope"), n_images=4, steps=1))


def test_progress_counts_every_step_and_cancel_stops(tiny_root):
    seen = []
    res = LR.run(_config(n_images=6, steps=3, batch_size=4), progress=lambda s, t, m: seen.append((s, t, m)))
    total = 2 * len(res.models[0].layers) * 2 * 3  # models x layers x batches x steps
    assert [s for s, _, _ in seen] == list(range(1, total + 1))
    assert {t for _, t, _ in seen} == {total}
    assert {m["model"] for _, _, m in seen} == set(PAIR) and "layer" in seen[0][2]
    calls = []
    with pytest.raises(Cancelled):
        LR.run(_config(n_images=6, steps=3), cancel=lambda: calls.append(1) or len(calls) >= 4)
    assert len(calls) == 4


def test_config_validation():
    with pytest.raises(ValueError):
        LR.Config(models=())
    with pytest.raises(ValueError):
        LR.Config(models=("a", "a"))
    with pytest.raises(ValueError):
        LR.Config(models=("a",), norm="l1")
    with pytest.raises(ValueError):
        LR.Config(models=("a",), eps=0)
    with pytest.raises(ValueError):
        LR.Config(models=("a",), n_images=1)
    with pytest.raises(ValueError):
        LR.Config(models=("a",), steps=0)
    with pytest.raises(ValueError):
        LR.Config(models=("a",), ci_level=1.0)
    c = LR.Config(models="a", norm="inf", layers="stage1")
    assert c.models == ("a",) and c.norm == "linf" and c.layers == ("stage1",)
    assert hash(c) == hash(dataclasses.replace(c))


def test_images_for_imagenet_and_unknown_datasets():
    x, idx, name, notes = LR.load_images("imagenet", (3, 64, 64), 100, seed=0)
    assert x.shape[1:] == (3, 64, 64) and 2 <= x.shape[0] < 100
    assert x.min() >= 0 and x.max() <= 1 and "scikit-image" in name
    assert notes and "image folder" in notes[0]
    again = LR.load_images("imagenet", (3, 64, 64), 3, seed=0)
    assert again[0].shape[0] == 3
    with pytest.raises(Exception, match="image folder"):
        LR.load_images("somewhere", (3, 32, 32), 4)


def test_cli_writes_csv_and_json(tiny_root, tmp_path, capsys):
    from explorer.cli import main

    out = tmp_path / "lr"
    rc = main(["layer-robustness", *PAIR, "--n-images", "6", "--steps", "2", "--bootstrap", "50",
               "--device", "cpu", "--out", str(out)])
    assert rc == 0
    doc = json.loads((tmp_path / "lr.json").read_text())
    assert doc["settings"]["eps"] == pytest.approx(0.1)  # the robust model's training eps
    assert doc["settings"]["norm"] == "linf" and doc["settings"]["n_images"] == 6
    assert {r["model"] for r in doc["rows"]} == set(PAIR)
    csv_lines = (tmp_path / "lr.csv").read_text().strip().splitlines()
    assert csv_lines[0].startswith("model,kind,layer,index,R,ci_low,ci_high")
    assert len(csv_lines) == 1 + len(doc["rows"])
    assert "tiny-robust" in capsys.readouterr().out
    assert main(["layer-robustness", "tiny-standard", "--n-images", "1"]) == 2


# --- the chart --------------------------------------------------------------------------

def _row(model, layer, index, r):
    return {"model": model, "kind": "standard", "layer": layer, "index": index, "R": r, "ci_low": r - 0.1,
            "ci_high": r + 0.1, "numerator": 1.0}


def test_chart_orders_layers_and_shares_or_splits_the_axis():
    from explorer.charts import layers as CL

    rows = [_row("b", "stage2", 1, 0.4), _row("b", "stage1", 0, 0.2), _row("a", "stage1", 0, 0.3),
            _row("a", "stage2", 1, 0.5)]
    df = CL.layer_robustness_frame(rows)
    assert list(zip(df["model"], df["layer"])) == [("b", "stage1"), ("b", "stage2"), ("a", "stage1"), ("a", "stage2")]
    spec = CL.layer_robustness_chart(rows).to_dict()
    assert "facet" not in spec
    assert spec["layer"][2]["encoding"]["x"]["sort"] == ["stage1", "stage2"]
    # a ResNet and a VGG: one panel per model, each with its own axis
    mixed = rows[:2] + [_row("vgg", "relu1_1", 0, 0.1), _row("vgg", "relu1_2", 1, 0.2), _row("vgg", "relu2_1", 2, 0.3)]
    spec = CL.layer_robustness_chart(mixed).to_dict()
    assert spec["facet"]["column"]["field"] == "model" and spec["resolve"]["scale"]["x"] == "independent"
    assert len(spec["datasets"][next(iter(spec["datasets"]))]) == 5
