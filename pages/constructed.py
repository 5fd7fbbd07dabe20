"""The constructed datasets D_R, D_NR, D_rand, D_det (Ilyas et al. 2019, Section 3).

Three tabs: browse a dataset that ``python -m explorer construct`` built, next to its
source images; the table that ``python -m explorer table`` saved, beside the paper's
numbers; and a small live version (a few hundred images) through
``ui.page.view`` (its result shows only for the pair and settings it was computed from).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from explorer import construct, data, zoo
from explorer.charts import constructed as charts_constructed
from explorer.experiments import constructed_table as CT
from ui import configs, links, models, page, routing, widgets

routing.through_app()  # a deep link to a fresh server runs the page inside app.py

KEY = "constructed"
MAX_BROWSE = 16
LIVE_DATASETS = ("fashion-mnist", "cifar10")
METRIC = {"robust": "distance", "non-robust": "distance", "rand": "hit", "det": "hit"}


# --- cached reads ------------------------------------------------------------------------------

@st.cache_data(ttl=30, show_spinner=False)
def _datasets(root: str) -> list[tuple[str, dict]]:
    return [(str(p), m) for p, m in construct.find_datasets(root)]


@st.cache_data(ttl=30, show_spinner=False)
def _tables(roots: tuple[str, ...]) -> list[tuple[str, dict]]:
    """The saved tables, the most complete first (more kinds, then more training images)."""
    found = [(str(p), t) for p, t in construct.find_tables(*roots)]
    return sorted(found, key=lambda pt: (-len(pt[1].get("rows", [])),
                                         -max((r.get("train images", 0) for r in pt[1].get("rows", [])), default=0)))


@st.cache_data(show_spinner="Reading the shards...", max_entries=8)
def _pairs(path: str, positions: tuple[int, ...], complete_marker: str) -> construct.Pairs:
    return construct.pairs(path, positions)


# --- 1. browse ---------------------------------------------------------------------------------

def _stats_text(m: dict) -> str:
    s = m.get("statistics", {})
    if "attack_success_rate" in s:
        return f"targeted attack success {100 * s['attack_success_rate']:.1f}% (on the source model)"
    if "final_distance" in s:
        return (f"relative representation distance, median {s['start_distance']['median']:.3f} at the start -> "
                f"{s['final_distance']['median']:.3f} (90% below {s['final_distance']['p90']:.3f})")
    return ""


def _where(path: str, root: Path, shipped: Path) -> str:
    if Path(path).is_relative_to(shipped):
        return f"shipped sample, {Path(path).relative_to(shipped)}"
    return str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else path


def browse_tab(root: Path) -> None:
    shipped = construct.shipped_samples_root()
    found = _datasets(str(root)) + _datasets(str(shipped))  # yours first, then the samples that ship
    if not found:
        st.info(f"No constructed dataset under {root} yet. Build one, e.g.\n\n"
                "`python -m explorer construct det --subset 1000`\n\n"
                "(kinds: robust, non-robust, rand, det; `--help` lists the options).")
        return
    labels = {path: f"{m['name']}: {_where(path, root, shipped)} ({m['count']} images)" for path, m in found}
    path = st.selectbox("Dataset", list(labels), format_func=labels.get, key=f"{KEY}.browse.path", bind=links.BIND)
    m = dict(found)[path]
    st.markdown(f"**{m['description']}**")
    src = m.get("source_model") or {}
    st.caption(" · ".join(t for t in (
        f"source model {src['name']} ({src['kind']}, sha256 {str(src.get('sha256'))[:12]}…)" if src else "",
        _stats_text(m), f"{m['count']} images in {m['num_shards']} shards", m.get("command", "")) if t))
    left, right = st.columns(2)
    start = int(left.number_input("First example", 0, max(m["count"] - 1, 0), 0, 1, key=f"{KEY}.browse.start",
                                  bind=links.BIND))
    count = int(right.number_input("How many", 1, MAX_BROWSE, 8, 1, key=f"{KEY}.browse.count", bind=links.BIND))
    positions = tuple(range(start, min(start + count, m["count"])))
    try:
        pairs = _pairs(path, positions, str(m.get("runs", [{}])[-1].get("finished", "")))
    except (data.DataError, ValueError) as e:
        st.error(str(e))
        return
    st.image(charts_constructed.pairs_figure(pairs, metric_label=METRIC.get(m["kind"], "")))
    st.caption({
        "robust": "D_R: images whose robust-model representation matches x's, found from another image: what a "
                  "robust model 'sees' of x. Labels kept.",
        "non-robust": "D_NR: images whose standard-model representation matches x's. They still look like their "
                      "start image, yet a standard model classifies them as x: the match is carried by "
                      "non-robust features. Labels kept.",
        "rand": "D_rand: x nudged by a small targeted L2 attack toward a random class and relabelled with it. "
                "hit 1: the standard model now predicts the new label.",
        "det": "D_det: x nudged toward class (y + 1) mod 10 and relabelled with it: every label looks wrong to "
               "a person. hit 1: the standard model now predicts the new label.",
        "original": "D: the images themselves, in the constructed-dataset format.",
    }.get(m["kind"], ""))


# --- 2. the table ----------------------------------------------------------------------------

def _table_label(path: str, t: dict) -> str:
    shipped = Path(path).is_relative_to(construct.shipped_tables_root())
    cfg = t.get("config", {})
    where = "ours, shipped" if shipped else f"yours, {Path(path).parent}"
    eps = f", D_rand / D_det at L2 eps {cfg['attack_eps']:g}" if cfg.get("attack_eps") else ""
    return (f"{data.display_name(cfg.get('dataset', '?'))}, {t['rows'][0]['train images']} training images, "
            f"{t['eval']['n_test']} test images{eps} ({where})")


def _rand_rule_text(t: dict) -> str:
    """How this table's D_rand drew its targets, from its recipe (tables made before the rule was a
    choice drew over the other classes only)."""
    recipe = next((d.get("recipe", "") for d in t.get("details", []) if d.get("kind") == "rand"), None)
    if recipe is None:
        return ""
    if "other classes" in recipe:
        return (" This table's D_rand drew each target from the other classes only, never y: not the paper's "
                "rule, which draws over all classes.")
    return " D_rand drew each target uniformly over all classes, independent of y (the paper's rule)."


def _paper_text(t: dict) -> str:
    """How far the paper's column compares with this table's: like for like only on CIFAR-10."""
    cfg = t.get("config", {})
    if cfg.get("dataset") == "cifar10":
        eps, paper_eps = cfg.get("attack_eps"), construct.DEFAULTS["cifar10"].attack_eps  # the paper's recipe
        return (f"The paper's column is CIFAR-10 too, with a ResNet-50 on all 50,000 training images; ours "
                f"trains a {cfg.get('arch', '?')} for {cfg.get('epochs', '?')} epochs on "
                f"{t['rows'][0]['train images']} images"
                + (f", builds D_rand / D_det at L2 eps {eps:g} (the paper's: {paper_eps:g})"
                   if eps and eps != paper_eps else "")
                + (", and runs their attacks and every training pass in bfloat16 (the paper: fp32)"
                   if cfg.get("bf16") else "")
                + " (README names every departure).")
    return ("The paper's column is CIFAR-10 with a ResNet-50: compare the pattern (D_R robust, D_NR not; "
            "D_rand, D_det above chance), not the values.")


def _into_next_text(t: dict) -> str:
    """What the (y + 1) column says, with the D_det model's number beside its real-label accuracy."""
    det = next((r for r in t["rows"] if r.get("kind") == "det" and r.get("into (y+1) %") is not None), None)
    confusion = next((d.get("confusion") for d in t.get("details", []) if d.get("kind") == "det"), None)
    if det is None or not confusion:
        return ""
    return (f" {charts_constructed.INTO_NEXT}: the share of real test images a model puts in class (y + 1) mod "
            f"{len(confusion)}, the label D_det gave each image; the D_det model's "
            f"{det['into (y+1) %']:.1f}% against its {det['clean %']:.1f}% on the real labels.")


