"""The one place where the compute device is chosen, and the lock GPU work queues on."""

from __future__ import annotations

import contextlib
import os
import threading

import torch

_GPU_LOCK = threading.RLock()


def best_device() -> torch.device:
    """CUDA when present, else Apple MPS, else CPU. ``EXPLORER_DEVICE`` overrides."""
    forced = os.environ.get("EXPLORER_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_summary(device: torch.device | None = None) -> str:
    """One line for people: the device and, on CUDA, its memory."""
    device = device or best_device()
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        free, total = torch.cuda.mem_get_info(idx)
        return (f"CUDA: {props.name}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free")
    if device.type == "mps":
        return "Apple MPS"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'' if n == 1 else 's'})"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity), else the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads(cores: int | None = None) -> int:
    """torch's CPU threads for a live server: ``EXPLORER_THREADS`` or ``OMP_NUM_THREADS`` when set, else
    one core fewer than there are (at least one). A server shares its CPU with Streamlit, the warm-up,
    the browser and other sessions; torch's own default (every core) makes its threads wait on a busy
    core: on 2 cores with one held by another process, PGD-20 at batch 256 took 4.66 s at 2 threads
    and 2.64 s at 1 (``python -m bench --rows busy``, bench/README.md)."""
    for var in ("EXPLORER_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return max(1, (cores or usable_cores()) - 1)


_THREADS_SET = False


def use_server_threads() -> int:
    """Set torch's CPU threads to ``default_threads()`` once per process (the app calls it); returns them."""
    global _THREADS_SET
    if not _THREADS_SET:
        torch.set_num_threads(default_threads())
        _THREADS_SET = True
    return torch.get_num_threads()


@contextlib.contextmanager
def device_lock(device: torch.device | str):
    """Serialize accelerator work so concurrent sessions queue instead of running out of memory.

    CPU work runs without the lock (it cannot run out of device memory).
    """
    if torch.device(device).type == "cpu":
        yield
        return
    with _GPU_LOCK:
        yield


def autocast(device: torch.device | str, enabled: bool):
    """bfloat16 autocast on CUDA or the CPU when asked for; a no-op otherwise (and on other devices).

    On a CPU with bf16 matrix units (Intel AMX, ``amx_bf16`` in /proc/cpuinfo) convolutions run
    2.2-2.9x faster than fp32 (bench/README.md); elsewhere they may run slower.
    """
    device = torch.device(device)
    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
