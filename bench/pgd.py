"""PGD rows: ours (``explorer.attacks.pgd`` over ``explorer.optimize``) against torchattacks'
``PGD`` / ``PGDL2`` on the same Classifier, inputs and device.

Both sides: 20 steps of size 2.5 * eps / 20, no random start, untargeted cross-entropy.
Ours also keeps the best iterate per example (one extra forward pass) and returns the
adversarial logits; torchattacks returns the last iterate, and its robust accuracy is
read with one more forward pass outside its timing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch

from bench.timing import paired
from explorer import attacks, data, zoo
from explorer.classifier import Classifier, ClassifierInfo

STEPS = 20
#: eps per (dataset, norm): the bundled models' training radii (CIFAR-10: the paper's L2 0.5 and
#: the common Linf 8/255); small ImageNet radii.
EPS = {("fashion-mnist", "linf"): 0.1, ("fashion-mnist", "l2"): 1.5,
       ("cifar10", "linf"): 8 / 255, ("cifar10", "l2"): 0.5,
       ("imagenet", "linf"): 1 / 255, ("imagenet", "l2"): 0.25}
RESNET50_RANDOM = "resnet50-random"  # torchvision resnet50 architecture, random weights (offline)


@dataclass(frozen=True)
class Workload:
    """A model with its inputs: ``x`` [N, C, H, W] in [0, 1], labels ``y`` [N]."""

    name: str
    model: Classifier
    x: torch.Tensor
    y: torch.Tensor
    labels: str  # where the labels come from


def resnet50_random(device: torch.device | str = "cpu", seed: int = 0) -> Classifier:
    """torchvision's ResNet-50 architecture with random weights drawn by ``seed`` (offline;
    the timing is that of the trained network, its predictions mean nothing)."""
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torchvision.models.resnet50(weights=None)
    info = ClassifierInfo(name=RESNET50_RANDOM, dataset="imagenet", class_names=zoo.class_names_for("imagenet", 1000),
                          input_size=(3, 224, 224), extra={"random_weights": True})
    return Classifier(net, info, zoo.IMAGENET_MEAN, zoo.IMAGENET_STD, device=device, channels_last=True)


def photos(n: int, input_size) -> torch.Tensor:
    """``n`` model inputs from scikit-image's sample photos (cycled; every other cycle mirrored)."""
    shots = [data.to_model_input(img, tuple(input_size)) for _, img in sorted(data.sample_photos().items())]
    out = [shots[i % len(shots)] if (i // len(shots)) % 2 == 0 else shots[i % len(shots)].flip(-1) for i in range(n)]
    return torch.cat(out)


def workload(name: str, n: int, device: torch.device) -> Workload:
    """The first ``n`` test images of the model's dataset (Fashion-MNIST, CIFAR-10: true labels; ImageNet
    models: sample photos labelled with the model's own clean prediction, so clean accuracy is 100%)."""
    model = resnet50_random(device) if name == RESNET50_RANDOM else zoo.load(name, device=device)
    if model.info.dataset in ("fashion-mnist", "cifar10"):
        ds = data.load_dataset(model.info.dataset, "test", progress=False)
        return Workload(name, model, ds.float_images(torch.arange(n)).to(device), ds.labels[:n].to(device),
                        f"{ds.name}, first {n} test images")
    x = photos(n, model.info.input_size).to(device)
    with torch.no_grad():
        y = model(x).argmax(1)
    return Workload(name, model, x, y, "scikit-image sample photos, labelled by the model's clean prediction")


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward hands back a contiguous (NCHW) gradient."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.contiguous()


class PeerModel(torch.nn.Module):
    """The same Classifier for torchattacks. Its PGDL2 calls ``grad.view(n, -1)``, which fails
    on the channels-last gradient a channels-last model hands back; this only makes that
    gradient contiguous (one copy per step, charged to torchattacks)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.eval()  # torchattacks puts the model back in the mode it found it in

    def forward(self, x):
        return self.model(_ContiguousGrad.apply(x))


def peer_attack(model, norm: str, eps: float, steps: int = STEPS) -> Callable:
    import torchattacks

    model = PeerModel(model) if getattr(model, "channels_last", False) and norm == "l2" else model
    alpha = 2.5 * eps / steps
    if norm == "linf":
        return torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)
    return torchattacks.PGDL2(model, eps=eps, alpha=alpha, steps=steps, random_start=False)


def accuracy(model, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x_adv).argmax(1) == y).float().mean())


def big(w: Workload) -> bool:
    """A workload whose PGD-20 takes tens of seconds on a CPU core: warm up with 2 steps, 1 repeat."""
    return w.x.numel() > 10 ** 6 and w.x.device.type == "cpu"


def pgd_row(w: Workload, norm: str, budget_s: float, min_repeats: int = 3) -> dict:
    """Ours against torchattacks on one workload: seconds, image-steps/s, ratio, robust accuracy."""
    eps = EPS[(w.model.info.dataset, norm)]
    peer = peer_attack(w.model, norm, eps)
    ours = lambda: attacks.pgd(w.model, w.x, w.y, norm, eps, STEPS, random_start=False)  # noqa: E731
    theirs = lambda: peer(w.x, w.y)  # noqa: E731
    if big(w):
        attacks.pgd(w.model, w.x, w.y, norm, eps, 2, random_start=False)
        peer_attack(w.model, norm, eps, 2)(w.x, w.y)
        min_repeats = 1
    t, res, x_peer = paired(ours, theirs, min_repeats=min_repeats, budget_s=budget_s, warmup=not big(w))
    n = w.x.shape[0]
    acc_ours = float((res.logits_adv.argmax(1) == w.y).float().mean())
    acc_peer = accuracy(w.model, x_peer, w.y)
    return {"group": "pgd", "model": w.name, "norm": norm, "eps": eps, "batch": n, "steps": STEPS,
            "ours_s": t.a_seconds, "peer_s": t.b_seconds,
            "ours_ips": n * STEPS / t.a_seconds, "peer_ips": n * STEPS / t.b_seconds, "ratio": t.ratio,
            "repeats": t.repeats, "clock": t.clock, "ours_wall_s": t.a_wall, "peer_wall_s": t.b_wall,
            "ratio_wall": t.ratio_wall, "ours_acc": 100 * acc_ours, "peer_acc": 100 * acc_peer,
            "acc_diff": 100 * abs(acc_ours - acc_peer), "same_acc": abs(acc_ours - acc_peer) * 100 <= 1.0,
            "labels": w.labels}


def unfused_twin(model: Classifier, channels_last: bool) -> Classifier:
    """A copy of ``model`` with its own weights and the given memory format."""
    return Classifier(copy.deepcopy(model.net), model.info, model.mean.flatten().tolist(),
                      model.std.flatten().tolist(), layers=model.layers, device=model.device,
                      channels_last=channels_last)


def fastpath_rows(w: Workload, norm: str, budget_s: float) -> list[dict]:
    """Each fast-path switch of ours measured against ours without it (same inputs)."""
    eps = EPS[(w.model.info.dataset, norm)]
    n = w.x.shape[0]
    plain = unfused_twin(w.model, channels_last=False)
    cases = [
        ("BatchNorm folded into the convolutions (folding.folded)",
         lambda: attacks.pgd(w.model, w.x, w.y, norm, eps, STEPS, random_start=False),
         lambda: attacks.pgd(w.model, w.x, w.y, norm, eps, STEPS, random_start=False, fold_batchnorm=False)),
        ("channels_last (unfolded both sides)",
         lambda: attacks.pgd(w.model, w.x, w.y, norm, eps, STEPS, random_start=False, fold_batchnorm=False),
         lambda: attacks.pgd(plain, w.x, w.y, norm, eps, STEPS, random_start=False, fold_batchnorm=False)),
        ("bfloat16 autocast (pgd(bf16=True): construct/table/train --bf16; not the default)",
         lambda: attacks.pgd(w.model, w.x, w.y, norm, eps, STEPS, random_start=False, bf16=True),
         lambda: attacks.pgd(w.model, w.x, w.y, norm, eps, STEPS, random_start=False)),
    ]
    if n > attacks.CPU_CHUNK and w.x.device.type == "cpu":
        cases.append((f"CPU passes of {attacks.CPU_CHUNK} images (attacks.CPU_CHUNK) instead of {n} at once",
                      lambda: attacks.pgd(w.model, w.x, w.y, norm, eps, STEPS, random_start=False),
                      lambda: attacks.pgd(w.model, w.x, w.y, norm, eps, STEPS, random_start=False, max_batch=n)))
    rows = []
    for what, on, off in cases:
        t, a, b = paired(on, off, min_repeats=1 if big(w) else 3, budget_s=budget_s, warmup=not big(w))
        rows.append({"group": "fastpath", "model": w.name, "norm": norm, "batch": n, "switch": what,
                     "on_s": t.a_seconds, "off_s": t.b_seconds, "ratio": t.ratio, "repeats": t.repeats,
                     "clock": t.clock, "ratio_wall": t.ratio_wall,
                     "on_acc": 100 * float((~a.success).float().mean()),
                     "off_acc": 100 * float((~b.success).float().mean())})
    return rows
