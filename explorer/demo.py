"""The demo set: everything a talk needs beyond the bundled models, in one command the night before.

``python -m explorer fetch --demo`` lists each model of ``zoo.DEMO_MODELS`` (MadryLab's robust ResNet-50
and the standard ResNet-50 and VGG-19 that Nakano compared) with its source URL, size and sha256 (the
record's; for what the record lacks, what the server answers to a HEAD request, ``fetch.probe``) and the
total, asks nothing, then downloads what is missing through ``fetch.fetch`` (the one download path:
resumable ``.part`` files, size and sha256 checked, atomic rename) and checks that each model loads
offline. ``--dry-run`` lists without downloading. Afterwards the dashboard runs offline with them: the
sidebar's ImageNet pair is a standard and a robust ResNet-50, style transfer uses Nakano's networks.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from explorer import fetch as F
from explorer import zoo
from explorer.fetch import CONNECT_TIMEOUT, FetchError, Progress, Remote, expected_sha256, probe


@dataclass(frozen=True)
class Planned:
    """One model of a download plan: where it comes from and goes, whether it is here, size and sha256.

    ``size_from`` / ``sha256_from`` say where the numbers come from: ``record``, ``server``, or ``file
    name`` (torch hub's sha256 prefix); empty when unknown.
    """

    name: str
    url: str | None
    dest: Path | None
    present: bool
    why: str
    size: int | None = None
    size_from: str = ""
    sha256: str | None = None
    sha256_from: str = ""
    remote: Remote | None = None


def plan(names: Sequence[str], root: Path | None = None, *, ask_server: bool = True,
         timeout: float = CONNECT_TIMEOUT) -> list[Planned]:
    """What ``fetch`` would do for ``names``: each model's URL, destination, presence, size and sha256
    (the record's; for a missing model without them, what the server answers to a HEAD request)."""
    rows = []
    for name in names:
        spec = zoo.get_spec(name, root)
        present, why = zoo.availability(spec, root)
        dest = zoo.download_target(spec, root) if spec.weights else None
        digest, prefix = expected_sha256(spec, dest) if dest else (None, False)
        row = Planned(name, spec.url, dest, present, why, spec.size_bytes, "record" if spec.size_bytes else "",
                      digest, ("file name" if prefix else "record") if digest else "")
        if ask_server and spec.url and not present and (row.size is None or not spec.sha256):
            remote = probe(spec.url, timeout)
            row = replace(row, remote=remote)
            if row.size is None and remote.size is not None:
                row = replace(row, size=remote.size, size_from="server")
            if not spec.sha256 and remote.sha256:
                row = replace(row, sha256=remote.sha256, sha256_from="server")
        rows.append(row)
    return rows


def _mib(n: int | None) -> str:
    return "size unknown" if n is None else f"{n / 2**20:,.1f} MiB"


def _digest_text(r: Planned) -> str:
    if not r.sha256:
        return "sha256 unknown (only the download's completeness is checked)"
    if r.sha256_from == "file name":
        return f"sha256 starts {r.sha256} (torch hub's file name), checked after the download"
    return f"sha256 {r.sha256} ({'the record' if r.sha256_from == 'record' else 'the server'}), checked"


def plan_lines(rows: Sequence[Planned]) -> list[str]:
    """The plan for people: one block per model (state, size, sha256, source, destination), then the total."""
    out = []
    for r in rows:
        size = _mib(r.size) + (f" (the {r.size_from})" if r.size_from else "")
        out.append(f"{r.name}: {'present' if r.present else 'to download'}; {size}; {_digest_text(r)}")
        out.append(f"    from {r.url or '(no download)'}")
        out.append(f"    to   {r.dest}" if not r.present else f"    {r.why}")
        if r.remote is not None and r.remote.error:
            out.append(f"    no answer to the size and sha256 question: {r.remote.error}")
    todo = [r for r in rows if not r.present]
    known = [r.size for r in todo if r.size is not None]
    parts = [f"{_mib(sum(known))}" if known else "", f"{len(todo) - len(known)} of unknown size"
             if len(known) < len(todo) else ""]
    total = " and ".join(p for p in parts if p)
    out.append(f"To download: {len(todo)} of {len(rows)} models" + (f", {total}." if todo else "; all present."))
    return out


def _check_space(rows: Sequence[Planned]) -> None:
    """A FetchError when the known sizes do not fit the free space of their folders."""
    need: dict[Path, int] = {}
    for r in rows:
        if not r.present and r.size and r.dest is not None:
            folder = next(p for p in [r.dest.parent, *r.dest.parents] if p.exists())
            need[folder] = need.get(folder, 0) + r.size
    for folder, n in need.items():
        free = shutil.disk_usage(folder).free
        if n > free:
            raise FetchError(f"the downloads need {_mib(n)} in {folder}, which has {_mib(free)} free")


def fetch_plan(rows: Sequence[Planned], root: Path | None = None, *, progress: Callable[[str], Progress] | None = None,
               timeout: float = CONNECT_TIMEOUT, check: bool = True) -> dict[str, str]:
    """Download every missing model of ``rows`` through ``fetch`` (resumable, verified), then check that
    each model loads offline. One failure does not stop the others.

    Returns:
        name -> ``ok`` or the one-line reason it is not ready.
    """
    _check_space(rows)
    outcome = {}
    for r in rows:
        try:
            if not r.present:
                F.fetch(r.name, root, progress(r.name) if progress else None, timeout=timeout,
                        sha256=r.sha256 if r.sha256_from == "server" else None)
            if check:
                zoo.load(r.name, device="cpu", root=root)
            outcome[r.name] = "ok"
        except (zoo.ZooError, OSError, RuntimeError) as e:  # FetchError is a ZooError
            outcome[r.name] = str(e)
    return outcome


# --- CLI: ``fetch --demo`` / ``fetch --dry-run``, wired into explorer/cli/models.py ------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fetch``'s arguments plus ``--demo`` and ``--dry-run``."""
    F.add_fetch_arguments(parser)
    parser.add_argument("--demo", action="store_true",
                        help=f"every model a talk needs beyond the bundled ones ({', '.join(zoo.DEMO_MODELS)}): "
                             "lists source, size and sha256 first, then downloads what is missing")
    parser.add_argument("--dry-run", action="store_true", help="with --demo or names: list them, download nothing")


def cmd_fetch(args: argparse.Namespace) -> int:
    """``fetch``: the demo set or a plan of named models with ``--demo`` / ``--dry-run``, else ``fetch.cmd_fetch``."""
    if not (args.demo or args.dry_run):
        return F.cmd_fetch(args)
    root = Path(args.root) if args.root else None
    names = list(dict.fromkeys([*(zoo.DEMO_MODELS if args.demo else ()), *args.names]))
    if not names:
        raise FetchError("--dry-run lists what --demo or the named models would download: name some")
    rows = plan(names, root, timeout=args.timeout)
    print("\n".join(plan_lines(rows)), flush=True)
    if args.dry_run:
        return 0
    outcome = fetch_plan(rows, root, progress=None if args.no_progress else F.tqdm_progress, timeout=args.timeout)
    for name, result in outcome.items():
        print(f"{name}: {'ready offline' if result == 'ok' else result}")
    return 0 if all(v == "ok" for v in outcome.values()) else 1
