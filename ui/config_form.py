"""The hyperparameter controls of the Train page, turned into one validated ``RunConfig``.

Streamlit drops the state of widgets that are not drawn, so leaving the page would reset every control.
Each control's value is also kept under ``train.kept`` (a plain session-state dict, never dropped) and put
back before the controls are drawn again: the pattern of Streamlit's docs on widget state across pages.
"""

from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

import streamlit as st
import torch

from cnn_core.compare import described_changes
from cnn_core.config import (
    ACTIVATIONS,
    LENET5_CONV,
    OPTIMIZERS,
    SCHEDULES,
    ConvBlock,
    ModelConfig,
    RunConfig,
    TrainConfig,
)
from cnn_core.data import adapt_model, dataset_names, dataset_spec, unavailable_reason
from cnn_core.errors import CnnLabError, InvalidConfig
from cnn_core.shapes import Layer, layer_table, partial_layer_table
from ui.identity import me

LEARNING_RATES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 5e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
BATCH_SIZES = [8, 16, 32, 64, 128, 256, 512, 1024]
EXTRA_BLOCK = ConvBlock(out_channels=32, kernel_size=3, padding="same", pool="none")
K = "train."  # session_state namespace
KEPT = "train.kept"
LAST_VALID = "train.last_valid_model"  # for saying which change made a layer impossible
CONTROLS = ("dataset", "blocks", "activation", "fc", "optimizer", "schedule", "augment", "lr", "batch", "epochs")
CONTROL_KEYS = {K + name for name in (*CONTROLS, "seed", "device", "name")}  # the run name is drawn by the page


def _restore_kept() -> None:
    """Put back the values of controls that Streamlit dropped while another page was shown."""
    for key, value in st.session_state.get(KEPT, {}).items():
        if key not in st.session_state:
            st.session_state[key] = value


def _keep_controls() -> None:
    """Remember every control's current value (the controls are the ``train.`` widgets drawn by this module)."""
    kept = st.session_state.setdefault(KEPT, {})
    for key in list(st.session_state):
        if key in CONTROL_KEYS or key.startswith(f"{K}conv"):
            kept[key] = st.session_state[key]


def _conv_block(i: int, default: ConvBlock) -> ConvBlock:
    with st.expander(f"conv{i}", expanded=i == 1):
        c1, c2, c3 = st.columns(3)
        depth = c1.slider("depth (filters)", 1, 128, default.out_channels, key=f"{K}conv{i}.depth")
        kernel = c2.slider("filter size", 1, 9, default.kernel_size, key=f"{K}conv{i}.kernel")
        stride = c3.slider("stride", 1, 4, default.stride, key=f"{K}conv{i}.stride")
        # two to a row: a third column at 1280 px cut the padding box's "number" to "numbe"
        d1, d2 = st.columns(2)
        modes = ["number", "same", "valid"]
        mode_default = default.padding if isinstance(default.padding, str) else "number"
        mode = d1.selectbox("padding", modes, modes.index(mode_default), key=f"{K}conv{i}.padmode")
        zeros = d2.number_input(
            "zeros per side",
            0,
            8,
            default.padding if isinstance(default.padding, int) else 0,
            key=f"{K}conv{i}.pad",
            disabled=mode != "number",
        )
        pool = st.selectbox(
            "pooling", ["max", "avg", "none"], ["max", "avg", "none"].index(default.pool), key=f"{K}conv{i}.pool"
        )
        p1, p2 = st.columns(2)
        pool_size = p1.slider(
            "pool size", 1, 4, default.pool_size, key=f"{K}conv{i}.pool_size", disabled=pool == "none"
        )
        pool_stride = p2.slider(
            "pool stride", 1, 4, default.pool_stride, key=f"{K}conv{i}.pool_stride", disabled=pool == "none"
        )
    return ConvBlock(depth, kernel, stride, int(zeros) if mode == "number" else mode, pool, pool_size, pool_stride)


@dataclass(frozen=True)
class Draft:
    """What the controls describe: a valid run, or why not, with the layers that could be worked out."""

    run: RunConfig | None
    problem: str | None  # why there is no run (None when there is one)
    dataset: str
    layers: list[Layer] = field(default_factory=list)  # every layer, or those before the impossible one
    impossible: str | None = None  # the first layer that cannot be built
    cause: str | None = None  # what changed since the last valid config ("conv1 stride 1 → 2")


def config_controls() -> Draft:
    """Draw the controls; returns the run they describe, or why there is none."""
    _restore_kept()
    try:
        return _draw_controls()
    finally:
        _keep_controls()


def _dataset_label(name: str) -> str:
    if unavailable_reason(name) is not None:
        return f"{name} (not on this machine)"
    spec = dataset_spec(name)
    kind = "colour" if spec.channels == 3 else "grey"
    return f"{name} · {len(spec.classes)} classes · {spec.size}×{spec.size} {kind}"


