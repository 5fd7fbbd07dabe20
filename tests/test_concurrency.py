"""Many sessions, one model: concurrent experiments on a shared Classifier, and the GPU lock.

A live demo is several people on one server: Streamlit runs each session's script in
its own thread, and ``zoo.load`` (like ``st.cache_resource``) hands all of them the same
frozen Classifier. Eight threads running PGD, layer robustness and inversion at once
must give exactly what the same runs give one after another, and must leave the
Classifier as it was: parameters, buffers, eval mode, no ``.grad``, no hooks. The
hook-based path of ``Classifier.features`` (networks without ``forward_intermediates``)
is the one that could mix threads up, so it is tested on its own.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from explorer import attacks, devices
from explorer.classifier import Classifier
from explorer.experiments import attack_lab as AL
from explorer.experiments import inversion as INV
from explorer.experiments import layer_robustness as LR
from explorer.threat import make_threat

PAIR = ("tiny-standard", "tiny-robust")
THREADS = 8


# --- comparing results and model state ---------------------------------------------------

def assert_same(a, b, path="result"):
    """Exact equality of nested results: dataclasses, tuples, dicts, arrays, tensors, numbers.
    Wall-clock fields (``seconds``) are the only ones allowed to differ."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            if f.name != "seconds":
                assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{path} differs (max {(a.double() - b.double()).abs().max().item():.3g})"
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def snapshot(model: nn.Module) -> dict:
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "training": [m.training for m in model.modules()],
            "requires_grad": [p.requires_grad for p in model.parameters()]}


def assert_untouched(model: nn.Module, before: dict) -> None:
    after = model.state_dict()
    assert after.keys() == before["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(after[k], v), f"{k} changed"
    assert [m.training for m in model.modules()] == before["training"] == [False] * len(before["training"])
    assert [p.requires_grad for p in model.parameters()] == before["requires_grad"]
    assert all(p.grad is None for p in model.parameters()), "a parameter has a .grad"
    for name, m in model.named_modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks, f"hooks left on {name!r}"


def run_concurrently(jobs, threads: int = THREADS):
    """Run ``jobs`` (callables) on ``threads`` threads released together; results in job order.
    Also returns the (start, end) times, to show that the runs overlapped."""
    barrier = threading.Barrier(threads)
    results, errors, spans = [None] * len(jobs), [], [None] * len(jobs)

    def worker(i):
        try:
            barrier.wait()
            t0 = time.perf_counter()
            results[i] = jobs[i]()
            spans[i] = (t0, time.perf_counter())
        except BaseException as e:  # noqa: BLE001 - reported below with its job
            errors.append((i, e))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=600)
    assert not errors, errors
    assert all(not t.is_alive() for t in ts)
    return results, spans


def overlapped(spans) -> bool:
    """True when every run started before the first one ended (all were in flight at once)."""
    return max(s for s, _ in spans) < min(e for _, e in spans)


# --- the experiments, end to end, through the zoo's shared Classifier ------------------------

def _jobs(fmnist_test):
    """Eight small runs: PGD (attack lab), layer robustness and inversion, each with its own image or seed."""
    jobs = []
    for i in range(THREADS):
        x = fmnist_test.float_images(slice(i, i + 1))
        y = int(fmnist_test.labels[i])
        kind = ("pgd", "layers", "inversion")[i % 3]
        if kind == "pgd":
            cfg = AL.Config.for_image(x, PAIR, label=y, norm="linf" if i % 2 else "l2", eps=0.1 if i % 2 else 1.0,
                                      steps=10, random_start=True, restarts=2, seed=i, device="cpu")
            jobs.append(lambda cfg=cfg: AL.run(cfg))
        elif kind == "layers":
            cfg = LR.Config(models=PAIR, n_images=6, steps=4, bootstrap=50, pairs_per_image=2, batch_size=4,
                            seed=i, device="cpu")
            jobs.append(lambda cfg=cfg: LR.run(cfg))
        else:
            cfg = INV.Config.for_images(x[0], PAIR, label=y, steps=12, step_sizes=(1.0, 0.3), seed=i, device="cpu")
            jobs.append(lambda cfg=cfg: INV.run(cfg))
    return jobs


