"""Streamlit glue shared by app.py and the pages: the page list, the sidebar, widget
groups and the cached runner. The science stays in ``explorer``; this package only
turns widgets into configs and results into elements (and may import streamlit,
which ``explorer`` never does)."""
