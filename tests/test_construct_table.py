"""Table 1 in miniature (explorer/experiments/constructed_table.py) on the tiny pair: five
datasets, one fresh model each, evaluated on the real test set; a rerun into the same folder
reuses everything and gives the same table; the CLI prints and saves it."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from explorer import construct as K
from explorer.experiments import constructed_table as CT

SMALL = dict(standard="tiny-standard", robust="tiny-robust", subset=200, inversion_steps=20,
             inversion_step_sizes=(1.0, 0.1), attack_eps=6.0, attack_steps=10, attack_step_size=1.5,
             arch="stage_cnn_tiny", epochs=10, batch_size=32, lr=0.1, test_limit=300, eval_steps=3,
             shard_size=100, batch_size_construct=100, device="cpu")


@pytest.fixture(scope="module")
def table(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("table")
    config = CT.Config(**SMALL, out_dir=str(out))
    calls = []
    result = CT.run(config, progress=lambda s, t, m: calls.append((s, t, m)))
    return config, result, calls


def test_one_row_per_dataset_on_the_real_test_set(table):
    config, result, calls = table
    assert [r.kind for r in result.rows] == list(K.KINDS)
    assert [r.name for r in result.rows] == ["D", "D_R", "D_NR", "D_rand", "D_det"]
    assert all(r.n_train == 200 and r.n_test == 300 for r in result.rows)
    # evaluated at the robust source model's threat model (tiny-robust: Linf 0.1)
    assert (result.eval_norm, result.eval_eps) == ("linf", 0.1)
    for r in result.rows:
        assert 0 <= r.robust <= r.clean <= 1
    d = result.rows[0]
    assert d.clean > 0.4, d  # 200 real images teach the tiny net well above chance (0.1)
    assert "attack_success_rate" in result.rows[4].construction
    assert "final_distance" in result.rows[1].construction
    assert calls and calls[-1][0] == calls[-1][1]  # the progress bar reaches its end
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))


def test_samples_show_the_same_images_in_every_dataset(table):
    _, result, _ = table
    k = result.originals.shape[0]
    assert result.constructed.shape == (5, k, 1, 28, 28)
    np.testing.assert_array_equal(result.constructed[0], result.originals)  # D is the images themselves
    np.testing.assert_array_equal(result.new_labels[4], (result.old_labels + 1) % 10)  # D_det
    np.testing.assert_array_equal(result.new_labels[1], result.old_labels)  # D_R keeps y
    # D_rand: any class, y included (the paper's rule, uniform over all classes; tests/test_drand_targets.py)
    assert ((0 <= result.new_labels[3]) & (result.new_labels[3] < 10)).all()
    assert "uniform over all classes" in result.rows[3].recipe


def test_markdown_puts_the_papers_numbers_beside_ours(table):
    _, result, _ = table
    md = CT.markdown(result)
    lines = md.splitlines()
    assert len(lines) == 7 and "robust at linf eps 0.1 (ours)" in lines[0]
    assert lines[2].startswith("| D | 200 | ") and "| 95.3% |" in lines[2]
    assert "| 84% | 48% |" in lines[3] and "| 88% | 0% |" in lines[4]
    assert "| 63.3% |" in lines[5] and "| 43.7% |" in lines[6]
    assert f"{100 * result.rows[0].clean:.1f}%" in lines[2]


def test_a_rerun_into_the_same_folder_reuses_datasets_models_and_evaluations(table):
    config, result, _ = table
    again = CT.run(config)
    assert [(r.clean, r.robust, r.robust_half) for r in again.rows] == \
        [(r.clean, r.robust, r.robust_half) for r in result.rows]
    assert all(r.reused == ("dataset", "model", "evaluation") for r in again.rows)  # nothing redone
    assert all(r.reused == () for r in result.rows)
    # the costs are the recorded ones, also when reused
    assert [r.train_seconds for r in again.rows] == [r.train_seconds for r in result.rows]
    assert [r.eval_seconds for r in again.rows] == [r.eval_seconds for r in result.rows]


def test_each_row_keeps_its_clean_confusion_matrix_and_the_share_put_in_y_plus_1(table):
    """The confusion matrix counts the real test images (its diagonal is the clean accuracy) and
    ``into_next`` is the share in (y + 1) mod 10, D_det's rule; an evaluation kept before the matrix
    existed gets it from one clean pass, its PGD numbers kept."""
    config, result, _ = table
    for r in result.rows:
        m = np.array(r.confusion)
        assert m.shape == (10, 10) and m.sum() == r.n_test == 300
        assert np.trace(m) == round(r.clean * r.n_test)
        assert r.into_next == pytest.approx(sum(m[i, (i + 1) % 10] for i in range(10)) / 300)
    assert [row["into (y+1) %"] for row in result.table()] == [round(100 * r.into_next, 1) for r in result.rows]
    det = Path(config.out_dir) / "models" / "on-det.eval.json"
    saved = json.loads(det.read_text())
    assert saved["result"]["confusion"] == [list(row) for row in result.rows[4].confusion]
    del saved["result"]["confusion"]
    saved["result"]["robust"] = 0.0  # a mark: the kept PGD number is served, not measured again
    det.write_text(json.dumps(saved))
    again = CT.run(replace(config, kinds=("det",)))
    assert again.rows[0].reused == ("dataset", "model", "evaluation") and again.rows[0].robust == 0.0
    assert again.rows[0].confusion == result.rows[4].confusion
    assert json.loads(det.read_text())["result"]["confusion"] == [list(row) for row in result.rows[4].confusion]
    saved["result"]["robust"] = result.rows[4].robust
    saved["result"]["confusion"] = [list(row) for row in result.rows[4].confusion]
    det.write_text(json.dumps(saved))
    assert CT.into_next_share([[0, 3], [1, 0]]) == 1.0 and CT.into_next_share(None) is None


def test_an_evaluation_is_reused_only_under_the_same_weights_and_settings(table):
    """Other PGD settings or other weights are measured again; the saved numbers are what a
    fresh evaluation gives."""
    config, result, _ = table
    one = replace(config, kinds=("det",))
    models = Path(config.out_dir) / "models"
    other = CT.run(replace(one, eval_steps=config.eval_steps + 1))
    assert other.rows[0].reused == ("dataset", "model")  # evaluated again under the new settings
    saved = json.loads((models / "on-det.eval.json").read_text())
    assert saved["key"]["steps"] == config.eval_steps + 1
    assert saved["result"]["clean"] == other.rows[0].clean
    # a stale record (here: claiming other weights) is not served; the fresh numbers equal the first run's
    saved["key"]["weights_sha256"] = "0" * 64
    (models / "on-det.eval.json").write_text(json.dumps(saved))
    fresh = CT.run(one)
    assert fresh.rows[0].reused == ("dataset", "model")
    assert (fresh.rows[0].clean, fresh.rows[0].robust) == (result.rows[4].clean, result.rows[4].robust)
    assert CT.run(one).rows[0].reused == ("dataset", "model", "evaluation")
    # a record that is not numbers is measured again, not shown
    saved = json.loads((models / "on-det.eval.json").read_text())
    saved["result"]["clean"] = "99%"
    (models / "on-det.eval.json").write_text(json.dumps(saved))
    assert CT.run(one).rows[0].reused == ("dataset", "model")


def test_a_rebuilt_dataset_is_trained_on_again_not_served_a_stale_model(tiny_root, tmp_path):
    """The model of a kind is reused only for the dataset content it was trained on: rebuild
    the dataset (here: another attack radius, into the same folder) and the model is retrained."""
    small = {**SMALL, "subset": 40, "epochs": 1, "test_limit": 50, "kinds": ("det",)}
    weights = tmp_path / "models" / "on-det.safetensors"
    first = CT.run(CT.Config(**small, out_dir=str(tmp_path)))
    before = weights.stat().st_mtime_ns, weights.read_bytes()
    shutil.rmtree(tmp_path / "det")
    again = CT.run(CT.Config(**{**small, "attack_eps": 0.5}, out_dir=str(tmp_path)))
    assert again.rows[0].construction != first.rows[0].construction  # another dataset
    after = weights.stat().st_mtime_ns, weights.read_bytes()
    assert after[0] != before[0] and after[1] != before[1]  # trained on it: other weights
    card = json.loads((tmp_path / "models" / "on-det.json").read_text())
    sidecar = json.loads((tmp_path / "models" / "on-det.dataset.json").read_text())
    assert sidecar["recipe"]["eps"] == 0.5 and card["recipe"]["dataset"] == f"constructed:{tmp_path / 'det'}"
    same = CT.run(CT.Config(**{**small, "attack_eps": 0.5}, out_dir=str(tmp_path)))
    assert weights.stat().st_mtime_ns == after[0] and same.rows[0].clean == again.rows[0].clean  # reused


def test_the_live_version_leaves_nothing_behind(tiny_root, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    config = CT.Config(**{**SMALL, "subset": 40, "epochs": 1, "test_limit": 50}, kinds=("original", "det"))
    result = CT.run(config)
    assert [r.name for r in result.rows] == ["D", "D_det"] and result.out_dir is None
    assert list(tmp_path.iterdir()) == []


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="kinds"):
        CT.Config(kinds=("robust", "robust"))
    with pytest.raises(ValueError, match="epochs"):
        CT.Config(epochs=0)
    with pytest.raises(ValueError, match="subset"):
        CT.Config(subset=1)
    assert CT.Config(inversion_step_sizes=0.5).inversion_step_sizes == (0.5,)
    assert replace(CT.Config(), subset=None).recipe("det").subset is None


def test_cli_table_prints_and_saves_it(tiny_root, tmp_path, capsys):
    from explorer import cli

    out = tmp_path / "t"
    rc = cli.main(["table", "--standard", "tiny-standard", "--robust", "tiny-robust", "--kinds", "original", "det",
                   "--subset", "40", "--arch", "stage_cnn_tiny", "--epochs", "1", "--eps", "6", "--attack-steps", "5",
                   "--test-limit", "50", "--eval-steps", "2", "--out", str(out), "--device", "cpu"])
    assert rc == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "table.json").read_text())
    assert [r["dataset"] for r in doc["rows"]] == ["D", "D_det"]
    assert doc["markdown"] in printed and (out / "table.md").read_text().strip() == doc["markdown"]
    assert (out / "table.csv").read_text().startswith("dataset,kind,train images,clean %")
    assert doc["eval"] == {"norm": "linf", "eps": 0.1, "steps": 2, "n_test": 50, "test_set": "fashion-mnist/test"}
    # the confusion matrices' class order, named
    assert doc["class_names"][:2] == ["T-shirt/top", "Trouser"] and len(doc["details"][1]["confusion"]) == 10
    # each detail keeps its share in (y + 1) mod C beside the matrix it comes from, as the shipped tables do
    assert [round(100 * d["into_next"], 1) for d in doc["details"]] == [r["into (y+1) %"] for r in doc["rows"]]


def test_cli_table_update_puts_the_rebuilt_rows_into_a_table_and_keeps_the_others(tiny_root, tmp_path, capsys):
    """Rebuilding one row of a shipped table (issue 19: D_rand under the paper's rule) replaces that
    row only; a run under another evaluation is refused and the table is left as it was."""
    from explorer import cli

    common = ["--standard", "tiny-standard", "--robust", "tiny-robust", "--subset", "40", "--arch", "stage_cnn_tiny",
              "--epochs", "1", "--eps", "6", "--attack-steps", "5", "--test-limit", "50", "--eval-steps", "2",
              "--device", "cpu"]
    shipped = tmp_path / "shipped"
    assert cli.main(["table", "--kinds", "original", "det", "--out", str(shipped), *common]) == 0
    before = json.loads((shipped / "table.json").read_text())
    assert cli.main(["table", "--kinds", "rand", "--out", str(tmp_path / "rand"), "--update",
                     str(shipped / "table.json"), *common]) == 0
    after = json.loads((shipped / "table.json").read_text())
    assert [r["dataset"] for r in after["rows"]] == ["D", "D_rand", "D_det"]
    assert after["rows"][0] == before["rows"][0] and after["rows"][2] == before["rows"][1]
    assert after["rows"][1] == json.loads((tmp_path / "rand" / "table.json").read_text())["rows"][0]
    assert "--kinds rand" in after["row_commands"]["rand"] and "--kinds original det" in after["row_commands"]["det"]
    assert after["updates"][-1]["kinds"] == ["rand"]
    assert set(after["sha256"]["datasets"]) == {"original", "rand", "det"}
    assert (shipped / "table.md").read_text().strip() == after["markdown"] and "| D_rand |" in after["markdown"]
    assert "D_rand" in (shipped / "table.csv").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit, match="evaluation differs"):  # 3 PGD steps, the table's 2
        cli.main(["table", "--kinds", "rand", "--out", str(tmp_path / "rand"), "--update", str(shipped / "table.json"),
                  *common[:-4], "--eval-steps", "3", "--device", "cpu"])
    assert json.loads((shipped / "table.json").read_text()) == after
    with pytest.raises(SystemExit, match="no table.json"):
        cli.main(["table", "--kinds", "rand", "--update", str(tmp_path / "missing.json"), *common])
    # a table saved before the (y + 1) column (the shipped Fashion-MNIST ones) takes a new row that has it
    for r in before["rows"]:
        del r["into (y+1) %"]
    (shipped / "table.json").write_text(json.dumps(before))
    assert cli.main(["table", "--kinds", "rand", "--out", str(tmp_path / "rand"), "--update",
                     str(shipped / "table.json"), *common]) == 0
    header, d, d_rand, d_det = (shipped / "table.csv").read_text().splitlines()
    assert header.endswith(",into (y+1) %") and d.endswith(",") and d_det.endswith(",")
    assert d_rand.endswith(f",{after['rows'][1]['into (y+1) %']}")


def test_tables_are_found_yours_first_then_the_shipped_ones_without_copies(tmp_path, monkeypatch):
    mine, shipped = tmp_path / "artifacts", tmp_path / "results"
    monkeypatch.setenv("EXPLORER_ARTIFACTS", str(mine))
    monkeypatch.setenv("EXPLORER_SHIPPED_TABLES", str(shipped))
    a, b = {"rows": [{"dataset": "D"}], "seconds": 1}, {"rows": [{"dataset": "D_det"}], "seconds": 2}
    for path, doc in ((mine / "constructed" / "x" / "table" / "table.json", a),
                      (shipped / "y" / "table.json", b), (shipped / "z" / "table.json", a)):  # z: a copy of mine
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(doc))
    (shipped / "broken").mkdir()
    (shipped / "broken" / "table.json").write_text("{not json")
    found = K.find_tables()
    assert [(p.parent.name, t) for p, t in found] == [("table", a), ("y", b)]
    assert K.find_tables(shipped) == [(shipped / "y" / "table.json", b), (shipped / "z" / "table.json", a)]


def test_the_repository_ships_our_table_with_every_kind_and_its_command():
    found = K.find_tables(K.shipped_tables_root())
    assert found, "results/constructed/ holds no table"
    for path, t in found:
        assert t["command"].startswith("python -m explorer table"), path
        assert t["eval"]["n_test"] >= 1000 and all(0 <= r["clean %"] <= 100 for r in t["rows"])
        names = [r["dataset"] for r in t["rows"]]
        assert names == [n for n in ("D", "D_R", "D_NR", "D_rand", "D_det") if n in names], path  # in order
        assert {"D", "D_det"} <= set(names), path  # the tour's step 4 reads D_det
        assert all(r["robust % (half eps)"] is not None for r in t["rows"]), path
        assert all(d["construct_seconds"] > 0 or d["kind"] == "original" for d in t["details"]), path
    assert any(len(t["rows"]) == 5 for _, t in found)  # one has every kind
    full = [t for _, t in found if t["eval"]["n_test"] == 10_000 and t["rows"][0]["train images"] == 60_000]
    assert full and "D_R" in [r["dataset"] for r in full[0]["rows"]]  # the full-size table has D_R