def test_eight_threads_on_one_classifier_equal_the_runs_one_after_another(tiny_pair, fmnist_test):
    from explorer import zoo

    standard, robust = tiny_pair
    # the experiments load through the zoo's cache: the very objects every session shares
    assert zoo.load(PAIR[0], device="cpu") is standard and zoo.load(PAIR[1], device="cpu") is robust
    before = [snapshot(m) for m in tiny_pair]
    jobs = _jobs(fmnist_test)
    sequential = [job() for job in jobs]
    concurrent, spans = run_concurrently(jobs)
    for i, (a, b) in enumerate(zip(sequential, concurrent)):
        assert_same(a, b, f"job {i} ({type(a).__module__.rsplit('.', 1)[-1]})")
    for model, snap in zip(tiny_pair, before):
        assert_untouched(model, snap)
    assert overlapped(spans), spans  # the eight runs really were in flight at the same time


# --- the hook-based features path, shared by threads ------------------------------------------

class _NoIntermediates(nn.Module):
    """The tiny network without ``forward_intermediates``: the Classifier falls back to hooks."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.inner = net

    def forward(self, x):
        return self.inner(x)


@pytest.fixture(scope="module")
def hooked(tiny_pair):
    standard = tiny_pair[0]
    net = _NoIntermediates(standard.net)
    layers = {f"stage{i}": f"inner.stage{i}" for i in range(1, 5)} | {"pool": "inner.pool"}
    model = Classifier(net, dataclasses.replace(standard.info, name="tiny-standard-hooked"),
                       standard.info.extra["mean"], standard.info.extra["std"], layers=layers, device="cpu")
    assert not model._native
    return model


def test_hook_features_never_mix_threads(hooked, fmnist_test):
    """Each thread asks for layers of its own images, many times over, while the others do the
    same on the same modules: every answer is the thread's own."""
    xs = [fmnist_test.float_images(slice(4 * i, 4 * i + 4)) for i in range(THREADS)]
    layer_sets = [["stage1"], ["stage2", "pool"], ["stage4"], ["stage1", "stage3"]]
    with torch.no_grad():
        expected = [hooked.features(xs[i], layer_sets[i % 4]) for i in range(THREADS)]

    def job(i):
        def run():
            out = []
            with torch.no_grad():
                for _ in range(30):
                    out.append(hooked.features(xs[i], layer_sets[i % 4]))
            return out
        return run

    before = snapshot(hooked)
    results, spans = run_concurrently([job(i) for i in range(THREADS)])
    for i, outs in enumerate(results):
        for got in outs:
            assert_same(got, expected[i], f"thread {i}")
    assert_untouched(hooked, before)
    assert overlapped(spans)


def test_pgd_layer_robustness_and_inversion_through_hooks_concurrently(hooked, fmnist_test):
    """The loop-level calls of the three experiments on the hook-based Classifier: eight
    threads give the sequential results bit for bit and leave no hook, grad or mode behind."""
    threat = make_threat("linf", 0.1)

    def job(i):
        x = fmnist_test.float_images(slice(4 * i, 4 * i + 4))
        y = fmnist_test.labels[4 * i:4 * i + 4]
        kind = i % 3
        if kind == 0:
            return lambda: attacks.pgd(hooked, x, y, threat, steps=8, restarts=2, seed=i).x_adv
        if kind == 1:
            partners = LR.random_partners(4, 2, torch.Generator().manual_seed(i))
            return lambda: LR.measure(hooked, x, ["stage2", "pool"], threat, 5, partners, batch_size=2, seed=i)
        z0 = fmnist_test.float_images(slice(100 + i, 101 + i)).expand_as(x).contiguous()
        return lambda: INV.invert(hooked, x, z0, "pool", (6, 4), (1.0, 0.3))

    jobs = [job(i) for i in range(THREADS)]
    before = snapshot(hooked)
    sequential = [j() for j in jobs]
    concurrent, spans = run_concurrently(jobs)
    for i, (a, b) in enumerate(zip(sequential, concurrent)):
        if isinstance(a, dict):  # measure(): layer -> (deviations, distances, dims, seconds)
            a = {k: v[:3] for k, v in a.items()}
            b = {k: v[:3] for k, v in b.items()}
        assert_same(a, b, f"job {i}")
    assert_untouched(hooked, before)


