"""The constructed datasets of Ilyas et al. (2019): D_R, D_NR, D_rand and D_det.

"Adversarial Examples Are Not Bugs, They Are Features", Section 3 and Appendix C:

* **D_R** (``robust``) and **D_NR** (``non-robust``), Section 3.1: for each training
  image (x, y), start from another randomly drawn training image (or noise) and
  minimize ||g(z) - g(x)||_2 / ||g(x)||_2 over z, g the penultimate representation of
  a robust (D_R) or a standard (D_NR) model, with normalized L2 gradient steps and the
  [0, 1] clamp (``threat.Unconstrained``); keep y. Built with ``inversion.invert``
  (``objectives.representation_match`` through ``optimize``).
* **D_rand** (``rand``) and **D_det** (``det``), Section 3.2: targeted L2 PGD on a
  standard model toward t (``attacks.pgd``), relabelled with t; t uniform over the
  other classes (D_rand) or t = (y + 1) mod C (D_det).
* ``original``: the (sub)set itself in the same format, so the table trains on D the
  way it trains on the others.

Paper defaults on CIFAR-10: inversion step 0.1 for 1000 iterations; PGD eps 0.5, step
0.1, 100 iterations. Fashion-MNIST defaults (``DEFAULTS``), measured on the bundled
models (28 x 28, 784 dims; two Fashion-MNIST images are ~10 apart in L2, a CIFAR pair ~20):

* inversion: 200 normalized steps, 100 of 1.0 then 100 of 0.1 (``inversion``'s schedule,
  shortened; each stage starts from the best point so far). Measured on 100 training
  images from another random training image (median relative distance
  ||g(z) - g(x)|| / ||g(x)||, best so far): on the L2-robust model (its epoch-4 state,
  three epochs before the end) 0.89 at the start -> 0.057 after 100 steps -> 0.016 after
  200, where the paper's fixed 0.1 gives 0.15 after 200 steps and needs ~470 to reach
  0.016 (0.0073 after its 1000); on fmnist-standard 0.96 -> 0.21 -> 0.13, the paper's
  recipe 0.15 at 200 and 0.10 after 1000. A fifth of the paper's steps for two to three
  times its final distance on D_NR and about the same on D_R.
* D_rand / D_det: L2 eps 1.0, 50 steps of 0.05 (2.5 * eps / 50), the smallest eps of the
  grid 0.5, 1, 1.5, 2 at which the targeted attack on fmnist-standard reaches D_det's
  target for more than 90% of 500 training images: 52% at eps 0.5 (the CIFAR value, 100
  steps of 0.1), 98.8% at 1.0, 99.8% at 1.5, 100% at 2.0.

The job writes ``shard-NNNNN.safetensors`` files (float32 images, labels, source
indices and per-image statistics), each atomically, and ``manifest.json`` (recipe,
source model and its sha256, seed, counts, attack success rate or final representation
distance). Each shard's randomness (start images, targets) depends only on
(seed, shard index), so a killed run restarted with the same arguments skips the
finished shards and yields the same files byte for byte; under ``torchrun`` shard k is
built by rank k mod world and the output is the same.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np
import torch

from explorer import data

KINDS = ("original", "robust", "non-robust", "rand", "det")
NAMES = {"original": "D", "robust": "D_R", "non-robust": "D_NR", "rand": "D_rand", "det": "D_det"}
STARTS = ("other", "noise")
FORMAT = "explorer-constructed/1"
MANIFEST = "manifest.json"
LAYER = "penultimate"

Progress = Callable[[int, int, dict], None]


@dataclass(frozen=True)
class Defaults:
    """Per-dataset construction defaults: source models, inversion and PGD settings."""

    standard: str
    robust: str
    inversion_steps: int
    inversion_step_sizes: tuple[float, ...]
    attack_eps: float
    attack_steps: int
    attack_step_size: float
    why: str = ""


DEFAULTS = {
    "fashion-mnist": Defaults(
        "fmnist-standard", "fmnist-robust-l2", 200, (1.0, 0.1), 1.0, 50, 0.05,
        "measured on the bundled models: see FASHION_MNIST_MEASUREMENTS"),
    "cifar10": Defaults(
        "madry-cifar10-resnet50-nat", "madry-cifar10-resnet50-l2-0.5", 1000, (0.1,), 0.5, 100, 0.1,
        "the paper's (Ilyas et al. 2019, Appendix C)"),
}

#: What the Fashion-MNIST defaults were chosen from (2-core CPU, training images drawn by seed 0).
#: Inversion: median relative representation distance (best so far) after n steps, 100 images.
#: PGD: D_det targeted success on fmnist-standard, 500 images.
FASHION_MNIST_MEASUREMENTS: dict = {
    "inversion": {
        "fmnist-robust-l2 (epoch-4 state)": {"1.0 then 0.1, 200 steps": {0: 0.895, 100: 0.057, 200: 0.016},
                                             "0.1, 1000 steps (paper)": {0: 0.895, 200: 0.152, 500: 0.014,
                                                                         1000: 0.0073}},
        "fmnist-standard": {"1.0 then 0.1, 200 steps": {0: 0.959, 100: 0.214, 200: 0.132},
                            "0.1, 1000 steps (paper)": {0: 0.959, 200: 0.154, 500: 0.120, 1000: 0.102},
                            "0.5, 200 steps": {200: 0.152}, "1.0, 0.3, 0.1, 300 steps": {300: 0.119}},
    },
    "d_det_success_on_fmnist_standard": {0.5: 0.518, 1.0: 0.988, 1.5: 0.998, 2.0: 1.0},
}


def defaults_for(dataset: str) -> Defaults:
    """The defaults of ``dataset``'s family (image folders take the Fashion-MNIST ones)."""
    key = "cifar10" if dataset.startswith("cifar10") else "fashion-mnist"
    return DEFAULTS[key]


