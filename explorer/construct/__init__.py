"""The constructed datasets of Ilyas et al. (2019): D_R, D_NR, D_rand and D_det.

"Adversarial Examples Are Not Bugs, They Are Features", Section 3 and Appendix C:

* **D_R** (``robust``) and **D_NR** (``non-robust``), Section 3.1: for each training
  image (x, y), start from another randomly drawn training image (or noise) and
  minimize ||g(z) - g(x)||_2 / ||g(x)||_2 over z, g the penultimate representation of
  a robust (D_R) or a standard (D_NR) model, with normalized L2 gradient steps and the
  [0, 1] clamp (``threat.Unconstrained``); keep y. Built with ``explorer.inversion.invert``
  (``objectives.representation_match`` through ``optimize``).
* **D_rand** (``rand``) and **D_det** (``det``), Section 3.2: targeted L2 PGD on a
  standard model toward t (``attacks.pgd``), relabelled with t; t uniform over all C
  classes, independent of y (D_rand; ``Recipe.targets = "other"``: over the other classes
  only) or t = (y + 1) mod C (D_det).
* ``original``: the (sub)set itself in the same format, so the table trains on D the
  way it trains on the others.

Three rooms: ``recipe`` (what a dataset is built from and with which settings, and the
source images), ``shards`` + ``job`` (the files and the resumable, torchrun-sharded job
that writes them) and ``artifacts`` (reading a dataset back, finding datasets and tables).
Everything public is re-exported here: ``from explorer import construct as K; K.build(...)``.
"""

from __future__ import annotations

from .artifacts import (SOURCES, Pairs, artifacts_root, export, find_datasets, find_tables, load, load_arrays,
                        manifest, pack_sources, pairs, shipped_samples_root, shipped_tables_root, table_roots,
                        to_uint8)
from .job import (RUN_NOTES, SUCCESS_FLOOR, Built, BuildReport, ShardInputs, attack_warning, build, construct_batch,
                  finish_manifest, shard_inputs)
from .recipe import (CIFAR10_DIMS, DEFAULTS, FASHION_MNIST_MEASUREMENTS, KINDS, LAYER, NAMES, PRECISIONS, STARTS,
                     TARGETS, ConstructError, Defaults, Recipe, check_source, default_recipe, defaults_for, dims_text,
                     in_label_order, no_source_text, recipe_record, shard_generator, source_dataset, stage_steps,
                     subset_indices, with_overrides)
from .shards import FORMAT, MANIFEST, read_manifest, read_shard, shard_path, write_manifest, write_shard

__all__ = [
    "KINDS", "NAMES", "PRECISIONS", "STARTS", "TARGETS", "LAYER", "FORMAT", "MANIFEST", "DEFAULTS",
    "FASHION_MNIST_MEASUREMENTS",
    "Defaults", "ConstructError", "Recipe", "default_recipe", "defaults_for", "with_overrides", "stage_steps",
    "recipe_record",
    "CIFAR10_DIMS", "check_source", "dims_text", "in_label_order", "no_source_text",
    "source_dataset", "subset_indices", "shard_generator",
    "shard_path", "read_shard", "write_shard", "read_manifest", "write_manifest",
    "Built", "construct_batch", "ShardInputs", "shard_inputs", "BuildReport", "build", "finish_manifest",
    "RUN_NOTES", "SUCCESS_FLOOR", "attack_warning",
    "manifest", "load_arrays", "load", "to_uint8", "export", "Pairs", "pairs", "SOURCES", "pack_sources",
    "artifacts_root", "find_datasets", "shipped_samples_root", "shipped_tables_root", "table_roots", "find_tables",
]
