"""The repository's promises: README's commands, CI, and the house rules."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [b.strip() for b in blocks[:2]]


def test_readme_has_the_two_setup_commands():
    app, tests = readme_commands()
    assert app.endswith("streamlit run app.py") and app.startswith("pip install -r requirements.txt")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    _, tests = readme_commands()
    ci_lines = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert tests in ci_lines


def test_library_never_imports_streamlit():
    hits = subprocess.run(["grep", "-rlE", r"^\s*(import streamlit|from streamlit)", str(ROOT / "explorer")],
                          capture_output=True, text=True).stdout.strip()
    assert hits == ""


def test_no_unsafe_torch_load():
    out = subprocess.run(["grep", "-rn", "torch.load(", str(ROOT / "explorer")], capture_output=True,
                         text=True).stdout.splitlines()
    unsafe = [l for l in out if "weights_only=True" not in l and "# opt-in: --trust-pickled" not in l]
    assert unsafe == []


def test_test_module_names_are_unique():
    """Test folders have no __init__.py, so two test files with one basename stop the run at collection."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert len(names) > 20
    assert sorted({n for n in names if names.count(n) > 1}) == []
