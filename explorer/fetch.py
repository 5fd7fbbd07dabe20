"""Downloads and the one opt-in conversion: the only module that touches the network.

``fetch(name)`` downloads a zoo record's ``url`` to where the loader looks for it
(checkpoints/, or the torch hub cache for torchvision weights): a ``.part`` file that
an interrupted download resumes with an HTTP Range request, a sha256 check where the
record knows the digest (torch hub's hash prefix in the file name otherwise), then an
atomic rename. Offline it fails within seconds with one message. urllib only.

``probe(url)`` asks the server (HEAD) for a file's size and, where it states it, its sha256, before
anything is downloaded; ``explorer.demo`` (``fetch --demo``) lists them that way.

``convert_trusted(path)`` is the only place in the project that unpickles a file; it
runs only when a person asks for it with ``python -m explorer convert --trust-pickled``.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from explorer import bounds as B
from explorer import zoo
from explorer.files import atomic_write
from explorer.zoo import ModelSpec, ZooError

CONNECT_TIMEOUT = 5.0  # seconds to reach the server and get its headers; offline fails this fast
READ_TIMEOUT = 60.0  # seconds a transfer may stall before it counts as interrupted
CHUNK = 1 << 20
USER_AGENT = "features-not-bugs-explorer (urllib)"

Progress = Callable[[int, "int | None"], None]


class FetchError(ZooError):
    """A download failed; the message says why and what to do."""


class _Offline(Exception):
    """The server could not be reached."""


class _Interrupted(Exception):
    """The body stopped before its end; the .part file keeps what arrived."""

    def __init__(self, done: int, total: int | None):
        super().__init__(f"{done} of {total if total is not None else '?'} bytes")
        self.done, self.total = done, total


_HUB_HASH = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's convention: name-<sha256 prefix>.ext


def expected_sha256(spec: ModelSpec, dest: Path) -> tuple[str | None, bool]:
    """The digest to check and whether it is only a prefix (torch hub file names)."""
    if spec.sha256:
        return spec.sha256, False
    if spec.source == "torchvision":
        m = _HUB_HASH.search(dest.name)
        if m:
            return m.group(1), True
    return None, False


def _verify(spec: ModelSpec, path: Path) -> str | None:
    """None if ``path`` is the record's file, else what is wrong with it."""
    size = path.stat().st_size
    if spec.size_bytes is not None and size != spec.size_bytes:
        return f"it has {size} bytes, expected {spec.size_bytes}"
    digest, prefix = expected_sha256(spec, path)
    if digest:
        got = zoo.sha256_file(path)
        if not (got.startswith(digest) if prefix else got == digest):
            return f"its sha256 is {got}, expected {digest}{'...' if prefix else ''}"
    return None


def tqdm_progress(desc: str) -> Progress:
    """A ``progress(done_bytes, total_bytes)`` callback that draws a tqdm bar."""
    from tqdm import tqdm

    state: dict = {}

    def progress(done: int, total: int | None) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(total=total, initial=done, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                                dynamic_ncols=True)
        bar = state["bar"]
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    return progress


def _set_read_timeout(resp, seconds: float) -> None:
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    if sock is not None:  # past the headers, a slow but live transfer may take longer than the connect timeout
        sock.settimeout(seconds)


