"""The bundled models against their cards (issue 3): the cards hold full-test-set numbers from
`python -m explorer evaluate`, the numbers meet the floors, and they reproduce here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bundled_models import require

ROOT = Path(__file__).resolve().parent.parent
# (model, clean floor, (norm, eps, robust floor) or a ceiling for the standard model)
FLOORS = {
    "fmnist-standard": (0.91, ("linf", 0.1, None, 0.05)),
    "fmnist-robust-linf": (0.82, ("linf", 0.1, 0.65, None)),
    "fmnist-robust-l2": (0.82, ("l2", 1.5, 0.60, None)),
}


def _card(name):
    return json.loads((ROOT / "checkpoints" / f"{name}.json").read_text())


def _row(card, norm, eps):
    rows = [r for r in card["evaluation"]["results"] if r["norm"] == norm and math.isclose(r["eps"], eps)]
    assert len(rows) == 1, f"{card['name']}: no {norm} {eps} row in the card's evaluation"
    return rows[0]


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_card_holds_a_full_test_set_evaluation_that_meets_the_floors(name):
    card = _card(name)
    ev = card["evaluation"]
    assert ev["n"] == 10000 and ev["command"].startswith(f"python -m explorer evaluate {name}")
    assert "--limit" not in ev["command"]
    clean_floor, (norm, eps, floor, ceiling) = FLOORS[name]
    assert _row(card, "none", 0.0)["accuracy"] >= clean_floor
    robust = _row(card, norm, eps)["accuracy"]
    if floor is not None:
        assert robust >= floor
    if ceiling is not None:
        assert robust <= ceiling
    # the eval table next to the card is the same measurement
    assert json.loads((ROOT / "checkpoints" / f"{name}.eval.json").read_text())["results"] == ev["results"]


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_clean_accuracy_reproduces_exactly_on_the_full_test_set(name, monkeypatch):
    require(monkeypatch, name)
    from explorer import cards, data

    if len(data.fashion_mnist("test")) < 10000:
        pytest.skip("the full Fashion-MNIST test set is not installed (apt-get install dataset-fashion-mnist)")
    res = cards.evaluate_model(name, ["linf"], {"linf": []}, steps=1, restarts=1, limit=None, batch_size=1000,
                               device="cpu", seed=0)
    assert res["results"][0]["correct"] == _row(_card(name), "none", 0.0)["correct"]


@pytest.mark.parametrize("name", ["fmnist-robust-linf", "fmnist-robust-l2"])
def test_robust_accuracy_on_500_images_agrees_with_the_card(name, monkeypatch):
    """PGD-20 on the first 500 test images lands within 3 binomial standard errors of the card's
    full-test-set robust accuracy (a much weaker or broken attack, or other weights, would not)."""
    require(monkeypatch, name)
    from explorer import cards

    _, (norm, eps, _, _) = FLOORS[name]
    p = _row(_card(name), norm, eps)["accuracy"]
    res = cards.evaluate_model(name, [norm], {norm: [eps]}, steps=20, restarts=1, limit=500, batch_size=250,
                               device="cpu", seed=0)
    got = [r for r in res["results"] if r["norm"] == norm][0]["accuracy"]
    assert abs(got - p) <= 3 * math.sqrt(p * (1 - p) / 500), (got, p)


# --- the CIFAR-10 pair (issue 17) ---------------------------------------------------------------

SHARED_CIFAR10 = ROOT.parent / "shared" / "datasets" / "cifar10"
#: The floors of issue 17 (clean, and at most 5% at L2 0.5 for the standard model). cifar10-standard
#: misses the clean floor (87.70%, see README "Bundled models"): the test holds what is true and the
#: README says the floor is missed; it is not lowered.
CIFAR10_CLEAN_FLOOR = 0.88


def test_cifar10_standard_card_holds_a_full_test_set_evaluation(monkeypatch):
    require(monkeypatch, "cifar10-standard")
    card = _card("cifar10-standard")
    ev = card["evaluation"]
    assert ev["n"] == 10000 and ev["full_test_set"] and ev["command"].startswith("python -m explorer evaluate")
    clean = _row(card, "none", 0.0)["accuracy"]
    assert 0.85 <= clean < CIFAR10_CLEAN_FLOOR  # README reports the miss; when a retrain meets the floor, change both
    assert _row(card, "l2", 0.5)["accuracy"] <= 0.05  # the standard model's ceiling at the paper's eps
    assert card["init_card"]["name"] == "cifar10-standard" and card["recipe"]["init_from"]  # the whole recipe
    assert json.loads((ROOT / "checkpoints" / "cifar10-standard.eval.json").read_text())["results"] == ev["results"]


@pytest.mark.skipif(not SHARED_CIFAR10.is_dir(), reason=f"no CIFAR-10 image folders at {SHARED_CIFAR10}")
def test_cifar10_standard_clean_accuracy_reproduces_exactly(monkeypatch):
    require(monkeypatch, "cifar10-standard")
    monkeypatch.setenv("CIFAR10_ROOT", str(SHARED_CIFAR10))
    from explorer import cards

    res = cards.evaluate_model("cifar10-standard", ["linf"], {"linf": []}, steps=1, restarts=1, limit=None,
                               batch_size=1000, device="cpu", seed=0)
    assert res["n"] == 10000
    assert res["results"][0]["correct"] == _row(_card("cifar10-standard"), "none", 0.0)["correct"]


#: issue 17's floors for the robust partner: clean >= 72% and >= 50% at L2 0.5 (PGD-20, full test set)
CIFAR10_ROBUST_FLOORS = {"clean": 0.72, ("l2", 0.5): 0.50}


def test_cifar10_robust_card_meets_the_floors_on_the_full_test_set(monkeypatch):
    require(monkeypatch, "cifar10-robust-l2")
    card = _card("cifar10-robust-l2")
    ev = card["evaluation"]
    assert ev["n"] == 10000 and ev["full_test_set"] and ev["command"].startswith("python -m explorer evaluate")
    assert "20 steps" in ev["attack"] and "random start" in ev["attack"]
    assert _row(card, "none", 0.0)["accuracy"] >= CIFAR10_ROBUST_FLOORS["clean"]
    assert _row(card, "l2", 0.5)["accuracy"] >= CIFAR10_ROBUST_FLOORS[("l2", 0.5)]
    # robust in its threat model, far beyond the standard model at the same eps (4.49%)
    assert _row(card, "l2", 0.5)["accuracy"] > 10 * _row(_card("cifar10-standard"), "l2", 0.5)["accuracy"]
    recipe = card["recipe"]
    assert (recipe["adv_norm"], recipe["eps"], recipe["arch"]) == ("l2", 0.5, "resnet9")
    assert card["training_seconds"] > 0 and card["hardware"]
    assert json.loads((ROOT / "checkpoints" / "cifar10-robust-l2.eval.json").read_text())["results"] == ev["results"]


def test_cifar10_robust_accuracy_on_200_bundled_images_agrees_with_the_card(monkeypatch):
    """PGD-20 at L2 0.5 on 200 images of the bundled CIFAR-10 subset (20 per class, from the first 100 of
    each class) lands within 4 binomial standard errors of the card's full-test-set number: broken weights
    or a much weaker attack would not. (The subset is not a uniform draw of the test set, hence 4, not 3.)"""
    require(monkeypatch, "cifar10-robust-l2")
    import torch

    from explorer import attacks, data, zoo

    ds = data.bundled_cifar10("test")
    idx = torch.cat([torch.nonzero(ds.labels == c).flatten()[:20] for c in range(10)])
    model = zoo.load("cifar10-robust-l2", device="cpu")
    x, y = ds.float_images(idx), ds.labels[idx]
    res = attacks.pgd(model, x, y, "l2", eps=0.5, steps=20, random_start=True, seed=0)
    with torch.no_grad():
        got = float((model(res.x_adv).argmax(1) == y).float().mean())
    p = _row(_card("cifar10-robust-l2"), "l2", 0.5)["accuracy"]
    assert abs(got - p) <= 4 * math.sqrt(p * (1 - p) / 200), (got, p)


def test_readme_autoattack_rows_are_the_cards_records():
    """Every row of README's AutoAttack table is a record of ``checkpoints/NAME.autoattack.json`` (the command
    that wrote it is in the record), and every record of a bundled model has its row."""
    lines = (ROOT / "README.md").read_text().splitlines()
    head = lines.index("| model | threat | test images | clean | PGD-20 | AutoAttack | gap |")
    rows = []
    for line in lines[head + 2:]:
        if not line.startswith("|"):
            break
        model, threat, n, clean, pgd, aa, _ = [c.strip() for c in line.strip("|").split("|")]
        norm, eps = threat.split()
        rows.append((model.strip("`"), norm.lower(), float(eps), int(n.replace(",", "")), clean, pgd, aa))
    records = []
    for path in sorted((ROOT / "checkpoints").glob("*.autoattack.json")):
        name = path.name.removesuffix(".autoattack.json")
        for r in json.loads(path.read_text()):
            records.append((name, r["norm"], float(r["eps"]), r["n"], f"{100 * r['clean']:.1f}%",
                            f"{100 * r['pgd']:.1f}%", f"{100 * r['autoattack']:.1f}%"))
    assert rows and sorted(rows) == sorted(records)
