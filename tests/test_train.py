import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from explorer import train as T
from explorer import zoo
from explorer.optimize import Cancelled

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, env_extra=None, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


TINY = ["--arch", "stage_cnn_tiny", "--limit", "512", "--batch-size", "64", "--lr", "0.05"]


def test_single_process_and_torchrun_both_give_loadable_checkpoints(tmp_path):
    single = run_cli("train", "--name", "one", "--epochs", "1", "--out-dir", str(tmp_path), "--register", *TINY)
    assert single.returncode == 0, single.stderr[-2000:]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "explorer", "train", "--name", "two", "--epochs", "1", "--out-dir", str(tmp_path),
                          "--register", "--adv", "linf", "--eps", "0.1", "--attack-steps", "2", "--device", "cpu",
                          *TINY], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    cards = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two")}
    assert cards["one"]["world_size"] == 1 and cards["two"]["world_size"] == 2
    assert set(cards["one"]) == set(cards["two"])  # same result format
    w1, w2 = load_file(str(tmp_path / "one.safetensors")), load_file(str(tmp_path / "two.safetensors"))
    assert w1.keys() == w2.keys()
    for name in ("one", "two"):
        clf = zoo.load(name, device="cpu", root=tmp_path)
        assert clf(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert zoo.get_spec("two", tmp_path).robust and zoo.get_spec("two", tmp_path).train_eps == 0.1


def test_killed_run_resumes_without_repeating_an_epoch(tmp_path):
    args = ["train", "--name", "k", "--epochs", "4", "--out-dir", str(tmp_path), "--arch", "stage_cnn_tiny",
            "--limit", "3000", "--batch-size", "64", "--lr", "0.05", "--seed", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "explorer", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "k.state.pt"
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = torch.load(state, weights_only=True)
    done = saved["epoch"]
    assert 1 <= done < 4, f"the run was not killed mid-way (epoch {done})"
    assert not (tmp_path / "k.safetensors").exists()
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    card = json.loads((tmp_path / "k.json").read_text())
    assert [h["epoch"] for h in card["history"]] == [1, 2, 3, 4]
    assert card["history"][:done] == saved["history"]  # the finished epochs were kept, not rerun
    # and the result is the one an uninterrupted run gives
    ref = tmp_path / "ref"
    full = run_cli(*[a if a != str(tmp_path) else str(ref) for a in args])
    assert full.returncode == 0, full.stderr[-2000:]
    a, b = load_file(str(tmp_path / "k.safetensors")), load_file(str(ref / "k.safetensors"))
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)


@pytest.mark.parametrize("args,message", [
    (["--arch", "nope"], "unknown architecture"),
    (["--adv", "l2", "--eps", "-1"], "eps"),
    (["--attack-steps", "0"], "attack-steps"),
    (["--dataset", "imaginary"], "unknown dataset"),
    (["--adv", "linf"], "needs eps > 0"),
])
def test_bad_arguments_give_one_line(tmp_path, args, message):
    r = run_cli("train", "--name", "bad", "--epochs", "1", "--out-dir", str(tmp_path), *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_dataset_message(tmp_path):
    r = run_cli("train", "--name", "bad", "--dataset", "cifar10", "--out-dir", str(tmp_path),
                env_extra={"CIFAR10_ROOT": str(tmp_path / "none"), "HOME": str(tmp_path)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "CIFAR" in r.stderr or "cifar" in r.stderr


def test_resume_without_state_is_refused(tmp_path):
    r = run_cli("train", "--name", "none", "--epochs", "1", "--out-dir", str(tmp_path), "--resume", *TINY)
    assert r.returncode == 2 and "no saved state" in r.stderr


def test_lr_schedules():
    cfg = T.TrainConfig(name="x", epochs=10, lr=0.1)
    assert T._lr_at(cfg, 0.0) == pytest.approx(0.1)
    assert T._lr_at(cfg, 0.5) == pytest.approx(0.05)
    step = T.TrainConfig(name="x", epochs=9, lr=0.1, schedule="step")
    assert T._lr_at(step, 0.5) == pytest.approx(0.01)
    warm = T.TrainConfig(name="x", epochs=10, lr=0.1, adv_norm="l2", eps=1.0, eps_warmup_epochs=2)
    assert T._eps_at(warm, 1.0) == pytest.approx(0.5) and T._eps_at(warm, 5) == 1.0


def test_augment_is_a_shift_or_flip():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 28, 28)
    out = T._augment(x, g, pad=2, flip=False)
    assert out.shape == x.shape
    # every output is the input translated by at most 2 pixels: its centre crop appears in the input
    for i in range(16):
        found = any(torch.equal(out[i, :, 2:-2, 2:-2], x[i, :, 2 - dy:26 - dy, 2 - dx:26 - dx])
                    for dy in range(-2, 3) for dx in range(-2, 3))
        assert found


def test_fit_epoch_is_one_sgd_step_per_batch_and_stops_on_cancel():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(10, 3, generator=g), torch.randint(0, 2, (10,), generator=g)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    opt = T.make_optimizer(model.parameters(), "sgd", 0.1, momentum=0.9, weight_decay=0.0)
    seen = []
    totals = T.fit_epoch(model, opt, [(x[:6], y[:6]), (x[6:], y[6:])], lr_at=lambda i: [0.1, 0.0][i], device="cpu",
                         after_batch=lambda i, t: seen.append((i, t.n, t.batch_loss)))
    assert [(i, n) for i, n, _ in seen] == [(0, 6), (1, 10)] and totals.n == 10
    assert totals.loss_sum == pytest.approx(6 * seen[0][2] + 4 * seen[1][2])
    # the second batch has learning rate 0, so the weights are the first batch's step: Nesterov's
    # first step from an empty momentum buffer is lr * (1 + momentum) * gradient
    ref = torch.nn.Linear(3, 2)
    with torch.no_grad():
        ref.weight.copy_(w0), ref.bias.copy_(b0)
    torch.nn.functional.cross_entropy(ref(x[:6]), y[:6]).backward()
    torch.testing.assert_close(model.weight.detach(), w0 - 0.1 * 1.9 * ref.weight.grad)
    torch.testing.assert_close(model.bias.detach(), b0 - 0.1 * 1.9 * ref.bias.grad)
    with pytest.raises(Cancelled, match="training the probe"):
        T.fit_epoch(model, opt, [(x, y)] * 3, lr_at=lambda i: 0.1, device="cpu", cancel=lambda: True, what="the probe")
