"""Standard and PGD adversarial training (Madry et al., 2018), single process or DDP.

Every epoch ends with an atomically written training state (``NAME.state.pt``,
loadable with ``weights_only=True``) so ``--resume`` continues after the last finished
epoch; the data order of an epoch depends only on (seed, epoch), so a resumed run
sees the same batches an uninterrupted one would. The result is ``NAME.safetensors``
(weights) and ``NAME.json`` (model card: recipe, code version, time, hardware). Under
``torchrun`` each rank trains on its shard (DistributedSampler-style split) and rank 0
writes the files; the format is the same.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from explorer import __version__, construct, data, nets
from explorer import distributed as D
from explorer.attacks import pgd
from explorer.devices import autocast, best_device
from explorer.files import atomic_torch_save, atomic_write, atomic_write_json
from explorer.optimize import Cancelled
from explorer.threat import make_threat
from explorer.zoo import ZooError, build_architecture, load_state_dict_file


class TrainError(ValueError):
    """Bad training arguments or inputs (one-line message)."""


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe. ``adv_norm=None`` is standard training."""

    name: str
    arch: str = "stage_cnn"
    dataset: str = "fashion-mnist"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine | step
    warmup_epochs: int = 0
    adv_norm: Optional[str] = None  # None | "l2" | "linf"
    eps: float = 0.0
    attack_steps: int = 7
    attack_step_size: Optional[float] = None  # default 2.5 * eps / steps
    eps_warmup_epochs: int = 0  # ramp eps linearly from 0 over these epochs
    augment: bool = True
    seed: int = 0
    limit: Optional[int] = None  # train on the first N examples (tests, smoke runs)
    clean_weight: float = 0.0  # adversarial training: loss = (1-w) CE(adv) + w CE(clean); Madry et al. use 0
    init_from: Optional[str] = None  # start from these weights (safetensors of the same arch): fine-tuning
    out_dir: str = "checkpoints"
    bf16: bool = False  # the training passes (and the training attack's) under bfloat16 autocast; weights stay fp32

    def validate(self) -> None:
        if self.epochs < 1:
            raise TrainError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise TrainError(f"batch size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise TrainError(f"lr must be > 0, got {self.lr}")
        if self.optimizer not in ("sgd", "adam"):
            raise TrainError(f"optimizer must be sgd or adam, got {self.optimizer!r}")
        if self.schedule not in ("cosine", "step"):
            raise TrainError(f"schedule must be cosine or step, got {self.schedule!r}")
        if self.adv_norm not in (None, "l2", "linf"):
            raise TrainError(f"adversarial norm must be l2 or linf, got {self.adv_norm!r}")
        if self.eps < 0 or not math.isfinite(self.eps):
            raise TrainError(f"eps must be >= 0, got {self.eps}")
        if self.adv_norm and self.eps == 0:
            raise TrainError("adversarial training needs eps > 0")
        if self.adv_norm and self.attack_steps < 1:
            raise TrainError(f"attack steps must be >= 1, got {self.attack_steps}")
        if not 0 <= self.clean_weight <= 1:
            raise TrainError(f"clean weight must be in [0, 1], got {self.clean_weight}")
        if self.init_from is not None and not Path(self.init_from).exists():
            raise TrainError(f"--init-from: no file {self.init_from}")
        if self.limit is not None and self.limit < 1:
            raise TrainError(f"limit must be >= 1, got {self.limit}")
        try:
            build_architecture(self.arch, 10, 1, 28) if self.arch in _own_archs() else None
        except ZooError as e:
            raise TrainError(str(e)) from e


def _own_archs():
    return nets.ARCHITECTURES


# --- data -------------------------------------------------------------------------------

@dataclass
class TrainData:
    train: data.TensorDataset
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]
    augment_pad: int = 2