def _download(url: str, part: Path, progress: Progress | None, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (all of it when the server ignores Range)."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing after `have`: the part is whole, or longer than the file
            m = re.search(r"/(\d+)", e.headers.get("Content-Range", "") or "")
            if m and int(m.group(1)) == have:
                return
            part.unlink()
            return _download(url, part, progress, timeout)
        raise FetchError(f"{url}: the server answered HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:  # refused, unknown host, timeout, no route
        raise _Offline(getattr(e, "reason", None) or e) from e
    with resp:
        if resp.headers.get_content_type() == "text/html":
            raise FetchError(f"{url}: the server sent a web page instead of the file (a login or confirmation page?)")
        length = resp.headers.get("Content-Length")
        if have and resp.status == 206:
            m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                raise FetchError(f"{url}: the server resumed at the wrong place "
                                 f"({resp.headers.get('Content-Range')!r} for {have} bytes held)")
            total = int(m.group(2)) if m.group(2) != "*" else None
            mode = "ab"
        else:  # 200: the whole file (the server ignored Range, or there was nothing to resume)
            have, mode = 0, "wb"
            total = int(length) if length is not None else None
        _set_read_timeout(resp, READ_TIMEOUT)
        done = have
        with open(part, mode) as f:
            if progress:
                progress(done, total)
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except OSError as e:  # includes socket timeouts and resets; http.client.IncompleteRead too
                    raise _Interrupted(done, total) from e
                if not chunk:
                    break
                f.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if total is not None and done < total:
            raise _Interrupted(done, total)


def fetch(name: str, root: Path | None = None, progress: Progress | None = None, *,
          timeout: float = CONNECT_TIMEOUT, retries: int = 3, sha256: str | None = None) -> Path:
    """Download ``name``'s weights to where the zoo loads them from.

    Resumes a previous ``.part`` with an HTTP Range request; checks size and sha256 where
    the record knows them (a mismatch deletes the download); renames atomically.

    Args:
        name: a zoo record with a ``url`` (``python -m explorer fetch --list`` shows them).
        root: the checkpoints folder; default checkpoints/ or ``$EXPLORER_CHECKPOINTS``.
        progress: called as ``progress(done_bytes, total_bytes_or_None)``; see ``tqdm_progress``.
        timeout: seconds to connect and receive the headers.
        retries: how many times an interrupted transfer resumes by itself.
        sha256: a digest to check when the record knows none (the server's own, from ``probe``).

    Returns:
        The path of the verified file.
    """
    root = Path(root or zoo.checkpoints_dir())
    spec = zoo.get_spec(name, root)
    if sha256 and not spec.sha256:
        spec = replace(spec, sha256=sha256)
    if not spec.url:
        ok, why = zoo.availability(spec, root)
        raise FetchError(f"{name}: nothing to download ({'available: ' if ok else ''}{why})")
    dest = zoo.download_target(spec, root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two fetches of one file must not append to one .part
        if dest.is_file():
            problem = _verify(spec, dest)
            if problem:
                raise FetchError(f"{name}: {dest} exists but {problem}; delete it and run "
                                 f"{zoo.fetch_command(name)} again")
            return dest
        part = dest.with_name(dest.name + ".part")
        host = urllib.parse.urlsplit(spec.url).netloc
        for attempt in range(retries + 1):
            try:
                _download(spec.url, part, progress, timeout)
                break
            except _Offline as e:
                raise FetchError(
                    f"{name}: cannot reach {host} ({e}); this machine looks offline. Run "
                    f"`{zoo.fetch_command(name)}` where there is internet and copy {dest.name} to {dest.parent}"
                ) from None
            except _Interrupted as e:
                if attempt == retries:
                    raise FetchError(f"{name}: the download stopped at {e}; {part.name} keeps what arrived. "
                                     f"Run `{zoo.fetch_command(name)}` again to resume") from None
        problem = _verify(spec, part)
        if problem:
            part.unlink()
            raise FetchError(f"{name}: the download from {host} was deleted because {problem} "
                             "(a changed or corrupted file); nothing was installed")
        os.replace(part, dest)
    return dest


# --- what the server says before a download ---------------------------------------------

_REDIRECTS = (301, 302, 303, 307, 308)
_LFS_SHA256 = re.compile(r'^(?:W/)?"?([0-9a-f]{64})"?$')


@dataclass(frozen=True)
class Remote:
    """What a HEAD request learns about a file before downloading it.

    Attributes:
        size: bytes (Hugging Face's ``X-Linked-Size``, else the final ``Content-Length``), or None.
        sha256: the file's sha256 when the server states it (Hugging Face's ``X-Linked-Etag`` of an LFS
            file), else None.
        error: why nothing could be learnt (offline, an HTTP error), else None.
    """

    size: int | None = None
    sha256: str | None = None
    error: str | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # urllib turns a redirected HEAD into a GET: follow by hand
        return None


def probe(url: str, timeout: float = CONNECT_TIMEOUT, hops: int = 5) -> Remote:
    """HEAD ``url`` (following redirects by hand, at most ``hops``) for the file's size and sha256."""
    opener = urllib.request.build_opener(_NoRedirect)
    size = sha = None
    for _ in range(hops):
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT,
                                                                       "Accept-Encoding": "identity"})
        try:
            with opener.open(request, timeout=timeout) as resp:
                status, headers = resp.status, resp.headers
        except urllib.error.HTTPError as e:  # a redirect lands here too, as it is not followed
            status, headers = e.code, e.headers
            if status not in _REDIRECTS:
                return Remote(size, sha, f"HTTP {status} {e.reason}")
        except (urllib.error.URLError, OSError) as e:
            host = urllib.parse.urlsplit(url).netloc
            return Remote(size, sha, f"cannot reach {host} ({getattr(e, 'reason', None) or e})")
        linked = headers.get("X-Linked-Size", "")
        size = int(linked) if size is None and linked.isdigit() else size
        m = _LFS_SHA256.match(headers.get("X-Linked-Etag", "") or "")
        sha = m.group(1) if sha is None and m else sha
        if status in _REDIRECTS and headers.get("Location"):
            url = urllib.parse.urljoin(url, headers["Location"])
            continue
        length = headers.get("Content-Length", "")
        return Remote(int(length) if size is None and length.isdigit() else size, sha)
    return Remote(size, sha, f"more than {hops} redirects")


def convert_trusted(path: str | Path, out: str | Path | None = None) -> Path:
    """DANGER: unpickle ``path`` (which can run ANY code it carries) and save its weights as safetensors.

    Only for a checkpoint from a source you trust, on a machine you are willing to risk,
    when the zoo refused it because it does not load with ``weights_only=True`` (e.g. an
    old MadryLab file pickled with dill; install ``dill`` for those). This is the only call
    in the project that unpickles, and it runs only on the explicit
    ``python -m explorer convert --trust-pickled PATH``. Once converted, the zoo reads the
    safetensors file (beside the original by default) and never the pickle again.

    A MadryLab checkpoint keeps ``module.model.*`` and ``module.normalizer.*`` (the
    attacker's second copy is dropped); any other file keeps its tensors. The original's
    sha256 is stored in the metadata so the zoo can tie the conversion to its record.

    Args:
        path: the pickled checkpoint.
        out: where to write; default ``path`` with the suffix ``.safetensors``.

    Returns:
        The safetensors file.
    """
    from safetensors.torch import save_file

    path = Path(path)
    out = Path(out) if out else zoo.converted_path(path)
    if out.resolve() == path.resolve():
        raise FetchError(f"convert: the output {out} would overwrite the input")
    source_sha256 = zoo.sha256_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)  # opt-in: --trust-pickled
    except ModuleNotFoundError as e:
        raise FetchError(f"convert: {path.name} needs the module {e.name!r} to unpickle (pip install {e.name})") from e
    state = obj
    if isinstance(obj, dict):
        state = next((obj[k] for k in ("model", "state_dict") if isinstance(obj.get(k), dict)), obj)
    if not hasattr(state, "items"):
        raise FetchError(f"convert: {path.name} holds no state dict (a {type(state).__name__})")
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if any(k.removeprefix("module.").startswith("model.") for k in tensors):
        zoo.split_madrylab_state(tensors, path.name)  # refuses keys we don't understand
        tensors = {k: v for k, v in tensors.items() if not k.removeprefix("module.").startswith("attacker.")}
    if not tensors:
        raise FetchError(f"convert: {path.name} holds no tensors")
    atomic_write(out, lambda tmp: save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, str(tmp),
                                            metadata={"format": "pt", "converted_from": path.name,
                                                      "source_sha256": source_sha256}))
    return out


