"""CNN Lab: ``streamlit run app.py``. Declares the pages; each page is a short view over cnn_core."""

from pathlib import Path

import streamlit as st
import torch

from ui.identity import gate

# The app process only runs small inferences (feature maps, attributions); one thread keeps it from
# fighting the training worker for the two cores. Workers are separate processes with their own setting.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent
PAGES = [  # path, title, icon, url path
    ("views/home.py", "Home", "🏠", "home"),
    ("views/concepts.py", "Concepts", "🧮", "concepts"),
    ("views/data.py", "Data", "🗂️", "data"),
    ("views/train.py", "Train", "🏋️", "train"),
    ("views/compare.py", "Compare", "⚖️", "compare"),
    ("views/sweep.py", "Sweep", "🧪", "sweep"),
    ("views/filters.py", "Filters & feature maps", "🔍", "filters"),
    ("views/embedding.py", "Embedding", "🌌", "embedding"),
    ("views/explain.py", "Explain", "💡", "explain"),
]
ADMIN_PAGE = ("views/admin.py", "Admin", "🛡️", "admin")  # the whole queue, everyone's runs and use

missing = [path for path, *_ in [*PAGES, ADMIN_PAGE] if not (ROOT / path).is_file()]
if missing:  # a broken checkout: say so, rather than quietly serve an app with a page fewer
    raise FileNotFoundError(f"CNN Lab is missing its page file(s): {', '.join(missing)}")
st.set_page_config(page_title="CNN Lab", page_icon="🧠", layout="wide")
who = gate()  # sign-in, or the refusal when served beyond loopback without it; nothing below runs for a stranger
pages = [
    st.Page(path, title=title, icon=icon, url_path=url, default=(url == "home"))
    for path, title, icon, url in [*PAGES, *([ADMIN_PAGE] if who.admin else [])]
]
st.navigation(pages).run()
