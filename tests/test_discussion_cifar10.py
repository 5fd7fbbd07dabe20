"""The discussion's experiments on CIFAR-10 (issue 20, item 3): each takes its dataset from the
source model (``--dataset`` for mislabeled), the dataset's defaults (Nakkiran's and Goh's CIFAR-10
settings), writes to results/discussion/cifar10/ and records the dataset, sizes and sha256.

Tiny and offline: a CIFAR-10 image-folder tree made from the bundled test subset (70 images per
class for training, 30 for testing) stands in for ../shared/datasets/cifar10, and the source is
the bundled ``cifar10-standard`` (ResNet-9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from explorer import cli, data, zoo
from explorer.experiments import _discussion as D
from explorer.experiments import leakage, mislabeled, nontransferable as NT, transfer_learnability as TL

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = ROOT / "checkpoints"
SOURCE = "cifar10-standard"


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """``$CIFAR10_ROOT`` at a tiny train/ + test/ tree cut from the bundled CIFAR-10 subset, the
    repository's checkpoints (``cifar10-standard``) and a temporary results folder, for this module."""
    if not data.BUNDLED_CIFAR10.exists():
        pytest.skip(f"the bundled CIFAR-10 subset is absent ({data.BUNDLED_CIFAR10})")
    if not (CHECKPOINTS / f"{SOURCE}.safetensors").exists():
        pytest.skip(f"{SOURCE}'s weights are absent from {CHECKPOINTS}")
    top = tmp_path_factory.mktemp("cifar10")
    ds = data.bundled_cifar10("test")
    within = torch.zeros(len(ds), dtype=torch.long)  # each image's position within its class
    for k in range(10):
        where = torch.nonzero(ds.labels == k).squeeze(1)
        within[where] = torch.arange(len(where))
    for split, keep in (("train", within < 70), ("test", within >= 70)):
        idx = torch.nonzero(keep).squeeze(1)
        data.export_image_folder(data.TensorDataset(ds.images[idx], ds.labels[idx], ds.class_names, split),
                                 top / split)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIFAR10_ROOT", str(top))
        mp.setenv("EXPLORER_CACHE", str(top / "cache"))
        mp.setenv("EXPLORER_CHECKPOINTS", str(CHECKPOINTS))  # tests/conftest.py's tiny_root may point elsewhere
        mp.setenv("EXPLORER_DISCUSSION_RESULTS", str(top / "results"))
        yield top


def _doc(cifar, name: str) -> dict:
    path = cifar / "results" / "cifar10" / f"{name}.json"
    assert path.exists(), "the CLI writes CIFAR-10 results under results/discussion/cifar10/"
    assert not (cifar / "results" / f"{name}.json").exists()  # ... not over the Fashion-MNIST file
    return json.loads(path.read_text())


def _check_provenance(prov: dict, n_train: int, n_test: int, models=(SOURCE,)) -> None:
    assert prov["dataset"] == "cifar10"
    assert prov["images"]["train"]["n"] == n_train and prov["images"]["test"]["n"] == n_test
    assert prov["images"]["train"]["from"] == f"{n_train} of cifar10/train"
    x, y, _, _ = D.images("cifar10", "test", n_test, 0)
    assert tuple(x.shape[1:]) == (3, 32, 32)
    assert prov["images"]["test"]["sha256"] == D.images_sha256(x, y)
    assert prov["models"] == {m: zoo.get_spec(m).sha256 for m in models}


# --- defaults per dataset --------------------------------------------------------------------------

def test_the_settings_follow_the_source_models_dataset(cifar):
    # Goh on CIFAR-10: the paper's D_rand / D_det (L2 0.5, 100 steps of 0.1), his robust linear model at 0.25
    c = leakage.Config(source=SOURCE).resolved()
    assert (c.eps, c.steps, c.step_size, c.robust_eps) == (0.5, 100, 0.1, 0.25)
    # Nakkiran on CIFAR-10: L2 2.5, 10 steps of 0.5; Linf 8/255, 10 steps of 2/255
    c = NT.Config(source=SOURCE).resolved()
    assert (c.norm, c.eps, c.steps, c.step) == ("l2", 2.5, 10, 0.5)
    c = NT.Config(source=SOURCE, norm="linf").resolved()
    assert (c.eps, c.steps, c.step) == pytest.approx((8 / 255, 10, 2 / 255))
    assert TL.Config(source=SOURCE).resolved().eps == 2.5
    # Fashion-MNIST keeps the settings it had (its shipped results were made with them)
    c = NT.Config(source="fmnist-standard").resolved()
    assert (c.norm, c.eps, c.steps, c.step) == ("l2", 2.0, 10, 0.5)
    c = leakage.Config(source="fmnist-standard").resolved()
    assert (c.eps, c.steps, c.step_size, c.robust_eps) == (1.0, 20, None, 0.5)
    assert (mislabeled.Config().resolved().weak_images, mislabeled.Config().resolved().weak_epochs) == (2000, 1)
    assert mislabeled.Config(dataset="cifar10").resolved().weak_epochs == 2  # Wallace's 2 epochs


