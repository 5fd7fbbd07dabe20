"""The busy-CPU rows: PGD-20 at batch 256, ours against torchattacks, on a quiet CPU and while another
process holds one core (as a live server's CPU is shared with Streamlit, the warm-up and other
sessions), at one thread and at every core's worth of threads. Wall-clock times: a busy core is
exactly what the CPU-time clock would hide.

The thread count with the lowest wall time for ours under load is what ``explorer.devices.
default_threads`` must pick on such a machine; the row says whether it does.
"""

from __future__ import annotations

import subprocess
import sys

import torch

from bench import pgd, timing
from explorer import devices

SPIN = "while True: pass"


cores = devices.usable_cores  # the cores this process may run on


def busy_rows(name: str, n: int = 256, budget_s: float = 20.0, norm: str = "linf") -> list[dict]:
    """One row per (load, threads): quiet and one core busy, 1 thread and ``cores()`` threads."""
    w = pgd.workload(name, n, torch.device("cpu"))
    threads = sorted({1, cores()})
    saved_threads, saved_clock = torch.get_num_threads(), timing.CLOCK
    timing.CLOCK = "wall"
    rows = []
    try:
        for load in ("quiet", "one core busy"):
            hog = subprocess.Popen([sys.executable, "-c", SPIN]) if load != "quiet" else None
            try:
                for t in threads:
                    torch.set_num_threads(t)
                    r = pgd.pgd_row(w, norm, budget_s)
                    rows.append({"group": "busy", "model": name, "norm": norm, "batch": n, "load": load,
                                 "threads": t, "ours_s": r["ours_s"], "peer_s": r["peer_s"], "ratio": r["ratio"],
                                 "repeats": r["repeats"], "same_acc": r["same_acc"]})
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()
    finally:
        torch.set_num_threads(saved_threads)
        timing.CLOCK = saved_clock
    busy = [r for r in rows if r["load"] != "quiet"]
    best = min(busy, key=lambda r: r["ours_s"])["threads"]
    default = devices.default_threads(cores())
    for r in rows:
        r["fastest_under_load"] = best
        r["default_threads"] = default
    return rows


def markdown(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    out = ["### PGD-20 on a busy CPU: ours vs torchattacks, quiet and with another process spinning on one core "
           "(wall clock)", "",
           "| model | norm | batch | load | torch threads | ours (s) | torchattacks (s) | ratio (ours faster if > 1) "
           "| repeats |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['norm']} | {r['batch']} | {r['load']} | {r['threads']} | {r['ours_s']:.2f} | "
                   f"{r['peer_s']:.2f} | **{r['ratio']:.2f}** | {r['repeats']} |")
    r = rows[0]
    out += ["", f"Fastest for ours with one core busy: {r['fastest_under_load']} thread(s); "
                f"`explorer.devices.default_threads` picks {r['default_threads']} on this machine "
                f"({'the same' if r['fastest_under_load'] == r['default_threads'] else 'NOT the same'}).", ""]
    return out
