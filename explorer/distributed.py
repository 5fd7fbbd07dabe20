"""The distributed setup of the heavy jobs (train, construct, evaluate) under ``torchrun``.

``torchrun`` starts one process per device and tells each its place through the
environment: ``WORLD_SIZE`` processes in all, this one's ``RANK`` and its ``LOCAL_RANK`` on
its machine. Without ``torchrun`` the world is one process of rank 0 and nothing here
touches ``torch.distributed``. The process group uses NCCL on CUDA and gloo otherwise
(CPU, MPS); every job shards its work as "item k belongs to rank k mod world".
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["world_size", "rank", "local_rank", "is_main", "setup", "all_sum", "barrier", "leave"]


def world_size() -> int:
    """Processes in the job (``WORLD_SIZE``; 1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank (``RANK``; 0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``): its CUDA device index."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Whether this process writes the shared outputs (rank 0)."""
    return rank() == 0


def setup(device: torch.device | str) -> torch.device:
    """Join the process group when the world is larger than one; returns this rank's device.

    The group's backend is NCCL when ``device`` is CUDA, else gloo; on CUDA each rank takes
    ``cuda:LOCAL_RANK``. A group that is already initialized (a test, a caller) is kept.
    """
    device = torch.device(device)
    if world_size() > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", local_rank())
            torch.cuda.set_device(device)
    return device


def _active() -> bool:
    return world_size() > 1 and dist.is_available() and dist.is_initialized()


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over every rank (the tensor itself when there is no group).

    The sum runs on the device the group's backend needs (CUDA for NCCL) and comes back
    on ``values``'s device and dtype.
    """
    if not _active():
        return values
    backend_device = torch.device("cuda", torch.cuda.current_device()) \
        if dist.get_backend() == "nccl" else torch.device("cpu")
    out = values.detach().to(backend_device).clone()
    dist.all_reduce(out)
    return out.to(values.device)


def barrier() -> None:
    """Wait for every rank (nothing without a group)."""
    if _active():
        dist.barrier()


def leave() -> None:
    """Tear the process group down before the interpreter does: left to the interpreter's
    exit, gloo's worker threads can abort a rank with SIGABRT after its work is done, and
    torchrun then fails the whole run (pytorch/pytorch#179291)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
