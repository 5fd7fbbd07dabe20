"""Every view that is not a tour step builds its Config through ``ui.configs`` too (one pure function from the
URL's parameters to the Config, shared by page, tour and warm-up): the defaults are the small versions the
pages ran before, and a link's parameter changes exactly its field."""

from __future__ import annotations

import pytest

from explorer.experiments import filtered_training as FT
from explorer.experiments import leakage as LK
from explorer.experiments import linear_features as LF
from explorer.experiments import mislabeled as ML
from explorer.experiments import nontransferable as NT
from explorer.experiments import transfer_learnability as TL
from explorer.experiments import zoo_report as ZR
from ui import configs

SOURCE = "fmnist-standard"


def test_the_defaults_are_the_pages_small_versions():
    assert configs.transfer_learnability({}, SOURCE) == TL.Config(source=SOURCE, n_train=500, epochs=2, n_attack=200,
                                                                  n_test=1000, ensemble_size=2)
    assert configs.leakage({}, SOURCE) == LK.Config(source=SOURCE, n_train=500, linear_epochs=3, robust_images=3000,
                                                    steps=10, n_test=1000)
    assert configs.nontransferable({}, SOURCE) == NT.Config(
        source=SOURCE, n_train=500, epochs=3, learn_epochs=3, n_attack=200, n_test=1000, ensemble_size=2,
        heldout_archs=("stage_cnn_tiny", "mlp"), learn_arch="stage_cnn_tiny")
    assert configs.mislabeled({}) == ML.Config(arch="stage_cnn_tiny", n_train=1500, weak_images=500, weak_epochs=2,
                                               epochs=3, n_test=1000)
    assert configs.filtered_training({}) == FT.Config(arch="stage_cnn_tiny", n_train=2000, n_test=1000, epochs=3)
    assert configs.linear_features({}) == LF.Config(class_a=7, class_b=9, norm="l2", eps_l2=0.5, eps_linf=0.02,
                                                    n_directions=100, alpha=0.05)
    zoo = configs.zoo_report({}, ("fmnist-standard", "fmnist-robust-linf"), "fashion-mnist")
    assert zoo.eps == pytest.approx((0.1 / 3, 0.2 / 3, 0.1))
    assert zoo == ZR.Config(models=("fmnist-standard", "fmnist-robust-linf"), norm="linf", eps=zoo.eps, n=100,
                            steps=10)


def test_a_link_parameter_changes_its_field():
    assert configs.mislabeled({"discussion.mislabeled.n_train": 300}).weak_images == 300  # min(500, n)
    assert configs.leakage({"discussion.leakage.epochs": 7}, SOURCE).linear_epochs == 7
    assert configs.linear_features({"features.linear.norm": "L∞", "features.linear.a": 0}).norm == "linf"
    zoo = configs.zoo_report({"model_zoo.norm": "L2", "model_zoo.eps.fashion-mnist.l2": 2.0, "model_zoo.points": 2},
                             ("fmnist-standard",), "fashion-mnist")
    assert zoo.norm == "l2" and zoo.eps == (1.0, 2.0)
    assert configs.filtered_training({"features.filtered.n_train": 100}).n_train == 100
