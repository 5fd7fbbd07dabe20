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


#: README section that shows each shipped Table 1 (results/constructed/<folder>/table.json).
README_TABLES = {"fashion-mnist-subset4000": "### Our table: a SUBSET run", "fashion-mnist": "### The full table",
                 "cifar10-subset2000": "### CIFAR-10, the paper's own data",
                 "cifar10-subset2000-eps1": "#### CIFAR-10 at eps 1.0",
                 "cifar10-subset10000": "#### CIFAR-10 at 10,000 training images",
                 "cifar10": "#### CIFAR-10 at all 50,000 training images",
                 "cifar10-eps1": "#### CIFAR-10 at all 50,000 images and eps 1.0"}


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = re.search(r"^##", text[start + len(heading):], re.M)
    return text[start:start + len(heading) + (end.start() if end else len(text))]


def test_readme_tables_show_the_shipped_numbers():
    """Every row of a shipped table is in its README section with the same clean, robust and
    half-eps robust accuracy, and the section shows no row the table lacks."""
    import json

    readme = (ROOT / "README.md").read_text()
    shipped = ROOT / "results" / "constructed"
    assert sorted(p.name for p in shipped.iterdir() if (p / "table.json").exists()) == sorted(README_TABLES)
    for folder, heading in README_TABLES.items():
        table = json.loads((shipped / folder / "table.json").read_text())
        section = _section(readme, heading)
        names = [r["dataset"] for r in table["rows"]]
        shown = re.findall(r"^\| (D(?:_\w+)?) \|", section, re.M)
        assert shown == names, (folder, shown, names)
        for r in table["rows"]:
            line = re.search(rf"^\| {r['dataset']} \|.*$", section, re.M).group(0)
            percents = [float(p) for p in re.findall(r"(\d+(?:\.\d+)?)%", line.replace("*", ""))][:3]
            assert percents == [r["clean %"], r["robust %"], r["robust % (half eps)"]], (folder, line)
            if r.get("into (y+1) %") is not None:  # the last column, where the table has it
                assert line.replace("*", "").rstrip(" |").endswith(f"| {r['into (y+1) %']}%"), (folder, line)
