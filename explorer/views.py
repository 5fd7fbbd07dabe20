"""A view's settings as JSON: enough to compute it again from the command line.

The dashboard's export (``ui/export.py``) writes ``view_record(experiment, config, ...)``:
the experiment module, every field of its frozen Config (images as base64 float32, so
an uploaded image travels inside the file), the models with their source and sha256,
and the library's and torch's versions. ``python -m explorer rerun FILE.json`` reads it
back with ``config_from_record`` and runs the same experiment.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import platform
from datetime import datetime, timezone
from typing import Any, Optional, Sequence

FORMAT = "features-not-bugs view 1"


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"base64"}:
        return base64.b64decode(value["base64"])
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def model_versions(names: Sequence[str]) -> list[dict]:
    """Name, source, architecture, dataset, robustness and sha256 of each model (from the zoo)."""
    from explorer import zoo

    out = []
    for name in names:
        try:
            s = zoo.get_spec(name)
        except zoo.ZooError as e:
            out.append({"name": name, "error": str(e)})
            continue
        out.append({"name": s.name, "source": s.source, "arch": s.arch, "dataset": s.dataset, "robust": s.robust,
                    "train_norm": s.train_norm, "train_eps": s.train_eps, "sha256": s.sha256})
    return out


def _config_models(config) -> list[str]:
    names: list[str] = []
    for f in ("models", "style_models", "standard", "robust", "content_model"):
        v = getattr(config, f, None)
        for n in (v if isinstance(v, (tuple, list)) else [v]):
            if isinstance(n, str) and n and n not in names:
                names.append(n)
    return names


def view_record(experiment: str, config, page: str = "", url_query: str = "", summary: Optional[dict] = None) -> dict:
    """The JSON record of one computed view."""
    import torch

    from explorer import __version__

    return {
        "format": FORMAT,
        "experiment": experiment,
        "config": {f.name: _encode(getattr(config, f.name)) for f in dataclasses.fields(config)},
        "models": model_versions(_config_models(config)),
        "page": page,
        "url_query": url_query,
        "summary": summary or {},
        "versions": {"explorer": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cli": f"python -m explorer rerun VIEW.json  # runs explorer.experiments.{experiment}.run(Config(...))",
    }


def config_from_record(record: dict):
    """(experiment name, Config) from a ``view_record``; checks the format and the model hashes."""
    if record.get("format") != FORMAT:
        raise ValueError(f"not a view file (format {record.get('format')!r}, expected {FORMAT!r})")
    experiment = record["experiment"]
    from explorer.experiments import EXPERIMENTS

    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}")
    module = importlib.import_module(f"explorer.experiments.{experiment}")
    fields = {f.name for f in dataclasses.fields(module.Config)}
    kwargs = {k: _decode(v) for k, v in record["config"].items() if k in fields}
    return experiment, module.Config(**kwargs)


def check_models(record: dict) -> list[str]:
    """Warnings for models whose sha256 here differs from the record's."""
    from explorer import zoo

    notes = []
    for m in record.get("models", []):
        try:
            here = zoo.get_spec(m["name"]).sha256
        except (zoo.ZooError, KeyError):
            notes.append(f"{m.get('name')}: not in this zoo")
            continue
        if m.get("sha256") and here and m["sha256"] != here:
            notes.append(f"{m['name']}: sha256 here {here[:12]}…, in the file {m['sha256'][:12]}…")
    return notes
