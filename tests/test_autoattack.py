"""AutoAttack beside PGD-20 in a model's card (`python -m explorer autoattack`): the record holds
clean, PGD and AutoAttack accuracies on the same images, AutoAttack never above clean, and a
second run at the same norm and eps replaces the first; a run's finished batches are kept, and the
same command resumes from them."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("torchattacks")


#: eps 0.3: APGD fools every image, so Square (5000 queries, minutes) has nothing left to attack
ARGS = ["autoattack", "tiny-robust", "--norm", "linf", "--eps", "0.3", "--n", "6", "--device", "cpu",
        "--bundled-subset", "--batch-size", "4"]


@pytest.fixture
def ckpt(tiny_root, tmp_path, monkeypatch):
    """A copy of the tiny zoo as the checkpoints, and a cache of this test's own."""
    root = tmp_path / "ckpt"
    shutil.copytree(tiny_root, root)
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(root))
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    return root


def test_autoattack_is_kept_in_the_card(ckpt):
    from explorer import cli

    root = ckpt
    assert cli.main(ARGS) == 0
    assert cli.main(ARGS) == 0
    records = json.loads((root / "tiny-robust.autoattack.json").read_text())
    assert len(records) == 1  # the second run replaced the first
    r = records[0]
    assert r["n"] == 6 and r["norm"] == "linf" and r["eps"] == 0.3 and sum(r["per_class"]) == 6
    assert 0 <= r["autoattack"] <= r["clean"] <= 1 and 0 <= r["pgd"] <= r["clean"]
    assert "torchattacks" in r["library"] and r["command"].startswith("python -m explorer autoattack tiny-robust")
    card = json.loads((root / "tiny-robust.json").read_text())
    assert card["autoattack"] == records


def test_autoattack_resumes_from_its_kept_batches(ckpt, tmp_path):
    """The state file holds one count per finished batch under a key of the weights, images and
    settings: the same command takes the kept counts instead of attacking again; other settings
    (another seed) do not."""
    from explorer import cli

    root, args = ckpt, ARGS
    assert cli.main(args) == 0
    state = tmp_path / "cache" / "autoattack" / "tiny-robust-linf-0.3.json"
    kept = json.loads(state.read_text())
    assert len(kept["done"]) == 2 and kept["key"]["batch_size"] == 4
    from explorer import zoo
    assert kept["key"]["weights"] == zoo.weights_sha256("tiny-robust")  # the model, known by its weights file
    first, second = list(kept["done"])  # in the order they were finished
    kept["done"] = {first: 4, second: 2}  # as if both batches had been finished with every image robust
    state.write_text(json.dumps(kept))
    assert cli.main(args) == 0
    assert json.loads((root / "tiny-robust.autoattack.json").read_text())[0]["autoattack"] == 1.0
    n4 = [a if a != "6" else "4" for a in args]  # the first 4 images are the first batch of the 6
    assert cli.main(n4) == 0
    assert json.loads((root / "tiny-robust.autoattack.json").read_text())[0]["autoattack"] == 1.0
    assert cli.main(args + ["--seed", "1"]) == 0  # another key: attacked afresh
    assert json.loads((root / "tiny-robust.autoattack.json").read_text())[0]["autoattack"] < 1.0


def test_autoattack_key_without_a_weights_file_hashes_the_weights(ckpt):
    """A library caller without a weights file: the model is known by a hash of its state_dict,
    so changed weights do not reuse kept counts."""
    import torch

    from explorer import evaluation, zoo

    model = zoo.load("tiny-robust", device="cpu")
    key = evaluation._autoattack_key(model, "linf", 0.3, 4, 0)
    assert key["weights"].startswith("state_dict:") and key == evaluation._autoattack_key(model, "linf", 0.3, 4, 0)
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    assert evaluation._autoattack_key(model, "linf", 0.3, 4, 0)["weights"] != key["weights"]
    assert evaluation._autoattack_key(model, "linf", 0.3, 4, 0, "abc")["weights"] == "abc"