def _cost_text(t: dict) -> str:
    """What the table cost, from what it recorded: this run, and building and training."""
    details = t.get("details", [])
    built = sum(d.get("construct_seconds", 0) for d in details) / 60
    trained = sum(d.get("train_seconds", 0) for d in details) / 60
    reused = any(d.get("reused") for d in details)
    # a reused model may have been trained elsewhere (another run, another device): say how much of the total
    earlier = [d for d in details if "model" in (d.get("reused") or ())]
    before = sum(d.get("train_seconds", 0) for d in earlier) / 60
    return (f"`{t.get('command', '')}` ran {t.get('seconds', 0) / 60:.1f} min on {t.get('device', '?')}"
            + (", reusing datasets, models or evaluations made before" if reused else "")
            + f"; building the datasets took {built:.0f} min and training the models {trained:.0f} min"
            + (f", {before:.0f} min of it by models trained before and reused "
               f"({', '.join(d.get('name', d.get('kind', '?')) for d in earlier)})" if earlier else "") + ".")


def table_tab() -> None:
    st.markdown("Train a fresh model on each dataset (same architecture, same recipe), test it on the **real** "
                "test set. " + CT.PAPER_NOTE)
    tables = _tables(tuple(map(str, construct.table_roots())))
    if not tables:
        widgets.table(charts_constructed.paper_frame(CT.PAPER_CIFAR10, construct.NAMES))
        st.info("No table of ours yet. Make one with e.g. `python -m explorer table --subset 3000` "
                "(see the README for the command and timing of our subset run), or run the live version.")
        return
    labels = {path: _table_label(path, t) for path, t in tables}
    path = st.selectbox("Table", list(labels), format_func=labels.get, key=f"{KEY}.table.path", bind=links.BIND)
    t = dict(tables)[path]
    ev = t["eval"]
    widgets.table(charts_constructed.table_frame(t["rows"], f"{ev['norm']} eps {ev['eps']:g}",
                                                 f"{ev['norm']} eps {ev['eps'] / 2:g}"))
    dataset = data.display_name(t.get("config", {}).get("dataset", "?"))
    st.caption(f"Ours: {dataset}, {ev['n_test']} real test images, robust accuracy under PGD "
               f"({ev['steps']} steps) at the robust source model's eps and at half of it (the paper's "
               f"ratio: D_R's source trained at L2 0.5, tested at 0.25). {_cost_text(t)} {_paper_text(t)} "
               f"{CT.pattern(t['rows'], n_test=ev['n_test'])}" + _rand_rule_text(t) + _into_next_text(t))


