"""AppTest of pages/constructed.py on the tiny pair: browse a dataset built by construct, the
saved table beside the paper's column, and the live version (the experiment's own numbers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from explorer import cli  # noqa: E402
from explorer import construct as K  # noqa: E402
from explorer.charts.constructed import INTO_NEXT  # noqa: E402
from explorer.experiments import constructed_table as CT  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "constructed.py")
KEY = "constructed"
TIMEOUT = 300
PAIR = ("tiny-standard", "tiny-robust")
PAPER_CLEAN = "paper clean % (CIFAR-10)"


@pytest.fixture(scope="module")
def artifacts(tiny_root, tmp_path_factory):
    """A det dataset and a two-row table under a fresh artifacts folder."""
    root = tmp_path_factory.mktemp("artifacts")
    constructed = root / "constructed"
    K.build(K.default_recipe("det", source="tiny-standard", subset=24, eps=6.0, steps=5, step_sizes=(1.5,),
                             shard_size=10), constructed / "tiny" / "det", device="cpu")
    assert cli.main(["table", "--standard", "tiny-standard", "--robust", "tiny-robust", "--kinds", "original", "det",
                     "--subset", "40", "--arch", "stage_cnn_tiny", "--epochs", "1", "--eps", "6",
                     "--attack-steps", "5", "--test-limit", "50", "--eval-steps", "2",
                     "--out", str(constructed / "tiny" / "table"), "--device", "cpu"]) == 0
    return root


@pytest.fixture
def page(artifacts, monkeypatch):
    from ui.models import ModelPair

    monkeypatch.setenv("EXPLORER_ARTIFACTS", str(artifacts))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["model_pair"] = ModelPair(*PAIR)
    at.run()
    assert not at.exception, at.exception
    return at


def _captions(at) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


def test_browse_shows_the_built_dataset_and_its_statistics(page, artifacts):
    assert [t.label for t in page.tabs] == ["Browse a dataset", "Table 1", "Live (small)"]
    box = page.selectbox(key=f"{KEY}.browse.path")
    assert box.value == str(artifacts / "constructed" / "tiny" / "det")
    assert "D_det: tiny/det (24 images)" in box.format_func(box.value)
    m = K.manifest(box.value)
    rate = 100 * m["statistics"]["attack_success_rate"]
    assert any(f"targeted attack success {rate:.1f}%" in c.value for c in page.caption)
    assert any("D_det: targeted L2 PGD from tiny-standard, eps 6" in md.value for md in page.markdown)
    assert len(page.get("image")) == 1  # the figure: x, constructed, old and new labels
    page.number_input(key=f"{KEY}.browse.count").set_value(3).run()
    assert not page.exception, page.exception


def test_table_tab_shows_ours_beside_the_papers(page, artifacts):
    box = page.selectbox(key=f"{KEY}.table.path")
    mine = str(artifacts / "constructed" / "tiny" / "table" / "table.json")
    # the most complete table first: the shipped one (four or five kinds) before this two-row one
    assert box.options[0].endswith("(ours, shipped)") and box.value != mine
    # the shipped tables' D_rand was rebuilt under the paper's rule (uniform over all classes); the caption
    # says which rule the shown table used, read from its recipe
    assert any("uniformly over all classes" in c.value for c in page.caption)
    assert not any("other classes only" in c.value for c in page.caption)
    # the label names the sizes and a D_rand / D_det eps other than the dataset's default (--eps 6 here)
    assert box.options[-1] == (f"Fashion-MNIST, 40 training images, 50 test images, D_rand / D_det at L2 eps 6 "
                               f"(yours, {Path(mine).parent})")
    box.set_value(mine).run()
    assert not page.exception, page.exception
    frames = [df.value for df in page.table]
    table = next(f for f in frames if "clean %" in f.columns)
    assert list(table["trained on"]) == ["D", "D_det"]
    assert list(table[PAPER_CLEAN]) == [95.3, 43.7]
    assert "robust % (linf eps 0.1)" in table.columns and "robust % (linf eps 0.05)" in table.columns
    assert ((0 <= table["clean %"]) & (table["clean %"] <= 100)).all()
    assert (table["robust % (linf eps 0.1)"] <= table["robust % (linf eps 0.05)"]).all()  # a larger ball
    # the share each model puts in (y + 1) mod 10, D_det's rule, read from the table's confusion matrices
    det = json.loads(Path(mine).read_text())["details"][-1]
    m = np.array(det["confusion"])
    assert list(table[INTO_NEXT])[-1] == round(100 * sum(m[i, (i + 1) % 10] for i in range(10)) / m.sum(), 1)
    assert any(f"the D_det model's {list(table[INTO_NEXT])[-1]:.1f}%" in c.value for c in page.caption)
    assert any("Ours: Fashion-MNIST" in c.value and "compare the pattern" in c.value for c in page.caption)


def test_live_version_shows_the_experiments_numbers(page):
    at = page
    at.number_input(key=f"{KEY}.live.subset").set_value(40)
    at.number_input(key=f"{KEY}.live.epochs").set_value(2)
    at.number_input(key=f"{KEY}.live.test").set_value(60)
    at.number_input(key=f"{KEY}.live.steps").set_value(5)
    at.number_input(key=f"{KEY}.live.attack_steps").set_value(5)
    at.number_input(key=f"{KEY}.live.eval_steps").set_value(2)
    at.multiselect(key=f"{KEY}.live.kinds").set_value(["original", "robust", "det"])
    at.button[0].click().run()
    assert not at.exception, at.exception
    frames = [df.value for df in at.table]
    live = frames[-1]
    assert list(live["trained on"]) == ["D", "D_R", "D_det"]
    assert list(live[PAPER_CLEAN]) == [95.3, 84.0, 43.7]
    d = K.defaults_for("fashion-mnist")
    expected = CT.run(CT.Config(standard=PAIR[0], robust=PAIR[1], kinds=("original", "robust", "det"), subset=40,
                                inversion_steps=5, attack_steps=5, attack_step_size=2.5 * d.attack_eps / 5,
                                epochs=2, test_limit=60, eval_steps=2, shard_size=40, device="cpu"))
    np.testing.assert_allclose(live["clean %"], [round(100 * r.clean, 1) for r in expected.rows])
    assert len(at.get("image")) == 2  # the browse figure and the live samples
    # another pair in the sidebar: the live table of the old pair is not shown as this pair's
    from ui.models import ModelPair

    frames = len(at.table)
    at.session_state["model_pair"] = ModelPair(PAIR[1], PAIR[0])
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == 1 and len(at.table) == frames - 1  # Table 1's frame stays, the live one goes
    assert any(i.value.startswith("Inputs changed") and "**Build, train and test**" in i.value for i in at.info)


def test_browse_lists_the_shipped_samples_after_yours_and_draws_one(page):
    """A fresh clone has the samples that ship in the package to browse (issue 21, item 5)."""
    box = page.selectbox(key=f"{KEY}.browse.path")
    shipped = [o for o in box.options if "shipped sample" in o]  # the options as the page shows them
    assert len(shipped) == 8 and box.options.index(shipped[0]) > 0  # the user's own dataset stays first
    root = K.shipped_samples_root()
    box.set_value(str(root / "cifar10" / "det")).run()
    assert not page.exception, page.exception
    assert any("D_det: targeted L2 PGD from cifar10-standard, eps 0.5" in md.value for md in page.markdown)
    assert len(page.get("image")) == 1


def test_table_tab_shows_the_shipped_cifar10_table_beside_the_papers(page):
    """Both datasets' tables ship (issue 20): the CIFAR-10 one is listed with its sizes and draws."""
    box = page.selectbox(key=f"{KEY}.table.path")
    cifar = [o for o in box.options if o.startswith("CIFAR-10, 2000 training images, 10000 test images")]
    assert "CIFAR-10, 2000 training images, 10000 test images (ours, shipped)" in cifar, box.options  # the paper's eps
    assert "CIFAR-10, 2000 training images, 10000 test images, D_rand / D_det at L2 eps 1 (ours, shipped)" in cifar
    path = str(K.shipped_tables_root() / "cifar10-subset2000" / "table.json")
    box.set_value(path).run()
    assert not page.exception, page.exception
    frames = [df.value for df in page.table]
    table = next((f for f in frames if "clean %" in f.columns), None)
    assert table is not None, [list(f.columns) for f in frames]
    assert list(table["trained on"]) == ["D", "D_R", "D_NR", "D_rand", "D_det"]  # every kind, the paper's order
    assert list(table[PAPER_CLEAN]) == [95.3, 84.0, 88.0, 63.3, 43.7]
    # the caption names this table's data (like for like with the paper) and the D_det model's share in y + 1
    shipped = json.loads(Path(path).read_text())
    det = shipped["rows"][-1]
    assert list(table[INTO_NEXT]) == [r["into (y+1) %"] for r in shipped["rows"]]
    caption = next(c.value for c in page.caption if c.value.startswith("Ours: CIFAR-10, 10000 real test images"))
    assert "The paper's column is CIFAR-10 too" in caption and "compare the pattern" not in caption
    assert f"the D_det model's {det['into (y+1) %']:.1f}% against its {det['clean %']:.1f}%" in caption


