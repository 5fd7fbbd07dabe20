"""The house plan (DESIGN.md): explorer/ has no import circle (an import inside a function
counts), imports nothing of the repository outside it (ui/, pages/, bench/, app.py), and every
module of the library stays a room of one concern: under 500 lines, opened by a docstring."""

from __future__ import annotations

import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "explorer"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in LIB.rglob("*.py") if "__pycache__" not in p.parts}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The repository modules ``path`` imports, anywhere in it (the most specific known name)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods) | {"ui", "pages", "bench", "app"}
    return {m: _imports(p, m, known) for m, p in mods.items()}


def test_the_library_imports_nothing_of_the_repository_outside_it():
    bad = {m: sorted(t for t in ts if not t.startswith("explorer")) for m, ts in _graph().items()}
    assert not {m: ts for m, ts in bad.items() if ts}


def find_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles by depth-first search; a package's face importing its own rooms is not one."""
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if t.startswith(m + "."):
                continue
            if state.get(t) == 1:
                circles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return circles


def test_the_circle_finder_finds_the_old_circle():
    old = {"explorer.construct": {"explorer.experiments.inversion"}, "explorer.experiments.inversion":
           {"explorer.experiments._common"}, "explorer.experiments._common": {"explorer.zoo"},
           "explorer.zoo": {"explorer.data"}, "explorer.data": {"explorer.construct"}}
    assert find_circles(old) == [["explorer.construct", "explorer.experiments.inversion",
                                  "explorer.experiments._common", "explorer.zoo", "explorer.data",
                                  "explorer.construct"]]
    assert find_circles({"explorer.zoo": {"explorer.zoo.specs"}, "explorer.zoo.specs": set()}) == []


def test_no_import_circle_in_the_library():
    graph = _graph()
    assert "explorer.inversion" in graph["explorer.construct.job"]  # the reader sees imports (sanity)
    circles = find_circles(graph)
    assert not circles, "\n".join(" -> ".join(c) for c in circles[:5])


def test_every_room_is_small_and_says_its_concern():
    big = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, big
    silent = [m for m, p in _modules().items() if p.stat().st_size > 200 and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert not silent, silent


def test_the_heavy_commands_run_without_the_apps_packages(tmp_path):
    """`table`, `construct`, `train` and `evaluate` are what runs on a rented GPU machine, which has torch but
    not the dashboard's packages (streamlit, altair): the CLI must not import them until a command that draws
    needs them. A sitecustomize hides them from a fresh interpreter."""
    import subprocess
    import sys

    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('streamlit', 'altair'):\n"
        "            raise ImportError(f'{name} hidden by the test')\n"
        "sys.meta_path.insert(0, _Hide())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    hidden = subprocess.run([sys.executable, "-c", "import altair"], capture_output=True, text=True, env=env,
                            timeout=60)
    assert hidden.returncode != 0 and "hidden by the test" in hidden.stderr  # the hiding works
    for command in ("table", "construct", "train", "evaluate"):
        done = subprocess.run([sys.executable, "-m", "explorer", command, "--help"], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=120)
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert "usage: python -m explorer" in done.stdout