# --- 3. the live version -------------------------------------------------------------------------

def live_form(pair: models.ModelPair, dataset: str):
    """Widgets -> the builder of a small Config (None without a dataset to build) and whether Run was
    pressed (or a link autoruns)."""
    d = configs.CONSTRUCTED_LIVE_DEFAULTS
    with st.form(f"{KEY}.live.form"):
        a, b, c = st.columns(3)
        subset = int(a.number_input("Training images", 20, 2000, d["subset"], 20, key=f"{KEY}.live.subset",
                                    bind=links.BIND,
                                    help="Drawn from the training set; every dataset is built from the same ones."))
        epochs = int(b.number_input("Epochs", 1, 50, d["epochs"], key=f"{KEY}.live.epochs", bind=links.BIND))
        test_limit = int(c.number_input("Test images", 20, 10_000, d["test"], 50, key=f"{KEY}.live.test",
                                        bind=links.BIND))
        a, b, c = st.columns(3)
        inv_steps = int(a.number_input("Inversion steps (D_R, D_NR)", 1, 2000, d["steps"], 10,
                                       key=f"{KEY}.live.steps", bind=links.BIND))
        attack_steps = int(b.number_input("PGD steps (D_rand, D_det)", 1, 500, d["attack_steps"], 5,
                                          key=f"{KEY}.live.attack_steps", bind=links.BIND))
        eval_steps = int(c.number_input("PGD steps (evaluation)", 1, 100, d["eval_steps"],
                                        key=f"{KEY}.live.eval_steps", bind=links.BIND))
        kinds = st.multiselect("Datasets", list(construct.KINDS), default=list(d["kinds"]),
                               format_func=construct.NAMES.get, key=f"{KEY}.live.kinds", bind=links.BIND)
        seed = int(st.number_input("Seed", 0, 2**31 - 1, d["seed"], key=f"{KEY}.live.seed", bind=links.BIND))
        submitted = st.form_submit_button("Build, train and test", type="primary",
                                          disabled=pair.robust is None or dataset not in LIVE_DATASETS)
    submitted = submitted or links.autorun(f"{KEY}.live")
    if not kinds or pair.robust is None or dataset not in LIVE_DATASETS:
        return None, submitted
    params = {f"{KEY}.live.subset": subset, f"{KEY}.live.epochs": epochs, f"{KEY}.live.test": test_limit,
              f"{KEY}.live.steps": inv_steps, f"{KEY}.live.attack_steps": attack_steps,
              f"{KEY}.live.eval_steps": eval_steps, f"{KEY}.live.kinds": kinds, f"{KEY}.live.seed": seed}
    # the warm-up computes the default pair's (ui.warmup): its first click answers from the cache
    return lambda: configs.constructed_live(params, pair.standard, pair.robust, dataset), submitted