def test_a_users_own_eps_gets_the_step_rule_not_the_tables_step(cifar):
    c = NT.Config(source=SOURCE, eps=1.0).resolved()
    assert c.step == pytest.approx(2.5 * 1.0 / 10)  # not Nakkiran's 0.5, which goes with eps 2.5
    assert NT.Config(source=SOURCE, step_size=0.3).resolved().step == 0.3


def test_a_dataset_without_defaults_asks_for_the_settings():
    with pytest.raises(ValueError, match="weak_images, weak_epochs"):
        mislabeled.Config(dataset="folder:/nowhere").resolved()
    given = mislabeled.Config(dataset="folder:/nowhere", weak_images=100, weak_epochs=1)
    assert given.resolved() == given
    with pytest.raises(ValueError, match="dataset"):
        mislabeled.Config(dataset="mnist")


def test_results_paths_keep_fashion_mnist_where_it_was(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_DISCUSSION_RESULTS", str(tmp_path))
    assert D.results_path("leakage") == tmp_path / "leakage.json"
    assert D.results_path("leakage", "fashion-mnist-bundled") == tmp_path / "leakage.json"
    assert D.results_path("leakage", "cifar10") == tmp_path / "cifar10" / "leakage.json"
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "leakage.json").write_text(json.dumps({"result": {"n_test": 3}}))
    assert D.read_results("leakage", "cifar10") == {"result": {"n_test": 3}}
    assert D.read_results("leakage") is None


def test_models_trained_on_cifar10_are_normalized_with_its_statistics(cifar):
    x, y, names, _ = D.images("cifar10", "train", 50, 0)
    m = D.train("linear", x, y, class_names=names, epochs=1, seed=0, dataset="cifar10")
    assert m.info.dataset == "cifar10" and m.info.input_size == (3, 32, 32)
    torch.testing.assert_close(m.mean.flatten(), torch.tensor(data.CIFAR10_MEAN))
    torch.testing.assert_close(m.std.flatten(), torch.tensor(data.CIFAR10_STD))


# --- the experiments, tiny ---------------------------------------------------------------------------

@pytest.mark.parametrize("norm, eps", [("l2", 2.5), ("linf", 8 / 255)])
def test_both_attacks_stay_in_nakkirans_ball_and_reach_the_target(cifar, norm, eps):
    source = zoo.load(SOURCE, device="cpu")
    x, y, names, _ = D.images("cifar10", "test", 60, 0)
    ensemble = [D.train("linear", *D.images("cifar10", "train", 100, 0)[:2], class_names=names, epochs=1, seed=1,
                        dataset="cifar10")]
    x, y = x[:12], y[:12]
    for method in NT.METHODS:
        adv, t, ok = NT.attack(source, ensemble, x, y, eps=eps, steps=10, step_size=eps / 4, method=method, norm=norm)
        assert torch.equal(t, (y + 1) % 10)
        gap = (adv - x).flatten(1)
        size = gap.abs().max(1).values if norm == "linf" else gap.norm(dim=1)
        assert float(size.max()) <= eps * (1 + 1e-4)
        assert float(adv.min()) >= 0 and float(adv.max()) <= 1
        assert torch.equal(ok, D.predict(source, adv) == t)
        assert float(ok.float().mean()) >= 0.5  # a standard ResNet-9 falls at Nakkiran's radii


def test_leakage_runs_on_cifar10_from_the_cli(cifar):
    assert cli.main(["leakage", "--source", SOURCE, "--n-train", "40", "--n-test", "60", "--robust-images", "100",
                     "--linear-epochs", "1", "--head-steps", "20", "--steps", "3", "--device", "cpu"]) == 0
    doc = _doc(cifar, "leakage")
    assert doc["dataset"] == "cifar10" and doc["command"].startswith("python -m explorer leakage --source")
    config, result = doc["config"], doc["result"]
    assert (config["eps"], config["robust_eps"], config["step_size"]) == (0.5, 0.25, None)  # --steps: 2.5 eps / steps
    assert result["n_train"] == {"clean": 40, "rand": 40, "det": 40} and result["n_test"] == 60
    assert len(result["rows"]) == 6 and all(0 <= r["accuracy"] <= 1 for r in result["rows"])
    assert [r["commenter"] for r in result["rows"][:3]] == [None, 23.5, 6.81]
    _check_provenance(result["provenance"], 40, 60)
    assert result["provenance"]["images"]["linear"]["n"] == 100


