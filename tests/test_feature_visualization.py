"""Unit maximization (feature visualization) through the one loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.experiments import feature_visualization as FV

PAIR = ("tiny-standard", "tiny-robust")

def test_unit_maximization_raises_each_unit(tiny_pair, tiny_root):
    res = FV.run(FV.Config(PAIR, n_units=3, steps=20, device="cpu"))
    x0 = torch.from_numpy(res.start_image)[None]
    for m, row in zip(tiny_pair, res.rows):
        with torch.no_grad():
            start = m.features(x0, ["penultimate"])["penultimate"][0]
            final = m.features(torch.from_numpy(row.images), ["penultimate"])["penultimate"]
        # the default units are the start's most active ones
        assert list(row.units) == torch.argsort(start, descending=True, stable=True)[:3].tolist()
        np.testing.assert_allclose(row.activation_start, start[list(row.units)].numpy(), rtol=1e-5)
        np.testing.assert_allclose(row.activation_final, final[range(3), list(row.units)].numpy(), rtol=1e-4)
        assert (row.activation_final > row.activation_start).all()
        assert row.history.shape == (21, 3)


def test_unit_maximization_takes_explicit_units_and_checks_them(tiny_root):
    res = FV.run(FV.Config(PAIR[:1], units=(1, 4), steps=2, start="grey", device="cpu"))
    assert res.rows[0].units == (1, 4) and res.rows[0].images.shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="out of range"):
        FV.run(FV.Config(PAIR[:1], units=(9999,), steps=1, device="cpu"))
