"""Any image folder, first class (issue 17): train -> evaluate -> construct -> table through the
CLI on a tiny ``folder:ROOT`` tree made here (3 classes of 16x16 colour images), and the
refusals: a source model that does not fit the data, a folder with no default source model,
a table that asks for a robust model only when D_R is built, a card on the bundled subset.
Defaults come from the dataset's own facts; the table's time left counts whole phases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import cards, cli, data
from explorer import construct as K
from explorer.experiments import constructed_table as CT

COLOURS = {"blue": (40, 60, 200), "green": (40, 190, 60), "red": (210, 50, 40)}


def _tree(root: Path, per_class: dict[str, int], size: int = 16, seed: int = 0,
          colours: dict | None = None) -> Path:
    """ROOT/<split>/<class>/<i>.png: each class its own colour, with noise and a random square."""
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for name, rgb in (colours or COLOURS).items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = np.clip(np.array(rgb)[None, None] + rng.normal(0, 25, (size, size, 3)), 0, 255)
                y, x = rng.integers(0, size - 4, 2)
                a[y:y + 4, x:x + 4] = rng.integers(0, 256, 3)
                Image.fromarray(a.astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The whole chain once: a tree, a model trained on it and registered, its evaluation, a
    D_det built from it, a table on it, and a model trained on the D_det and evaluated."""
    tmp = tmp_path_factory.mktemp("folder-chain")
    tree = _tree(tmp / "tree", {"train": 20, "test": 10})
    ckpt = tmp / "checkpoints"
    ckpt.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLORER_CACHE", str(tmp / "cache"))
        mp.setenv("EXPLORER_CHECKPOINTS", str(ckpt))
        mp.setenv("EXPLORER_ARTIFACTS", str(tmp / "artifacts"))
        dataset = f"folder:{tree}"
        common = ["--device", "cpu"]
        steps = {}
        steps["train"] = cli.main(["train", "--name", "folder-tiny", "--dataset", dataset, "--arch", "stage_cnn_tiny",
                                   "--epochs", "2", "--batch-size", "8", "--lr", "0.05", "--out-dir", str(ckpt),
                                   "--register", *common])
        steps["evaluate"] = cli.main(["evaluate", "folder-tiny", "--norms", "l2", "--steps", "3",
                                      "--batch-size", "30", *common])
        steps["construct"] = cli.main(["construct", "det", "--dataset", dataset, "--source", "folder-tiny",
                                       "--steps", "20", "--step-size", "1.0", "--eps", "8", "--shard-size", "30",
                                       "--batch-size", "30", "--out", str(tmp / "det"), *common])
        steps["table"] = cli.main(["table", "--dataset", dataset, "--standard", "folder-tiny", "--kinds", "original",
                                   "det", "--arch", "stage_cnn_tiny", "--epochs", "2", "--batch-size", "8",
                                   "--lr", "0.05", "--eps", "8", "--attack-steps", "20", "--attack-step-size",
                                   "1.0", "--eval-steps", "2", "--shard-size", "60", "--out", str(tmp / "table"),
                                   *common])
        steps["train-on-det"] = cli.main(["train", "--name", "on-det", "--dataset", f"constructed:{tmp / 'det'}",
                                          "--arch", "stage_cnn_tiny", "--epochs", "1", "--batch-size", "8",
                                          "--out-dir", str(ckpt), "--register", *common])
        steps["evaluate-on-det"] = cli.main(["evaluate", "on-det", "--norms", "l2", "--eps-l2", "0.25",
                                             "--steps", "2", *common])
        yield tmp, tree, ckpt, steps


def test_the_chain_runs_through_the_cli(chain):
    _, _, _, steps = chain
    assert steps == {k: 0 for k in steps}, steps


def test_train_and_evaluate_a_model_on_the_folder(chain):
    _, tree, ckpt, _ = chain
    card = json.loads((ckpt / "folder-tiny.json").read_text())
    assert card["input_size"] == [3, 16, 16] and card["class_names"] == ["blue", "green", "red"]
    ev = json.loads((ckpt / "folder-tiny.eval.json").read_text())
    assert ev["test_set"] == f"folder:{tree}/test" and ev["n"] == 30 and ev["full_test_set"]
    assert card["evaluation"] == ev  # the card holds the numbers and says which test set and n
    clean = next(r for r in ev["results"] if r["norm"] == "none")
    assert clean["accuracy"] >= 0.6, ev  # colours a tiny net learns in two epochs (chance: 1/3)
    assert all(0 <= r["accuracy"] <= clean["accuracy"] for r in ev["results"])
    assert (ckpt / "folder-tiny.eval.csv").exists()
    from explorer import zoo

    model = zoo.load("folder-tiny", device="cpu", root=ckpt)  # a folder's classes come from the card
    assert model.class_names == ("blue", "green", "red")


