"""`python -m explorer evaluate`: the only source of the cards' accuracies (issue 3)."""

from __future__ import annotations

import json
import shutil

from explorer import cli


def _copy_tiny(tiny_root, tmp_path):
    for f in tiny_root.iterdir():
        if f.name.startswith("tiny-standard") or f.name == "manifest.json":
            shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_evaluate_writes_the_table_and_the_card(tiny_root, tmp_path, monkeypatch, capsys):
    root = _copy_tiny(tiny_root, tmp_path)
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(root))
    assert cli.main(["evaluate", "tiny-standard", "--limit", "64", "--norms", "linf",
                     "--eps-linf", "0.1", "--steps", "5", "--batch-size", "32"]) == 0
    table = json.loads((root / "tiny-standard.eval.json").read_text())
    acc = {(r["norm"], r["eps"]): r for r in table["results"]}
    clean, attacked = acc[("none", 0.0)], acc[("linf", 0.1)]
    assert clean["n"] == attacked["n"] == 64
    assert attacked["correct"] < clean["correct"]       # a standard model loses accuracy at Linf 0.1
    assert json.loads((root / "tiny-standard.json").read_text())["evaluation"] == table
    assert (root / "tiny-standard.eval.csv").read_text().splitlines()[0] == "norm,eps,accuracy,correct,n"
    assert "--limit 64" in table["command"]
    printed = capsys.readouterr().out
    assert f"tiny-standard: clean: {100 * clean['accuracy']:.2f}% ({clean['correct']}/64)" in printed


def test_no_card_leaves_every_file_alone(tiny_root, tmp_path, monkeypatch, capsys):
    root = _copy_tiny(tiny_root, tmp_path)
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(root))
    before = {f.name: f.read_bytes() for f in root.iterdir()}
    assert cli.main(["evaluate", "tiny-standard", "--limit", "32", "--norms", "l2", "--eps-l2", "0.5",
                     "--steps", "3", "--no-card"]) == 0
    assert "tiny-standard: l2 eps 0.5:" in capsys.readouterr().out
    assert {f.name: f.read_bytes() for f in root.iterdir()} == before
