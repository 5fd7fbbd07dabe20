"""The discussion's experiments: data generators, the non-transferable objective, the small nets,
the CLI's results file (tiny sizes, CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explorer import cli, objectives
from explorer.experiments import _discussion as D
from explorer.experiments import mislabeled, nontransferable, squares, transfer_learnability
from explorer.optimize import optimize
from explorer.threat import L2Ball
from explorer.zoo import build_architecture


# --- adversarial squares -----------------------------------------------------------------------------

@pytest.mark.parametrize("noise", [0.0, 0.1, 0.25])
def test_squares_flip_exactly_the_label_noise_rate(noise):
    data = squares.squares(1000, 6, 0.1, noise, seed=3)
    assert squares.flip_rate(data) == pytest.approx(noise, abs=1e-9)
    assert int((data.noisy != data.y).sum()) == round(noise * 1000)


def test_squares_are_one_sign_within_the_pixel_noise_and_balanced():
    data = squares.squares(2000, 5, 0.1, 0.1, seed=0)
    sign = (2 * data.y - 1).float().view(-1, 1, 1, 1)
    magnitude = data.x * sign  # every pixel on the label's side, |x| in [0.9, 1.1]
    assert float(magnitude.min()) >= 0.9 and float(magnitude.max()) <= 1.1
    assert float(magnitude.min()) < 0.905 and float(magnitude.max()) > 1.095  # the whole noise range is used
    # labels are fair coin flips: 2000 draws lie within 4 standard deviations (0.045) of one half
    assert abs(float(data.y.float().mean()) - 0.5) < 0.045
    again = squares.squares(2000, 5, 0.1, 0.1, seed=0)
    assert torch.equal(again.x, data.x) and torch.equal(again.noisy, data.noisy)


def test_the_linear_classifier_is_robust_to_just_below_the_pixel_margin():
    data = squares.squares(500, 8, 0.1, 0.0, seed=1)
    margin = float(((2 * data.y - 1).float() * data.x.flatten(1).mean(1)).min())
    assert 0.9 < margin < 1.0  # the mean of 64 pixels in [0.9, 1.1]
    assert squares.linear_robust_accuracy(data.x, data.y, 0.9) == 1.0
    assert squares.linear_robust_accuracy(data.x, data.y, 1.1) == 0.0


def test_unit_scaling_maps_the_commenters_box_onto_0_1():
    x = torch.tensor([-1.1, -0.9, 0.0, 0.9, 1.1])
    np.testing.assert_allclose(squares.to_unit(x, 0.1).numpy(), [0.0, 0.2 / 2.2, 0.5, 2.0 / 2.2, 1.0], atol=1e-6)


def test_fit_stops_after_the_epoch_its_stop_rule_names_and_keeps_training_the_net():
    """``stop`` ends a run early (Nakkiran's "until the noisy labels are fit"); the net keeps
    learning between checks (the snapshot handed to ``stop`` is a frozen copy, not the net)."""
    data = squares.squares(64, 4, 0.1, 0.0, seed=0)
    x = squares.to_unit(data.x, 0.1)
    seen = []

    def stop(epoch, model):
        seen.append((epoch, [p.requires_grad for p in model.parameters()][:1]))
        return epoch == 3

    got = D.fit("mlp", x, data.y, class_names=squares.CLASS_NAMES, epochs=10, seed=0, lr=1e-3, optimizer="adam",
                mean=(0.5,), std=(0.5,), schedule="constant", stop=stop)
    assert sorted(got) == [3] and [e for e, _ in seen] == [1, 2, 3]
    with pytest.raises(ValueError, match="schedule"):
        D.fit("mlp", x, data.y, class_names=squares.CLASS_NAMES, epochs=1, seed=0, schedule="step")


def test_squares_fit_until_trains_the_noisy_run_until_it_fits_the_flipped_labels():
    config = squares.Config(size=4, n_train=60, n_test=20, epochs=40, lr=3e-2, fit_until=0.5, arch="mlp",
                            eps=(0.3,), attack_steps=2, early_epochs=1, pixel_noise=0.5, batch_size=16)
    r = squares.run(config)
    noisy, early, clean = r.rows[:3]
    assert noisy.epochs < 40 and min(noisy.fit_noisy, noisy.fit_flipped) >= 0.5  # stopped by the rule, having fit
    assert clean.epochs == noisy.epochs and early.epochs == 1
    with pytest.raises(ValueError, match="fit_until"):
        squares.Config(fit_until=0.0)


# --- learning from mislabeled data -------------------------------------------------------------------

def test_the_mislabeled_set_holds_only_wrong_predictions_relabelled_with_them(tiny_pair, fmnist_test):
    model = tiny_pair[0]
    x, y = fmnist_test.float_images(slice(0, 300)), fmnist_test.labels[:300]
    images, labels, where = mislabeled.mislabeled_set(model, x, y)
    pred = D.predict(model, x)
    assert len(labels) == int((pred != y).sum()) > 0
    assert bool((labels != y[where]).all())  # every kept label is wrong
    assert torch.equal(labels, pred[where])  # ... and is the model's prediction
    assert torch.equal(images, x[where])


def test_mislabeled_run_keeps_the_weak_models_errors():
    r = mislabeled.run(mislabeled.Config(arch="mlp", n_train=400, weak_images=100, weak_epochs=1, epochs=2,
                                         n_test=200, device="cpu"))
    assert r.all_wrong
    assert r.kept == sum(r.label_counts) == round(r.n_train * (1 - r.weak_train_accuracy))
    assert 0 < r.kept < r.n_train
    assert 0 <= r.learned <= 1 and r.n_test == 200


# --- the non-transferable attack --------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_models():
    """Three tiny standard nets on the same 2000 training images (seeds 1-3)."""
    x, y, names, _ = D.fmnist("train", 2000, 0)
    return [D.train("stage_cnn_tiny", x, y, class_names=names, epochs=3, seed=s) for s in (1, 2, 3)]


def test_the_nontransferable_objective_is_target_ce_plus_mean_ensemble_ce(small_models, fmnist_test):
    f, *ensemble = small_models
    x, y = fmnist_test.float_images(slice(0, 8)), fmnist_test.labels[:8]
    t = (y + 1) % 10
    value = objectives.nontransferable(f, t, ensemble, y)(x)
    expected = (F.cross_entropy(f(x), t, reduction="none")
                + sum(F.cross_entropy(m(x), y, reduction="none") for m in ensemble) / len(ensemble))
    torch.testing.assert_close(value, expected)
    with pytest.raises(ValueError):
        objectives.nontransferable(f, t, [], y)


def test_the_nontransferable_attack_fools_the_target_while_the_ensemble_keeps_its_label(small_models, fmnist_test):
    f, *ensemble = small_models
    x, y = fmnist_test.float_images(slice(0, 200)), fmnist_test.labels[:200]
    right = (D.predict(f, x) == y) & torch.stack([D.predict(m, x) == y for m in ensemble]).all(0)
    x, y = x[right][:40], y[right][:40]
    t = (y + 1) % 10
    res = optimize(objectives.nontransferable(f, t, ensemble, y), x, L2Ball(3.0), 20, 0.4, maximize=False)
    assert float((D.predict(f, res.x) == t).float().mean()) >= 0.8  # the target model reaches t
    kept = torch.stack([D.predict(m, res.x) == y for m in ensemble]).float().mean()
    assert float(kept) >= 0.9  # ... while the ensemble stays on the true label
    assert float((res.x - x).flatten(1).norm(dim=1).max()) <= 3.0 + 1e-4
    # plain targeted PGD with the same budget drags the ensemble along far more often
    adv, t2, ok = nontransferable.attack(f, ensemble, x, y, eps=3.0, steps=20, step_size=0.4, method="PGD")
    pgd_kept = torch.stack([D.predict(m, adv) == y for m in ensemble]).float().mean()
    assert float(pgd_kept) < float(kept) - 0.2


# --- pieces -----------------------------------------------------------------------------------------

def test_resnet_small_stages_agree_with_forward():
    torch.manual_seed(0)
    net = build_architecture("resnet_small", 10, 1, 28).eval()
    x = torch.rand(3, 1, 28, 28)
    out = net.forward_intermediates(x)
    assert [tuple(out[k].shape) for k in net.stage_names] == [
        (3, 16, 28, 28), (3, 16, 28, 28), (3, 32, 14, 14), (3, 64, 7, 7), (3, 64), (3, 10)]
    torch.testing.assert_close(out["logits"], net(x))


def test_fit_line_recovers_a_known_line():
    x = np.array([0.1, 0.3, 0.5])
    slope, intercept, r = transfer_learnability.fit_line(x, 0.5 * x + 0.02)
    assert slope == pytest.approx(0.5) and intercept == pytest.approx(0.02) and r == pytest.approx(1.0)
    assert np.isnan(transfer_learnability.fit_line(np.array([0.2, 0.2]), np.array([0.1, 0.3]))[0])


def test_the_scatters_line_is_the_fit_in_percent():
    from explorer.charts import discussion as CD

    points = [{"arch": a, "attack": "PGD", "transfer": t, "learned": 0.5 * t + 0.02, "clean_accuracy": 0.8}
              for a, t in (("mlp", 0.1), ("stage_cnn", 0.3), ("resnet_small", 0.5))]
    slope, intercept, _ = transfer_learnability.fit_line(np.array([0.1, 0.3, 0.5]), np.array([0.07, 0.17, 0.27]))
    chart = CD.transfer_scatter({"points": points, "slope": slope, "intercept": intercept})
    line = chart.layer[0].data
    # the line passes through every point: 10% -> 7%, 50% -> 27%
    np.testing.assert_allclose(np.interp([10, 50], line["transfer %"], line["accuracy trained on D_det %"]),
                               [7.0, 27.0], atol=1e-9)


def test_det_pgd_targets_the_next_class_and_rand_a_random_one(tiny_pair, fmnist_test):
    x, y = fmnist_test.float_images(slice(0, 30)), fmnist_test.labels[:30]
    _, t_det, _ = D.det_pgd(tiny_pair[0], x, y, eps=1.0, steps=2, kind="det")
    _, t_rand, _ = D.det_pgd(tiny_pair[0], x, y, eps=1.0, steps=2, kind="rand", seed=4)
    _, t_other, _ = D.det_pgd(tiny_pair[0], x, y, eps=1.0, steps=2, kind="rand", seed=4, targets="other")
    assert torch.equal(t_det, (y + 1) % 10)
    # the paper's D_rand: uniform over all classes, independent of y (tests/test_drand_targets.py)
    assert torch.equal(t_rand, torch.randint(0, 10, (30,), generator=torch.Generator().manual_seed(4)))
    assert bool((t_other != y).all()) and len(set(t_other.tolist())) > 3


def test_the_cli_writes_the_results_file(tmp_path, capsys):
    out = tmp_path / "squares.json"
    assert cli.main(["squares", "--size", "4", "--n-train", "40", "--n-test", "20", "--epochs", "2",
                     "--eps", "0.5", "--attack-steps", "2", "--device", "cpu", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["experiment"] == "squares" and doc["config"]["n_train"] == 40
    assert doc["commenter"]["robust_linear_eps"] == 0.9
    rows = doc["result"]["rows"]
    assert [r["model"] for r in rows][-1] == "linear: sign(mean x)"
    assert rows[-1]["robust"] == [1.0, 1.0]  # the linear classifier at eps 0 and 0.5
    assert doc["result"]["flipped"] == 4
