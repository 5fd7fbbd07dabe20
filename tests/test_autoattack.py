"""AutoAttack beside PGD-20 in a model's card (`python -m explorer autoattack`): the record holds
clean, PGD and AutoAttack accuracies on the same images, AutoAttack never above clean, and a
second run at the same norm and eps replaces the first."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("torchattacks")


def test_autoattack_is_kept_in_the_card(tiny_root, tmp_path, monkeypatch):
    from explorer import cli

    root = tmp_path / "ckpt"
    shutil.copytree(tiny_root, root)
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(root))
    # eps 0.3: APGD fools every image, so Square (5000 queries, minutes) has nothing left to attack
    args = ["autoattack", "tiny-robust", "--norm", "linf", "--eps", "0.3", "--n", "6", "--device", "cpu",
            "--bundled-subset"]
    assert cli.main(args) == 0
    assert cli.main(args) == 0
    records = json.loads((root / "tiny-robust.autoattack.json").read_text())
    assert len(records) == 1  # the second run replaced the first
    r = records[0]
    assert r["n"] == 6 and r["norm"] == "linf" and r["eps"] == 0.3
    assert 0 <= r["autoattack"] <= r["clean"] <= 1 and 0 <= r["pgd"] <= r["clean"]
    assert "torchattacks" in r["library"] and r["command"].startswith("python -m explorer autoattack tiny-robust")
    card = json.loads((root / "tiny-robust.json").read_text())
    assert card["autoattack"] == records
