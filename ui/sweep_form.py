"""The Sweep page's builder: which parameters vary and how, seeds, search, early stopping, resources and
cluster, turned into one validated ``SweepConfig`` (with its trial count and invalid configurations).

As on the Train page, every control's value is also kept under ``sweep.kept`` and put back before the
controls are drawn, so leaving the page and coming back finds the sweep as it was.
"""

from dataclasses import dataclass, field, replace

import streamlit as st

from cnn_core.config import RunConfig
from cnn_core.config.sweep import DISTRIBUTIONS, SEARCHES, Invalid, SweepConfig, parameter_words
from cnn_core.errors import CnnLabError
from cnn_core.sweeps.space import plan
from ui.identity import me
from ui.resources import job_manager

K = "sweep.form."
KEPT = "sweep.kept"
# path -> the values offered at first (named on screen as the Train page names them: parameter_words)
PARAMETERS = {
    "model.conv.*.pool": "max, avg",
    "model.conv.0.kernel_size": "3, 5, 7",
    "model.conv.0.out_channels": "6, 16",
    "model.conv.1.out_channels": "16, 32",
    "model.activation": "relu, tanh",
    "model.fc.0": "84, 128",
    "train.lr": "0.001, 0.005",
    "train.batch_size": "64, 128",
    "train.optimizer": "sgd, adamw",
    "train.weight_decay": "0, 0.0005",
}
NOTHING_VARIED = (
    "Pick the parameters to vary (or press the preset above): the number of trials, and any configuration that "
    "cannot be built, show here before launch."
)
ARTICLE_PRESET = {  # the article's claim: max beats average pooling — with every filter size, over 3 seeds
    f"{K}vary": ["model.conv.*.pool", "model.conv.0.kernel_size"],
    f"{K}values.model.conv.*.pool": "max, avg",
    f"{K}values.model.conv.0.kernel_size": "3, 5, 7",
    f"{K}dist.model.conv.*.pool": "grid",
    f"{K}dist.model.conv.0.kernel_size": "grid",
    f"{K}same_pad": True,
    f"{K}seeds": 3,
    f"{K}search": "grid",
}


@dataclass
class SweepDraft:
    config: SweepConfig | None
    error: str | None = None
    invalid: list[Invalid] = field(default_factory=list)
    address: str | None = None
    storage: str | None = None
    hint: str | None = None  # what to do first, when nothing is wrong yet


def apply_preset() -> None:
    """The preset button's callback: set the controls to the article's max-vs-average question."""
    st.session_state.update(ARTICLE_PRESET)


def parse_values(text: str) -> list:
    """``"max, avg"`` → ["max", "avg"]; ``"3, 5"`` → [3, 5]; ``"1e-3, 0.01"`` → [0.001, 0.01]."""
    values = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        for kind in (int, float):
            try:
                values.append(kind(item))
                break
            except ValueError:
                continue
        else:
            values.append(item)
    return values


def sweep_controls(base: RunConfig, dataset: str) -> SweepDraft:
    """Draw the builder for a sweep over ``base``; the sweep it describes, or why there is none."""
    for key, value in st.session_state.get(KEPT, {}).items():
        st.session_state.setdefault(key, value)
    try:
        return _draw(base, dataset)
    finally:
        kept = st.session_state.setdefault(KEPT, {})
        kept.update({k: v for k, v in st.session_state.items() if isinstance(k, str) and k.startswith(K)})