def _dataset_changed() -> None:
    """A 32×32 dataset starts from LeCun's original conv1 (no padding), a 28×28 one from the article's (2)."""
    try:
        size = dataset_spec(st.session_state[f"{K}dataset"]).size
    except CnnLabError:
        return
    if st.session_state.get(f"{K}conv1.padmode", "number") == "number":
        st.session_state[f"{K}conv1.pad"] = 0 if size == 32 else LENET5_CONV[0].padding


def _draw_controls() -> Draft:
    names = dataset_names(visible_to=me())
    if st.session_state.get(f"{K}dataset") not in names:  # a named dataset removed since: back to the default
        st.session_state.pop(f"{K}dataset", None)
    dataset = st.selectbox(
        "dataset",
        names,
        key=f"{K}dataset",
        format_func=_dataset_label,
        on_change=_dataset_changed,
        help="mnist works offline (the bundled 5,000-digit sample when the full set is absent); fashion-mnist, "
        "kmnist and CIFAR once downloaded; your own image datasets from the Data page",
    )
    blocks = st.slider("conv blocks", 1, 4, 3, key=f"{K}blocks")
    conv = tuple(_conv_block(i, LENET5_CONV[i - 1] if i <= 3 else EXTRA_BLOCK) for i in range(1, blocks + 1))
    c1, c2 = st.columns(2)
    activation = c1.selectbox("activation", ACTIVATIONS, key=f"{K}activation")
    fc_text = c2.text_input("fully connected sizes", "84", key=f"{K}fc", help="comma-separated, e.g. 120, 84")
    defaults = TrainConfig()
    c1, c2, c3 = st.columns(3)
    optimizer = c1.selectbox("optimizer", OPTIMIZERS, OPTIMIZERS.index(defaults.optimizer), key=f"{K}optimizer")
    schedule = c2.selectbox("schedule", SCHEDULES, SCHEDULES.index(defaults.schedule), key=f"{K}schedule")
    augment = c3.selectbox(
        "augmentation",
        ["auto", "on", "off"],
        key=f"{K}augment",
        help="small random shifts/rotations/scaling; auto = on for small training sets",
    )
    lr = st.select_slider(
        "learning rate (log scale)", LEARNING_RATES, defaults.lr, key=f"{K}lr", format_func=lambda v: f"{v:g}"
    )
    c1, c2, c3 = st.columns(3)
    batch = c1.select_slider("batch size", BATCH_SIZES, defaults.batch_size, key=f"{K}batch")
    epochs = c2.slider("epochs", 1, 100, 10, key=f"{K}epochs")
    seed = c3.number_input("seed", 0, 2**31 - 1, 0, key=f"{K}seed")
    devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    device = st.selectbox(
        "device",
        devices,
        key=f"{K}device",
        format_func=lambda d: f"cuda ({torch.cuda.get_device_name(0)})" if d == "cuda" else d,
    )
    try:
        fc = tuple(int(part) for part in fc_text.replace(" ", "").split(",") if part)
    except ValueError:
        shown = fc_text if len(fc_text) <= 40 else fc_text[:40] + "…"
        return Draft(None, f"fully connected sizes must be whole numbers separated by commas, not {shown!r}", dataset)
    if (reason := unavailable_reason(dataset)) is not None:
        return Draft(None, reason, dataset)
    spec = dataset_spec(dataset)
    data_fields = {"in_channels": spec.channels, "input_size": spec.size, "num_classes": max(len(spec.classes), 2)}
    try:
        # The network's input and output follow the data; its layers stay as the controls say.
        model = adapt_model(ModelConfig(activation=activation, conv=conv, fc=fc, **data_fields), spec, keep_conv=True)
        train = TrainConfig(
            optimizer=optimizer,
            lr=lr,
            schedule=schedule,
            batch_size=batch,
            epochs=epochs,
            seed=int(seed),
            augment={"auto": "auto", "on": True, "off": False}[augment],
            device=device,
        )
    except InvalidConfig as err:
        fields = ModelConfig().to_dict() | data_fields | {"activation": activation, "conv": conv, "fc": fc}
        return _impossible(err, fields, dataset)
    st.session_state[LAST_VALID] = model.to_dict()
    return Draft(RunConfig(model=model, train=train), None, dataset, layer_table(model))


def _impossible(err: InvalidConfig, fields: dict, dataset: str) -> Draft:
    """An invalid config: its layers up to the impossible one, and what changed since the last valid one."""
    layers, shape_error = partial_layer_table(SimpleNamespace(**fields))
    if shape_error is None:  # not a problem of the layers (a train setting): nothing to draw
        return Draft(None, str(err), dataset)
    raw = fields | {"conv": [asdict(b) for b in fields["conv"]], "fc": list(fields["fc"])}
    last = st.session_state.get(LAST_VALID)
    cause = ", ".join(described_changes({"model": last}, {"model": raw})) if last else None
    return Draft(None, str(shape_error), dataset, layers, str(shape_error).split(":")[0], cause or None)
