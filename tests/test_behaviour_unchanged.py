"""Behaviour held fixed across restructurings: fixed-seed outputs of the attack lab, layer
robustness, a construct shard and style-transfer steps on the bundled Fashion-MNIST models
equal a reference recorded before the house was rebuilt (tests/data/behaviour_reference.npz).

Every array and number of each Result (timings left out) is compared: the mean absolute
difference must be at float32 rounding level and no entry may move by more than one PGD
step (a gradient sign that is exactly zero can flip between builds). To record a new reference
on purpose (a change of behaviour, named in its commit): EXPLORER_WRITE_REFERENCE=PATH pytest
tests/test_behaviour_unchanged.py writes it to PATH; no test run rewrites the tracked file.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from tests.bundled_models import require

REFERENCE = Path(__file__).resolve().parent / "data" / "behaviour_reference.npz"
TIMING = ("seconds",)


def _flatten(obj, prefix: str, out: dict) -> None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if any(t in f.name for t in TIMING):
                continue
            _flatten(getattr(obj, f.name), f"{prefix}.{f.name}", out)
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fiub":
            out[prefix] = obj.astype(np.float64)
    elif isinstance(obj, (bool, int, float, np.floating, np.integer)) and not isinstance(obj, str):
        out[prefix] = np.asarray(float(obj))
    elif isinstance(obj, (tuple, list)):
        for i, v in enumerate(obj):
            _flatten(v, f"{prefix}[{i}]", out)
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            _flatten(obj[k], f"{prefix}[{k}]", out)


def _attack_lab() -> dict:
    from explorer import data
    from explorer.experiments import attack_lab as AL

    x, y = data.bundled_fashion_mnist("test").float_images(slice(1, 2)), 0
    y = int(data.bundled_fashion_mnist("test").labels[1])
    out: dict = {}
    for norm, eps in (("linf", 0.1), ("l2", 1.5)):
        res = AL.run(AL.Config.for_image(x[0], ("fmnist-standard", "fmnist-robust-linf"), label=y, norm=norm, eps=eps,
                                         steps=10, restarts=2, random_start=True, seed=3, device="cpu"))
        _flatten(res, f"attack_lab.{norm}", out)
    return out


def _layer_robustness() -> dict:
    from explorer.experiments import layer_robustness as LR

    res = LR.run(LR.Config(models=("fmnist-standard", "fmnist-robust-linf"), norm="linf", eps=0.1, n_images=8,
                           steps=5, bootstrap=50, seed=1, device="cpu"))
    out: dict = {}
    _flatten(res, "layer_robustness", out)
    return out


def _construct_shard(tmp_path: Path) -> dict:
    from explorer import construct as K

    out: dict = {}
    for kind, kw in (("det", dict(steps=5, step_sizes=(0.1,), eps=0.5)),
                     ("robust", dict(steps=8, step_sizes=(0.1,)))):
        source = "fmnist-robust-linf" if kind == "robust" else "fmnist-standard"
        recipe = K.default_recipe(kind, "fashion-mnist-bundled", source=source, subset=6, shard_size=6,
                                  batch_size=6, **kw)
        K.build(recipe, tmp_path / kind, device="cpu")
        _, tensors = K.load_arrays(tmp_path / kind)
        for k, v in tensors.items():
            out[f"construct.{kind}.{k}"] = v.double().numpy()
    return out


def _style_step() -> dict:
    from explorer import data
    from explorer.experiments import style_transfer as ST

    content, style = data.sample_photos()["camera"], data.sample_textures()["gravel"]
    res = ST.run(ST.Config.for_images(content, style, ("efficientnet-lite0",), size=48,
                                      iterations=3, optimizer="adam", device="cpu"))
    out: dict = {}
    _flatten(res, "style", out)
    return out


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try:
        require(mp, "fmnist-standard", "fmnist-robust-linf")
        got = {}
        got.update(_attack_lab())
        got.update(_layer_robustness())
        got.update(_construct_shard(tmp_path_factory.mktemp("shards")))
        got.update(_style_step())
    finally:
        mp.undo()
    target = os.environ.get("EXPLORER_WRITE_REFERENCE")
    if target:
        np.savez_compressed(target, **got)
    return got


def test_outputs_equal_the_reference(outputs):
    assert REFERENCE.exists(), f"no reference at {REFERENCE}"
    with np.load(REFERENCE) as z:
        ref = {k: z[k] for k in z.files}
    assert sorted(outputs) == sorted(ref), (sorted(set(outputs) ^ set(ref)))[:10]
    bad = []
    for k, want in ref.items():
        got = outputs[k]
        if got.shape != want.shape:
            bad.append(f"{k}: shape {got.shape} != {want.shape}")
            continue
        if want.size == 0:
            continue
        d = np.abs(got - want)
        scale = float(np.mean(np.abs(want))) + 1e-12
        if not (float(d.mean()) <= 1e-4 * max(scale, 1.0) and float(d.max()) <= 0.05 * max(float(np.abs(want).max()), 1.0)):
            bad.append(f"{k}: mean |diff| {d.mean():.3g}, max {d.max():.3g}")
    assert not bad, "\n".join(bad[:20])
