"""One module per experiment of the paper and its discussion.

Each module holds a frozen ``Config`` dataclass (hashable, so pages can key
``st.cache_data`` on it) and ``run(config, progress=None, cancel=None) -> Result``,
where ``Result`` is a frozen dataclass of CPU numpy arrays and plain numbers.
Experiments never print, never touch streamlit and never read globals; they are
deterministic for a given seed.

``progress(step, total, metrics)`` is the callback of ``explorer.optimize``;
``cancel()`` is checked between steps and stops the run with ``Cancelled``.

A module whose run can take long also has ``work(config) -> float``: a number proportional
to the run's cost on the same models and device (image-steps, roughly), so a caller that
timed one run can say before the next starts about how long it will take (``ui.pace``).
It is arithmetic on the Config: no model is loaded.
"""

from __future__ import annotations

from explorer.optimize import Cancel, Progress  # the one Progress/Cancel type, re-exported

__all__ = ["Cancel", "Progress", "EXPERIMENTS"]

#: Modules under explorer/experiments that follow the contract above.
EXPERIMENTS: tuple[str, ...] = ("attack_lab", "zoo_report", "layer_robustness", "style_transfer",
                                 "perturbation_spectrum", "class_synthesis", "inversion", "feature_visualization",
                                 "frequency", "fourier_heatmap", "linear_features", "constructed_table", "inspector",
                                 "transfer_learnability", "leakage", "squares", "nontransferable", "mislabeled",
                                 "filtered_training")
