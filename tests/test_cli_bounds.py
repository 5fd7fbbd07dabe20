"""Bounds on the CLI (issue 9, item 6): every numeric option has a stated range, and a value outside it,
NaN, infinity or a non-number stops at parse time with one line naming the option (exit status 2)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from explorer import bounds, cli


def _numeric_options():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.type is not None and action.option_strings and action.type not in (str,) \
                    and not bounds.is_name(action.type):
                yield name, action


OPTIONS = list(_numeric_options())
IDS = [f"{name} {a.option_strings[-1]}" for name, a in OPTIONS]


def test_the_walk_finds_the_options():
    """A walk that found nothing would prove nothing: the known ones are there."""
    names = {(n, a.option_strings[-1]) for n, a in OPTIONS}
    assert {("train", "--eps"), ("train", "--lr"), ("evaluate", "--steps"), ("style", "--size"),
            ("construct", "--batch-size"), ("fetch", "--timeout")} <= names
    assert len(OPTIONS) >= 50


@pytest.mark.parametrize("command,action", OPTIONS, ids=IDS)
def test_every_numeric_option_is_bounded(command, action):
    assert bounds.is_bounded(action.type), (
        f"{command} {action.option_strings[-1]}: type {action.type!r} has no stated range; "
        "use a type from explorer/bounds.py")


def _outside(t):
    over = t.hi + 1 if t.kind is int else t.hi * 1.5 + 1
    under = t.lo if t.lo_open else (t.lo - 1 if t.kind is int else t.lo - 0.5)
    return [str(over), str(under), "nan", "inf", "abc"]


@pytest.mark.parametrize("command,action", [(c, a) for c, a in OPTIONS if bounds.is_bounded(a.type)],
                         ids=[i for i, (c, a) in zip(IDS, OPTIONS) if bounds.is_bounded(a.type)])
def test_out_of_range_values_are_refused_in_one_line(command, action, capsys):
    t = action.type
    assert t(str(t.hi)) == t.hi  # the bounds themselves are accepted
    if not t.lo_open:
        assert t(str(t.lo)) == t.lo
    for bad in _outside(t):
        with pytest.raises(argparse.ArgumentTypeError, match=r"^must be (an integer|a finite number) in "):
            t(bad)


@pytest.mark.parametrize("argv,option", [
    (["train", "--name", "x", "--attack-steps", "0"], "--attack-steps"),
    (["train", "--name", "x", "--eps", "-0.1"], "--eps"),
    (["evaluate", "fmnist-standard", "--eps-l2", "nan"], "--eps-l2"),
    (["evaluate", "fmnist-standard", "--steps", "1000000"], "--steps"),
    (["style", "chelsea", "brick", "--size", "30000"], "--size"),
    (["construct", "det", "--batch-size", "0"], "--batch-size"),
    (["layer-robustness", "fmnist-standard", "--eps", "inf"], "--eps"),
])
def test_the_command_line_says_one_line_and_exits_2(argv, option):
    r = subprocess.run([sys.executable, "-m", "explorer", *argv], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr
    assert err[-1].startswith("python -m explorer") and f"argument {option}: must be" in err[-1], r.stderr


# --- names that become paths (issue 18, item 6) ----------------------------------------------

ESCAPES = ["../escape", "a/b", "..", "x\\y", "", "/abs"]


def _named_options():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for action in p._actions:
            if bounds.is_name(action.type):
                yield name, action


NAMED = list(_named_options())


def test_every_name_that_becomes_a_path_is_checked():
    """The options and arguments that name a model, dataset or output carry the name check."""
    found = {(c, a.option_strings[-1] if a.option_strings else a.dest) for c, a in NAMED}
    assert {("train", "--name"), ("train", "--dataset"), ("evaluate", "names"), ("fetch", "names"),
            ("construct", "--source"), ("construct", "--dataset"), ("table", "--standard"), ("table", "--robust"),
            ("table", "--dataset"), ("layer-robustness", "models")} <= found


@pytest.mark.parametrize("bad", ESCAPES)
def test_a_name_with_a_path_separator_or_dotdot_is_refused_in_one_line(bad):
    for check in (bounds.name, bounds.dataset):
        with pytest.raises(argparse.ArgumentTypeError, match=r"^must be a plain (dataset )?name \(no path separator"):
            check(bad)


@pytest.mark.parametrize("good", ["fmnist-robust-l2", "madry-cifar10-resnet50-l2-0.5", "random:torchvision:resnet50",
                                  "cifar10-standard"])
def test_plain_names_are_accepted(good):
    assert bounds.name(good) == good and bounds.dataset(good) == good


@pytest.mark.parametrize("dataset", ["folder:../shared/datasets/cifar10", "constructed:/tmp/x/det"])
def test_a_dataset_that_names_a_folder_keeps_its_path(dataset):
    assert bounds.dataset(dataset) == dataset


@pytest.mark.parametrize("argv,option", [
    (["train", "--name", "../escape"], "--name"),
    (["train", "--name", "ok", "--dataset", "../x"], "--dataset"),
    (["evaluate", "../fmnist-standard"], "names"),
    (["fetch", "a/b"], "NAME"),
    (["table", "--robust", "../r"], "--robust"),
])
def test_the_command_line_refuses_an_escaping_name_before_writing(argv, option, tmp_path):
    r = subprocess.run([sys.executable, "-m", "explorer", *argv], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env={**__import__("os").environ,
                                          "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])})
    assert r.returncode == 2
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr and sum("error" in line for line in err) == 1, r.stderr  # usage + one line
    assert f"argument {option}: must be a plain" in err[-1], r.stderr
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "escape.json").exists()
