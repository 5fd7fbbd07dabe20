"""Bounds: every numeric widget of the pages states its range, so the browser cannot send what the
experiment would refuse (the experiments' Configs check again, with a one-line message)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "pages").glob("*.py")) + sorted((ROOT / "ui").glob("*.py"))
NUMERIC = {"number_input", "slider"}


def _numeric_calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in NUMERIC:
            yield node


def _bound(call: ast.Call, position: int, keyword: str):
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[position] if len(call.args) > position else None


@pytest.mark.parametrize("path", SOURCES, ids=[f"{p.parent.name}/{p.name}" for p in SOURCES])
def test_every_numeric_widget_has_a_minimum_and_a_maximum(path):
    missing = []
    for call in _numeric_calls(path):
        for position, keyword in ((1, "min_value"), (2, "max_value")):
            bound = _bound(call, position, keyword)
            if bound is None or (isinstance(bound, ast.Constant) and bound.value is None):
                missing.append(f"line {call.lineno}: {call.func.attr} without {keyword}")
    assert not missing, missing


def test_the_check_sees_the_widgets():
    """The scan finds the attack lab's and the shared widgets (a check that finds nothing proves nothing)."""
    counts = {p.name: len(list(_numeric_calls(p))) for p in SOURCES}
    assert counts["attack_lab.py"] >= 4 and counts["widgets.py"] >= 2
