"""zoo_report: the zoo table with card numbers, and the quick robust-accuracy evaluation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from explorer.experiments import zoo_report as ZR


@pytest.fixture
def root(tiny_root, tmp_path):
    r = tmp_path / "checkpoints"
    shutil.copytree(tiny_root, r)
    return r


def test_model_table_reads_the_evaluation_from_the_card_or_the_eval_file(root):
    card = json.loads((root / "tiny-standard.json").read_text())
    card["evaluation"] = {"n": 500, "results": [
        {"norm": "none", "eps": 0.0, "accuracy": 0.8, "n": 500},
        {"norm": "linf", "eps": 4 / 255, "accuracy": 0.25, "n": 500},
        {"norm": "l2", "eps": 0.5, "accuracy": 0.5, "n": 500}]}
    (root / "tiny-standard.json").write_text(json.dumps(card))
    (root / "tiny-robust.eval.json").write_text(json.dumps({"n": 100, "results": [
        {"norm": "none", "eps": 0, "accuracy": 0.7, "n": 100}]}))
    rows = {r["name"]: r for r in ZR.model_table(root)}
    std, rob = rows["tiny-standard"], rows["tiny-robust"]
    assert std["clean accuracy"] == 0.8 and std["test images"] == 500
    assert std["robust accuracy"] == "linf 4/255: 25.0%; l2 0.5: 50.0%"
    assert rob["clean accuracy"] == 0.7 and rob["robust accuracy"] is None
    assert std["available"] and std["fetch"] is None
    # a model that needs a download carries its fetch command; one with no card has no numbers
    missing = [r for r in rows.values() if not r["available"] and r["fetch"]]
    assert missing and all(r["fetch"] == f"python -m explorer fetch {r['name']}" for r in missing)
    assert rows["efficientnet-lite0"]["clean accuracy"] is None


def test_a_broken_card_gives_no_numbers_not_an_error(root):
    (root / "tiny-standard.json").write_text("{ not json")
    assert ZR.evaluation_rows("tiny-standard", root) == []
    assert ZR.read_card("no-such-model", root) == {}


def test_quick_evaluation(tiny_root):
    seen = []
    res = ZR.run(ZR.Config(models=("tiny-standard", "tiny-robust"), norm="linf", eps=(0.1, 0.05), n=40, steps=5,
                           batch_size=16, device="cpu"), progress=lambda s, t, m: seen.append((s, t)))
    assert list(res.eps) == [0.0, 0.05, 0.1] and res.accuracy.shape == (2, 3) and res.n == 40
    np.testing.assert_allclose(res.accuracy, res.correct / 40)
    assert np.all(np.diff(res.accuracy, axis=1) <= 0)  # nested balls: accuracy never rises with eps
    # the robust model keeps more at eps 0.1 than the standard one
    assert res.accuracy[1, 2] > res.accuracy[0, 2]
    assert seen[-1] == (80, 80) and all(t == 80 for _, t in seen)
    rows = res.rows()
    assert rows[0] == {"model": "tiny-standard", "norm": "none", "eps": 0.0, "accuracy": res.accuracy[0, 0], "n": 40}


@pytest.mark.parametrize("kwargs", [dict(models=()), dict(norm="l1"), dict(eps=(-0.1,)), dict(eps=(2.0,)),
                                    dict(n=0), dict(steps=0)])
def test_quick_evaluation_config_rejects(kwargs):
    with pytest.raises(ValueError):
        ZR.Config(**{"models": ("m",), **kwargs})


def test_no_offline_imagenet_test_set():
    with pytest.raises(ValueError, match="no test set"):
        ZR.evaluation_set("imagenet")