class ConstructError(ValueError):
    """Bad construction arguments or an output folder that belongs to another recipe."""


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a constructed dataset (the manifest's ``recipe``).

    Attributes:
        kind: ``original``, ``robust`` (D_R), ``non-robust`` (D_NR), ``rand``, ``det``.
        source: the zoo model g (D_R: robust; the others: standard); None for ``original``.
        dataset: ``fashion-mnist`` (full when installed, else the bundled subset),
            ``fashion-mnist-bundled``, ``cifar10`` or ``folder:ROOT`` (ROOT/train/<class>/*).
        subset: build from this many training images, drawn by ``seed`` (None: all).
        steps: inversion or PGD steps.
        step_sizes: inversion: one step size per stage (steps split evenly); PGD: one.
        eps: the L2 radius of D_rand / D_det.
        start: D_R / D_NR start: ``other`` (another random image of the set) or ``noise``.
        layer: the representation g for D_R / D_NR.
        seed: randomness of the subset, the starts and the targets.
        shard_size: images per shard file.
        batch_size: images per optimization batch (part of the recipe: it fixes the
            arithmetic, so resumed and distributed runs compute the same numbers).
    """

    kind: str
    source: Optional[str]
    dataset: str = "fashion-mnist"
    subset: Optional[int] = None
    steps: int = 0
    step_sizes: tuple[float, ...] = ()
    eps: Optional[float] = None
    start: str = "other"
    layer: str = LAYER
    seed: int = 0
    shard_size: int = 500
    batch_size: int = 250

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConstructError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind != "original" and not self.source:
            raise ConstructError(f"{self.kind} needs a source model")
        if self.subset is not None and (isinstance(self.subset, bool) or int(self.subset) < 1):
            raise ConstructError(f"subset must be >= 1, got {self.subset!r}")
        if self.start not in STARTS:
            raise ConstructError(f"start must be one of {STARTS}, got {self.start!r}")
        if self.shard_size < 1 or self.batch_size < 1:
            raise ConstructError("shard size and batch size must be >= 1")
        if self.steps < 0:
            raise ConstructError(f"steps must be >= 0, got {self.steps}")
        sizes = (self.step_sizes,) if isinstance(self.step_sizes, (int, float)) else tuple(self.step_sizes)
        if any(not (math.isfinite(s) and s > 0) for s in sizes):
            raise ConstructError(f"step sizes must be finite and > 0, got {sizes}")
        object.__setattr__(self, "step_sizes", tuple(float(s) for s in sizes))
        if self.kind in ("robust", "non-robust", "rand", "det") and (self.steps < 1 or not self.step_sizes):
            raise ConstructError(f"{self.kind} needs steps >= 1 and a step size")
        if self.kind in ("rand", "det"):
            if self.eps is None or not (math.isfinite(self.eps) and self.eps > 0):
                raise ConstructError(f"{self.kind} needs eps > 0, got {self.eps!r}")
            if len(self.step_sizes) != 1:
                raise ConstructError("PGD takes one step size")

    @property
    def name(self) -> str:
        return NAMES[self.kind]

    def describe(self) -> str:
        """The recipe in one line."""
        src = f" from {self.source}" if self.source else ""
        if self.kind in ("robust", "non-robust"):
            sched = ", ".join(f"{n} x {s:g}" for n, s in zip(stage_steps(self.steps, len(self.step_sizes)),
                                                            self.step_sizes))
            how = f"representation inversion ({self.layer}{src}), start {self.start}, steps {sched}"
        elif self.kind in ("rand", "det"):
            how = (f"targeted L2 PGD{src}, eps {self.eps:g}, {self.steps} steps of {self.step_sizes[0]:g}, "
                   f"target {'(y + 1) mod C' if self.kind == 'det' else 'uniform over the other classes'}")
        else:
            how = "the images themselves"
        size = f"{self.subset} images of " if self.subset else ""
        return f"{self.name}: {how}; {size}{self.dataset} train, seed {self.seed}"


def default_recipe(kind: str, dataset: str = "fashion-mnist", **overrides) -> Recipe:
    """The recipe of ``kind`` with ``dataset``'s defaults; ``overrides`` replace fields
    (None values are ignored, so CLI options can be passed through)."""
    d = defaults_for(dataset)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if kind in ("robust", "non-robust"):
        base = dict(source=d.robust if kind == "robust" else d.standard, steps=d.inversion_steps,
                    step_sizes=d.inversion_step_sizes)
    elif kind in ("rand", "det"):
        base = dict(source=d.standard, steps=d.attack_steps, step_sizes=(d.attack_step_size,), eps=d.attack_eps)
    else:
        base = dict(source=None)
    return Recipe(kind=kind, dataset=dataset, **{**base, **overrides})


def stage_steps(steps: int, stages: int) -> tuple[int, ...]:
    """``steps`` split over ``stages`` as evenly as possible (earlier stages take the remainder)."""
    base, extra = divmod(steps, max(stages, 1))
    return tuple(base + (1 if k < extra else 0) for k in range(stages))


# --- the source data ---------------------------------------------------------------------

def source_dataset(dataset: str, input_size: Optional[tuple[int, int, int]] = None,
                   class_names: Optional[tuple[str, ...]] = None) -> data.TensorDataset:
    """The training split of ``dataset`` as uint8 tensors (see ``Recipe.dataset``).

    An image folder is read at ``input_size`` (default 3 x 32 x 32); its labels follow
    ``class_names`` (the source model's) when every class folder is one of them, else the
    sorted folder names."""
    if dataset == "fashion-mnist":
        return data.fashion_mnist("train")
    if dataset == "fashion-mnist-bundled":
        return data.bundled_fashion_mnist("train")
    if dataset == "cifar10":
        return data.load_cifar10("train")
    if dataset.startswith("folder:"):
        root = Path(dataset.split(":", 1)[1])
        top = root / "train" if (root / "train").is_dir() else root
        size = tuple(input_size) if input_size else (3, 32, 32)
        folders = {p.name for p in top.iterdir() if p.is_dir() and not p.name.startswith(".")} if top.is_dir() else set()
        known = class_names is not None and folders <= set(data.class_folder_names(class_names))
        ds = data.image_folder(top, size, class_names=class_names if known else None)
        images = torch.stack([ds[i][0] for i in range(len(ds))])
        labels = torch.tensor([label for _, label in ds.samples], dtype=torch.int64)
        return data.TensorDataset(images.mul(255).round_().to(torch.uint8), labels, tuple(ds.class_names),
                                  f"folder {top}")
    raise ConstructError(f"unknown dataset {dataset!r}: use fashion-mnist, fashion-mnist-bundled, cifar10 "
                         "or folder:ROOT (ROOT/train/<class>/<images>)")


def subset_indices(n: int, subset: Optional[int], seed: int) -> torch.Tensor:
    """Positions in the source set, in increasing order: all, or ``subset`` drawn by ``seed``."""
    if subset is None or subset >= n:
        return torch.arange(n)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=g)[: int(subset)].sort().values


def shard_generator(seed: int, shard: int) -> torch.Generator:
    """The RNG of one shard: a function of (seed, shard index) only."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(shard)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


# --- one batch ------------------------------------------------------------------------------

@dataclass
class Built:
    """A constructed batch: images [N, C, H, W] float32 in [0, 1], new labels [N], the relative
    representation distance at the start (D_R / D_NR, else 0) and the per-image statistic: the
    final relative distance (D_R / D_NR), the success flag (D_rand / D_det) or 0."""

    images: torch.Tensor
    labels: torch.Tensor
    start_distance: torch.Tensor
    metric: torch.Tensor


def construct_batch(recipe: Recipe, model, x: torch.Tensor, y: torch.Tensor, *, z0: torch.Tensor | None = None,
                    targets: torch.Tensor | None = None, progress: Optional[Progress] = None,
                    cancel: Optional[Callable[[], bool]] = None) -> Built:
    """Construct ``recipe.kind`` versions of the images ``x`` (labels ``y``) with ``model``.

    D_R / D_NR take the start points ``z0``; D_rand / D_det take the ``targets``.
    """
    n = x.shape[0]
    if recipe.kind == "original":
        return Built(x.cpu().float(), y.cpu(), torch.zeros(n), torch.zeros(n))
    device = model.device
    x = x.to(device)
    if recipe.kind in ("robust", "non-robust"):
        from explorer.experiments.inversion import invert

        z, dist, history = invert(model, x, z0.to(device), recipe.layer,
                                  stage_steps(recipe.steps, len(recipe.step_sizes)), recipe.step_sizes,
                                  progress=progress, cancel=cancel)
        return Built(z.detach().float().cpu(), y.cpu(), history[0].float(), dist.float().cpu())
    from explorer.attacks import pgd
    from explorer.threat import L2Ball

    res = pgd(model, x, y.to(device), L2Ball(recipe.eps), steps=recipe.steps, step_size=recipe.step_sizes[0],
              target=targets.to(device), random_start=False, keep_best=True, seed=None, progress=progress,
              cancel=cancel)
    return Built(res.x_adv.detach().float().cpu(), res.target.cpu(), torch.zeros(n), res.success.float().cpu())


@dataclass
class ShardInputs:
    """What shard k is built from: source indices, images, labels, and the random draws
    (start points and their source indices for D_R / D_NR, targets for D_rand / D_det)."""

    index: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    z0: Optional[torch.Tensor] = None
    start_index: Optional[torch.Tensor] = None
    targets: Optional[torch.Tensor] = None


def shard_inputs(recipe: Recipe, source: data.TensorDataset, positions: torch.Tensor, shard: int,
                 num_classes: int) -> ShardInputs:
    """The inputs of shard ``shard``. ``positions`` are the source indices of the whole
    (sub)set; the shard takes its slice. Random draws come from ``shard_generator(seed, shard)``."""
    lo = shard * recipe.shard_size
    idx = positions[lo:lo + recipe.shard_size]
    inp = ShardInputs(idx, source.float_images(idx), source.labels[idx].clone())
    g = shard_generator(recipe.seed, shard)
    if recipe.kind in ("robust", "non-robust"):
        if recipe.start == "noise":
            inp.z0 = torch.rand(inp.x.shape, generator=g)
        else:
            m = len(positions)
            if m < 2:
                raise ConstructError("starting from another image needs at least two images")
            own = torch.arange(lo, lo + len(idx))
            other = (own + torch.randint(1, m, (len(idx),), generator=g)) % m  # never the image itself
            inp.start_index = positions[other]
            inp.z0 = source.float_images(inp.start_index)
    elif recipe.kind == "det":
        inp.targets = (inp.y + 1) % num_classes
    elif recipe.kind == "rand":
        inp.targets = (inp.y + torch.randint(1, num_classes, inp.y.shape, generator=g)) % num_classes
    return inp


# --- the sharded job ---------------------------------------------------------------------------

def shard_path(out: Path, k: int) -> Path:
    return Path(out) / f"shard-{k:05d}.safetensors"


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_shard(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    from safetensors.torch import save

    # one metadata key: safetensors keeps a key's order only within one string
    payload = save({k: v.contiguous() for k, v in tensors.items()}, metadata={"shard": json.dumps(meta, sort_keys=True)})
    atomic_write_bytes(path, payload)


def read_shard(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """A shard's tensors and its metadata."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("shard", "{}"))
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except Exception as e:  # safetensors raises its own error types
        raise data.DataError(f"{path} is not a readable shard: {e}") from e


def _sha256(model_name: str) -> Optional[str]:
    from explorer import zoo

    spec = zoo.get_spec(model_name)
    if spec.sha256:
        return spec.sha256
    try:
        return zoo.sha256_file(zoo._weights_path(spec, zoo.checkpoints_dir()))
    except Exception:  # weights outside checkpoints/ (hub caches): the name identifies them
        return None


def _read_manifest(out: Path) -> Optional[dict]:
    path = Path(out) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise data.DataError(f"{path} is not valid JSON: {e}") from e


def _write_manifest(out: Path, manifest: dict) -> None:
    atomic_write_bytes(Path(out) / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


@dataclass
class BuildReport:
    """What one invocation of ``build`` did: shards built here (this rank), skipped as done,
    images built, seconds, and the final manifest (None on ranks other than 0)."""

    built: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    images: int = 0
    seconds: float = 0.0
    manifest: Optional[dict] = None


def build(recipe: Recipe, out: str | Path, *, device: torch.device | str | None = None,
          progress: Optional[Progress] = None, cancel: Optional[Callable[[], bool]] = None,
          stop_after_shards: Optional[int] = None, command: str = "") -> BuildReport:
    """Build (or finish) ``recipe`` into the folder ``out``; see the module docstring.

    Args:
        recipe: what to build.
        out: the output folder; a folder holding another recipe's manifest is refused.
        device: torch device (default the best one; under torchrun on CUDA, cuda:LOCAL_RANK).
        progress: ``progress(images done, images to build, {"shard": k})`` after each batch
            (this rank's images; skipped shards do not count).
        cancel: checked between optimization steps (raises ``Cancelled``).
        stop_after_shards: return after building that many shards here (tests; as a kill would).
        command: the command line to record in the manifest.
    """
    import torch.distributed as dist

    from explorer import zoo
    from explorer.devices import best_device

    out = Path(out)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(device) if device is not None else best_device()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    model = zoo.load(recipe.source, device=device) if recipe.source else None
    size = tuple(model.info.input_size) if model is not None else None
    source = source_dataset(recipe.dataset, size, tuple(model.class_names) if model is not None else None)
    if model is not None and tuple(source.images.shape[1:]) != size:
        raise ConstructError(f"{recipe.source} takes {size} images; {recipe.dataset} has "
                             f"{tuple(source.images.shape[1:])}")
    num_classes = len(source.class_names)
    if model is not None and len(model.class_names) != num_classes:
        raise ConstructError(f"{recipe.source} has {len(model.class_names)} classes, {recipe.dataset} {num_classes}")
    positions = subset_indices(len(source), recipe.subset, recipe.seed)
    count = len(positions)
    num_shards = math.ceil(count / recipe.shard_size)
    header = {
        "format": FORMAT, "name": recipe.name, "kind": recipe.kind,
        "recipe": json.loads(json.dumps(asdict(recipe))),  # as it reads back from JSON (tuples -> lists)
        "description": recipe.describe(),
        "source_model": None if model is None else {
            "name": recipe.source, "sha256": _sha256(recipe.source), "kind": model.info.kind},
        "dataset": {"name": recipe.dataset, "loaded": source.name, "size": len(source), "subset": recipe.subset},
        "class_names": list(source.class_names), "input_size": list(source.images.shape[1:]),
        "seed": recipe.seed, "count": count, "num_shards": num_shards, "shard_size": recipe.shard_size,
    }
    out.mkdir(parents=True, exist_ok=True)
    existing = _read_manifest(out)
    if existing is not None and existing.get("recipe") != header["recipe"]:
        raise ConstructError(f"{out} holds another recipe ({existing.get('description', '?')}); "
                             "choose another --out or remove it")
    if existing is not None and existing["source_model"] and header["source_model"] and \
            existing["source_model"].get("sha256") != header["source_model"]["sha256"]:
        raise ConstructError(f"{out} was built from other weights of {recipe.source} (sha256 differs)")
    if rank == 0 and existing is None:
        _write_manifest(out, {**header, "complete": False, "command": command})
    mine = [k for k in range(num_shards) if k % world == rank]
    todo = [k for k in mine if not shard_path(out, k).exists()]
    report = BuildReport(skipped=[k for k in mine if k not in todo])
    total_images = sum(min(recipe.shard_size, count - k * recipe.shard_size) for k in todo)
    done_images = 0
    t0 = time.perf_counter()
    for k in todo:
        inp = shard_inputs(recipe, source, positions, k, num_classes)
        parts = []
        for i in range(0, len(inp.index), recipe.batch_size):
            sl = slice(i, i + recipe.batch_size)
            part = construct_batch(recipe, model, inp.x[sl], inp.y[sl],
                                   z0=None if inp.z0 is None else inp.z0[sl],
                                   targets=None if inp.targets is None else inp.targets[sl], cancel=cancel)
            parts.append(part)
            done_images += part.labels.shape[0]
            if progress is not None:
                progress(done_images, total_images, {"shard": k})
        n = len(inp.index)
        tensors = {
            "images": torch.cat([p.images for p in parts]),
            "labels": torch.cat([p.labels for p in parts]).to(torch.int64),
            "source_index": inp.index.to(torch.int64), "source_label": inp.y.to(torch.int64),
            "start_index": inp.start_index.to(torch.int64) if inp.start_index is not None
            else torch.full((n,), -1, dtype=torch.int64),
            "start_distance": torch.cat([p.start_distance for p in parts]).float(),
            "metric": torch.cat([p.metric for p in parts]).float(),
        }
        _write_shard(shard_path(out, k), tensors, {"shard": k, "recipe": asdict(recipe)})
        report.built.append(k)
        report.images += n
        if stop_after_shards is not None and len(report.built) >= stop_after_shards and k != todo[-1]:
            report.seconds = time.perf_counter() - t0
            return report
    report.seconds = time.perf_counter() - t0
    if world > 1:
        totals = torch.tensor([report.seconds, float(report.images)], dtype=torch.float64)
        dist.all_reduce(totals)
        dist.barrier()
        seconds, images = float(totals[0]) / world, int(totals[1])  # mean rank time, all images
    else:
        seconds, images = report.seconds, report.images
    if rank == 0:
        report.manifest = finish_manifest(out, header, command, seconds, images)
    if world > 1:
        dist.barrier()
    return report


def finish_manifest(out: Path, header: dict, command: str, seconds: float, images_here: int) -> dict:
    """Read every shard back, sum the statistics and write the complete manifest."""
    labels, metric, start_distance, counts = [], [], [], []
    for k in range(header["num_shards"]):
        tensors, _ = read_shard(shard_path(out, k))
        labels.append(tensors["labels"])
        metric.append(tensors["metric"])
        start_distance.append(tensors["start_distance"])
        counts.append(int(tensors["labels"].shape[0]))
    labels, metric, start_distance = torch.cat(labels), torch.cat(metric), torch.cat(start_distance)
    previous = _read_manifest(out) or {}
    history = list(previous.get("runs", []))
    history.append({"finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "images_built": images_here, "seconds": round(seconds, 1),
                    "images_per_second": round(images_here / seconds, 2) if seconds > 0 else None,
                    "world_size": int(os.environ.get("WORLD_SIZE", "1")), "command": command})
    stats: dict = {"label_counts": torch.bincount(labels, minlength=len(header["class_names"])).tolist()}
    kind = header["kind"]
    if kind in ("rand", "det"):
        stats["attack_success_rate"] = round(float(metric.mean()), 6)
    elif kind in ("robust", "non-robust"):
        stats["final_distance"] = {"mean": round(float(metric.mean()), 6),
                                   "median": round(float(metric.median()), 6),
                                   "p90": round(float(metric.quantile(0.9)), 6)}
        stats["start_distance"] = {"mean": round(float(start_distance.mean()), 6),
                                   "median": round(float(start_distance.median()), 6)}
    manifest = {**header, "complete": True, "command": command or previous.get("command", ""),
                "shards": [{"file": shard_path(out, k).name, "count": c} for k, c in enumerate(counts)],
                "statistics": stats, "runs": history}
    _write_manifest(out, manifest)
    return manifest


# --- reading back ---------------------------------------------------------------------------------

def manifest(path: str | Path) -> dict:
    """The manifest of a constructed dataset folder (a DataError when there is none)."""
    m = _read_manifest(Path(path))
    if m is None:
        raise data.DataError(f"{path} holds no {MANIFEST}: build it with python -m explorer construct ...")
    if m.get("format") != FORMAT:
        raise data.DataError(f"{path}/{MANIFEST} is not a constructed dataset ({m.get('format')!r})")
    return m


def load_arrays(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(manifest, every shard's tensors concatenated in order); the dataset must be complete."""
    path = Path(path)
    m = manifest(path)
    missing = [k for k in range(m["num_shards"]) if not shard_path(path, k).exists()]
    if missing or not m.get("complete"):
        raise data.DataError(f"{path} is incomplete ({m['num_shards'] - len(missing)} of {m['num_shards']} "
                             f"shards); finish it by running its command again: {m.get('command') or '?'}")
    parts = [read_shard(shard_path(path, k))[0] for k in range(m["num_shards"])]
    return m, {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


def load(path: str | Path) -> data.TensorDataset:
    """A constructed dataset as a TensorDataset (float32 images in [0, 1])."""
    m, t = load_arrays(path)
    return data.TensorDataset(t["images"], t["labels"], tuple(m["class_names"]), f"{m['name']} ({path})")


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [0, 1] images -> uint8, rounded to the nearest level."""
    return images.clamp(0, 1).mul(255).round_().to(torch.uint8)


def export(path: str | Path, out: str | Path, limit: Optional[int] = None) -> int:
    """Write a constructed dataset as PNGs in ``out/train/<class>/<index>.png`` (8-bit: the
    float images rounded to the nearest level); returns the number written."""
    ds = load(path)
    u8 = data.TensorDataset(to_uint8(ds.images), ds.labels, ds.class_names, ds.name)
    return data.export_image_folder(u8, Path(out) / "train", limit=limit)


@dataclass(frozen=True)
class Pairs:
    """Browse view: originals x, their constructed versions, the start images, old and new labels."""

    originals: np.ndarray
    constructed: np.ndarray
    starts: Optional[np.ndarray]
    old_labels: np.ndarray
    new_labels: np.ndarray
    metric: np.ndarray
    positions: np.ndarray
    class_names: tuple[str, ...]


def pairs(path: str | Path, positions: Iterable[int]) -> Pairs:
    """The examples at ``positions`` of a constructed dataset next to their source images."""
    m, t = load_arrays(path)
    pos = torch.as_tensor(list(positions), dtype=torch.int64)
    if len(pos) and (pos.min() < 0 or pos.max() >= m["count"]):
        raise data.DataIndexError(f"positions must lie in 0..{m['count'] - 1}")
    source = source_dataset(m["dataset"]["name"], tuple(m["input_size"]), tuple(m["class_names"]))
    if len(source) != m["dataset"]["size"]:
        raise data.DataError(f"the source set {source.name} has {len(source)} images; this dataset was built "
                             f"from {m['dataset']['size']}")
    start = t["start_index"][pos]
    starts = source.float_images(start).numpy() if len(pos) and bool((start >= 0).all()) else None
    return Pairs(originals=source.float_images(t["source_index"][pos]).numpy(),
                 constructed=t["images"][pos].numpy(), starts=starts,
                 old_labels=t["source_label"][pos].numpy(), new_labels=t["labels"][pos].numpy(),
                 metric=t["metric"][pos].numpy(), positions=pos.numpy(), class_names=tuple(m["class_names"]))


def with_overrides(recipe: Recipe, **kw) -> Recipe:
    """``recipe`` with fields replaced (None values ignored)."""
    return replace(recipe, **{k: v for k, v in kw.items() if v is not None})


# --- finding outputs ------------------------------------------------------------------------------

def artifacts_root() -> Path:
    """Where ``construct`` and ``table`` write by default: ``$EXPLORER_ARTIFACTS/constructed``
    (default ``artifacts/constructed`` under the working folder)."""
    return Path(os.environ.get("EXPLORER_ARTIFACTS", "artifacts")) / "constructed"


def find_datasets(root: str | Path | None = None) -> list[tuple[Path, dict]]:
    """Every complete constructed dataset under ``root``: (folder, manifest), by folder name."""
    root = Path(root) if root is not None else artifacts_root()
    out = []
    for path in sorted(root.rglob(MANIFEST)) if root.is_dir() else []:
        try:
            m = manifest(path.parent)
        except data.DataError:
            continue
        if m.get("complete"):
            out.append((path.parent, m))
    return out


def shipped_tables_root() -> Path:
    """The tables we produced with ``python -m explorer table`` and ship with the repository, so
    that a fresh clone shows ours: ``results/constructed`` (``$EXPLORER_SHIPPED_TABLES``)."""
    default = Path(__file__).resolve().parent.parent / "results" / "constructed"
    return Path(os.environ.get("EXPLORER_SHIPPED_TABLES", default))


def table_roots() -> tuple[Path, Path]:
    """Where the page looks for tables: the user's own first, then the shipped ones."""
    return artifacts_root(), shipped_tables_root()


def find_tables(*roots: str | Path) -> list[tuple[Path, dict]]:
    """Every ``table.json`` that ``python -m explorer table`` wrote under ``roots`` (default
    :func:`table_roots`): (file, its content), in root order, leaving out any table that is a
    copy of one already found (a shipped table the user also has in artifacts/)."""
    out: list[tuple[Path, dict]] = []
    for r in map(Path, roots or table_roots()):
        for path in sorted(r.rglob("table.json")) if r.is_dir() else []:
            try:
                table = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if all(table != seen for _, seen in out):
                out.append((path, table))
    return out
