"""Shared fixtures: tiny models trained here, on the CPU, in seconds."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))
# a page run by AppTest sets the server's thread count (explorer.devices.use_server_threads): keep this one
os.environ.setdefault("EXPLORER_THREADS", str(torch.get_num_threads()))
# AppTest runs app.py in this process: no background warm-up competing with the tests for the CPU
# (tests/test_warmup.py and the browser tests' servers run it on purpose).
os.environ.setdefault("EXPLORER_WARMUP", "0")
# The tests see what a fresh clone sees: not the developer's own builds under artifacts/ (CI has
# none), and what a test's CLI run writes there by default lands in a temporary folder.
os.environ.setdefault("EXPLORER_ARTIFACTS", tempfile.mkdtemp(prefix="explorer-artifacts-"))


def _train_tiny(root: Path, name: str, adv: str | None, eps: float) -> None:
    from explorer import train as T
    from explorer import zoo

    cfg = T.TrainConfig(name=name, arch="stage_cnn_tiny", epochs=3, batch_size=64, lr=0.05, adv_norm=adv, eps=eps,
                        attack_steps=3, limit=2000, out_dir=str(root), seed=0)
    card = T.train(cfg, device="cpu")
    zoo.write_manifest_entry(zoo.ModelSpec(
        name=name, source="bundled", arch=cfg.arch, dataset="fashion-mnist", mean=tuple(card["mean"]),
        std=tuple(card["std"]), input_size=tuple(card["input_size"]), robust=adv is not None, train_norm=adv,
        train_eps=eps if adv else None, weights=f"{name}.safetensors", card=f"{name}.json",
        sha256=zoo.sha256_file(root / f"{name}.safetensors")), root)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A checkpoints folder with ``tiny-standard`` and ``tiny-robust`` (Linf 0.1) models,
    trained for three epochs on 2000 Fashion-MNIST images, registered in its manifest.
    ``$EXPLORER_CHECKPOINTS`` points at it for the whole session."""
    root = tmp_path_factory.mktemp("checkpoints")
    _train_tiny(root, "tiny-standard", None, 0.0)
    _train_tiny(root, "tiny-robust", "linf", 0.1)
    old = os.environ.get("EXPLORER_CHECKPOINTS")
    os.environ["EXPLORER_CHECKPOINTS"] = str(root)
    yield root
    if old is None:
        os.environ.pop("EXPLORER_CHECKPOINTS", None)
    else:
        os.environ["EXPLORER_CHECKPOINTS"] = old


@pytest.fixture(scope="session")
def tiny_pair(tiny_root):
    """(standard, robust) tiny Classifiers on the CPU."""
    from explorer import zoo

    return zoo.load("tiny-standard", device="cpu", root=tiny_root), zoo.load("tiny-robust", device="cpu", root=tiny_root)


@pytest.fixture(scope="session")
def fmnist_test():
    from explorer import data

    return data.bundled_fashion_mnist("test")


@pytest.fixture
def navigation_runs_app_py(monkeypatch):
    """Every AppTest rerun goes through app.py, as on a server: AppTest starts each run with a fresh
    PagesManager that sees the pages/ folder (Streamlit's old-style multipage path); this keeps the
    app's ``st.navigation`` in charge. Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__

    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", patched)