# --- CLI: wired into explorer/cli.py as `fetch` and `convert` ---------------------------

def add_fetch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", type=B.name,
                        help="models to download; none: list the models")
    parser.add_argument("--list", action="store_true", help="list every model, whether it is available offline, "
                                                             "and what to run if not")
    parser.add_argument("--root", default=None, help="checkpoints folder (default: checkpoints/ or "
                                                     "$EXPLORER_CHECKPOINTS)")
    parser.add_argument("--timeout", type=B.seconds, default=CONNECT_TIMEOUT, help="seconds to reach the server")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_fetch(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else None
    if args.list or not args.names:
        rows = zoo.list_models(root)
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            print(f"{r['name']:<{width}}  {'yes' if r['available'] else 'no ':<3}  {r['kind']:<20}  {r['why']}")
        return 0
    for name in args.names:
        path = fetch(name, root, progress=None if args.no_progress else tqdm_progress(name), timeout=args.timeout)
        print(f"{name}: {path}")
    return 0


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a pickled checkpoint the zoo refused")
    parser.add_argument("--trust-pickled", action="store_true",
                        help="required: unpickle the file, which can run any code it carries")
    parser.add_argument("--out", default=None, help="output .safetensors (default: beside the input)")


def cmd_convert(args: argparse.Namespace) -> int:
    if not args.trust_pickled:
        raise FetchError("convert unpickles the file, which can run any code in it; if you trust its source, "
                         f"run: python -m explorer convert --trust-pickled {args.path}")
    out = convert_trusted(args.path, args.out)
    print(f"wrote {out}")
    return 0