def test_nontransferable_runs_on_cifar10_in_linf_from_the_cli(cifar):
    assert cli.main(["nontransferable", "--source", SOURCE, "--norm", "linf", "--n-train", "40", "--n-attack", "10",
                     "--n-test", "60", "--epochs", "1", "--learn-epochs", "1", "--ensemble-arch", "linear",
                     "--ensemble-size", "1", "--heldout-archs", "linear", "mlp", "--learn-arch", "linear",
                     "--steps", "3", "--device", "cpu"]) == 0
    doc = _doc(cifar, "nontransferable")
    result = doc["result"]
    assert result["norm"] == "linf" and result["eps"] == pytest.approx(8 / 255, abs=1e-6)
    assert result["steps"] == 3 and result["step_size"] == pytest.approx(2.5 * 8 / 255 / 3, abs=1e-6)
    pgd, ours = result["rows"]
    assert (pgd["commenter_transfer"], ours["commenter_transfer"]) == (52.1, 0.8)  # his Linf column
    assert result["n_train"] == 40 and result["n_attack"] == 10 and result["n_test"] == 60
    _check_provenance(result["provenance"], 40, 60)


def test_transfer_learnability_runs_five_architectures_on_cifar10(cifar):
    archs = ["linear", "mlp", "stage_cnn_tiny", "stage_cnn", "resnet_small"]
    assert cli.main(["transfer-learnability", "--source", SOURCE, "--archs", *archs, "--n-train", "40",
                     "--n-attack", "10", "--n-test", "30", "--epochs", "1", "--steps", "2", "--ensemble-size", "1",
                     "--ensemble-arch", "linear",
                     "--device", "cpu"]) == 0
    result = _doc(cifar, "transfer_learnability")["result"]
    pgd = [p for p in result["points"] if p["attack"] == "PGD"]
    assert [p["arch"] for p in pgd] == archs and len(result["points"]) == 2 * len(archs)
    assert result["eps"] == 2.5 and result["step_size"] == pytest.approx(2.5 * 2.5 / 2)
    assert result["chance"] == 0.1
    for p in result["points"]:
        assert 0 <= p["learned"] + p["learned_shifted"] <= 1
    _check_provenance(result["provenance"], 40, 30)


def test_the_default_architectures_take_cifar_images():
    from explorer.zoo import build_architecture

    archs = TL.Config().archs
    assert len(archs) >= 5
    for arch in archs:
        assert build_architecture(arch, 10, 3, 32).eval()(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_mislabeled_runs_on_cifar10_from_the_cli(cifar):
    assert cli.main(["mislabeled", "--dataset", "cifar10", "--arch", "linear", "--n-train", "200",
                     "--weak-images", "50", "--epochs", "1", "--n-test", "60", "--device", "cpu"]) == 0
    doc = _doc(cifar, "mislabeled")
    assert doc["config"]["weak_epochs"] == 2 and doc["config"]["dataset"] == "cifar10"
    result = doc["result"]
    assert result["all_wrong"] and result["kept"] == sum(result["label_counts"]) > 0
    assert result["class_names"] == list(data.CIFAR10_CLASSES)
    _check_provenance(result["provenance"], 200, 60, models=())


def test_the_discussion_page_draws_a_saved_cifar10_run_below_the_fashion_mnist_one(cifar):
    """A results/discussion/cifar10/<name>.json the CLI wrote is drawn on the discussion page, in its tab, under
    its own heading and with its command, as the Fashion-MNIST result is."""
    from streamlit.testing.v1 import AppTest

    assert cli.main(["mislabeled", "--dataset", "cifar10", "--arch", "linear", "--n-train", "200",
                     "--weak-images", "50", "--epochs", "1", "--n-test", "60", "--device", "cpu"]) == 0
    doc = _doc(cifar, "mislabeled")
    at = AppTest.from_file(str(ROOT / "pages" / "discussion.py"), default_timeout=300).run()
    assert not at.exception, at.exception
    assert "On CIFAR-10, the dataset of the numbers quoted above (saved run)" in [h.value for h in at.subheader]
    # the results folder holds no Fashion-MNIST run: the one mislabeled table on the page is CIFAR-10's
    (table,) = [t.value for t in at.table if "quantity" in t.value.columns
                and "weak model, test accuracy %" in set(t.value["quantity"])]
    assert "Wallace (CIFAR-10)" in table.columns and len(table.columns) == 3
    captions = " ".join(c.value for c in at.caption)
    assert doc["command"] in captions and f"{100 * doc['result']['agrees_with_weak']:.1f}%" in captions
