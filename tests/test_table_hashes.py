"""table.json records the sha256 of everything the table rests on (issue 19, item 9): the source
models' weights, each constructed dataset's content, each trained model's weights and the real
test set, so a rebuild can be checked against it."""

from __future__ import annotations

import hashlib
import json

import torch

from explorer import cli, data, zoo
from explorer import construct as K
from explorer.experiments import constructed_table as CT


def test_table_json_records_the_sha256_of_its_datasets_and_models(tiny_root, tmp_path):
    out = tmp_path / "t"
    rc = cli.main(["table", "--standard", "tiny-standard", "--robust", "tiny-robust", "--kinds", "original", "det",
                   "--subset", "40", "--arch", "stage_cnn_tiny", "--epochs", "1", "--eps", "6", "--attack-steps", "3",
                   "--test-limit", "50", "--eval-steps", "2", "--out", str(out), "--device", "cpu"])
    assert rc == 0
    sha = json.loads((out / "table.json").read_text())["sha256"]
    assert sha["source_models"] == {"tiny-standard": zoo.weights_sha256("tiny-standard")}
    assert sha["source_models"]["tiny-standard"] == hashlib.sha256(
        (tiny_root / "tiny-standard.safetensors").read_bytes()).hexdigest()
    assert set(sha["datasets"]) == set(sha["models"]) == {"original", "det"}
    for kind in ("original", "det"):
        _, tensors = K.load_arrays(out / kind)
        h = hashlib.sha256()
        for name in sorted(tensors):
            t = tensors[name].contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
            h.update(t.numpy().tobytes())
        assert sha["datasets"][kind] == h.hexdigest()
        weights = out / "models" / f"on-{kind}.safetensors"
        assert sha["models"][kind] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert sha["datasets"]["original"] != sha["datasets"]["det"]
    test = data.load_dataset("fashion-mnist", "test")
    h = hashlib.sha256(test.images.contiguous().numpy().tobytes())
    h.update(test.labels.to(torch.int64).contiguous().numpy().tobytes())
    assert sha["test_set"] == h.hexdigest()


def test_the_dataset_hash_sees_every_pixel_and_ignores_the_shard_split():
    a = {"images": torch.zeros(4, 1, 2, 2), "labels": torch.arange(4)}
    b = {"images": a["images"].clone(), "labels": a["labels"].clone()}
    assert CT.dataset_sha256(a) == CT.dataset_sha256(b)
    b["images"][3, 0, 1, 1] = 1e-6
    assert CT.dataset_sha256(a) != CT.dataset_sha256(b)
