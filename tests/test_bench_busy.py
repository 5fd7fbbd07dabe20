"""The busy-CPU bench rows (``python -m bench --rows busy``) and the server's thread count they check
(``explorer.devices.default_threads``)."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

pytest.importorskip("torchattacks")

from bench import __main__ as bench_main  # noqa: E402
from bench import busy  # noqa: E402
from explorer import devices  # noqa: E402


def test_default_threads_leaves_a_core_and_obeys_the_environment(monkeypatch):
    monkeypatch.delenv("EXPLORER_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert devices.default_threads(1) == 1
    assert devices.default_threads(2) == 1
    assert devices.default_threads(16) == 15
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert devices.default_threads(16) == 3
    monkeypatch.setenv("EXPLORER_THREADS", "2")
    assert devices.default_threads(16) == 2
    monkeypatch.setenv("EXPLORER_THREADS", "many")  # not a count: the next rule
    assert devices.default_threads(16) == 3


def _spinners() -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if busy.SPIN in line]


def test_busy_rows_measure_both_loads_and_thread_counts(tiny_root, tmp_path):
    before = torch.get_num_threads()
    assert bench_main.main(["--quick", "--rows", "busy", "--models", "tiny-standard", "tiny-robust",
                            "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("quick-*.json")
    rows = [r for r in json.loads(path.read_text())["rows"] if r["group"] == "busy"]
    threads = sorted({1, busy.cores()})
    assert [(r["load"], r["threads"]) for r in rows] == [(load, t) for load in ("quiet", "one core busy")
                                                          for t in threads]
    for r in rows:
        assert r["ours_s"] > 0 and r["peer_s"] > 0 and r["ratio"] > 0 and r["same_acc"], r
        assert r["fastest_under_load"] in threads and r["default_threads"] == devices.default_threads(busy.cores())
    (md,) = tmp_path.glob("quick-*.md")
    text = md.read_text()
    assert "PGD-20 on a busy CPU" in text and "| one core busy |" in text
    assert "Fastest for ours with one core busy" in text
    assert torch.get_num_threads() == before  # the bench leaves the process's threads as it found them
    assert not _spinners()  # and no process spinning
