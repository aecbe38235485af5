"""CNN Lab: ``streamlit run app.py``. Declares the pages; each page is a short view over cnn_core."""

import sys
from pathlib import Path

import streamlit as st
import torch

from ui.identity import gate

# The app process only runs small inferences (feature maps, attributions); one thread keeps it from
# fighting the training worker for the two cores. Workers are separate processes with their own setting.
torch.set_num_threads(1)
# Streamlit starts every rerun's script thread from its event loop, and Thread.start() waits there until the new
# thread has held the GIL; behind k busy script threads that is about k switch intervals. At Python's default
# 5 ms, 10 busy threads kept it waiting 76 ms (median) and up to 0.75 s per start; at 1 ms, 16 ms and 0.1 s. A
# class polling the Train page starts many a second (docs/BENCHMARKS.md, "A class on the Train page").
sys.setswitchinterval(0.001)

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
