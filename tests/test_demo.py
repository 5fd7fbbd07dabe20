"""``python -m explorer fetch --demo`` (issue 21, item 9): the plan is listed (source, size, sha256, total)
before anything is downloaded, the downloads go through the one resumable, verified path, and each model
then loads offline; the home page says which demo models are here. Files are served from 127.0.0.1 (no
internet in the tests), one of them behind a Hugging Face-like redirect that states size and sha256."""

from __future__ import annotations

import hashlib
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest
import torch

from explorer import demo, zoo
from explorer.cli import main
from explorer.fetch import Remote, probe

REPO = Path(__file__).resolve().parent.parent


class Server:
    """Serves named payloads with Range support. ``/resolve/NAME`` answers like huggingface.co: a 302
    to ``/cdn/NAME`` carrying ``X-Linked-Size`` and ``X-Linked-Etag`` (the sha256)."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = files, []
        self.truncate = 0  # how many of the next GETs send only half of their body
        self.etag: dict[str, str] = {}  # a stated sha256 other than the file's
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self, head: bool) -> None:
                server.requests.append((self.command, self.path, self.headers.get("Range")))
                m = re.fullmatch(r"/(resolve|cdn|plain)/(\w[\w-]*)", self.path)
                if not m or m.group(2) not in server.files:
                    self.send_error(404)
                    return
                kind, name = m.groups()
                payload = server.files[name]
                if kind == "resolve":
                    self.send_response(302)
                    self.send_header("Location", f"/cdn/{name}")
                    self.send_header("X-Linked-Size", str(len(payload)))
                    sha = server.etag.get(name, hashlib.sha256(payload).hexdigest())
                    self.send_header("X-Linked-Etag", f'"{sha}"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if rng and not head:
                    start = int(rng.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
                else:
                    self.send_response(200)
                body = payload[start:]
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if head:
                    return
                if server.truncate:
                    server.truncate -= 1
                    body = body[: len(body) // 2]
                self.wfile.write(body)

            def do_GET(self):
                self._serve(head=False)

            def do_HEAD(self):
                self._serve(head=True)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def gets(self) -> list[tuple[str, str | None]]:
        return [(path, rng) for method, path, rng in self.requests if method == "GET"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _state_bytes(seed: int, fmt: str, tmp: Path) -> bytes:
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    net = zoo.build_architecture("stage_cnn_tiny", 10, 1, 28)
    path = tmp / f"upstream-{seed}.{fmt}"
    if fmt == "safetensors":
        save_file(net.state_dict(), str(path))
    else:
        torch.save(net.state_dict(), path)
    return path.read_bytes()


@pytest.fixture
def demo_set(tmp_path, monkeypatch):
    """Three demo models in a fresh checkpoints folder, the files served locally, made like the real
    three: one behind a Hugging Face redirect with nothing on record (MadryLab's), one torch hub file
    with its sha256 prefix in its name (torchvision's), one with size and sha256 on record."""
    root, home = tmp_path / "checkpoints", tmp_path / "torch_home"
    root.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_hub"))
    files = {"robust": _state_bytes(0, "safetensors", tmp_path), "hub": _state_bytes(1, "pth", tmp_path),
             "known": _state_bytes(2, "safetensors", tmp_path)}
    server = Server(files)
    hub_name = f"tiny-{hashlib.sha256(files['hub']).hexdigest()[:8]}.pth"
    base = {"arch": "stage_cnn_tiny", "dataset": "fashion-mnist", "mean": [0.286], "std": [0.353],
            "input_size": [1, 28, 28]}
    records = [
        {**base, "name": "demo-robust", "source": "file", "robust": True, "train_norm": "l2", "train_eps": 1.0,
         "weights": "demo-robust.safetensors", "url": f"{server.base}/resolve/robust"},
        {**base, "name": "demo-hub", "source": "torchvision", "weights": hub_name, "url": f"{server.base}/plain/hub"},
        {**base, "name": "demo-known", "source": "file", "weights": "demo-known.safetensors",
         "url": f"{server.base}/plain/known", "sha256": hashlib.sha256(files["known"]).hexdigest(),
         "size_bytes": len(files["known"])},
    ]
    for r in records:
        zoo.write_manifest_entry(zoo.ModelSpec.from_dict(r), root)
    monkeypatch.setattr(zoo, "DEMO_MODELS", ("demo-robust", "demo-hub", "demo-known"))
    yield root, home, server, files
    server.close()


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def test_dry_run_lists_source_size_sha256_and_total_and_downloads_nothing(demo_set, capsys):
    root, home, server, files = demo_set
    assert main(["fetch", "--demo", "--dry-run", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    sha = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    assert f"demo-robust: to download; {_mib(len(files['robust']))} (the server); sha256 {sha['robust']} (the server)" in out
    assert f"from {server.base}/resolve/robust" in out and f"to   {root / 'demo-robust.safetensors'}" in out
    assert f"demo-hub: to download; {_mib(len(files['hub']))} (the server); sha256 starts {sha['hub'][:8]}" in out
    assert f"to   {home / 'hub' / 'checkpoints'}" in out  # where torchvision itself looks
    assert f"demo-known: to download; {_mib(len(files['known']))} (the record); sha256 {sha['known']} (the record)" in out
    assert out.rstrip().endswith(f"To download: 3 of 3 models, {_mib(sum(map(len, files.values())))}.")
    assert not server.gets() and {m for m, _, _ in server.requests} == {"HEAD"}  # asked, nothing downloaded
    assert ("HEAD", "/plain/known", None) not in server.requests  # the record knew both numbers
    assert not list(root.glob("*.safetensors*")) and not home.exists()


def test_demo_downloads_resumes_in_a_second_run_and_each_model_loads_offline(demo_set, capsys):
    root, _, server, files = demo_set
    server.truncate = 4  # the robust file's first try and its three resumes all stop halfway
    assert main(["fetch", "--demo", "--no-progress", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"demo-robust: the download stopped at \d+ of \d+ bytes; .*Run `python -m explorer fetch "
                     r"demo-robust` again to resume", out)
    assert "demo-hub: ready offline" in out and "demo-known: ready offline" in out  # one failure stops no other
    part = root / "demo-robust.safetensors.part"
    have = part.stat().st_size
    assert 0 < have < len(files["robust"])
    assert main(["fetch", "--demo", "--no-progress", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "To download: 1 of 3 models" in out and "demo-hub: present" in out
    assert server.gets()[-1] == ("/cdn/robust", f"bytes={have}-")  # the second run resumed where the first stopped
    assert all(f"{n}: ready offline" in out for n in zoo.DEMO_MODELS) and not part.exists()
    assert zoo.sha256_file(root / "demo-robust.safetensors") == hashlib.sha256(files["robust"]).hexdigest()
    for name in zoo.DEMO_MODELS:
        assert zoo.availability(zoo.get_spec(name, root), root)[0]


def test_a_file_unlike_the_servers_sha256_is_deleted(demo_set, capsys):
    root, _, server, _ = demo_set
    server.etag["robust"] = "0" * 64
    assert main(["fetch", "--demo", "--no-progress", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"sha256 {'0' * 64} (the server)" in out
    assert re.search(r"demo-robust: .*deleted because its sha256 is [0-9a-f]{64}, expected 0{64}", out)
    assert not (root / "demo-robust.safetensors").exists() and not (root / "demo-robust.safetensors.part").exists()


def test_probe_follows_redirects_by_hand_and_fails_fast_offline(demo_set):
    _, _, server, files = demo_set
    remote = probe(f"{server.base}/resolve/robust")
    assert remote == Remote(len(files["robust"]), hashlib.sha256(files["robust"]).hexdigest(), None)
    assert [m for m, _, _ in server.requests] == ["HEAD", "HEAD"]  # urllib would have turned the second into a GET
    assert probe(f"{server.base}/plain/known") == Remote(len(files["known"]), None, None)
    assert probe(f"{server.base}/plain/nothing").error.startswith("HTTP 404")
    assert probe("http://127.0.0.1:9/x", timeout=1).error.startswith("cannot reach 127.0.0.1:9")


def test_the_real_demo_set_is_nakanos_networks_and_lists_offline(monkeypatch, capsys, tmp_path):
    from explorer.experiments import _style_networks

    assert set(zoo.DEMO_MODELS) == set(_style_networks.NAKANO_NETWORKS)
    asked = []
    monkeypatch.setattr(demo, "probe", lambda url, timeout: asked.append(url) or Remote(error="offline in the test"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    root = tmp_path / "checkpoints"
    root.mkdir()
    assert main(["fetch", "--demo", "--dry-run", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    for name in zoo.DEMO_MODELS:
        spec = zoo.get_spec(name)
        assert f"{name}: to download" in out and f"from {spec.url}" in out
    assert "sha256 starts 0676ba61 (torch hub's file name)" in out and "sha256 starts dcbb9e9d" in out
    assert out.count("no answer to the size and sha256 question: offline in the test") == 3 and len(asked) == 3
    assert out.rstrip().endswith("To download: 3 of 3 models, 3 of unknown size.")


def test_with_the_demo_set_the_imagenet_pair_is_a_standard_and_a_robust_resnet50(tmp_path, monkeypatch):
    """The home page's promise: the sidebar's ImageNet pair once the three files are here."""
    from ui import models

    home, root = tmp_path / "torch_home", tmp_path / "checkpoints"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    root.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    for name in zoo.DEMO_MODELS:
        zoo.download_target(zoo.get_spec(name, root), root).write_bytes(b"")  # presence is what is listed
    rows = zoo.list_models(root)
    assert models.demo_models(rows) == [(n, True) for n in zoo.DEMO_MODELS]
    assert models.dataset_pair(rows, "imagenet") == models.ModelPair("resnet50", "madry-imagenet-resnet50-l2-3")


# --- the home page (AppTest) ------------------------------------------------------------------------

def test_home_page_says_which_demo_models_are_here_and_the_command(tiny_root, tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    root, home = tmp_path / "checkpoints-home", tmp_path / "torch_home"
    shutil.copytree(tiny_root, root)
    (home / "hub" / "checkpoints").mkdir(parents=True)
    (home / "hub" / "checkpoints" / "resnet50-0676ba61.pth").write_bytes(b"")
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(root))
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    assert "Preparing a talk" in [h.value for h in at.subheader]
    text = "\n".join(str(m.value) for m in at.markdown)
    assert "`resnet50`: here, offline" in text
    assert "`madry-imagenet-resnet50-l2-3`: not downloaded" in text and "`vgg19`: not downloaded" in text
    assert "`python -m explorer fetch --demo`" in text