def _draw(base: RunConfig, dataset: str) -> SweepDraft:
    st.button("🧪 Preset: max vs average pooling × filter size 3/5/7 × 3 seeds", on_click=apply_preset)
    space = _space_controls()
    same = st.toggle("conv1 keeps its input size ('same' padding): every filter size fits", key=f"{K}same_pad")
    epochs, seeds, search = _search_controls(base)
    with st.expander("resources and cluster"):
        resources = _resource_controls()
    model = base.model
    if same:
        model = replace(model, conv=(replace(model.conv[0], padding="same"), *model.conv[1:]))
    spec = {
        "base": replace(base, model=model, train=replace(base.train, epochs=epochs)).to_dict(),
        "dataset": dataset,
        "space": space,
        "seeds": list(range(base.train.seed, base.train.seed + seeds)),
        **search,
        **resources,
    }
    address, storage = spec.pop("address"), spec.pop("storage")
    if not space:  # nothing chosen yet: a first visit is not a mistake
        return SweepDraft(None, None, hint=NOTHING_VARIED)
    try:
        config = SweepConfig.from_dict(spec)
        invalid = plan(config).invalid
    except CnnLabError as err:
        return SweepDraft(None, str(err))
    return SweepDraft(config, None, invalid, address or None, storage or None)


def _space_controls() -> dict:
    """Which paths vary, each with its values (a list, or lo, hi) and how they are drawn."""
    vary = st.multiselect("parameters to vary", list(PARAMETERS), format_func=parameter_words, key=f"{K}vary")
    space = {}
    for path in vary:
        c1, c2 = st.columns([3, 1])
        st.session_state.setdefault(f"{K}values.{path}", PARAMETERS[path])
        text = c1.text_input(f"{parameter_words(path)} — values (or lo, hi)", key=f"{K}values.{path}")
        kind = c2.selectbox("as", DISTRIBUTIONS, key=f"{K}dist.{path}")
        space[path] = {kind: parse_values(text)}
    return space


def _search_controls(base: RunConfig) -> tuple[int, int, dict]:
    """Epochs per trial, how many seeds, and the search and early-stopping fields of the spec."""
    c1, c2, c3 = st.columns(3)
    epochs = c1.number_input("epochs per trial", 1, 200, min(base.train.epochs, 5), key=f"{K}epochs")
    seeds = c2.number_input("seeds", 1, 20, 1, key=f"{K}seeds", help="crossed with every configuration")
    search = c3.selectbox("search", SEARCHES, key=f"{K}search", help="optuna: Tree-structured Parzen Estimator")
    samples = c1.number_input("samples", 1, 500, 10, key=f"{K}samples", disabled=search == "grid")
    early = c2.toggle("early stopping (successive halving)", key=f"{K}early", help="Ray Tune's ASHA on val accuracy")
    grace = c3.number_input("grace epochs", 1, 100, 1, key=f"{K}grace", disabled=not early)
    return (
        int(epochs),
        int(seeds),
        {
            "search": search,
            "num_samples": int(samples),
            "early_stop": {"grace_epochs": int(grace), "reduction_factor": 2} if early else None,
        },
    )


def _resource_controls() -> dict:
    """What a trial holds, how many at once, and where: the cluster and Tune's storage."""
    r1, r2, r3 = st.columns(3)
    cpu = r1.number_input("CPUs per trial", 0.25, 64.0, 1.0, 0.25, key=f"{K}cpu")
    gpu = r2.number_input("GPU per trial (fractions share one)", 0.0, 8.0, 0.0, 0.25, key=f"{K}gpu")
    concurrent = r3.number_input("at most at once (0: as resources allow)", 0, 1000, 0, key=f"{K}concurrent")
    default = job_manager().address or ""  # the lab's cluster (the Admin page's choice, else RAY_ADDRESS)
    who = me()
    if who is not None and who.admin:  # a cluster and a storage path are the operator's to choose
        st.session_state.setdefault(f"{K}address", default)
        address = st.text_input("Ray cluster address (blank: Ray on this machine)", key=f"{K}address").strip()
        storage = st.text_input("Tune storage (blank: the runs folder)", key=f"{K}storage").strip()
    else:
        address, storage = default, ""
        st.caption(f"Trials run on {f'the Ray cluster at {default}' if default else 'this machine'}.")
    return {
        "resources": {"cpu": float(cpu), "gpu": float(gpu)},
        "max_concurrent": int(concurrent),
        "address": address,
        "storage": storage,
    }