def load_train_data(cfg: TrainConfig) -> TrainData:
    """The training set as an in-memory tensor dataset, with its dataset's facts (mean/std, size).

    ``limit`` draws a seeded, class-balanced subset (a folder tree is sorted by class, so
    the first N would be one class)."""
    try:
        if cfg.dataset.startswith("constructed:"):
            ds = construct.load(cfg.dataset.split(":", 1)[1])
        else:
            ds = data.load_dataset(cfg.dataset, "train")
        facts = data.dataset_facts(cfg.dataset, ds)
    except data.DataError as e:
        raise TrainError(str(e)) from e
    if cfg.limit is not None:
        ds = data.balanced_subset(ds, cfg.limit, seed=cfg.seed)
    return TrainData(ds, facts.mean, facts.std, tuple(int(v) for v in ds.images.shape[1:]), facts.augment_pad)


def _augment(x: torch.Tensor, generator: torch.Generator, pad: int = 2, flip: bool = True) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels (zero padding) and horizontal flip."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # n, h
    cols = (dx[:, None] + torch.arange(w)[None, :])  # n, w
    idx_n = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        out = torch.where(mask[:, None, None, None], out.flip(3), out)
    return out.contiguous()


def epoch_batches(ds: data.TensorDataset, cfg: TrainConfig, epoch: int, rank: int, world: int,
                  pad: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This rank's batches for ``epoch``: a permutation seeded by (seed, epoch), split
    across ranks like DistributedSampler (padded so every rank has the same count)."""
    g = torch.Generator().manual_seed(cfg.seed * 1000003 + epoch)
    perm = torch.randperm(len(ds), generator=g)
    per_rank = math.ceil(len(perm) / world)
    perm = torch.cat([perm, perm[: per_rank * world - len(perm)]])
    mine = perm[rank::world]
    aug_g = torch.Generator().manual_seed(cfg.seed * 7919 + epoch * 31 + rank)
    for i in range(0, len(mine), cfg.batch_size):
        idx = mine[i:i + cfg.batch_size]
        x = ds.float_images(idx)
        if cfg.augment:
            x = _augment(x, aug_g, pad=pad if pad is not None else (2 if x.shape[-1] <= 32 else 8), flip=True)
        yield x, ds.labels[idx]


class Normalized(nn.Module):
    """A net behind its input normalization, so attacks work on [0, 1] images."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        c = len(mean)
        self.register_buffer("mean", torch.tensor(mean).view(1, c, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, c, 1, 1), persistent=False)

    def forward(self, x):
        x = (x - self.mean) / self.std
        return self.net(x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x)


# --- the training loop ---------------------------------------------------------------

def _lr_at(cfg: TrainConfig, progress: float) -> float:
    """Learning rate at a fraction ``progress`` in [0, 1) of training."""
    warm = cfg.warmup_epochs / cfg.epochs
    if warm > 0 and progress < warm:
        return cfg.lr * (progress / warm)
    if cfg.schedule == "cosine":
        p = (progress - warm) / max(1 - warm, 1e-12)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * p))
    return cfg.lr * (0.1 ** int(progress * 3))  # step: /10 at 1/3 and 2/3


def _eps_at(cfg: TrainConfig, epoch_progress: float) -> float:
    if cfg.eps_warmup_epochs <= 0:
        return cfg.eps
    return cfg.eps * min(1.0, epoch_progress / cfg.eps_warmup_epochs)


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        commit = out.stdout.strip() if out.returncode == 0 else "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
        return f"{__version__}+{commit}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return __version__


def hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        return f"{world} x {torch.cuda.get_device_name(device)}"
    return f"{world} process(es) x CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def make_optimizer(params, name: str, lr: float, momentum: float = 0.9,
                   weight_decay: float = 5e-4) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum (``sgd``) or Adam (``adam``): the optimizers of every training here."""
    params = list(params)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


@dataclass
class EpochTotals:
    """Running sums over one epoch's batches, and the last batch's loss and accuracy."""

    loss_sum: float = 0.0
    correct: int = 0
    n: int = 0
    batch_loss: float = math.nan
    batch_acc: float = math.nan

    @property
    def loss(self) -> float:
        return self.loss_sum / self.n

    @property
    def acc(self) -> float:
        return self.correct / self.n


def fit_epoch(model: nn.Module, opt: torch.optim.Optimizer, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *,
              lr_at: Callable[[int], float], device: torch.device | str,
              forward: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
              adversary: Optional[Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]] = None,
              clean_weight: float = 0.0, after_batch: Optional[Callable[[int, EpochTotals], None]] = None,
              cancel: Optional[Callable[[], bool]] = None, what: str = "the model", bf16: bool = False) -> EpochTotals:
    """One epoch of standard or adversarial training in memory: THE training step of
    ``train`` (files, resume, DDP) and of the discussion experiments' small models.

    Per batch i: the learning rate ``lr_at(i)``; the batch on ``device``; with an
    ``adversary(x, y, i)`` (Madry et al. 2018) the adversarial batch, and with
    ``clean_weight`` w > 0 the loss (1-w) CE(adv) + w CE(clean) from one pass; else
    CE(forward(x), y); one optimizer step with ``model`` in train mode; ``after_batch(i,
    totals)``; then ``cancel()`` stops with ``Cancelled``.

    Args:
        forward: what runs the training pass (a DDP wrapper of ``model``); ``model`` when None.
        bf16: the training pass under bfloat16 autocast (``devices.autocast``); the loss, the
            gradients' accumulation and the weights stay fp32.
    """
    forward = forward or model
    totals = EpochTotals()
    for i, (x, y) in enumerate(batches):
        for group in opt.param_groups:
            group["lr"] = lr_at(i)
        x, y = x.to(device), y.to(device)
        x_clean = x
        if adversary is not None:
            x = adversary(x, y, i)
        model.train()
        if adversary is not None and clean_weight > 0:
            with autocast(device, bf16):  # one pass, so BN sees clean and adversarial together
                both = forward(torch.cat([x, x_clean])).float()
            logits, logits_clean = both[:len(y)], both[len(y):]
            loss = (1 - clean_weight) * F.cross_entropy(logits, y) + clean_weight * F.cross_entropy(logits_clean, y)
        else:
            with autocast(device, bf16):
                logits = forward(x).float()
            loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        correct = int((logits.argmax(1) == y).sum())
        totals.batch_loss, totals.batch_acc = float(loss.detach()), correct / len(y)
        totals.loss_sum += totals.batch_loss * len(y)
        totals.correct += correct
        totals.n += len(y)
        if after_batch is not None:
            after_batch(i, totals)
        if cancel is not None and cancel():
            raise Cancelled(f"cancelled while training {what}")
    return totals


def train(cfg: TrainConfig, *, resume: bool = False, device: torch.device | str | None = None,
          progress: Optional[Callable[[int, int, dict], None]] = None,
          stop_after_epochs: Optional[int] = None) -> dict:
    """Run ``cfg``; returns the model card (also written to ``out_dir/NAME.json``).

    ``stop_after_epochs`` ends the run early (as a kill would) after that many epochs
    of this invocation, leaving the resumable state behind.
    """
    cfg.validate()
    world, rank = D.world_size(), D.rank()
    distributed = world > 1
    if device is None:
        device = best_device()
    device = D.setup(device)  # under torchrun: the process group, and cuda:LOCAL_RANK on CUDA
    torch.manual_seed(cfg.seed)
    td = load_train_data(cfg)
    c, h, _ = td.input_size
    net = build_architecture(cfg.arch, len(td.train.class_names), c, h)
    if cfg.init_from:
        try:
            net.load_state_dict(load_state_dict_file(Path(cfg.init_from)), strict=True)
        except (ZooError, RuntimeError) as e:
            raise TrainError(f"--init-from {cfg.init_from}: {str(e).splitlines()[0]}") from e
    net = net.to(device)
    model = Normalized(net, td.mean, td.std).to(device)
    model = model.to(memory_format=torch.channels_last)  # faster convs on CPU and GPU
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / f"{cfg.name}.state.pt"
    start_epoch, elapsed, history = 0, 0.0, []
    if resume and state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state.get("config") != asdict(cfg):
            raise TrainError(f"{state_path} was written by a different recipe; remove it or match the arguments")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, elapsed, history = state["epoch"], state["elapsed"], list(state["history"])
    elif resume:
        raise TrainError(f"--resume: no saved state at {state_path}")
    ddp_model = model
    if distributed:
        ddp_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    steps_per_epoch = math.ceil(math.ceil(len(td.train) / world) / cfg.batch_size)
    threat_name = cfg.adv_norm
    ran = 0
    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(cfg.seed * 1000003 + epoch * 97 + rank)  # attack random starts: same after --resume
        t0 = time.time()

        def adversary(x, y, i, epoch=epoch):
            eps = _eps_at(cfg, epoch + i / steps_per_epoch)
            if eps <= 0:
                return x
            model.eval()  # attack with frozen BN statistics, as the MadryLab attacker does
            step = cfg.attack_step_size * eps / cfg.eps if cfg.attack_step_size else None
            return pgd(model, x, y, make_threat(threat_name, eps), steps=cfg.attack_steps, step_size=step,
                       random_start=True, keep_best=False, seed=None, bf16=cfg.bf16).x_adv

        def after_batch(i, totals, epoch=epoch):
            if progress is not None:
                progress(epoch * steps_per_epoch + i + 1, cfg.epochs * steps_per_epoch,
                         {"epoch": epoch + 1, "loss": totals.loss, "acc": totals.acc})

        totals = fit_epoch(model, opt, epoch_batches(td.train, cfg, epoch, rank, world, td.augment_pad or None),
                           lr_at=lambda i, epoch=epoch: _lr_at(cfg, (epoch + i / steps_per_epoch) / cfg.epochs),
                           device=device, forward=ddp_model, adversary=adversary if threat_name else None,
                           clean_weight=cfg.clean_weight, after_batch=after_batch, bf16=cfg.bf16)
        tot_loss, tot_correct, tot_n = totals.loss_sum, totals.correct, totals.n
        stats = torch.tensor([tot_loss, tot_correct, tot_n], dtype=torch.float64, device=device)
        if distributed:
            dist.all_reduce(stats)
        elapsed += time.time() - t0
        history.append({"epoch": epoch + 1, "train_loss": float(stats[0] / stats[2]),
                        "train_acc": float(stats[1] / stats[2]), "seconds": round(time.time() - t0, 2)})
        if rank == 0:
            atomic_torch_save({"config": asdict(cfg), "net": net.state_dict(), "optimizer": opt.state_dict(),
                          "epoch": epoch + 1, "elapsed": elapsed, "history": history}, state_path)
        if distributed:
            dist.barrier()
        ran += 1
        if stop_after_epochs is not None and ran >= stop_after_epochs and epoch + 1 < cfg.epochs:
            return {"stopped_after_epoch": epoch + 1}
    card = {
        "name": cfg.name,
        "recipe": asdict(cfg),
        "mean": list(td.mean), "std": list(td.std), "input_size": list(td.input_size),
        "class_names": list(td.train.class_names),
        "code_version": code_version(),
        "torch": torch.__version__,
        "hardware": hardware(device, world),
        "world_size": world,
        "training_seconds": round(elapsed, 1),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "history": history,
    }
    parent = Path(cfg.init_from).with_suffix(".json") if cfg.init_from else None
    if parent is not None and parent.exists():
        base = json.loads(parent.read_text())  # the run this one fine-tuned, so the card tells the whole recipe
        card["init_card"] = {k: base[k] for k in ("name", "recipe", "code_version", "training_seconds", "hardware")
                             if k in base}
    if rank == 0:
        from safetensors.torch import save_file

        state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
        atomic_write(out_dir / f"{cfg.name}.safetensors",
                     lambda tmp: save_file(state, str(tmp), metadata={"name": cfg.name, "arch": cfg.arch}))
        atomic_write_json(out_dir / f"{cfg.name}.json", card)
    if distributed:
        dist.barrier()
    return card
