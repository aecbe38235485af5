"""Data: your own images as a dataset (a .zip of class folders, or a folder on this machine), to train on."""

import streamlit as st

from cnn_core.charts.gallery import class_counts_chart, class_samples
from cnn_core.config import PHOTO_SIZES as SIZES
from cnn_core.data import PUBLIC, library, unavailable_reason
from cnn_core.errors import CnnLabError

K = "data."

st.title("🗂️ Data: your own images")
st.markdown(
    "Put each class's images in a folder named after the class (`cats/`, `dogs/`, … — optionally inside "
    "`train/` and `test/`), zip them or give the folder, and CNN Lab decodes them once, makes them square and "
    "small, and offers the dataset on **Train**, **Compare**, **Filters** and **Explain**. PNG, JPEG, WebP, BMP, "
    "GIF and TIFF; unreadable files are skipped and listed."
)


def add_form() -> None:
    with st.form("data.add", border=True):
        st.subheader("Add a dataset")
        name = st.text_input("Name", key=f"{K}name", placeholder="e.g. leaves")
        upload = st.file_uploader(
            "A .zip of class folders", type=["zip"], key=f"{K}zip", help="up to 64 MB; for bigger ones give a folder"
        )
        folder = st.text_input("…or a folder on this machine", key=f"{K}folder", placeholder="/path/to/images")
        c1, c2, c3 = st.columns(3)
        size = c1.select_slider("Input size (pixels)", SIZES, 32, key=f"{K}size")
        channels = c2.radio("Colour", ["auto", "grey", "colour"], key=f"{K}channels", horizontal=True)
        fit = c3.radio(
            "Make square by",
            ["crop", "pad"],
            key=f"{K}fit",
            horizontal=True,
            help="crop: cut out the centre; pad: keep the whole image, with bars of its edge colour",
        )
        submitted = st.form_submit_button("Add dataset", type="primary")
    if not submitted:
        return
    if not name or (upload is None) == (not folder.strip()):
        st.error("Give the dataset a name, and either a .zip or a folder (not both).")
        return
    bar = st.progress(0.0, text="Reading the images…")
    try:
        entry = library.add_dataset(
            name.strip(),
            upload.getvalue() if upload is not None else folder.strip(),
            size,
            {"auto": "auto", "grey": 1, "colour": 3}[channels],
            fit,
            progress=lambda done, total: bar.progress(done / max(total, 1), text=f"Decoding {done:,}/{total:,}"),
            reserved=PUBLIC,
        )
    except CnnLabError as err:
        bar.empty()
        st.error(str(err))
        return
    bar.empty()
    st.session_state[f"{K}pick"] = entry.name  # show the new dataset (its picker is drawn below)
    st.success(
        f"Added **{entry.name}**: {entry.images:,} images in {len(entry.classes)} classes"
        + (f" ({files_skipped(len(entry.skipped))})" if entry.skipped else "")
    )


def files_skipped(count: int) -> str:
    return f"{count:,} file{'s' * (count != 1)} skipped"


def class_order_form(entry: library.LibraryDataset) -> None:
    """The classes in label order (0 first), one a line, to see and to change."""
    with st.form(f"{K}order.form", border=False):
        text = st.text_area(
            "Class order (label 0 first, one a line)",
            "\n".join(entry.classes),
            height=min(40 + 24 * len(entry.classes), 260),
            key=f"{K}order.{entry.name}.{entry.created}",
            help="Numbers come in numeric order and zero…nine as digits; move a line to change a class's label. "
            "Runs trained before keep the order they were trained with.",
        )
        if not st.form_submit_button("Save the order"):
            return
    try:
        library.set_class_order(entry.name, [line.strip() for line in text.splitlines() if line.strip()])
    except CnnLabError as err:
        st.error(str(err))
        return
    st.rerun()


@st.cache_data(max_entries=4, show_spinner="Loading the images…")
def samples(name: str, created: float) -> dict:
    """Sample images per class; ``created`` tells a re-added dataset of the same name apart."""
    entry = library.get_dataset(name)
    images = library.library_images(entry)
    return class_samples(images.images, images.labels, images.classes)


def show_dataset(entry: library.LibraryDataset) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("images", f"{entry.images:,}")
    c2.metric("classes", len(entry.classes))
    c3.metric("input", f"{entry.size}×{entry.size}")
    c4.metric("colour", "RGB" if entry.channels == 3 else "grey")
    st.altair_chart(class_counts_chart(entry.classes, entry.train_counts, entry.test_counts), width="stretch")
    class_order_form(entry)
    try:
        strips = samples(entry.name, entry.created)
    except CnnLabError as err:
        st.error(str(err))
        return
    st.markdown("**Samples**, as the model will see them")
    for cls, strip in list(strips.items())[:20]:
        st.image(strip, caption=cls, output_format="PNG")
    if len(strips) > 20:
        st.caption(f"… and {len(strips) - 20} more classes")
    if entry.skipped:
        with st.expander(files_skipped(len(entry.skipped))):
            st.text("\n".join(f"{name}: {why}" for name, why in entry.skipped[:200]))
    if st.checkbox(f"Delete {entry.name} (runs trained on it keep their checkpoints)", key=f"{K}confirm"):
        if st.button(f"Delete {entry.name}", type="primary", key=f"{K}delete"):
            library.remove_dataset(entry.name)
            st.rerun()


add_form()
st.subheader("Your datasets")
datasets = {d.name: d for d in library.list_datasets()}
if not datasets:
    st.info("None yet: add one above.")
else:
    if st.session_state.get(f"{K}pick") not in datasets:  # deleted, or never picked
        st.session_state.pop(f"{K}pick", None)
    pick = st.selectbox("Dataset", list(datasets), key=f"{K}pick")
    show_dataset(datasets[pick])
with st.expander("Public datasets"):
    for name in PUBLIC:
        reason = unavailable_reason(name)
        st.markdown(f"- **{name}**: " + ("ready" if reason is None else reason))
