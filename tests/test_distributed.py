"""explorer.distributed: the torchrun environment, and a world of one that touches nothing."""

from __future__ import annotations

import torch
import torch.distributed as dist

from explorer import distributed as D


def test_without_torchrun_the_world_is_one_process(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert (D.world_size(), D.rank(), D.local_rank(), D.is_main()) == (1, 0, 0, True)
    assert D.setup("cpu") == torch.device("cpu") and not dist.is_initialized()
    t = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert D.all_sum(t) is t
    D.barrier()
    D.leave()


def test_the_environment_names_the_place(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert (D.world_size(), D.rank(), D.local_rank(), D.is_main()) == (4, 3, 1, False)


def test_a_group_of_one_sums_and_is_left(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun would say; the group here has one rank
        t = torch.tensor([3.0, 4.0], dtype=torch.float64)
        assert torch.equal(D.all_sum(t), t)
        D.leave()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