def test_table_tab_names_the_departures_of_the_50000_image_tables(page):
    """The all-images CIFAR-10 tables (issue 20) are listed with their sizes, and the caption names what departs
    from the paper's recipe: bfloat16 passes in both, eps 1.0 in the one that doubled it."""
    box = page.selectbox(key=f"{KEY}.table.path")
    assert "CIFAR-10, 50000 training images, 10000 test images (ours, shipped)" in box.options, box.options
    assert ("CIFAR-10, 50000 training images, 10000 test images, D_rand / D_det at L2 eps 1 (ours, shipped)"
            in box.options), box.options
    captions = {}
    for folder in ("cifar10", "cifar10-eps1"):
        box.set_value(str(K.shipped_tables_root() / folder / "table.json")).run()
        assert not page.exception, page.exception
        captions[folder] = next(c.value for c in page.caption if c.value.startswith("Ours: CIFAR-10, 10000 real"))
    for caption in captions.values():
        assert "on 50000 images" in caption and "bfloat16 (the paper: fp32)" in caption
    assert "D_rand / D_det at L2 eps 1 (the paper's: 0.5)" in captions["cifar10-eps1"]
    assert "(the paper's: 0.5)" not in captions["cifar10"]
    # D trained 87 min on a CPU in an earlier run and was reused: the cost says which minutes were earlier ones
    assert "training the models 90 min, 89 min of it by models trained before and reused (D, D_det)" in captions[
        "cifar10"], captions["cifar10"]
