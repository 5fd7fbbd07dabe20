"""The constructed-dataset samples that ship inside the package (issue 21, item 5): a fresh clone can
browse D_R, D_NR, D_rand and D_det of both datasets at once, beside their source images, without the
source set they were built from and without building anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explorer import construct as K
from explorer import data

KINDS = ("robust", "non-robust", "rand", "det")


def _samples() -> dict[tuple[str, str], tuple[Path, dict]]:
    found = K.find_datasets(K.shipped_samples_root())
    return {(m["dataset"]["name"], m["kind"]): (p, m) for p, m in found}


def test_every_kind_of_both_datasets_ships_with_its_recipe_and_sources():
    samples = _samples()
    for dataset in ("fashion-mnist", "cifar10"):
        for kind in KINDS:
            path, m = samples[(dataset, kind)]
            assert m["complete"] and m["count"] >= 50 and (path / K.SOURCES).is_file()
            assert m["command"].startswith(f"python -m explorer construct {kind} --dataset {dataset}")
            assert "--pack-sources" in m["command"] and m["source_model"]["sha256"]
            assert Path(__file__).resolve().parent.parent / "explorer" / "assets" in path.parents


def test_a_sample_browses_without_its_source_set(monkeypatch):
    """``pairs`` reads the packed source and start images; the source set is never loaded."""
    path, m = _samples()[("cifar10", "robust")]

    def no_source(*args, **kwargs):
        raise AssertionError("the source set was loaded")

    monkeypatch.setattr("explorer.construct.artifacts.source_dataset", no_source)
    p = K.pairs(path, range(4))
    assert p.originals.shape == p.constructed.shape == p.starts.shape == (4, 3, 32, 32)
    assert p.originals.min() >= 0 and p.originals.max() <= 1
    # D_R starts from another training image and ends far from it, near nothing like noise
    assert not np.allclose(p.starts, p.constructed, atol=0.05)
    with pytest.raises(data.DataIndexError):
        K.pairs(path, [m["count"]])


def test_packed_sources_are_the_source_sets_images():
    """Where the source set is here, the packed images are exactly its images at the dataset's indices."""
    path, m = _samples()[("fashion-mnist", "det")]
    try:
        source = K.source_dataset("fashion-mnist", tuple(m["input_size"]), tuple(m["class_names"]))
    except data.DataError as e:
        pytest.skip(str(e))
    if len(source) != m["dataset"]["size"]:
        pytest.skip(f"the source set here has {len(source)} images, the sample was built from {m['dataset']['size']}")
    _, t = K.load_arrays(path)
    p = K.pairs(path, range(m["count"]))
    np.testing.assert_array_equal(p.originals, source.float_images(t["source_index"]).numpy())
    assert p.starts is None or p.starts.shape == p.originals.shape