def draw_live(result: CT.Result) -> None:
    ev = f"{result.eval_norm} eps {result.eval_eps:g}"
    widgets.table(charts_constructed.table_frame(result.table(), ev, f"{result.eval_norm} eps {result.eval_eps / 2:g}"))
    st.caption(f"{result.rows[0].n_train} training images, {result.epochs} epochs of {result.arch}, tested on "
               f"{result.rows[0].n_test} real test images (robust: PGD {result.eval_steps} steps at {ev}); "
               f"{result.seconds:.0f} s on {result.device}. A few hundred images are far from the paper's 50,000: "
               f"the pattern may be weak or missing. {CT.pattern(result.table(), n_test=result.rows[0].n_test)}")
    st.image(charts_constructed.samples_figure(result))


def live_tab(pair: models.ModelPair) -> None:
    st.markdown("Build every dataset from a few hundred training images with the sidebar's models "
                f"({pair.standard or '?'}: D_NR, D_rand, D_det; {pair.robust or '?'}: D_R), train a small model "
                "on each and test it on the real test set: a few minutes on a CPU.")
    dataset = zoo.get_spec(pair.standard).dataset if pair.standard else ""
    if dataset not in LIVE_DATASETS:
        st.warning(f"The live version builds from Fashion-MNIST or CIFAR-10; the sidebar's models are {dataset}.")
    elif pair.robust is None:
        st.warning("Pick a robust model in the sidebar: D_R needs one.")
    build, submitted = live_form(pair, dataset)
    result = page.view(f"{KEY}.live", "constructed_table", build, "Building, training and testing", run=submitted,
                       action="Build, train and test")
    if result is not None:
        draw_live(result)


# --- the page -------------------------------------------------------------------------------------

st.title("Constructed datasets")
st.markdown("The paper's central experiment (Ilyas et al. 2019, Section 3). **D_R** keeps only what a robust "
            "model sees of each image; **D_NR** only what a standard model uses beyond that. **D_rand** and "
            "**D_det** relabel every image with a wrong class after a small targeted attack adds that class's "
            "non-robust features. In the paper, models trained on them still generalize to the real CIFAR-10 "
            f"test set (D_rand {CT.PAPER_CIFAR10['rand']['clean']:g}%, D_det {CT.PAPER_CIFAR10['det']['clean']:g}%, "
            "chance 10%): the non-robust features are real, predictive features. The Table 1 tab puts ours "
            "beside it, with the sizes we could afford.")
root = construct.artifacts_root()
pair = models.current_pair()
browse, table, live = st.tabs(["Browse a dataset", "Table 1", "Live (small)"], key=f"{KEY}.tab", bind=links.BIND)
with browse:
    browse_tab(root)
with table:
    table_tab()
with live:
    live_tab(pair)
links.share_note(uploads=False)
