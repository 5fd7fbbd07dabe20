"""The benchmark command on the tiny models, and the fast path it measures.

``python -m bench --quick`` must produce its table (JSON + markdown) with a
ratio for every row, and ours and torchattacks must reach the same robust accuracy on
the same batch (within one point: at 16 images, the same count). The fast-path pieces
are checked for what they must not change: BatchNorm folding keeps the logits,
bf16 on the CPU attacks as well as fp32 (within 10 points on 64 images), and out of
memory the batch is halved with the same answer as running the halves by hand.
"""

from __future__ import annotations

import argparse
import json
import warnings

import pytest
import torch
from torch import nn

pytest.importorskip("torchattacks")

from bench import __main__ as bench_main  # noqa: E402
from bench import run as bench_run  # noqa: E402
from explorer import attacks, folding  # noqa: E402

PGD_KEYS = {"model", "norm", "eps", "batch", "steps", "ours_s", "peer_s", "ours_ips", "peer_ips", "ratio", "repeats",
            "ours_acc", "peer_acc", "acc_diff", "same_acc"}


@pytest.fixture(scope="module")
def quick(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    status = bench_main.main(["--quick", "--rows", "pgd,layers", "--models", "tiny-standard", "tiny-robust",
                       "--out", str(out)])
    assert status == 0
    (path,) = out.glob("quick-*.json")
    (md,) = out.glob("quick-*.md")
    return json.loads(path.read_text()), md.read_text()


def test_quick_bench_table_has_every_row_with_a_ratio(quick):
    result, md = quick
    assert result["quick"] and result["device"] == "cpu"
    assert result["command"].startswith("python -m bench --quick --rows pgd,layers --models tiny-standard")
    pgd = [r for r in result["rows"] if r["group"] == "pgd"]
    # two models x batches 1 and 16 x two norms
    assert sorted((r["model"], r["batch"], r["norm"]) for r in pgd) == sorted(
        (m, b, n) for m in ("tiny-standard", "tiny-robust") for b in (1, 16) for n in ("linf", "l2"))
    for r in pgd:
        assert PGD_KEYS <= r.keys()
        assert r["steps"] == 20 and r["repeats"] >= 3
        assert r["ours_s"] > 0 and r["peer_s"] > 0
        assert r["ours_ips"] == pytest.approx(r["batch"] * 20 / r["ours_s"])
        assert 0.2 < r["ratio"] < 5, r  # the same work on both sides: a ratio far off means a broken timer
    (layers,) = [r for r in result["rows"] if r["group"] == "layers"]
    assert layers["layers"] == 10 and layers["n_images"] == 8 and layers["seconds"] > 0
    # the markdown has one line per PGD row and the layer table
    assert sum(line.startswith(("| tiny-standard | l", "| tiny-robust | l")) for line in md.splitlines()) == len(pgd)
    assert "ratio (ours faster if > 1)" in md and "Layer robustness" in md


def test_ours_and_torchattacks_reach_the_same_robust_accuracy(quick):
    result, _ = quick
    for r in (r for r in result["rows"] if r["group"] == "pgd"):
        assert r["same_acc"], r
        assert abs(r["ours_acc"] - r["peer_acc"]) <= 1.0, r
    # the robust model at 16 images keeps some of them: the check compares something
    robust = [r for r in result["rows"] if r["group"] == "pgd" and r["model"] == "tiny-robust" and r["batch"] == 16]
    assert any(0 < r["ours_acc"] < 100 for r in robust), robust


def test_readme_block_is_rewritten_between_its_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench_run.START}\nold table\n{bench_run.END}\noutro\n")
    assert bench_run.rewrite_readme("| new |\n", readme)
    assert readme.read_text() == f"intro\n{bench_run.START}\n| new |\n{bench_run.END}\noutro\n"
    readme.write_text("no markers\n")
    assert not bench_run.rewrite_readme("| new |\n", readme)


# --- the fast path -------------------------------------------------------------------------

def test_folded_twin_gives_the_same_logits_and_leaves_the_model_alone(tiny_pair, fmnist_test):
    model = tiny_pair[1]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = folding.folded(model)
    assert fast is not model and folding.folded(model) is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folding._FOLDED[model].modules())
    x = fmnist_test.float_images(slice(0, 32))
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=1e-4, rtol=1e-4)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_folding_does_not_change_the_attack(tiny_pair, fmnist_test):
    model = tiny_pair[1]
    x, y = fmnist_test.float_images(slice(0, 64)), fmnist_test.labels[:64]
    a = attacks.pgd(model, x, y, "linf", 0.1, 10, random_start=False)
    b = attacks.pgd(model, x, y, "linf", 0.1, 10, random_start=False, fold_batchnorm=False)
    assert (a.success == b.success).float().mean() >= 0.98
    assert 0 < int((~a.success).sum()) < 64  # a robust model keeps some: the comparison means something


