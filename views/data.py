"""Data: your own images as a dataset (a .zip of class folders, or a folder on this machine), to train on."""

import streamlit as st

from cnn_core.charts.gallery import class_counts_chart, class_samples
from cnn_core.config import PHOTO_SIZES as SIZES
from cnn_core.data import PUBLIC, library, unavailable_reason
from cnn_core.data.roots import may_read_folders, server_folder
from cnn_core.errors import CnnLabError
from cnn_core.jobs.quotas import check_dataset
from cnn_core.people import owner_label
from ui.identity import person

K = "data."
me = person()

st.title("🗂️ Data: your own images")
st.markdown(
    "Put each class's images in a folder named after the class (`cats/`, `dogs/`, … — optionally inside "
    "`train/` and `test/`), zip them (an administrator may also give a folder on the server), and CNN Lab "
    "decodes them once, makes them square and "
    "small, and offers the dataset on **Train**, **Compare**, **Filters** and **Explain**. PNG, JPEG, WebP, BMP, "
    "GIF and TIFF; unreadable files are skipped and listed."
)


def add_form() -> None:
    with st.form("data.add", border=True):
        st.subheader("Add a dataset")
        name = st.text_input("Name", key=f"{K}name", placeholder="e.g. leaves")
        folders = may_read_folders(me)  # a folder on the server: administrators only, under CNN_LAB_FOLDER_ROOTS
        upload = st.file_uploader(
            "A .zip of class folders",
            type=["zip"],
            key=f"{K}zip",
            help="up to 64 MB" + ("; for bigger ones give a folder" if folders else ""),
        )
        folder = (
            st.text_input("…or a folder on this machine", key=f"{K}folder", placeholder="/path/to/images")
            if folders
            else ""
        )
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
        either = "either a .zip or a folder (not both)" if folders else "a .zip of class folders"
        st.error(f"Give the dataset a name, and {either}.")
        return
    bar = st.progress(0.0, text="Reading the images…")
    try:
        source = upload.getvalue() if upload is not None else str(server_folder(folder.strip(), me))
        check_dataset(me, len(source) if isinstance(source, bytes) else 0)
        entry = library.add_dataset(
            name.strip(),
            source,
            size,
            {"auto": "auto", "grey": 1, "colour": 3}[channels],
            fit,
            progress=lambda done, total: bar.progress(done / max(total, 1), text=f"Decoding {done:,}/{total:,}"),
            reserved=PUBLIC,
            owner=me.id,
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
        library.set_class_order(entry.name, [line.strip() for line in text.splitlines() if line.strip()], by=me)
    except CnnLabError as err:
        st.error(str(err))
        return
    st.rerun()


@st.cache_data(max_entries=4, show_spinner="Loading the images…")
def samples(name: str, created: float) -> dict:
    """Sample images per class; ``created`` tells a re-added dataset of the same name apart."""
    entry = library.get_dataset(name)  # one of the names the page listed for this person
    images = library.library_images(entry)
    return class_samples(images.images, images.labels, images.classes)


def show_dataset(entry: library.LibraryDataset) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("images", f"{entry.images:,}")
    c2.metric("classes", len(entry.classes))
    c3.metric("input", f"{entry.size}×{entry.size}")
    c4.metric("colour", "RGB" if entry.channels == 3 else "grey")
    mine = me.may_change(entry.owner)
    if entry.owner != me.id:
        st.caption(f"{'Shared by' if entry.shared else 'Owned by'} {owner_label(entry.owner)}")
    if mine:
        st.toggle(
            "shared with everyone",
            entry.shared,
            key=f"{K}share.{entry.name}",
            on_change=share,
            args=(entry.name,),
            help="Everyone signed in can train on a shared dataset (a class set); only you and administrators "
            "change or delete it.",
        )
    st.altair_chart(class_counts_chart(entry.classes, entry.train_counts, entry.test_counts), width="stretch")
    if mine:
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
    if mine and st.checkbox(f"Delete {entry.name} (runs trained on it keep their checkpoints)", key=f"{K}confirm"):
        if st.button(f"Delete {entry.name}", type="primary", key=f"{K}delete"):
            try:
                library.remove_dataset(entry.name, by=me)
            except CnnLabError as err:
                st.error(str(err))
                return
            st.rerun()


def share(name: str) -> None:
    try:
        library.share_dataset(name, st.session_state[f"{K}share.{name}"], by=me)
    except CnnLabError as err:
        st.session_state[f"{K}refused"] = str(err)


add_form()
st.subheader("Your datasets")
if f"{K}refused" in st.session_state:
    st.error(st.session_state.pop(f"{K}refused"))
datasets = {d.name: d for d in library.list_datasets(visible_to=me)}
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
