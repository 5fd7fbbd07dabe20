"""Where PGD's time goes: torch.profiler over one PGD-20 run of ours and of torchattacks.

    OMP_NUM_THREADS=1 taskset -c 1 python -m bench.profile_pgd fmnist-robust-linf 256 [linf|l2]

Prints the top operators of each side by self CPU time, and the share of the time spent
in the model's own kernels (convolution, batch norm, activation and their backward passes)
against everything else (the loop: steps, projections, bookkeeping).
"""

from __future__ import annotations

import sys

import torch
from torch.profiler import ProfilerActivity, profile

from bench import pgd as P
from explorer import attacks

MODEL_OPS = ("conv", "batch_norm", "threshold", "relu", "clamp_min", "hardtanh", "addmm", "mm",
             "adaptive_avg_pool", "mean", "max_pool", "linear", "silu", "add_")


def profile_side(fn, rows: int = 12) -> tuple[str, float, float]:
    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    model = sum(e.self_cpu_time_total for e in events if any(k in e.key for k in MODEL_OPS))
    return events.table(sort_by="self_cpu_time_total", row_limit=rows), total / 1e6, model / max(total, 1)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name, n = argv[0] if argv else "fmnist-robust-linf", int(argv[1]) if len(argv) > 1 else 256
    norm = argv[2] if len(argv) > 2 else "linf"
    torch.set_num_threads(int(torch.get_num_threads()))
    w = P.workload(name, n, torch.device("cpu"))
    eps = P.EPS[(w.model.info.dataset, norm)]
    peer = P.peer_attack(w.model, norm, eps)
    sides = {"ours": lambda: attacks.pgd(w.model, w.x, w.y, norm, eps, P.STEPS, random_start=False),
             "torchattacks": lambda: peer(w.x, w.y)}
    for side, fn in sides.items():
        table, seconds, share = profile_side(fn)
        print(f"== {side}: {name}, batch {n}, {norm}, PGD-{P.STEPS}: {seconds:.2f} s of operator time, "
              f"{100 * share:.1f}% in the model's kernels")
        print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
