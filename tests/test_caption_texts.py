"""The caption helpers that state what a result shows (issue 21, item 4): their verdicts follow their numbers.

The browser test tests/e2e/test_captions.py checks the captions against the screen on the
bundled models; these check the helpers on made-up results where the answer is known,
including the outcomes a default run may not show (below chance, not more robust, noise).
"""

from __future__ import annotations

import numpy as np

from explorer.experiments import constructed_table as CT
from explorer.experiments import feature_visualization as FV
from explorer.experiments import squares


def _row(kind, clean, robust, half):
    return {"kind": kind, "clean %": clean, "robust %": robust, "robust % (half eps)": half}


def test_table_pattern_says_what_the_rows_show_both_ways():
    good = [_row("original", 92.3, 0.0, 0.3), _row("robust", 89.2, 2.7, 42.8), _row("non-robust", 81.6, 0.0, 1.1),
            _row("rand", 54.2, 0.0, 0.0), _row("det", 36.3, 0.0, 0.0)]
    assert CT.pattern(good) == ("Here: D_rand 54.2% clean, above chance (10%); D_det 36.3% clean, above chance (10%); "
                                "D_R 42.8% at half eps against D's 0.3%: more robust; D_R 42.8% at half eps against "
                                "D_NR's 1.1%: more robust.")
    # the live table of issue 21: D_rand 4.2%, D_det 2.0%, D_R less robust than D
    bad = [_row("original", 80.0, 5.0, 30.0), _row("robust", 70.0, 2.0, 20.0), _row("rand", 4.2, 0.0, 0.0),
           _row("det", 2.0, 0.0, 0.0)]
    text = CT.pattern(bad)
    assert "D_rand 4.2% clean, not above chance (10%)" in text and "D_det 2% clean, not above chance" in text
    assert "D_R 20% at half eps against D's 30%: not more robust" in text and "D_NR" not in text
    # without the half-eps column the robust column itself is compared
    flat = [{**r, "robust % (half eps)": None} for r in good]
    assert "D_R 2.7% robust against D's 0%: more robust" in CT.pattern(flat)
    assert CT.pattern([_row("original", 90.0, 0.0, 0.0)]) == ""
    # with the test-set size, 3 binomial standard errors decide (the live default of issue 21: 500 images)
    live = [_row("original", 65.2, 5.8, 27.4), _row("robust", 26.8, 2.2, 14.4), _row("rand", 12.2, 0.0, 1.4),
            _row("det", 2.0, 0.0, 0.6)]
    text = CT.pattern(live, n_test=500)
    assert "D_rand 12.2% clean, within 3 standard errors of chance (10% ± 4.0 points on 500 test images)" in text
    assert "D_det 2% clean, below chance (10%)" in text
    assert "D_rand 54.2% clean, above chance (10%)" in CT.pattern(good, n_test=10_000)


def test_squares_summary_reads_the_smallest_eps_and_the_linear_limit():
    result = {"eps": [0.0, 0.01, 0.03, 0.9], "rows": [
        {"model": "noisy labels, 30 epochs", "robust": [0.944, 0.154, 0.0, 0.0]},
        {"model": "clean labels, 30 epochs", "robust": [1.0, 1.0, 1.0, 0.0]},
        {"model": "linear: sign(mean x)", "robust": [1.0, 1.0, 0.995, 0.5]}]}
    assert squares.summary(result) == ("Here: noisy labels, 30 epochs 94% clean, 15% at eps 0.01; clean labels, "
                                       "30 epochs 100% clean, 100% at eps 0.01. linear: sign(mean x) keeps at "
                                       "least 99% up to eps 0.03.")


def _visualization(standard_images, robust_images) -> FV.Result:
    def row(name, robust, images):
        n = len(images)
        return FV.ModelVisualization(model=name, kind="robust" if robust else "standard", robust=robust,
                                     units=tuple(range(n)), images=images, activation_start=np.zeros(n),
                                     activation_final=np.ones(n), history=np.zeros((2, n)), probs=np.zeros((n, 10)),
                                     seconds=0.0)

    return FV.Result(layer="penultimate", start_image=np.zeros((1, 28, 28), np.float32), class_names=("a",) * 10,
                     rows=(row("std", False, standard_images), row("rob", True, robust_images)), steps=1,
                     step_size=0.1, device="cpu")


def test_visualization_summary_tells_a_pattern_from_noise():
    rng = np.random.default_rng(0)
    noise = rng.random((3, 1, 28, 28)).astype(np.float32)
    yy, xx = np.mgrid[0:28, 0:28] / 28
    pattern = np.stack([np.sin(2 * np.pi * (k + 1) * xx + yy)[None] for k in range(3)]).astype(np.float32)
    result = _visualization(noise, pattern)
    share_noise, share_pattern = result.low_frequency_share()
    # white noise keeps about the share of DFT entries at rho <= 0.25; the low sine waves nearly all of it
    assert abs(share_noise - result.noise_share()) < 0.05 and share_pattern > 0.9
    assert "Here the robust model's images are smoother than the standard model's and than white noise: " \
           "patterns." in result.summary()
    assert "are no smoother than" in _visualization(pattern, noise).summary()
    # the default output of issue 21: both models' images as noisy as white noise, whichever is a little smoother
    assert "Here neither model's images keep clearly more" in _visualization(noise, noise[::-1]).summary()
