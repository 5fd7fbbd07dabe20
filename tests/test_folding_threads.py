"""Folding a model's BatchNorm in one thread never disturbs a model running in another (a live server: the
warm-up or one session folds a model while another session trains or attacks). A torch.fx trace, which
folding once used, patches ``nn.Module.__call__`` for the whole process while it runs: the other thread's
modules were then called through the tracer and failed with "module is not installed as a submodule"."""

from __future__ import annotations

import copy
import threading

import torch

from explorer import folding, nets
from explorer.classifier import Classifier, ClassifierInfo


def _model(seed: int) -> Classifier:
    torch.manual_seed(seed)
    net = nets.ARCHITECTURES["resnet_small"](3, 10)
    info = ClassifierInfo(name=f"probe-{seed}", dataset="cifar10", class_names=[str(i) for i in range(10)],
                          input_size=(3, 32, 32))
    return Classifier(net.eval(), info, [0.5] * 3, [0.25] * 3, device="cpu")


def test_folding_in_one_thread_leaves_another_threads_modules_alone():
    models = [_model(s) for s in range(12)]
    worker = copy.deepcopy(models[0].net).train().requires_grad_(True)
    x = torch.rand(4, 3, 32, 32)
    errors: list[BaseException] = []
    done = threading.Event()

    def train_loop():
        try:
            while not done.is_set():
                worker(x).sum().backward()
        except BaseException as e:  # noqa: BLE001 - the failure under test
            errors.append(e)

    t = threading.Thread(target=train_loop)
    t.start()
    try:
        for m in models:
            assert folding._fold(m) is not None  # every BatchNorm of the block net folds, logits checked
    finally:
        done.set()
        t.join(60)
    assert not errors, errors[0]
