"""The features-not-bugs explorer: `streamlit run app.py`.

Navigation over the pages of ``ui.registry.PAGES`` and the shared sidebar (model
pair, device), drawn here so it survives page changes.
"""

import streamlit as st

from ui import models, registry

st.set_page_config(page_title="Features, not bugs", page_icon=":material/science:", layout="wide")

page = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=p is registry.HOME)
                      for p in registry.PAGES])
models.pair_sidebar()
models.device_sidebar()
page.run()