def test_bf16_on_the_cpu_runs_the_passes_in_bfloat16_and_attacks_as_well(tiny_pair, fmnist_test):
    model = tiny_pair[0]
    x, y = fmnist_test.float_images(slice(0, 64)), fmnist_test.labels[:64]
    a = attacks.pgd(model, x, y, "l2", 1.0, 10, random_start=True, seed=3)
    b = attacks.pgd(model, x, y, "l2", 1.0, 10, random_start=True, seed=3, bf16=True)
    assert not torch.equal(a.x_adv, b.x_adv)  # the passes did run in bfloat16
    assert b.logits_adv.dtype == torch.float32  # what comes back is fp32, as without it
    assert float(b.perturbation.flatten(1).norm(dim=1).max()) <= 1.0 + 1e-4  # still in the ball
    assert abs(float(a.success.float().mean()) - float(b.success.float().mean())) <= 0.1
    assert 0 < int(a.success.sum()) < 64  # some kept, some not: the comparison means something


class OutOfMemoryAbove(nn.Module):
    """The model, but raising the out-of-memory error CUDA raises for batches above ``limit``."""

    def __init__(self, model, limit: int):
        super().__init__()
        self.model, self.limit, self.batches = model, limit, []

    def forward(self, x):
        self.batches.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise attacks.OutOfMemory(f"CUDA out of memory (fake, batch {x.shape[0]} > {self.limit})")
        return self.model(x)


