"""The background warm-up (ui/warmup.py) stops cleanly when the process exits.

A daemon thread still inside torch when the interpreter finalizes aborts the process
(exit 134, "terminate called without an active exception"): a server stopped mid-warm-up,
or a test run whose AppTest started it, would end with a crash instead of exit 0.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bundled_models import require

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import atexit, sys, threading, time
    def _last():  # registered first, so it runs after the warm-up's own exit handler
        alive = [t.name for t in threading.enumerate() if t.name == "explorer-warmup" and t.is_alive()]
        print(f"at exit: warm-up alive={bool(alive)} after {time.time() - t_exit:.2f} s", flush=True)
    atexit.register(_last)
    from ui import warmup
    warmup.DELAY_S = 0.0
    w = warmup.start(lambda *a: None)
    t0 = time.time()
    while not any(k.startswith("step") and s == "computing" for k, s in w.state().items()):
        if time.time() - t0 > 120 or w.note:
            print("never computed:", w.note, w.state()); sys.exit(3)
        time.sleep(0.05)
    print("exiting while", w.state(), flush=True)
    t_exit = time.time()
""")


def test_exiting_mid_warm_up_stops_the_thread_and_exits_0(monkeypatch):
    require(monkeypatch, "fmnist-standard", "fmnist-robust-linf", "fmnist-robust-l2")
    monkeypatch.setenv("EXPLORER_WARMUP", "1")
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-2000:])
    assert "exiting while" in r.stdout and "computing" in r.stdout
    assert "at exit: warm-up alive=False" in r.stdout, r.stdout
    assert "terminate called" not in r.stderr


def test_stop_before_the_delay_starts_nothing(monkeypatch):
    from ui import warmup

    monkeypatch.setenv("EXPLORER_WARMUP", "1")
    monkeypatch.setattr(warmup, "DELAY_S", 5.0)
    monkeypatch.setattr(warmup, "_STOP", __import__("threading").Event())
    w = warmup.start(lambda *a: pytest.fail("nothing may be computed after stop()"))
    warmup.stop(timeout=10)
    assert w.thread is not None and not w.thread.is_alive()
    assert all(s == "waiting" for s in w.state().values())
