"""Skip a test until a bundled model has landed in checkpoints/ (they are trained separately)."""

from __future__ import annotations

import pytest


def require(monkeypatch, *names: str) -> None:
    """Point the zoo at the repository's checkpoints/ and skip unless every model in ``names``
    is registered and its weights are there."""
    from explorer import zoo

    monkeypatch.delenv("EXPLORER_CHECKPOINTS", raising=False)
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    specs = zoo.specs()
    for name in names:
        if name not in specs:
            pytest.skip(f"bundled model {name} not in the manifest yet")
        ok, why = zoo.availability(specs[name])
        if not ok:
            pytest.skip(f"bundled model {name} not available yet: {why}")