def test_out_of_memory_halves_the_batch_and_says_so(tiny_pair, fmnist_test):
    model = tiny_pair[1]
    x, y = fmnist_test.float_images(slice(0, 20)), fmnist_test.labels[:20]
    wrapped = OutOfMemoryAbove(model, limit=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = attacks.pgd(wrapped, x, y, "linf", 0.1, 5, random_start=False)
    notes = [str(w.message) for w in caught if issubclass(w.category, attacks.BatchHalved)]
    # 20 -> 10 + 10 -> 5 + 5 + 5 + 5
    assert notes == ["out of device memory attacking 20 images: halved the batch to 10 and retried",
                     "out of device memory attacking 10 images: halved the batch to 5 and retried",
                     "out of device memory attacking 10 images: halved the batch to 5 and retried"]
    assert max(b for b in wrapped.batches if b <= 5) == 5
    # the same answer as attacking the four quarters by hand
    parts = [attacks.pgd(model, x[i:i + 5], y[i:i + 5], "linf", 0.1, 5, random_start=False) for i in range(0, 20, 5)]
    assert torch.equal(res.x_adv, torch.cat([p.x_adv for p in parts]))
    assert torch.equal(res.success, torch.cat([p.success for p in parts]))
    assert res.loss_history.shape == (1, 6, 20)
    # per-example eps is split with the batch
    eps = torch.linspace(0.02, 0.2, 20)
    res = attacks.pgd(OutOfMemoryAbove(model, 5), x, y, "linf", eps, 5, random_start=False)
    assert ((res.x_adv - x).flatten(1).abs().amax(1) <= eps + 1e-6).all()


def test_out_of_memory_on_one_image_is_raised(tiny_pair, fmnist_test):
    x, y = fmnist_test.float_images(slice(0, 2)), fmnist_test.labels[:2]
    with pytest.raises(attacks.OutOfMemory), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attacks.pgd(OutOfMemoryAbove(tiny_pair[0], 0), x, y, "linf", 0.1, 3)


def test_passes_of_max_batch_give_what_the_slices_give(tiny_pair, fmnist_test):
    model = tiny_pair[1]
    x, y = fmnist_test.float_images(slice(0, 20)), fmnist_test.labels[:20]
    seen = []
    res = attacks.pgd(model, x, y, "l2", 1.0, 4, random_start=True, seed=7, max_batch=8,
                      progress=lambda s, total, m: seen.append((s, total)))
    parts = [attacks.pgd(model, x[lo:lo + 8], y[lo:lo + 8], "l2", 1.0, 4, random_start=True, seed=7 + lo)
             for lo in (0, 8, 16)]
    assert torch.equal(res.x_adv, torch.cat([p.x_adv for p in parts]))
    assert torch.equal(res.loss_history, torch.cat([p.loss_history for p in parts], dim=2))
    # one progress count over the three passes
    assert [s for s, _ in seen] == list(range(1, 13)) and {t for _, t in seen} == {12}
    with pytest.raises(ValueError, match="max_batch"):
        attacks.pgd(model, x, y, "l2", 1.0, 4, max_batch=0)


def test_folded_classifier_keeps_the_named_layers(tiny_pair, fmnist_test):
    model = tiny_pair[0]
    twin = folding.folded_classifier(model)
    assert twin is not model and folding.folded_classifier(model) is twin
    assert twin.layer_names == model.layer_names and twin.info == model.info
    assert not any(isinstance(m, nn.BatchNorm2d) for m in twin.net.modules())
    x = fmnist_test.float_images(slice(0, 16))
    with torch.no_grad():
        a, b = model.features(x, model.layer_names), twin.features(x, model.layer_names)
    for layer in model.layer_names:
        torch.testing.assert_close(b[layer], a[layer], atol=1e-4, rtol=1e-4)


# --- the app rows: every page's default action --------------------------------------------------

def test_app_actions_cover_every_page():
    from bench import app_pages
    from ui import registry

    timed = {a.page for a in app_pages.ACTIONS}
    assert {p.url_path for p in registry.PAGES} <= timed, "a page whose default action the bench does not time"


def _page_row(page, action, seconds=None, **extra):
    row = {"group": "app", "page": page, "action": action, "cache": "none", **extra}
    if seconds is not None:
        row.update(seconds=seconds, under_target=seconds < 10)
    return row


def test_app_page_table_says_what_missed_the_target_and_what_failed():
    from bench import app_pages

    result = {"rows": [{"group": "app", "server_healthy_s": 1.0, "navigation_s": 2.0, "home_painted_s": 2.5,
                        "home_idle_s": 9.0, "attack_lab_run_s": 2.1},
                       _page_row("attack_lab", "Run", 2.04, cache="warm-up"),
                       _page_row("features", "Representation inversion: Invert", 346.0),
                       _page_row("constructed", "Live (small): Build, train and test", error="TimeoutError: 1200 s")],
              "machine": {"cpu": "x", "torch": "2", "torch_threads": 1, "affinity": [0, 1]}, "device": "cpu",
              "date": "today", "command": "python -m bench --rows app"}
    md = bench_run.markdown(result)
    assert "| attack_lab | Run | 2.0 | yes | the warm-up's cache |" in md
    assert "| features | Representation inversion: Invert | 346.0 | **no** | a fresh run |" in md
    assert "| constructed | Live (small): Build, train and test | failed: TimeoutError: 1200 s | | |" in md
    assert "Rows that failed" not in md  # a page's failure is in its own table, once
    assert md.index("| 1.0 | 2.0 | 2.5 | 9.0 | 2.1 |") < md.index("### Every page's default action")
    assert app_pages.markdown([]) == []


def test_app_page_rows_merge_per_page_and_action(tmp_path):
    latest = tmp_path / "latest.json"
    first = {"rows": [_page_row("attack_lab", "Run", 2.0), _page_row("features", "open", 30.0)], "groups": ["app"],
             "date": "d1"}
    latest.write_text(json.dumps(bench_run.merge_latest(first, latest)))
    again = {"rows": [_page_row("features", "open", 20.0)], "groups": ["app"], "date": "d2"}
    merged = bench_run.merge_latest(again, latest)
    seconds = {(r["page"], r["action"]): r["seconds"] for r in merged["rows"]}
    assert seconds == {("attack_lab", "Run"): 2.0, ("features", "open"): 20.0}


def test_app_options_are_in_the_command_line():
    parser = argparse.ArgumentParser()
    bench_run.add_arguments(parser)
    args = parser.parse_args(["--rows", "app", "--app-pages", "home,attack_lab", "--app-timeout", "300"])
    assert bench_run.command_line(args) == "python -m bench --rows app --app-pages home,attack_lab --app-timeout 300"


def test_a_partial_record_never_rewrites_the_readme(tmp_path, monkeypatch, capsys):
    """bench/results/ is git-ignored: on a fresh clone a run of some groups must not replace README's
    tables of the groups it did not run."""
    readme = tmp_path / "README.md"
    readme.write_text(f"{bench_run.START}\nthe committed tables\n{bench_run.END}\n")
    monkeypatch.setattr(bench_run, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(bench_run, "README", readme)
    monkeypatch.setattr(bench_run, "rewrite_readme", lambda table, path=readme: readme.write_text(table) or True)
    result = {"rows": [_page_row("home", "open", 3.0)], "groups": ["app"], "date": "d", "quick": False,
              "machine": {"cpu": "x", "torch": "2", "torch_threads": 1, "affinity": [0]}, "device": "cpu",
              "command": "python -m bench --rows app"}
    monkeypatch.setattr(bench_run, "run", lambda args: result)
    parser = argparse.ArgumentParser()
    bench_run.add_arguments(parser)
    assert bench_run.main(parser.parse_args(["--rows", "app"])) == 0
    assert "the committed tables" in readme.read_text()
    assert "left alone" in capsys.readouterr().out
    assert (tmp_path / "results" / "latest.md").exists()
