"""CNN Lab: ``streamlit run app.py``. Declares the pages; each page is a short view over cnn_core."""

from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
PAGES = [  # path, title, icon, url path
    ("pages/home.py", "Home", "🏠", "home"),
    ("pages/concepts.py", "Concepts", "🧮", "concepts"),
    ("pages/train.py", "Train", "🏋️", "train"),
    ("pages/compare.py", "Compare", "⚖️", "compare"),
    ("pages/filters.py", "Filters & feature maps", "🔍", "filters"),
    ("pages/explain.py", "Explain", "💡", "explain"),
]

st.set_page_config(page_title="CNN Lab", page_icon="🧠", layout="wide")
pages = [
    st.Page(path, title=title, icon=icon, url_path=url, default=(url == "home"))
    for path, title, icon, url in PAGES
    if (ROOT / path).is_file()
]
st.navigation(pages).run()
