"""The tables the pages show read no "None" or "nan": an empty cell reads charts.MISSING, and the
zoo lists the models that work offline first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from explorer import charts, data
from explorer.charts import constructed as CC
from explorer.charts import discussion as CD
from explorer.experiments import zoo_report

ROOT = Path(__file__).resolve().parents[1]
ZOO_COLUMNS = ["name", "dataset", "kind", "source", "available", "clean accuracy", "robust accuracy",
               "test images", "why"]  # pages/model_zoo.py's TABLE_COLUMNS


def no_none(df: pd.DataFrame) -> None:
    assert not df.isna().any().any(), df
    texts = {str(v).strip().lower() for v in df.to_numpy().ravel()}
    assert not texts & {"none", "nan", "<na>", "nat"}, texts & {"none", "nan", "<na>", "nat"}


def test_shown_fills_gaps_and_keeps_full_columns():
    df = charts.shown(pd.DataFrame({"a": [1.5, None], "b": [np.nan, 0.123456], "c": [1, 2], "d": ["x", None]}))
    assert list(df["a"]) == ["1.5", charts.MISSING] and list(df["b"]) == [charts.MISSING, "0.1235"]
    assert df["c"].dtype.kind == "i" and list(df["d"]) == ["x", charts.MISSING]
    no_none(df)


def test_zoo_table_available_first_and_no_none():
    rows = zoo_report.model_table()
    df = charts.zoo_frame(rows, ZOO_COLUMNS)
    no_none(df)
    available = [bool(v) for v in df["available"]]
    assert any(available) and not all(available)
    assert available == sorted(available, reverse=True)  # every available model before every other
    # stable: within each group the zoo's own order
    want = [r["name"] for r in rows if r["available"]] + [r["name"] for r in rows if not r["available"]]
    assert list(df["name"]) == want
    home = charts.zoo_frame(rows, ["name", "dataset", "kind", "source", "available", "why"])  # the home page's
    no_none(home)
    # datasets by the names people write, not the ids the code keys on
    assert set(home["dataset"]) == {data.display_name(r["dataset"]) for r in rows}
    assert "ImageNet" in set(home["dataset"]) and not {"fashion-mnist", "cifar10", "imagenet"} & set(home["dataset"])
    named = charts.zoo_frame([{"dataset": "fashion-mnist"}, {"dataset": "cifar10"}, {"dataset": "folder:/x"}])
    assert list(named["dataset"]) == ["Fashion-MNIST", "CIFAR-10", "folder:/x"]
    # clean accuracy in percent, as the robust accuracies beside it are
    clean = {r["name"]: r["clean accuracy"] for r in rows}
    for name, text in zip(df["name"], df["clean accuracy"]):
        assert text == (f"{clean[name]:.1%}" if clean[name] is not None else charts.MISSING), name
    # (the zoo's cards may carry no numbers here: a session fixture can point the checkpoints at tiny models)
    shown = charts.zoo_frame([{"name": "a", "clean accuracy": 0.9217}, {"name": "b", "clean accuracy": None}])
    assert list(shown["clean accuracy"]) == ["92.2%", charts.MISSING]


def test_table1_frames_have_no_none():
    for path in sorted((ROOT / "results" / "constructed").glob("*/table.json")):
        t = json.loads(path.read_text())
        ev = t["eval"]
        df = CC.table_frame(t["rows"], f"{ev['norm']} eps {ev['eps']:g}", f"{ev['norm']} eps {ev['eps'] / 2:g}")
        no_none(df)
    gappy = [{"dataset": "D", "train images": 10, "clean %": 90.0, "robust %": None, "paper clean %": 95.3,
              "paper robust %": None}, {"dataset": "D_det", "train images": 10, "clean %": 20.0,
                                        "robust %": 1.0, "robust % (half eps)": 2.0, "paper clean %": None,
                                        "paper robust %": None}]
    no_none(CC.table_frame(gappy))


def test_leakage_frame_has_no_none():
    doc = json.loads((ROOT / "results" / "discussion" / "leakage.json").read_text())
    assert any(r["control"] is None or r["commenter"] is None for r in doc["result"]["rows"])  # there are gaps
    df = CD.leakage_frame(doc["result"])
    no_none(df)
    assert charts.MISSING in set(df["Goh % (CIFAR-10)"])


def _saved(name: str) -> dict:
    return json.loads((ROOT / "results" / "discussion" / f"{name}.json").read_text())["result"]


def test_nontransferable_table_is_quantities_by_attack_with_no_none():
    """Five narrow columns (ours beside Nakkiran's per attack), not nine wide ones that ran past a 1600-px
    screen; the quantities he gives no number for read MISSING."""
    result = _saved("nontransferable")
    df = CD.nontransferable_frame(result)
    no_none(df)
    assert list(df.columns) == ["quantity", "PGD (ours)", "PGD (Nakkiran)", "non-transferable (ours)",
                                "non-transferable (Nakkiran)"]
    assert len(df) == len(CD.NONTRANSFERABLE_ROWS)
    pgd, ntr = result["rows"]
    transfer = df.set_index("quantity").loc["transfer to held-out models %"]
    assert float(transfer["PGD (ours)"]) == round(100 * pgd["transfer"], 1)
    assert float(transfer["non-transferable (Nakkiran)"]) == ntr["commenter_transfer"] == 1.7
    assert df.set_index("quantity").loc["ensemble keeps the true label %", "PGD (Nakkiran)"] == charts.MISSING


def test_the_discussion_tables_read_no_none_even_with_gaps():
    squares = _saved("squares")
    squares["rows"][0]["robust"] = squares["rows"][0]["robust"][:-1]  # one eps short: a gap at the end
    df = CD.squares_frame(squares)
    no_none(df)
    assert df[f"eps {squares['eps'][-1]:g}"].iloc[0] == charts.MISSING
    transfer = _saved("transfer_learnability")
    for p in transfer["points"]:
        p.pop("learned_shifted", None)  # a run saved before the shifted labels were recorded
    no_none(CD.transfer_learnability_frame(transfer))
    assert CD.transfer_scatter(transfer).to_dict()  # the chart still gets numbers
    mislabeled = _saved("mislabeled")
    no_none(CD.mislabeled_frame(mislabeled, {"weak_accuracy": None, "kept": 1, "of": 2, "learned": 49.7}))
    for name in ("squares", "transfer_learnability", "nontransferable", "leakage"):
        frame = {"squares": CD.squares_frame, "transfer_learnability": CD.transfer_learnability_frame,
                 "nontransferable": CD.nontransferable_frame, "leakage": CD.leakage_frame}[name]
        no_none(frame(_saved(name)))
    no_none(CD.linear_models_frame(_saved("leakage")))
