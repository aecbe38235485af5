"""CNN Lab: ``streamlit run app.py``. Declares the pages; each page is a short view over cnn_core."""

import streamlit as st

st.set_page_config(page_title="CNN Lab", page_icon="🧠", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
]

st.navigation(PAGES).run()
