"""The features-not-bugs explorer: `streamlit run app.py` (`streamlit run app.py -- --presenter`
for the presenter look: larger text and images, the sidebar collapsed).

Navigation over the pages of ``ui.registry.PAGES`` and the shared sidebar (model
pair, device, presenter look), drawn here so it survives page changes. At the first
request a background warm-up starts (once per process) that loads the bundled models
and computes the guided tour into the cache (``ui.warmup``).
"""

import sys

import streamlit as st

from ui import links, registry, tour, warmup

#: How much larger the presenter look draws text and small images.
PRESENTER_SCALE = 1.35
# Text scales through the root font size: Streamlit sizes its type and spacing in rem, and its Vega
# theme converts rem to px from the root, so charts and tables lay out to their column at the larger
# type. Images grow by `zoom` on the <img> alone, whose inline max-width: 100% still caps it at its
# column. (A `zoom` on the whole page made Vega and the data grid measure unzoomed widths: charts
# and tables ran past their columns.)
PRESENTER_CSS = f"""<style>
html:root {{ font-size: {16 * PRESENTER_SCALE:g}px; }}
[data-testid="stMainBlockContainer"] {{ max-width: 100%; }}
[data-testid="stImage"] img {{ zoom: {PRESENTER_SCALE:g}; }}
</style>"""


presenter_default = "--presenter" in sys.argv[1:]
if links.PRESENTER in st.session_state:  # the toggle's value (it is drawn further down)
    presenter = bool(st.session_state[links.PRESENTER])
elif links.PRESENTER in st.query_params:  # a link opened with the presenter look
    presenter = st.query_params[links.PRESENTER] == "true"
else:
    presenter = presenter_default
st.set_page_config(page_title="Features, not bugs", page_icon=":material/science:", layout="wide",
                   initial_sidebar_state="collapsed" if presenter else "auto")
warmup.started()  # once per process: models and the tour's results, in a background thread

page = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=p is registry.HOME)
                      for p in registry.PAGES])


def sidebar() -> None:
    from ui import models  # imports torch: after the home page's text has gone out

    models.pair_sidebar()
    models.device_sidebar()


links.track_page(page.url_path or "home")
home = page.url_path in ("", "home")
if not home:
    sidebar()
with st.sidebar:
    presenter = st.toggle("Presenter look", presenter_default, key=links.PRESENTER, bind=links.BIND,
                          help="Larger text and images for a projector; the sidebar starts collapsed. "
                               "`streamlit run app.py -- --presenter` makes it the default.")
if presenter:
    st.html(PRESENTER_CSS)
if not home:
    tour.banner()  # a page opened from the guided tour says which step it is and links the next
page.run()
if home:  # the home page paints first; the sidebar's model pair follows (the page does not read it)
    sidebar()
