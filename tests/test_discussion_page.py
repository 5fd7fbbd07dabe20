"""AppTest of pages/discussion.py on the tiny pair: saved results (written by the CLI at tiny
sizes) beside the commenters' numbers, a missing one named with its command, and a live run
whose table is the experiment's own numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from explorer.charts import discussion as CD  # noqa: E402
from explorer import cli  # noqa: E402
from explorer.experiments import _discussion as D  # noqa: E402
from explorer.experiments import squares  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "discussion.py")
KEY = "discussion"
TIMEOUT = 300
PAIR = ("tiny-standard", "tiny-robust")


@pytest.fixture(scope="module")
def results(tiny_root, tmp_path_factory):
    """squares, mislabeled and transfer-learnability results from the CLI, tiny."""
    root = tmp_path_factory.mktemp("discussion")
    assert cli.main(["squares", "--size", "4", "--n-train", "60", "--n-test", "30", "--epochs", "2",
                     "--eps", "0.01", "0.95", "--attack-steps", "2", "--device", "cpu",
                     "--out", str(root / "squares.json")]) == 0
    assert cli.main(["mislabeled", "--arch", "mlp", "--n-train", "300", "--weak-images", "60", "--epochs", "1",
                     "--n-test", "100", "--device", "cpu", "--out", str(root / "mislabeled.json")]) == 0
    assert cli.main(["transfer-learnability", "--source", "tiny-standard", "--archs", "mlp", "stage_cnn_tiny",
                     "--n-train", "120", "--n-attack", "30", "--n-test", "60", "--epochs", "1", "--steps", "2",
                     "--ensemble-arch", "mlp", "--ensemble-size", "1", "--device", "cpu",
                     "--out", str(root / "transfer_learnability.json")]) == 0
    return root


@pytest.fixture
def page(results, monkeypatch):
    from ui.models import ModelPair

    monkeypatch.setenv("EXPLORER_DISCUSSION_RESULTS", str(results))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["model_pair"] = ModelPair(*PAIR)
    at.run()
    assert not at.exception, at.exception
    return at


def _frame(at, column: str):
    return next(df.value for df in at.table if column in df.value.columns)


def test_saved_results_show_ours_beside_the_commenters(page, results):
    assert [t.label for t in page.tabs] == ["Transfer vs learnability", "Robust feature leakage (Goh)",
                                            "Adversarial squares (Nakkiran)", "Non-transferable examples (Nakkiran)",
                                            "Mislabeled data (Wallace)"]
    saved = json.loads((results / "squares.json").read_text())["result"]
    shown = _frame(page, "fit flipped %")
    expected = CD.squares_frame(saved)
    assert list(shown["model"]) == list(expected["model"])
    assert list(shown["eps 0.95"]) == list(expected["eps 0.95"])
    assert shown["eps 0.95"].iloc[-1] == 100.0  # sign(mean x) is robust below 0.9 + the margin
    wallace = _frame(page, "Wallace (CIFAR-10)")
    assert list(wallace["Wallace (CIFAR-10)"]) == ["63.1", "18768 of 50000", "49.7"]
    ml = json.loads((results / "mislabeled.json").read_text())["result"]
    assert wallace["ours"].iloc[2] == str(round(100 * ml["learned"], 1))
    transfer = _frame(page, "accuracy trained on D_det %")
    assert set(transfer["attack"]) == {"PGD", "non-transferable"} and len(transfer) == 4
    charts = [e for e in page.main if e.type == "vega_lite_chart"]
    assert len(charts) == 3  # the scatter, the squares curves, the label histogram
    assert any("python -m explorer leakage" in i.value for i in page.info)  # no saved run: its command
    assert any("python -m explorer nontransferable" in i.value for i in page.info)


def test_a_live_squares_run_shows_the_experiments_numbers(page):
    at = page
    at.slider(key=f"{KEY}.squares.noise").set_value(0.2)
    at.number_input(key=f"{KEY}.squares.size").set_value(4)
    at.number_input(key=f"{KEY}.squares.n_train").set_value(50)
    at.number_input(key=f"{KEY}.squares.epochs").set_value(2)
    at.button(key=f"{KEY}.squares.run").click().run()
    assert not at.exception, at.exception
    shown = _frame(at, "fit flipped %")
    expected = CD.squares_frame(D.jsonable(squares.run(squares.Config(
        size=4, n_train=50, n_test=200, label_noise=0.2, epochs=2, attack_steps=5, device="cpu"))))
    assert list(shown["eps 0.01"]) == list(expected["eps 0.01"])
    assert list(shown["fit noisy labels %"]) == list(expected["fit noisy labels %"])
    assert any("live run" in c.value and "(10 labels flipped)" in c.value for c in at.caption)


def test_a_live_run_is_not_shown_for_other_settings(page):
    """Moving a setting after a live run shows the saved result again (its command in the caption) and a
    note to run again, not the live numbers of the old settings."""
    at = page
    at.number_input(key=f"{KEY}.squares.size").set_value(4)
    at.number_input(key=f"{KEY}.squares.n_train").set_value(50)
    at.number_input(key=f"{KEY}.squares.epochs").set_value(2)
    at.button(key=f"{KEY}.squares.run").click().run()
    assert any("live run" in c.value for c in at.caption)
    at.slider(key=f"{KEY}.squares.noise").set_value(0.3).run()
    assert not at.exception, at.exception
    assert not any("live run" in c.value for c in at.caption)
    assert any("`python -m explorer squares" in c.value for c in at.caption)  # the saved run instead
    assert any(i.value.startswith("Inputs changed") and "Run the small version" in i.value for i in at.info)
    at.slider(key=f"{KEY}.squares.noise").set_value(0.1).run()  # its settings again: the live run is back
    assert any("live run" in c.value for c in at.caption)


def test_the_chosen_tab_is_part_of_the_link_and_the_mislabeled_caption_is_words(results, monkeypatch):
    from ui.models import ModelPair

    monkeypatch.setenv("EXPLORER_DISCUSSION_RESULTS", str(results))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["model_pair"] = ModelPair(*PAIR)
    at.query_params[f"{KEY}.tab"] = "Mislabeled data (Wallace)"  # a link that names the tab opens on it
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[f"{KEY}.tab"] == "Mislabeled data (Wallace)"
    caption = next(c.value for c in at.caption if "agrees with the weak one" in c.value)
    assert caption.endswith("every kept label is wrong, as the recipe requires.") and "True" not in caption
