"""D_rand's target rule (issue 19, item 1): the paper draws t uniformly over ALL C classes,
independent of y, so about 1/C of the labels equal y; ``other`` (the C - 1 other classes, never
y) is an explicit, named option, and a manifest written before the rule was a choice reads as
``other``, the rule it was built under, so it is never resumed under the paper's rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from explorer import cli, data, zoo
from explorer import construct as K
from explorer.attacks import choose_targets
from explorer.experiments import _discussion as DISC
from explorer.experiments import constructed_table as CT
from explorer.experiments import leakage

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_ROOT = ROOT / "checkpoints"
C, N = 10, 1000
# P(equal) = 1/10 over 1000 independent draws: mean 100, sd 9.5; 60..140 is beyond 4 sd either way
LOW, HIGH = 0.06, 0.14


def _labels() -> torch.Tensor:
    return torch.arange(N) % C


def test_uniform_targets_equal_y_about_one_in_c_and_other_never():
    y = _labels()
    uniform = choose_targets(y, C, "uniform", torch.Generator().manual_seed(0))
    assert LOW <= float((uniform == y).float().mean()) <= HIGH
    assert set(uniform.tolist()) == set(range(C))
    assert torch.equal(choose_targets(y, C, "random", torch.Generator().manual_seed(0)), uniform)  # same rule
    other = choose_targets(y, C, "other", torch.Generator().manual_seed(0))
    assert not (other == y).any() and set(other.tolist()) == set(range(C))


def _source(n: int = N) -> data.TensorDataset:
    images = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
    return data.TensorDataset(images, _labels()[:n], tuple(f"c{k}" for k in range(C)), "synthetic")


def test_construct_draws_paper_targets_by_default_and_other_on_request():
    source, positions = _source(), torch.arange(N)
    paper = K.default_recipe("rand", "fashion-mnist", shard_size=N)
    assert paper.targets == "uniform" and "uniform over all classes" in paper.describe()
    t = K.shard_inputs(paper, source, positions, 0, C).targets
    assert LOW <= float((t == source.labels).float().mean()) <= HIGH
    old = K.default_recipe("rand", "fashion-mnist", shard_size=N, targets="other")
    assert "other classes" in old.describe() and "not the paper's" in old.describe()
    t_old = K.shard_inputs(old, source, positions, 0, C).targets
    assert not (t_old == source.labels).any()
    # "other" draws exactly what construct drew before the rule was a choice (old shards resume byte for byte)
    g = K.shard_generator(old.seed, 0)
    assert torch.equal(t_old, (source.labels + torch.randint(1, C, (N,), generator=g)) % C)
    # D_det and the others take no rule
    assert K.default_recipe("det", "fashion-mnist").targets is None
    with pytest.raises(K.ConstructError, match="D_rand only"):
        K.default_recipe("det", "fashion-mnist", targets="other")
    with pytest.raises(K.ConstructError, match="targets"):
        K.default_recipe("rand", "fashion-mnist", targets="sideways")


def test_discussion_d_rand_and_leakage_default_to_the_paper_rule():
    assert leakage.Config().targets == "uniform" and CT.Config().rand_targets == "uniform"
    assert CT.Config().recipe("rand").targets == "uniform"
    assert CT.Config(rand_targets="other").recipe("rand").targets == "other"
    assert CT.Config(rand_targets="other").recipe("det").targets is None
    with pytest.raises(ValueError):
        leakage.Config(targets="sideways")


def test_cli_construct_rand_defaults_to_the_paper_rule():
    parser = cli.build_parser()
    args = parser.parse_args(["construct", "rand"])
    recipe = K.default_recipe(args.kind, args.dataset, targets=args.targets)
    assert recipe.targets == "uniform"
    assert parser.parse_args(["construct", "rand", "--targets", "other"]).targets == "other"
    assert parser.parse_args(["table"]).targets == "uniform"
    assert cli.main(["construct", "det", "--targets", "other"]) == 2  # one line, nothing built


def test_old_manifest_without_the_field_reads_as_other(tmp_path):
    recipe = dict(json.loads(json.dumps(K.Recipe(kind="rand", source="s", steps=1, step_sizes=(0.1,), eps=1.0,
                                                 targets="other").__dict__)))
    recipe.pop("targets")
    for kind, want in (("rand", "other"), ("det", None)):
        (tmp_path / kind).mkdir()
        (tmp_path / kind / K.MANIFEST).write_text(json.dumps({"format": K.FORMAT, "recipe": {**recipe, "kind": kind}}))
        assert K.read_manifest(tmp_path / kind)["recipe"]["targets"] == want
    assert K.recipe_record({"kind": "rand"}) == {"kind": "rand", "targets": "other", "precision": "fp32"}
    assert K.recipe_record({"kind": "rand", "targets": "uniform"})["targets"] == "uniform"


@pytest.mark.skipif(not (BUNDLED_ROOT / "fmnist-standard.safetensors").exists(),
                    reason="the bundled fmnist-standard model is not in checkpoints/")
def test_an_old_d_rand_resumes_under_other_and_is_refused_under_the_paper_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(BUNDLED_ROOT))
    kw = dict(subset=8, steps=2, step_sizes=(0.1,), eps=0.5, shard_size=8, batch_size=8)
    old = K.default_recipe("rand", "fashion-mnist-bundled", targets="other", **kw)
    out = tmp_path / "rand"
    K.build(old, out, device="cpu")
    m = json.loads((out / K.MANIFEST).read_text())
    del m["recipe"]["targets"]  # as written before the field existed
    (out / K.MANIFEST).write_text(json.dumps(m))
    assert K.manifest(out)["recipe"]["targets"] == "other"
    again = K.build(old, out, device="cpu")  # same rule: nothing to build
    assert again.built == [] and again.skipped == [0]
    with pytest.raises(K.ConstructError, match="another recipe"):
        K.build(K.default_recipe("rand", "fashion-mnist-bundled", **kw), out, device="cpu")


@pytest.mark.skipif(not (BUNDLED_ROOT / "fmnist-standard.safetensors").exists(),
                    reason="the bundled fmnist-standard model is not in checkpoints/")
def test_discussion_d_rand_targets(monkeypatch):
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(BUNDLED_ROOT))
    source = zoo.load("fmnist-standard", device="cpu")
    x, y = torch.rand(40, 1, 28, 28), _labels()[:40]
    _, t, _ = DISC.det_pgd(source, x, y, eps=0.1, steps=1, kind="rand", seed=0)
    _, t_old, _ = DISC.det_pgd(source, x, y, eps=0.1, steps=1, kind="rand", seed=0, targets="other")
    assert torch.equal(t, choose_targets(y, C, "uniform", torch.Generator().manual_seed(0)))
    assert (t == y).any() and not (t_old == y).any()
