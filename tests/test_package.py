"""The project is a package people can install: pyproject.toml's dependencies are
requirements.txt's, and in a fresh venv `pip install -e .` gives `import explorer` from
another folder and the `explorer` command. The install runs on a copy in a temporary
folder, so the tree is left as it was."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _requirements() -> list[str]:
    out = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.append(re.sub(r"\s+", "", line))
    return out


def test_dependencies_are_requirements_txt():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert [re.sub(r"\s+", "", d) for d in meta["dependencies"]] == _requirements()
    assert meta["scripts"]["explorer"] == "explorer.cli:main"


def test_editable_install_in_a_fresh_venv(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "explorer", src / "explorer", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "checkpoints", src / "checkpoints", ignore=shutil.ignore_patterns("*.state.pt", ".*"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPLORER_")}  # the copy's own checkpoints/
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    py, cli = venv / "bin" / "python", venv / "bin" / "explorer"
    done = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "-e", str(src)], capture_output=True,
                          text=True, timeout=600, env=env)
    if done.returncode != 0 and "setuptools" in done.stderr and "No matching distribution" in done.stderr:
        pytest.skip("no package index here to build with (setuptools): " + done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    got = subprocess.run([str(py), "-c", "import explorer, explorer.data; print(explorer.__file__, explorer.__version__)"],
                         capture_output=True, text=True, cwd=elsewhere, timeout=300, env=env)
    assert got.returncode == 0, got.stderr[-2000:]
    assert got.stdout.split()[0] == str(src / "explorer" / "__init__.py")
    listed = subprocess.run([str(cli), "list"], capture_output=True, text=True, cwd=elsewhere, timeout=300, env=env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert re.search(r"^fmnist-standard\s.*\byes\b", listed.stdout, re.M), listed.stdout[:2000]
