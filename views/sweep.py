"""Sweep: many runs at once on Ray Tune, every trial an ordinary run."""

import streamlit as st

st.title("🧪 Sweep")
st.info("Sweeps are coming.")
