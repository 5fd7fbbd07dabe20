""""The first N test images" of a set stored class by class (an image-folder tree) are read
round-robin over its classes (``TensorDataset.first``): a prefix of CIFAR-10's image folders would be
all airplanes. Sets in any other order keep their stored order (Fashion-MNIST's first N stay the
first N, so numbers measured on them stand)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from explorer import data
from explorer.classifier import Classifier, ClassifierInfo
from explorer.evaluation import sharded_robust_counts


def blocked_set(per_class=(5, 3, 4)) -> data.TensorDataset:
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(per_class)])
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    return data.TensorDataset(images, labels, tuple("abc"), "blocked")


def test_a_class_by_class_set_is_read_round_robin():
    ds = blocked_set()
    assert data.class_blocked(ds.labels)
    order = ds.first()
    assert sorted(order.tolist()) == list(range(len(ds)))  # a permutation
    assert ds.labels[order].tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 2, 0]
    assert ds.labels[ds.first(6)].bincount().tolist() == [2, 2, 2]
    assert ds.first(0).tolist() == [] and len(ds.first(100)) == len(ds)
    x, y = next(ds.batches(3, limit=3))
    assert y.tolist() == [0, 1, 2] and x.shape == (3, 1, 2, 2)


@pytest.mark.parametrize("labels", [[0, 1, 0, 1], [2, 0, 1, 1, 0], [1], [3, 3, 3]])
def test_any_other_order_is_kept(labels):
    ds = data.TensorDataset(torch.zeros(len(labels), 1, 1, 1, dtype=torch.uint8), torch.tensor(labels),
                            ("a", "b", "c", "d"), "mixed")
    assert ds.first().tolist() == list(range(len(labels)))


def test_an_image_folder_tree_prefix_has_every_class(tmp_path: Path):
    from PIL import Image

    for split in ("train", "test"):
        for k, cls in enumerate(("cat", "dog", "frog")):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (8, 8), (40 * k, 10 * i, 0)).save(tmp_path / split / cls / f"{i:04d}.png")
    ds = data.load_dataset(f"folder:{tmp_path}", "test", progress=False)
    assert ds.labels.tolist() == sorted(ds.labels.tolist())  # stored class by class
    assert ds.labels[ds.first(6)].bincount(minlength=3).tolist() == [2, 2, 2]


def test_evaluation_limit_takes_a_balanced_prefix():
    """A model that always says class 0, on 12 images stored 6 of class 0 then 6 of class 1: its clean
    accuracy on "the first 4" is 2 of 4 (round-robin), not 4 of 4 (the stored prefix)."""
    lin = nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.copy_(torch.tensor([1.0, 0.0]))
    model = Classifier(nn.Sequential(nn.Flatten(), lin), ClassifierInfo("zero", "toy", ("a", "b"), (1, 2, 2)),
                       mean=(0.0,), std=(1.0,))
    ds = data.TensorDataset(torch.zeros(12, 1, 2, 2, dtype=torch.uint8), torch.tensor([0] * 6 + [1] * 6),
                            ("a", "b"), "blocked")
    counts, total = sharded_robust_counts(model, ds, "l2", [0.0], steps=1, limit=4)
    assert (counts[0.0], total) == (2, 4)
    counts, total = sharded_robust_counts(model, ds, "l2", [0.0], steps=1)
    assert (counts[0.0], total) == (6, 12)


def test_table_evaluations_kept_before_the_rule_no_longer_match():
    """The table's saved evaluations are keyed by how the images were chosen: a limited evaluation of a
    class-by-class set names the round-robin selection, so one kept from the stored prefix is measured again."""
    from types import SimpleNamespace

    from explorer.experiments._table_records import _evaluation_key

    ds = blocked_set()
    cfg = SimpleNamespace(dataset="folder:x", eval_steps=2, test_limit=6, seed=0)
    key = _evaluation_key(Path("/nonexistent"), ds, "l2", 0.5, cfg, "cpu")
    assert key["selection"] == "round-robin over the classes"
    assert "selection" not in _evaluation_key(Path("/nonexistent"), ds, "l2", 0.5,
                                              SimpleNamespace(**{**vars(cfg), "test_limit": None}), "cpu")
