"""Training page, "Look inside" tab: a run's teacher on one image, its CLS attention per head
and on average, and a PCA of its patch features as colours. Runs on the CPU."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import streamlit as st
from PIL import Image

from dinodiag import rundir, runs
from dinodiag.dashboard import sidebar
from dinodiag.errors import DinodiagError
from dinodiag.runs.look_inside import Inspection, Teacher, inspect_image, load_teacher


@st.cache_resource(max_entries=4, show_spinner="Loading the teacher from the checkpoint…")
def cached_teacher(path: str, mtime: float) -> Teacher:
    return load_teacher(path)


@st.cache_data(max_entries=32, show_spinner="Running the teacher…")
def cached_inspection(
    path: str,
    mtime: float,
    image_key: str,
    size: int,
    threshold: float | None,
    _teacher: Teacher,
    _image: Image.Image,
) -> Inspection:
    return inspect_image(_teacher, _image, input_size=size, threshold=threshold)


def choose_image(ctx: Any) -> tuple[Image.Image | None, str]:
    """(image, cache key) from the sidebar dataset or an upload."""
    sources = ["dataset", "upload"] if ctx.dataset is not None else ["upload"]
    source = st.radio(
        "Image",
        sources,
        horizontal=True,
        key="look_source",
        format_func={"dataset": "from the sidebar dataset", "upload": "upload one"}.get,
    )
    if source == "dataset":
        index = st.number_input(
            f"Image index (0–{len(ctx.dataset) - 1})", 0, len(ctx.dataset) - 1, 0, key="look_index"
        )
        image, _ = ctx.dataset[int(index)]
        return image, f"{ctx.dataset_key}#{index}"
    upload = st.file_uploader(
        "An image",
        type=["png", "jpg", "jpeg", "webp", "bmp"],
        key="look_upload",
        help=f"At most {sidebar.MAX_UPLOAD_IMAGE_PIXELS / 1e6:g} megapixels.",
    )
    if upload is None:
        return None, ""
    data = upload.getvalue()
    return sidebar.load_upload(data, upload.name), hashlib.sha1(data).hexdigest()


def inspect_tab(ctx: Any, all_runs: Sequence[runs.RunInfo]) -> None:
    candidates = [r for r in all_runs if r.has_checkpoint]
    if not candidates:
        st.info(
            "No run has a checkpoint yet: a run writes one when it ends (and every "
            "`checkpoint_every` steps).",
            icon=":material/info:",
        )
        return
    names = {r.run_id: f"{r.run_id} · {r.pipeline or '?'} · step {r.step}" for r in candidates}
    left, right = st.columns([3, 2])
    run_id = left.selectbox("Run", list(names), format_func=names.get, key="look_run")
    info = next(r for r in candidates if r.run_id == run_id)
    mtime = (info.path / rundir.CHECKPOINT_FILE).stat().st_mtime
    try:
        teacher = cached_teacher(str(info.path), mtime)
        with right:
            image, key = choose_image(ctx)
    except DinodiagError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    if image is None:
        st.caption("Upload an image to look at.")
        return
    base = teacher.train_size
    left, right = st.columns(2)
    factor = left.select_slider(
        "Input size",
        [1, 2, 4],
        value=2,
        key="look_factor",
        format_func=lambda f: f"{f * base} px ({f}× training)",
        help="Larger inputs give finer maps (positions are "
        "interpolated); the model was trained at the first size.",
    )
    threshold = right.slider(
        "Foreground threshold (PCA)",
        0.0,
        0.9,
        0.0,
        0.05,
        key="look_threshold",
        help="Patches whose first component is below it are painted black; 0 keeps every patch.",
    )
    result = cached_inspection(
        str(info.path), mtime, key, factor * base, threshold or None, teacher, image
    )
    st.caption(
        f"Teacher of `{run_id}` at step {teacher.step} "
        f"({teacher.config.model.arch}, patch {teacher.backbone.patch_size}), input "
        f"{result.input_size} px = {result.attention.shape[1]}×{result.attention.shape[2]} "
        "patches."
    )
    cols = st.columns(3)
    cols[0].image(result.image, caption="input (centre square)", width="stretch")
    cols[1].image(result.mean_overlay, caption="CLS attention, mean of the heads", width="stretch")
    cols[2].image(
        result.pca_image, caption="patch features: first 3 PCA components as RGB", width="stretch"
    )
    st.markdown("**CLS attention of each head** (last block)")
    st.image(
        result.head_overlays,
        width=160,
        caption=[f"head {i}" for i in range(len(result.head_overlays))],
    )
