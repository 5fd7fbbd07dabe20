"""Image-folder datasets as first-class datasets: decoded once into a cache keyed by the
tree's listing, dataset facts from the data itself, seeded class-balanced subsets, the
bundled CIFAR-10 subset, and the full CIFAR-10 image folders when ../shared has them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer import data
from explorer import train as T

SHARED_CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10"


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tree(root: Path, classes=("ant", "bee", "cat"), per_class=4, size=(12, 10), grey=False, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            if grey:
                a[..., 1] = a[..., 2] = a[..., 0]
            Image.fromarray(a).save(root / c / f"{i:03d}.png")
    return root


def test_a_folder_is_decoded_once_and_read_back_from_the_cache(tmp_path, cache):
    root = _tree(tmp_path / "tree")
    a = data.load_image_folder(root, progress=False)
    assert a.images.shape == (12, 3, 10, 12) and a.class_names == ("ant", "bee", "cat")
    assert a.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    expected = np.asarray(Image.open(root / "bee" / "001.png")).transpose(2, 0, 1)
    assert np.array_equal(a.images[5].numpy(), expected)
    files = list((cache / "folders").glob("*.npz"))
    assert len(files) == 1
    os.utime(files[0], (1, 1))  # the cached copy is what a second call reads: make it recognisably different
    with np.load(files[0]) as z:
        imgs, labels = z["images"].copy(), z["labels"]
    imgs[0] = 7
    np.savez(files[0], images=imgs, labels=labels)
    b = data.load_image_folder(root, progress=False)
    assert int(b.images[0].max()) == 7  # read from the cache, not decoded again


def test_a_changed_tree_is_decoded_again(tmp_path, cache):
    root = _tree(tmp_path / "tree")
    first = data.load_image_folder(root, progress=False)
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(root / "cat" / "999.png")
    second = data.load_image_folder(root, progress=False)
    assert len(second) == len(first) + 1
    assert len(list((cache / "folders").glob("*.npz"))) == 2


def test_broken_files_are_skipped_with_one_warning(tmp_path, cache):
    root = _tree(tmp_path / "tree")
    (root / "ant" / "broken.jpg").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="skipped 1 of 13"):
        ds = data.load_image_folder(root, progress=False)
    assert len(ds) == 12


def test_grey_trees_get_one_channel_and_their_own_facts(tmp_path, cache):
    root = _tree(tmp_path / "grey", grey=True)
    (tmp_path / "set").mkdir()
    os.rename(root, tmp_path / "set" / "train")
    ds = data.load_dataset(f"folder:{tmp_path / 'set'}", "train", progress=False)
    assert ds.images.shape[1:] == (1, 10, 12)
    facts = data.dataset_facts(f"folder:{tmp_path / 'set'}", ds)
    assert facts.input_size == (1, 10, 12) and len(facts.mean) == 1
    assert facts.mean[0] == pytest.approx(float(ds.images.float().mean() / 255), abs=1e-3)
    assert facts.class_names == ("ant", "bee", "cat")


def test_a_cifar10_shaped_folder_gets_cifar10_facts(tmp_path, cache):
    _tree(tmp_path / "c" / "train", classes=data.CIFAR10_CLASSES, per_class=1, size=(32, 32))
    facts = data.dataset_facts(f"folder:{tmp_path / 'c'}")
    assert facts.mean == data.CIFAR10_MEAN and facts.input_size == (3, 32, 32) and facts.augment_pad == 4
    assert facts.title == ""  # a folder is not CIFAR-10 by name: its id is what a page shows


def test_display_names_come_from_the_facts_table_and_fall_back_to_the_id():
    assert [data.display_name(d) for d in ("cifar10", "fashion-mnist", "restricted-imagenet")] == [
        "CIFAR-10", "Fashion-MNIST", "Restricted ImageNet"]
    assert data.display_name("folder:/data/x") == "folder:/data/x"


def test_missing_folders_say_what_is_expected(tmp_path):
    with pytest.raises(data.DataError, match="is not a folder"):
        data.load_dataset(f"folder:{tmp_path / 'nope'}", "train")
    _tree(tmp_path / "t" / "train")
    with pytest.raises(data.DataError, match="no test/ folder"):
        data.load_dataset(f"folder:{tmp_path / 't'}", "test")
    with pytest.raises(data.DataError, match="unknown dataset"):
        data.load_dataset("mnist", "test")


def test_balanced_subset_is_even_seeded_and_in_order():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 5)
    ds = data.TensorDataset(torch.zeros(85, 1, 2, 2, dtype=torch.uint8), labels, ("a", "b", "c"), "x")
    sub = data.balanced_subset(ds, 21, seed=3)
    assert torch.bincount(sub.labels).tolist() == [8, 8, 5]  # c has only 5: the rest is dealt to a and b
    assert torch.equal(sub.labels, torch.sort(sub.labels).values)
    again = data.balanced_subset(ds, 21, seed=3)
    assert torch.equal(sub.labels, again.labels)
    assert data.balanced_subset(ds, 100) is ds


def test_train_limit_draws_every_class_from_a_class_sorted_folder(tmp_path, cache):
    _tree(tmp_path / "f" / "train", classes=("a", "b", "c", "d"), per_class=10, size=(16, 16))
    cfg = T.TrainConfig(name="x", arch="stage_cnn_tiny", dataset=f"folder:{tmp_path / 'f'}", limit=8,
                        out_dir=str(tmp_path))
    td = T.load_train_data(cfg)
    assert torch.bincount(td.train.labels).tolist() == [2, 2, 2, 2]
    assert td.input_size == (3, 16, 16)


def test_the_bundled_cifar10_subset_has_100_test_images_per_class():
    ds = data.bundled_cifar10("test")
    assert ds.images.shape == (1000, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert torch.bincount(ds.labels).tolist() == [100] * 10
    assert ds.class_names == data.CIFAR10_CLASSES
    with pytest.raises(data.DataError, match="test images only"):
        data.bundled_cifar10("train")


def test_cifar10_falls_back_to_the_bundled_subset_for_test_only(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "none"))
    assert len(data.load_dataset("cifar10", "test")) == 1000
    with pytest.raises(data.DataError, match="CIFAR-10 not found"):
        data.load_dataset("cifar10", "train")


@pytest.mark.skipif(not SHARED_CIFAR10.is_dir(), reason=f"no CIFAR-10 image folders at {SHARED_CIFAR10}")
def test_cifar10_from_the_shared_image_folders(monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(SHARED_CIFAR10))
    ds = data.load_dataset("cifar10", "test", progress=False)
    assert ds.images.shape == (10000, 3, 32, 32)
    assert torch.bincount(ds.labels).tolist() == [1000] * 10
    sub = data.bundled_cifar10("test")
    assert torch.equal(ds.images[:100], sub.images[:100])  # the subset is the first 100 of each class


def test_a_fashion_mnist_folder_in_sorted_order_gets_its_facts_and_keeps_its_order(tmp_path, cache):
    names = data.class_folder_names(data.FASHION_MNIST_CLASSES)
    _tree(tmp_path / "f" / "train", classes=tuple(names), per_class=1, size=(28, 28), grey=True)
    facts = data.dataset_facts(f"folder:{tmp_path / 'f'}")
    assert facts.mean == data.FASHION_MNIST_MEAN and facts.input_size == (1, 28, 28)
    assert facts.class_names == tuple(sorted(names))  # the folder's own (sorted) label order


def test_other_folders_get_cifar10_l2_radii_scaled_to_their_dimension(tmp_path, cache):
    _tree(tmp_path / "o" / "train", size=(64, 64))
    facts = data.dataset_facts(f"folder:{tmp_path / 'o'}")
    cifar = data.DATASETS["cifar10"]
    assert facts.eps_range("l2").default == pytest.approx(cifar.eps_range("l2").default * 2, rel=1e-3)  # 4x the dims
    assert facts.evaluation_eps("linf") == cifar.evaluation_eps("linf")