def test_construct_det_records_its_success_rate(chain):
    tmp, tree, _, _ = chain
    m = json.loads((tmp / "det" / K.MANIFEST).read_text())
    assert m["complete"] and m["count"] == 60 and m["input_size"] == [3, 16, 16]  # its own size and colours
    assert m["class_names"] == ["blue", "green", "red"]
    rate = m["statistics"]["attack_success_rate"]
    assert 0 <= rate <= 1
    assert m["warnings"] == ([] if rate >= K.SUCCESS_FLOOR else [K.attack_warning(m)])
    assert m["build_seconds"] > 0 and m["dataset"]["loaded"] == f"folder:{tree}/train"
    _, t = K.load_arrays(tmp / "det")
    assert (t["labels"] == (t["source_label"] + 1) % 3).all()


def test_the_table_has_its_rows_and_evaluates_at_the_folders_eps(chain):
    tmp, tree, _, _ = chain
    doc = json.loads((tmp / "table" / "table.json").read_text())
    assert [r["dataset"] for r in doc["rows"]] == ["D", "D_det"]
    assert doc["config"]["robust"] is None  # not asked for: D_R is not among the kinds
    # L2 at CIFAR-10's 0.5 scaled to 3x16x16: 0.5 * sqrt(768 / 3072)
    assert (doc["eval"]["norm"], doc["eval"]["eps"]) == ("l2", 0.25)
    assert doc["eval"]["test_set"] == f"folder:{tree}/test" and doc["eval"]["n_test"] == 30
    assert all(0 <= r["robust %"] <= r["clean %"] <= 100 for r in doc["rows"])
    assert doc["rows"][0]["clean %"] >= 50  # D: the real images
    assert "targeted attack success" in doc["rows"][1]["construction"]


def test_a_model_trained_on_a_constructed_set_is_measured_on_its_sources_test_set(chain):
    _, tree, ckpt, _ = chain
    ev = json.loads((ckpt / "on-det.eval.json").read_text())
    assert ev["test_set"] == f"folder:{tree}/test" and ev["n"] == 30
    assert ev["dataset"].startswith("constructed:")


# --- refusals -------------------------------------------------------------------------------

def test_a_source_model_that_does_not_fit_the_data_is_refused_in_one_line(chain, capsys, monkeypatch):
    tmp, _, ckpt, _ = chain
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(ckpt))
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp / "cache"))
    rc, out, err = _run(["construct", "det", "--dataset", "fashion-mnist-bundled", "--source", "folder-tiny",
                         "--subset", "10", "--out", str(tmp / "refused"), "--device", "cpu"], capsys)
    assert rc == 2 and err.strip().count("\n") == 0, err
    assert "source folder-tiny takes 3x16x16 images; fashion-mnist-bundled has 1x28x28 images: pass --source" in err
    assert not (tmp / "refused" / K.MANIFEST).exists()  # refused before anything was written
    grey = _tree(tmp / "grey-classes", {"train": 2, "test": 1}, colours={"a": (9, 9, 9), "b": (200, 200, 200)})
    with pytest.raises(K.ConstructError, match="source folder-tiny has 3 classes; folder:.* has 2"):
        K.check_source("folder-tiny", f"folder:{grey}", data.load_dataset(f"folder:{grey}", "train"))


def test_a_folder_without_a_model_of_ours_has_no_default_source(chain, capsys, monkeypatch):
    tmp, tree, _, _ = chain
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp / "cache"))
    rc, _, err = _run(["construct", "det", "--dataset", f"folder:{tree}", "--out", str(tmp / "none")], capsys)
    assert rc == 2 and err.strip().count("\n") == 0, err
    assert f"folder:{tree} has no default source model: pass --source NAME" in err
    assert f"python -m explorer train --name NAME --dataset folder:{tree}" in err
    rc, _, err = _run(["table", "--dataset", f"folder:{tree}", "--kinds", "original", "det"], capsys)
    assert rc == 2 and "pass --standard NAME" in err


