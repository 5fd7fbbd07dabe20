"""`table` under torchrun (the paper-scale command of README's CIFAR-10 section runs it on 8 GPUs):
two CPU ranks (gloo) on the tiny models build, train and evaluate like one process, and the
evaluation the ranks share (each counts every second test image) is the whole test set's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from explorer.experiments import constructed_table as CT

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_table_under_torchrun_with_two_cpu_ranks(tiny_root, tmp_path):
    out = tmp_path / "table"
    cmd = ["torchrun", "--standalone", "--nproc_per_node=2", "-m", "explorer", "table", "--dataset", "fashion-mnist",
           "--standard", "tiny-standard", "--kinds", "det", "--subset", "40", "--attack-steps", "5",
           "--epochs", "1", "--batch-size", "16", "--test-limit", "30", "--eval-steps", "2", "--shard-size", "20",
           "--out", str(out), "--device", "cpu"]
    env = dict(os.environ, EXPLORER_CHECKPOINTS=str(tiny_root), EXPLORER_DEVICE="cpu", OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-1500:]}\n{done.stderr[-4000:]}"
    doc = json.loads((out / "table.json").read_text())
    [row] = doc["rows"]
    assert doc["eval"]["n_test"] == 30 and doc["config"]["kinds"] == ["det"]
    manifest = json.loads((out / "det" / "manifest.json").read_text())
    assert manifest["count"] == 40 and manifest["runs"][-1]["world_size"] == 2
    # one process, the same trained model and test images: the same clean accuracy as the two ranks summed
    card = json.loads((out / "models" / "on-det.json").read_text())
    model = CT.load_trained(card, out / "models" / "on-det.safetensors", torch.device("cpu"))
    test = CT.real_test_set("fashion-mnist")
    clean, _, _, n = CT.evaluate(model, test, "l2", 1.0, 2, 30, 0)
    assert n == 30 and doc["details"][0]["clean"] == pytest.approx(clean)
    assert 0.0 <= row_value(row) <= 1.0


def row_value(row: dict) -> float:
    """The row's clean accuracy, as a fraction (the table shows percentages or fractions)."""
    value = next(v for k, v in row.items() if str(k).startswith("clean"))
    value = float(str(value).rstrip("%"))
    return value / 100 if value > 1 else value
