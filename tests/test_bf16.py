"""bfloat16 on the CPU (and CUDA) for the heavy jobs: D_rand / D_det's PGD (``Recipe.precision``),
the training passes (``TrainConfig.bf16``) and ``table --bf16`` (both; the evaluation stays fp32).

On a CPU with AMX the passes run about 2.6x faster (bench/README.md); the tests check that the
switch reaches the arithmetic, that it is recorded wherever the result is (manifest, card, table
config), that a build under one precision is never resumed under the other, and that everything
saved before the switch existed reads as fp32.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from explorer import cli
from explorer import construct as K
from explorer import train as T
from explorer.experiments import constructed_table as CT

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_ROOT = ROOT / "checkpoints"


def _step(bf16: bool) -> tuple[torch.Tensor, float]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 32, generator=g), torch.randint(0, 4, (64,), generator=g)
    torch.manual_seed(0)
    model = torch.nn.Linear(32, 4)
    opt = T.make_optimizer(model.parameters(), "adam", 0.05, weight_decay=0.0)
    totals = T.fit_epoch(model, opt, [(x, y)], lr_at=lambda i: 0.05, device="cpu", bf16=bf16)
    return model.weight.detach().clone(), totals.batch_loss


def test_fit_epoch_bf16_runs_the_pass_in_bfloat16_and_keeps_fp32_weights():
    w32, loss32 = _step(False)
    w16, loss16 = _step(True)
    assert w16.dtype == torch.float32
    assert not torch.equal(w32, w16)  # the pass did run in bfloat16 ...
    torch.testing.assert_close(w16, w32, atol=2e-2, rtol=0)  # ... and took nearly the same step
    assert loss16 == pytest.approx(loss32, abs=2e-2)


def test_recipe_precision_is_fp32_by_default_and_bf16_only_for_pgd_kinds():
    det = K.default_recipe("det", "fashion-mnist")
    assert det.precision == "fp32" and "bfloat16" not in det.describe()
    fast = K.default_recipe("det", "fashion-mnist", precision="bf16")
    assert fast.precision == "bf16" and "bfloat16 (not the paper's fp32)" in fast.describe()
    assert K.default_recipe("rand", "fashion-mnist", precision="bf16").precision == "bf16"
    with pytest.raises(K.ConstructError, match="D_rand and D_det's PGD only"):
        K.default_recipe("robust", "fashion-mnist", precision="bf16")
    with pytest.raises(K.ConstructError, match="precision must be one of"):
        K.default_recipe("det", "fashion-mnist", precision="fp16")


def test_a_manifest_written_before_precision_existed_reads_as_fp32():
    assert K.recipe_record({"kind": "det", "targets": None}) == {"kind": "det", "targets": None, "precision": "fp32"}
    assert K.recipe_record({"kind": "rand"}) == {"kind": "rand", "targets": "other", "precision": "fp32"}
    assert K.recipe_record({"kind": "det", "targets": None, "precision": "bf16"})["precision"] == "bf16"


def test_cli_flags_reach_the_recipes():
    parser = cli.build_parser()
    a = parser.parse_args(["construct", "det", "--bf16"])
    assert a.bf16 and not parser.parse_args(["construct", "det"]).bf16
    assert parser.parse_args(["train", "--name", "n", "--bf16"]).bf16
    t = parser.parse_args(["table", "--bf16"])
    assert t.bf16 and not parser.parse_args(["table"]).bf16
    config = CT.Config(bf16=True, subset=None)
    assert config.recipe("det").precision == "bf16" and config.recipe("rand").precision == "bf16"
    assert config.recipe("robust").precision == "fp32" and config.recipe("original").precision == "fp32"
    assert CT.Config(subset=None).recipe("det").precision == "fp32"
    assert cli.main(["construct", "robust", "--bf16"]) == 2  # one line, nothing built


def test_train_card_records_bf16(tmp_path):
    cfg = T.TrainConfig(name="b", arch="stage_cnn_tiny", limit=128, batch_size=64, epochs=1, lr=0.05,
                        out_dir=str(tmp_path), bf16=True)
    card = T.train(cfg, device="cpu")
    assert card["recipe"]["bf16"] is True
    assert json.loads((tmp_path / "b.json").read_text())["recipe"]["bf16"] is True
    # a card saved before the field existed reads back as fp32 training
    old = {k: v for k, v in card["recipe"].items() if k != "bf16"}
    assert T.TrainConfig(**old).bf16 is False


@pytest.mark.skipif(not (BUNDLED_ROOT / "fmnist-standard.safetensors").exists(),
                    reason="the bundled fmnist-standard model is not in checkpoints/")
def test_a_bf16_build_is_recorded_and_never_resumed_in_fp32(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(BUNDLED_ROOT))
    kw = dict(subset=16, steps=5, step_sizes=(0.5,), eps=2.0, shard_size=16, batch_size=16)
    fast = K.default_recipe("det", "fashion-mnist-bundled", precision="bf16", **kw)
    K.build(fast, tmp_path / "bf16", device="cpu")
    K.build(K.default_recipe("det", "fashion-mnist-bundled", **kw), tmp_path / "fp32", device="cpu")
    m = K.manifest(tmp_path / "bf16")
    assert m["recipe"]["precision"] == "bf16" and "bfloat16" in m["description"]
    assert K.manifest(tmp_path / "fp32")["recipe"]["precision"] == "fp32"
    _, a = K.load_arrays(tmp_path / "bf16")
    _, b = K.load_arrays(tmp_path / "fp32")
    assert torch.equal(a["labels"], b["labels"])  # the same targets ...
    assert not torch.equal(a["images"], b["images"])  # ... reached by other arithmetic
    with pytest.raises(K.ConstructError, match="another recipe"):
        K.build(K.default_recipe("det", "fashion-mnist-bundled", **kw), tmp_path / "bf16", device="cpu")
    # a D_det manifest written before the field existed resumes as what it was: fp32
    old = json.loads((tmp_path / "fp32" / K.MANIFEST).read_text())
    del old["recipe"]["precision"]
    (tmp_path / "fp32" / K.MANIFEST).write_text(json.dumps(old))
    again = K.build(K.default_recipe("det", "fashion-mnist-bundled", **kw), tmp_path / "fp32", device="cpu")
    assert again.built == [] and again.skipped == [0]