def test_the_table_asks_for_a_robust_model_only_for_d_r(chain, capsys, monkeypatch):
    tmp, tree, ckpt, _ = chain
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(ckpt))
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp / "cache"))
    rc, _, err = _run(["table", "--dataset", f"folder:{tree}", "--standard", "folder-tiny", "--kinds", "original",
                       "robust", "--out", str(tmp / "no-robust")], capsys)
    assert rc == 2 and "pass --robust NAME" in err and err.strip().count("\n") == 0, err
    assert not (tmp / "no-robust").exists()
    # without D_R, fashion-mnist's evaluation eps is its own (the facts' L2 default), no robust model loaded
    config = CT.Config(dataset="fashion-mnist", robust=None, kinds=("original", "det"))
    assert CT.evaluation_threat(config) == ("l2", data.DATASETS["fashion-mnist"].eps_range("l2").default)
    with pytest.raises(ValueError, match="pass --robust"):
        CT._check_sources(CT.Config(dataset="fashion-mnist", robust=None, kinds=("robust",)),
                          data.bundled_fashion_mnist("test"))


def test_a_card_is_not_measured_on_the_bundled_subset_unless_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "nothing"))
    with pytest.raises(cards.CardError, match=r"only the bundled 1000-image subset of cifar10's test set.*--bundled-subset"):
        cards.test_set("cifar10")
    ds = cards.test_set("cifar10", allow_subset=True)
    assert ds.name == "cifar10/test (bundled subset)" and len(ds) == 1000
    assert cards.test_set("cifar10-bundled").name == ds.name  # asked for by name: no refusal


# --- defaults from the dataset's own facts ------------------------------------------------------

def test_defaults_come_from_the_datasets_facts(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    cifar = K.defaults_for("cifar10")
    assert (cifar.standard, cifar.robust) == ("cifar10-standard", "cifar10-robust-l2")
    assert (cifar.inversion_steps, cifar.inversion_step_sizes) == (1000, (0.1,))  # the paper's
    assert (cifar.attack_eps, cifar.attack_steps, cifar.attack_step_size) == (0.5, 100, 0.1)
    assert K.defaults_for("fashion-mnist") == K.DEFAULTS["fashion-mnist"]
    # a folder that is CIFAR-10 (its ten classes, 32x32 colour) gets CIFAR-10's
    ten = {n: (i * 25, 255 - i * 25, 128) for i, n in enumerate(data.CIFAR10_CLASSES)}
    cifar_tree = _tree(tmp_path / "cifar", {"train": 1}, size=32, colours=ten)
    d = K.defaults_for(f"folder:{cifar_tree}")
    assert (d.standard, d.attack_eps, d.inversion_steps) == ("cifar10-standard", 0.5, 1000)
    # any other folder: no default source, L2 lengths scaled by sqrt(C*H*W / 3072)
    other = _tree(tmp_path / "other", {"train": 2})
    d = K.defaults_for(f"folder:{other}")
    assert d.standard is None and d.robust is None and d.input_size == (3, 16, 16)
    assert (d.attack_eps, d.attack_step_size, d.inversion_step_sizes) == (0.25, 0.05, (0.05,))
    r = K.default_recipe("det", f"folder:{other}", defaults=d, source="anything")
    assert (r.eps, r.steps, r.step_sizes) == (0.25, 100, (0.05,))
    with pytest.raises(K.ConstructError, match="has no default source model"):
        K.default_recipe("rand", f"folder:{other}", defaults=d)
    assert K.default_recipe("original", f"folder:{other}", defaults=d).source is None


# --- the table's time left counts whole phases ----------------------------------------------------

class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_the_time_left_counts_whole_phases_by_their_own_lengths():
    clock = _Clock()
    c = CT.PhaseClock(("original", "det", "rand"), clock=clock)
    assert c.total == 9 and c.eta() == (None, False)
    clock.t = 1
    c.finish()                       # D copied: 1 s
    clock.t += 60
    c.advance(0.5)                   # D trained half in 60 s
    seconds, complete = c.eta()
    # 60 s left of this training, two more trainings at 120 s; evaluations and attacks not timed yet
    assert seconds == pytest.approx(60 + 2 * 120) and not complete
    clock.t += 60
    c.finish()                       # trained: 120 s
    clock.t += 10
    c.finish()                       # evaluated: 10 s
    clock.t += 300
    c.advance(0.25)                  # D_det's attack: a quarter in 300 s
    seconds, complete = c.eta()
    # 900 s left of it; D_det's training and evaluation; D_rand's attack (1200 s), training, evaluation
    assert seconds == pytest.approx(900 + 120 + 10 + 1200 + 120 + 10) and complete
    assert c.eta_text() == "39:20"
    c.finish(reused=False)
    c.finish(reused=True)            # a reused model takes no time and is no estimate
    assert c.measured[("training", "")] == [120.0] and c.done == 5
