"""``python -m bench``: run the rows, print the tables, save JSON and markdown.

A full run (not ``--quick``) merges its groups into bench/results/latest.json and
rewrites the tables of bench/README.md between its ``bench:start`` / ``bench:end``
markers from that file, so ``--rows app`` refreshes only the app table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import time
from pathlib import Path

import torch

from bench import app_pages, busy
from explorer import bounds as B
from explorer import zoo

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "bench" / "README.md"
GROUPS = ("pgd", "fastpath", "layers", "style", "app", "busy")
PAIR = ("fmnist-standard", "fmnist-robust-linf")
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", default=",".join(GROUPS),
                   help=f"comma-separated groups to run, of {', '.join(GROUPS)} (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="tiny settings (batches 1 and 16, no ImageNet models, short budgets) for a test; "
                        "never touches bench/README.md")
    p.add_argument("--models", nargs="*", default=PAIR, metavar="NAME",
                   help="the Fashion-MNIST pair, standard then robust (zoo names; default %(default)s); "
                        "none: only the ImageNet PGD rows")
    p.add_argument("--imagenet", nargs="*", default=None,
                   help="ImageNet models of the PGD rows (default: efficientnet-lite0 and ResNet-50 random init; "
                        "none with --quick)")
    p.add_argument("--budget", type=B.seconds, default=None,
                   help="seconds of interleaved repeats per PGD row (default 20; 2 with --quick)")
    p.add_argument("--cifar10", nargs="*", default=None, metavar="NAME",
                   help="CIFAR-10 models of the PGD rows, on the first CIFAR-10 test images with their labels "
                        "(default: the bundled cifar10-standard and, once bundled, cifar10-robust-l2; none with "
                        "--quick); the single-image row is the attack lab's click")
    p.add_argument("--app-pages", default=None, metavar="PAGES",
                   help="app rows: only these pages' default actions (comma-separated URL paths, home for /; "
                        "default: every page of bench/app_pages.py)")
    p.add_argument("--app-timeout", type=B.seconds, default=900.0,
                   help="app rows: seconds one page's action may take before its row says it timed out "
                        "(default %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--out", default=None, help="folder for the JSON and markdown (default bench/results)")


def bf16_units() -> list[str]:
    """The CPU's bfloat16 instructions (/proc/cpuinfo flags): ``amx_bf16`` makes ``--bf16`` pay off."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(f for f in line.split(":", 1)[1].split() if f in ("amx_bf16", "avx512_bf16"))
    except OSError:
        pass
    return []


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cpu": cpu, "bf16_units": bf16_units(), "cores_visible": os.cpu_count(), "affinity": affinity,
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def run(args) -> dict:
    from bench import others, pgd

    groups = [g.strip() for g in args.rows.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise SystemExit(f"unknown row group(s) {unknown}; choose from {', '.join(GROUPS)}")
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    from bench import timing

    # one thread on a CPU: this process's CPU time is immune to other jobs sharing the core
    timing.CLOCK = "cpu" if device.type == "cpu" and torch.get_num_threads() == 1 else "wall"
    quick = args.quick
    budget = args.budget if args.budget is not None else (2.0 if quick else 20.0)
    imagenet = args.imagenet if args.imagenet is not None else ([] if quick else ["efficientnet-lite0", pgd.RESNET50_RANDOM])
    cifar = args.cifar10 if args.cifar10 is not None else \
        ([] if quick else [r["name"] for r in zoo.list_models() if r["name"] in ("cifar10-standard", "cifar10-robust-l2") and r["available"]])
    rows: list[dict] = []

    def emit(row: dict) -> None:
        row = {**row, "measured": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
        rows.append(row)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)

    def attempt(what: dict, fn) -> None:
        """Run one row (or rows); a failure becomes a row that says so, and the rest go on."""
        try:
            out = fn()
        except Exception as e:  # a benchmark row that breaks must not lose the others
            emit({**what, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"})
            return
        for r in out if isinstance(out, list) else [out]:
            emit(r)

    if len(args.models) not in (0, 2):
        raise SystemExit("--models takes two names (standard, robust) or none")
    pair = tuple(args.models)

    if "pgd" in groups or "fastpath" in groups:
        small = [1, 16] if quick else [1, 256]
        big = [1, 64, 256] if gpu else [1, 8]
        plan = [(name, small) for name in pair] + [(name, small) for name in cifar] + [(name, big) for name in imagenet]
        for name, batches in plan:
            for n in batches:
                w = pgd.workload(name, n, device)
                for norm in ("linf", "l2"):
                    key = {"model": name, "batch": n, "norm": norm}
                    if "pgd" in groups:
                        attempt({"group": "pgd", **key}, lambda: pgd.pgd_row(w, norm, budget))
                    if "fastpath" in groups and n == batches[-1] and norm == "linf" and not quick \
                            and name in (pair[1:] + tuple(cifar[:1]) + (pgd.RESNET50_RANDOM,)):
                        attempt({"group": "fastpath", "switch": "fast path", **key},
                                lambda: pgd.fastpath_rows(w, norm, budget))
    if "fastpath" in groups and not quick and pair:
        attempt({"group": "fastpath", "model": pair[1], "switch": "layer batching"},
                lambda: others.layer_batching_row(pair[1], device=args.device, budget_s=budget))
    if "layers" in groups and pair and not quick:
        attempt({"group": "fastpath", "model": pair[1], "switch": "layer folding"},
                lambda: others.layer_folding_row(pair[1], device=args.device, budget_s=budget))
    if "layers" in groups and pair:
        attempt({"group": "layers", "models": " + ".join(pair)},
                lambda: others.layer_row(pair, n_images=8 if quick else 64, steps=3 if quick else 20,
                                         device=args.device))
    if "style" in groups:
        size, iterations = (64, 3) if quick else (256, 100)
        attempt({"group": "style", "model": "efficientnet-lite0"},
                lambda: others.style_row(size=size, iterations=iterations, device=args.device))
    if "busy" in groups and pair and device.type == "cpu":
        attempt({"group": "busy", "model": pair[1]},
                lambda: busy.busy_rows(pair[1], n=16 if quick else 256, budget_s=budget))
    if "app" in groups:
        log_dir = RESULTS if args.out is None else Path(args.out)
        attempt({"group": "app"}, lambda: others.app_row(log_dir))
        wanted = None if args.app_pages is None else {p.strip() for p in args.app_pages.split(",")}
        attempt({"group": "app", "page": "-", "action": "every page"},
                lambda: app_pages.page_rows(log_dir, timeout=args.app_timeout,
                                            only=None if wanted is None else
                                            (lambda a: (a.page or "home") in wanted)))
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "clock": timing.CLOCK,
            "command": command_line(args),
            "quick": quick, "device": str(device), "machine": machine(), "groups": groups, "rows": rows}


def command_line(args) -> str:
    """The command that reproduces this run (from the parsed options, not sys.argv)."""
    parts = []
    if args.quick:
        parts.append("--quick")
    if args.rows != ",".join(GROUPS):
        parts += ["--rows", args.rows]
    if tuple(args.models) != PAIR:
        parts += ["--models", *args.models]
    if args.imagenet is not None:
        parts += ["--imagenet", *args.imagenet]
    if args.cifar10 is not None:
        parts += ["--cifar10", *args.cifar10]
    if args.budget is not None:
        parts += ["--budget", f"{args.budget:g}"]
    if args.app_pages is not None:
        parts += ["--app-pages", args.app_pages]
    if args.app_timeout != 900.0:
        parts += ["--app-timeout", f"{args.app_timeout:g}"]
    if args.device != "cpu":
        parts += ["--device", args.device]
    if args.out is not None:
        parts += ["--out", args.out]
    return " ".join(["python -m bench", *(shlex.quote(p) for p in parts)])


# --- tables -------------------------------------------------------------------------------

def _f(v, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def markdown(result: dict) -> str:
    """The tables of ``result`` (rows of any groups) as GitHub markdown."""
    rows, out = [r for r in result["rows"] if "error" not in r], []
    by = lambda g: [r for r in rows if r.get("group") == g]  # noqa: E731
    failed = [r for r in result["rows"] if "error" in r and "page" not in r]
    clock = {"cpu": "Times are this process's CPU time (one thread; immune to other jobs on the core); "
                    "the wall-clock ratio is shown beside.",
             "wall": "Times are wall-clock."}.get(result.get("clock", "wall"), "")
    if by("pgd"):
        out += [clock, "", "### PGD-20, no random start: ours vs torchattacks (same model, inputs, device)", "",
                "| model | norm | eps | batch | ours img-steps/s | torchattacks img-steps/s | ratio (ours faster if > 1) "
                "| ratio by wall clock | robust acc ours / theirs (%) | same within 1 pt | repeats |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in by("pgd"):
            out.append(f"| {r['model']} | {r['norm']} | {r['eps']:.4g} | {r['batch']} | {_f(r['ours_ips'], 1)} | "
                       f"{_f(r['peer_ips'], 1)} | **{_f(r['ratio'])}** | {_f(r.get('ratio_wall'))} | {_f(r['ours_acc'], 1)} / {_f(r['peer_acc'], 1)} | "
                       f"{'yes' if r['same_acc'] else 'NO'} | {r['repeats']} |")
        out.append("")
    if by("fastpath"):
        out += ["### Fast path: ours with each switch against ours without it", "",
                "| model | batch | switch | on (s) | off (s) | speed-up | robust acc on / off (%) | repeats |",
                "|---|---|---|---|---|---|---|---|"]
        for r in by("fastpath"):
            out.append(f"| {r['model']} | {r['batch']} | {r['switch']} | {_f(r['on_s'], 3)} | {_f(r['off_s'], 3)} | "
                       f"**{_f(r['ratio'])}** | {_f(r['on_acc'], 1) or '-'} / {_f(r['off_acc'], 1) or '-'} | "
                       f"{r['repeats']} |")
        out.append("")
    if by("layers"):
        out += ["### Layer robustness (every layer of both models, Linf 0.1)", "",
                "| models | layers | images | steps | seconds (wall) | seconds (CPU) | layer-image-steps/s (wall) |",
                "|---|---|---|---|---|---|---|"]
        for r in by("layers"):
            out.append(f"| {r['models']} | {r['layers']} | {r['n_images']} | {r['steps']} | {_f(r['seconds'], 1)} | "
                       f"{_f(r.get('cpu_seconds'), 1)} | "
                       f"{_f(r['image_steps_per_s'], 1)} |")
        out.append("")
    if by("style"):
        out += ["### Style transfer (L-BFGS): ours vs a plain Gatys loop on the same network and layers", "",
                "| network | size | iterations | ours s/iter | plain loop s/iter | ratio |", "|---|---|---|---|---|---|"]
        for r in by("style"):
            out.append(f"| {r['model']} | {r['size']} | {r['iterations']} | {_f(r['ours_s_per_iter'], 3)} | "
                       f"{_f(r['peer_s_per_iter'], 3)} | **{_f(r['ratio'])}** |")
        out.append("")
    if by("app"):
        out += ["### The app in a real browser (chromium)", ""]
        for r in [r for r in by("app") if "page" not in r]:
            if "skipped" in r:
                out.append(f"skipped: {r['skipped']}")
                continue
            nav = r.get("navigation_s")
            out += ["| from `streamlit run app.py` to /_stcore/health (s) | to the navigation drawn (s) | to the home "
                    "page's content (the tour) drawn (s) | home page idle (s) | attack lab: Run to finished result (s) |",
                    "|---|---|---|---|---|",
                    f"| {_f(r['server_healthy_s'], 1)} | {'-' if nav is None else _f(nav, 1)} | "
                    f"{_f(r['home_painted_s'], 1)} | {_f(r['home_idle_s'], 1)} | {_f(r['attack_lab_run_s'], 1)} |"]
        out.append("")
        out += app_pages.markdown([r for r in result["rows"] if r.get("group") == "app" and "page" in r])
    out += busy.markdown(by("busy"))
    if failed:
        out += ["### Rows that failed", ""] + [f"- {r['group']} {r.get('model', '')} {r.get('batch', '')} "
                                             f"{r.get('norm', '')}: {r['error']}" for r in failed] + [""]
    m = result["machine"]
    if result.get("runs"):
        out.append("_Groups last run: " + ", ".join(f"{g} {d}" for g, d in result["runs"].items()) + "._  ")
    units = f" ({', '.join(m['bf16_units'])})" if m.get("bf16_units") else ""
    out.append(f"_{result['date']}; {m['cpu']}{units}, torch {m['torch']}, {m['torch_threads']} thread(s), "
               f"CPU affinity {m['affinity']}; device {result['device']}; `{result['command']}`_")
    return "\n".join(out) + "\n"


def row_key(r: dict) -> tuple:
    keys = ("group", "model", "models", "batch", "norm", "switch", "page", "action", "load", "threads")
    return tuple(str(r.get(k)) for k in keys)


def merge_latest(result: dict, path: Path) -> dict:
    """bench/results/latest.json with the rows that ``result`` measured again replaced."""
    old = json.loads(path.read_text()) if path.exists() else {"rows": [], "runs": {}}
    new = {row_key(r) for r in result["rows"]}
    rows = [r for r in old.get("rows", []) if row_key(r) not in new] + result["rows"]
    order = {g: i for i, g in enumerate(GROUPS)}
    rows.sort(key=lambda r: order.get(r.get("group"), 99))
    runs = {**old.get("runs", {}), **{g: result["date"] for g in result["groups"]}}
    return {**result, "rows": rows, "runs": runs, "groups": list(GROUPS)}


def rewrite_readme(table: str, path: Path = README) -> bool:
    text = path.read_text() if path.exists() else ""
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{table}{END}{tail}")
    return True


def main(args) -> int:
    t0 = time.perf_counter()
    result = run(args)
    out = Path(args.out) if args.out else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = f"{'quick' if args.quick else 'bench'}-{stamp}"
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    table = markdown(result)
    (out / f"{name}.md").write_text(table)
    print()
    print(table)
    if not args.quick and args.out is None:
        latest = merge_latest(result, RESULTS / "latest.json")
        # a latest.json that never held some group (a fresh clone: bench/results/ is git-ignored) knows only part
        # of the tables: rewriting README's block from it would drop the committed tables of the others
        whole = set(latest["runs"]) >= set(GROUPS)
        (RESULTS / "latest.json").write_text(json.dumps(latest, indent=1))
        full = markdown(latest)
        (RESULTS / "latest.md").write_text(full)
        if not whole:
            print(f"bench/README.md left alone: bench/results/latest.json has never held "
                  f"{', '.join(g for g in GROUPS if g not in latest['runs'])}, whose tables it would lose; this "
                  "run's tables are in bench/results/latest.md")
        elif rewrite_readme(full):
            print("bench/README.md: tables rewritten from bench/results/latest.json")
    print(f"saved {out / name}.json and .md ({time.perf_counter() - t0:.0f} s)")
    return 0
