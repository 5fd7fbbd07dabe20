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
    return f"CPU ({torch.get_num_threads()} threads)"


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
    """bf16 autocast on CUDA when asked for; a no-op elsewhere."""
    device = torch.device(device)
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
