"""Model zoo: every model with its card, accuracy against eps, and a quick evaluation."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from explorer import charts, zoo
from explorer.experiments import zoo_report
from ui import configs, export, links, models, page, registry, routing, widgets

routing.through_app()  # a deep link to a fresh server runs the page inside app.py

KEY = "model_zoo"
TABLE_COLUMNS = ["name", "dataset", "kind", "source", "available", "clean accuracy", "robust accuracy",
                 "test images", "why"]


@st.cache_data(ttl=30, show_spinner=False)
def _table(root: str) -> list[dict]:
    return zoo_report.model_table(Path(root))


# --- widgets -> parameters -------------------------------------------------------

def quick_eval_form(names: tuple[str, ...], dataset: str):
    """Models, norm, largest eps, number of eps points and of test images: the builder of the
    Config (None without a model) and whether Evaluate was pressed (or a link autoruns)."""
    d = configs.ZOO_DEFAULTS
    norm = widgets.norm_picker(KEY)
    with st.form(f"{KEY}.form"):
        chosen = st.multiselect("Models", names, default=list(names), key=f"{KEY}.models", bind=links.BIND)
        eps_max = widgets.eps_slider(dataset, norm, KEY)
        left, mid, right = st.columns(3)
        points = int(left.number_input("eps points", 1, 8, d["points"], key=f"{KEY}.points", bind=links.BIND))
        n = int(mid.number_input("Test images", 10, zoo_report.MAX_IMAGES, d["n"], 10, key=f"{KEY}.n",
                                 bind=links.BIND))
        steps = int(right.number_input("PGD steps", 1, 100, d["steps"], key=f"{KEY}.steps", bind=links.BIND))
        submitted = st.form_submit_button("Evaluate", type="primary")
    submitted = submitted or links.autorun(KEY)
    if not chosen:
        if submitted:
            st.error("Choose at least one model.")
        return None, submitted
    params = {f"{KEY}.norm": norm, configs.eps_key(KEY, dataset, norm): eps_max, f"{KEY}.points": points,
              f"{KEY}.n": n, f"{KEY}.steps": steps}
    return lambda: configs.zoo_report(params, chosen, dataset), submitted


# --- the page ------------------------------------------------------------------------------

st.title("Model zoo")
st.markdown("Every model the explorer knows. Offline, the bundled models we trained (Fashion-MNIST, CIFAR-10) and "
            "EfficientNet-Lite0 (weights inside a pip package) work (the table); the others need their weights "
            "once (the list under it names the command). Accuracies are measured by "
            "`python -m explorer evaluate NAME` (PGD with random start, step 2.5·eps/steps) and stored in the "
            "model's card.")

rows = _table(str(zoo.checkpoints_dir()))
KINDS = {r["name"]: r["kind"] for r in rows}  # standard / robust colours on the charts
widgets.zoo_table(rows, TABLE_COLUMNS)

pair = models.current_pair()
st.header("Accuracy against eps")
curve_rows = [r for name in pair.names for r in zoo_report.evaluation_rows(name)]
if curve_rows:
    st.altair_chart(charts.accuracy_curve(curve_rows, title="measured by the evaluate command", kinds=KINDS))
unevaluated = [n for n in pair.names if not zoo_report.evaluation_rows(n)]
if unevaluated:
    st.info("No evaluation table yet for " + ", ".join(unevaluated) + ". Measure it with: "
            + "; ".join(f"`python -m explorer evaluate {n}`" for n in unevaluated))

st.header("Quick evaluation")
st.markdown("Clean and PGD accuracy of the sidebar's models on the first N test images, here and now.")
if pair.names:
    dataset = page.load_or_stop(pair.names[0]).info.dataset
    build, submitted = quick_eval_form(pair.names, dataset)
    result = page.view(KEY, "zoo_report", build, lambda config: f"Evaluating {' and '.join(config.models)}",
                       run=submitted, action="Evaluate")
    if result is not None:
        st.altair_chart(charts.accuracy_curve(result.rows(), title=f"first {result.n} test images", kinds=KINDS))
        widgets.table(result.rows())
        st.caption(f"{result.seconds:.1f} s")
        if widgets.kept_config(KEY) is not None:
            export.export(KEY, "zoo_report", widgets.kept_config(KEY), "quick-evaluation",
                          summary={"rows": result.rows()}, page=registry.MODEL_ZOO)
else:
    st.info("Choose models in the sidebar.")
