import threading

import pytest
import torch
from torch import nn

from explorer.classifier import Classifier, ClassifierInfo


def hooked_classifier():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    info = ClassifierInfo("toy", "toy", tuple("abcde"), (3, 16, 16))
    layers = {"block1": "1", "block2": "3", "penultimate": "5"}
    return Classifier(net, info, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), layers=layers), net


def test_normalization_inside():
    clf, net = hooked_classifier()
    x = torch.rand(2, 3, 16, 16)
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    assert torch.allclose(clf(x), net((x - mean) / std), atol=1e-6)


def test_frozen():
    clf, _ = hooked_classifier()
    assert not clf.training and all(not p.requires_grad for p in clf.parameters())
    with pytest.raises(RuntimeError, match="frozen"):
        clf.train()
    clf.eval()  # allowed: it stays in eval mode


def test_hook_features_match_manual_and_leave_no_hooks():
    clf, net = hooked_classifier()
    x = torch.rand(3, 3, 16, 16)
    out = clf.features(x, ["block2", "penultimate"])
    h = net[:4]((x - clf.mean) / clf.std)
    assert torch.allclose(out["block2"], h, atol=1e-6)
    assert out["penultimate"].shape == (3, 4)
    assert all(not m._forward_hooks for m in clf.modules())
    with pytest.raises(KeyError, match="no layer"):
        clf.features(x, ["nope"])
    assert all(not m._forward_hooks for m in clf.modules())


def test_native_features(tiny_pair):
    clf = tiny_pair[0]
    x = torch.rand(2, 1, 28, 28)
    assert clf.layer_names[:4] == ["stage1", "stage2", "stage3", "stage4"]
    f = clf.features(x, ["stage4", "logits"])
    assert torch.allclose(f["logits"], clf(x), atol=1e-5)
    assert f["stage4"].shape[-1] == 4


def test_features_from_many_threads_are_separate():
    """Hooks record only the calling thread's forward, so concurrent calls don't mix."""
    clf, _ = hooked_classifier()
    inputs = [torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(i)) for i in range(8)]
    expected = [clf.features(x, ["block1"])["block1"] for x in inputs]
    results = [None] * 8

    def work(i):
        for _ in range(20):
            results[i] = clf.features(inputs[i], ["block1"])["block1"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(r, e) for r, e in zip(results, expected))
    assert all(not m._forward_hooks for m in clf.modules())


def test_wrong_input_shape_message():
    clf, _ = hooked_classifier()
    with pytest.raises(ValueError, match="expects"):
        clf(torch.rand(2, 1, 16, 16))