# --- one lock for accelerator work ---------------------------------------------------------

def _overlaps(device_names, hold: float = 0.2) -> tuple[int, list[tuple[float, float]]]:
    """Two threads enter ``device_lock`` together and hold it ``hold`` s; the most that were inside at once."""
    inside, most, spans, guard = [0], [0], [], threading.Lock()
    barrier = threading.Barrier(len(device_names))

    def worker(name):
        barrier.wait()
        with devices.device_lock(name):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            t0 = time.perf_counter()
            time.sleep(hold)
            spans.append((t0, time.perf_counter()))
            with guard:
                inside[0] -= 1

    ts = [threading.Thread(target=worker, args=(n,)) for n in device_names]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=30)
    return most[0], sorted(spans)


@pytest.mark.parametrize("names", [("cuda", "cuda"), ("cuda:0", "cuda"), ("cuda:0", "cuda:1"), ("mps", "cuda")],
                         ids=["cuda+cuda", "cuda:0+cuda", "two-gpus", "mps+cuda"])
def test_accelerator_work_is_serialized_by_one_lock(names):
    """Only the lock logic: no GPU is touched (a device string is all it looks at)."""
    most, spans = _overlaps(names)
    assert most == 1
    (a0, a1), (b0, b1) = spans
    assert b0 >= a1 - 1e-3  # the second started after the first ended


def test_cpu_work_does_not_queue():
    most, _ = _overlaps(["cpu", "cpu"])
    assert most == 2


def test_the_lock_is_reentrant_and_released_on_errors():
    """An experiment that calls another under the lock must not deadlock, and an exception
    inside (a cancelled run, an out-of-memory) must not leave the lock held."""
    done = threading.Event()

    def nested():
        with devices.device_lock("cuda"):
            with devices.device_lock(torch.device("cuda", 0)):
                done.set()

    t = threading.Thread(target=nested)
    t.start()
    t.join(timeout=5)
    assert done.is_set(), "nested device_lock deadlocked"
    with pytest.raises(RuntimeError):
        with devices.device_lock("cuda"):
            raise RuntimeError("CUDA out of memory (simulated)")
    acquired = []

    def other_thread():
        ok = devices._GPU_LOCK.acquire(timeout=2)
        acquired.append(ok)
        if ok:
            devices._GPU_LOCK.release()

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert acquired == [True]


@pytest.mark.parametrize("module, make", [
    (AL, lambda x, y: AL.Config.for_image(x, PAIR, label=y, steps=2, device="cpu")),
    (LR, lambda x, y: LR.Config(models=PAIR, n_images=4, steps=2, bootstrap=10, device="cpu")),
    (INV, lambda x, y: INV.Config.for_images(x[0], PAIR, label=y, steps=4, device="cpu")),
], ids=["attack_lab", "layer_robustness", "inversion"])
def test_experiments_run_their_model_work_under_the_lock(tiny_root, fmnist_test, monkeypatch, module, make):
    """Each experiment enters device_lock for its device around the model work."""
    entered = []
    real = devices.device_lock

    def recording(device):
        entered.append(str(device))
        return real(device)

    monkeypatch.setattr(module, "device_lock", recording)
    x, y = fmnist_test.float_images(slice(0, 1)), int(fmnist_test.labels[0])
    module.run(make(x, y))
    assert entered and set(entered) == {"cpu"}


def test_the_device_line_counts_cpu_threads_in_words():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert devices.device_summary(torch.device("cpu")) == "CPU (1 thread)"
        torch.set_num_threads(2)
        assert devices.device_summary(torch.device("cpu")) == "CPU (2 threads)"
    finally:
        torch.set_num_threads(before)
