"""Crop inspector: the crops of one image, drawn on the source and shown view by view."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dinodiag.dashboard import comparisons, crop_pictures, labels, sidebar
from dinodiag.dashboard.view_records import operations_frame, records_frame, view_name
from dinodiag.errors import DinodiagError
from pages import _shared as ui

ctx = ui.require(
    "Crop inspector",
    "Every crop the pipeline cut from one image: boxes on the source (globals in orange / red, "
    "locals in cyan, numbered like the views), then each view as the model sees it "
    "(de-normalised), labelled with the parameters it was sampled with.",
    need_dataset=False,
    need_pipeline=False,
)

KEPT_UPLOAD = "insp_upload_kept"  # session_state: (name, bytes) of the image uploaded here
PICKER_OPTIONS = 2000  # images named in a menu at most; a larger dataset gets a number box


def upload_changed() -> None:
    """on_change of the uploader: a new image is kept, a removed one forgotten. Leaving the
    page empties the uploader without this callback, so the kept image survives that."""
    upload = st.session_state.get("insp_upload")
    if upload is None:
        st.session_state.pop(KEPT_UPLOAD, None)
    else:
        st.session_state[KEPT_UPLOAD] = (upload.name, upload.getvalue())


choices = comparisons.inspector_choices(ctx.reference)
c_image, c_upload, c_compare, c_draw = st.columns([3, 3, 3, 2], vertical_alignment="bottom")
uploaded = c_upload.file_uploader(
    "…or inspect your own image",
    type=["jpg", "jpeg", "png", "webp", "bmp"],
    key="insp_upload",
    help=sidebar.UPLOAD_LIMITS,
    on_change=upload_changed,
)
upload = st.session_state.get(KEPT_UPLOAD)  # (name, bytes): kept while this session lasts
if uploaded is not None:
    upload = (uploaded.name, uploaded.getvalue())
    st.session_state[KEPT_UPLOAD] = upload
elif upload is not None:
    c_upload.caption(f"Showing your image **{upload[0]}** (kept since you uploaded it).")
    if c_upload.button("Back to the dataset", key="insp_forget", icon=":material/close:"):
        st.session_state.pop(KEPT_UPLOAD, None)
        st.rerun()
compare = c_compare.selectbox(
    "Side by side with", list(choices), format_func=choices.get, key="insp_compare"
)
ui.keep_place("inspector")  # ?compare=reference: a reload or a link shows the same comparison
if c_draw.button("Resample", icon=":material/casino:", type="primary", key="insp_resample"):
    st.session_state["insp_draw"] = st.session_state.get("insp_draw", 0) + 1
draw = st.session_state.get("insp_draw", 0)
draw_seed = comparisons.draw_seed(ctx.seed, draw)

try:
    if upload is not None:
        pairs = [upload]
        data_key = f"upload:{sidebar.upload_key(pairs)}"
        dataset = ui.cached_uploads(data_key, pairs)
    elif ctx.dataset is not None:
        dataset, data_key = ctx.dataset, ctx.dataset_key
    else:
        for level, text in ctx.notices(need_pipeline=False):
            getattr(st, level)(f"{text} Or upload an image here.", icon=ui.ICONS[level])
        st.stop()
except DinodiagError as exc:
    ui.show_error(exc)
    st.stop()

index = 0
if upload is None and len(dataset) > 1:
    last = len(dataset) - 1
    if len(dataset) <= PICKER_OPTIONS:
        index = c_image.selectbox(
            "Image",
            range(len(dataset)),
            format_func=lambda i: f"{i}: {crop_pictures.item_name(dataset.describe(i))}",
            key="insp_pick",
            help="Type part of a file name to find it.",
        )
    else:
        index = int(c_image.number_input(f"Image (0–{last})", 0, last, 0, key="insp_index_n"))
        c_image.caption(crop_pictures.item_name(dataset.describe(index)))

if upload is None:
    try:
        shown_index = crop_pictures.usable_index(dataset, index)
    except DinodiagError as exc:
        ui.show_error(exc)
        st.stop()
    if shown_index != index:
        skipped = dataset.describe(index)
        reason = next((p.reason for p in dataset.problems if str(p.path) == skipped), "unusable")
        st.warning(
            f"Image {index} ({labels.short_source(skipped)}) cannot be used: {reason}. "
            f"Showing the next usable image, {shown_index}.",
            icon=":material/broken_image:",
        )
        index = shown_index

if compare != "seed" and ctx.pipeline is None:
    for level, text in ctx.notices(need_dataset=False):
        getattr(st, level)(text, icon=ui.ICONS[level])
    st.stop()
drawn = []  # (shown, source image, sample)
try:
    for shown in comparisons.inspector_pipelines(compare, ctx):
        image, sample, where = ui.draw_views(
            shown.key, data_key, index, draw_seed, shown.pipeline, dataset
        )
        drawn.append((shown, image, sample))
except DinodiagError as exc:
    ui.show_error(exc)
    st.stop()

image = drawn[0][1]
st.markdown(
    f"**{labels.short_source(where)}** · {image.size[0]} × {image.size[1]} px · draw #{draw} "
    f"(pipeline seed {draw_seed}) · same image and seed for every pipeline shown"
)


scale_side = crop_pictures.common_side([sample for _, _, sample in drawn])


def show_views(shown: comparisons.Shown, sample: Any, tile: int) -> None:
    """Global views then local views, at their output size relative to the largest global
    view shown: side by side, 96 px views are drawn smaller than 224 px ones."""
    for group in crop_pictures.view_groups(sample, shown.mean, shown.std, tile, 4, scale_side):
        if not group.images:
            st.caption(f"{group.label}: none")
            continue
        st.markdown(f"**{group.label}** · {len(group.images)} × {group.side} px")
        st.image(group.images, caption=group.captions, output_format="PNG", width=group.width)


if len(drawn) == 1:
    shown, image, sample = drawn[0]
    left, right = st.columns([5, 7], gap="large")
    left.image(
        crop_pictures.draw_crop_boxes(image, sample.records),
        caption=f"{shown.title}: crop boxes on the source",
    )
    with right:
        show_views(shown, sample, tile=200)
else:
    for column, (shown, image, sample) in zip(
        st.columns(len(drawn), gap="large"), drawn, strict=True
    ):
        with column:
            st.subheader(shown.title)
            st.image(crop_pictures.draw_crop_boxes(image, sample.records, longer_side=420))
            show_views(shown, sample, tile=150)

for shown, _, sample in drawn:
    for note in sample.notes:
        st.info(f"{shown.title}: {note}", icon=":material/info:")

st.subheader("Sampled parameters per view")
st.caption(
    "✓ applied · blank: not applied · –: not recorded. Jitter: the brightness, contrast and "
    "saturation factors and the hue shift drawn."
)
widths = {  # pixels: every column fits the page at 1400 px, a comparison's too
    "pipeline": 100,
    "view": 45,
    "scale": 58,
    "ratio": 58,
    "box (l, t, w, h)": 118,
    "out size": 68,
    "flip": 40,
    "jitter": 205,
    "grayscale": 42,
    "blur σ": 52,
    "solarize": 62,
    "fallback": 62,
}
st.dataframe(
    records_frame([(shown.title, sample.records) for shown, _, sample in drawn]),
    hide_index=True,
    key="insp_table",
    column_config={
        column: (
            st.column_config.NumberColumn(format="%.3f", width=width)
            if column in ("scale", "ratio")
            else st.column_config.TextColumn("gray" if column == "grayscale" else None, width=width)
        )
        for column, width in widths.items()
    },
)


st.subheader("Operations per view, in order")
st.caption(
    "What made each view, step by step, applied or not, with what it drew. For your own "
    "pipeline these are read from torchvision's transforms as they ran; a step dinodiag does "
    "not know (a hand-written class, a lambda) is judged from the change it made to the image, "
    "and says so when that cannot be told."
)
view_names = [view_name(r) for r in drawn[0][2].records]
which = st.selectbox("Views", ["every view", *view_names], key="insp_ops_view")
operations = operations_frame([(shown.title, sample.records) for shown, _, sample in drawn])
if which != "every view":
    operations = operations[operations["view"] == which]
st.dataframe(operations, hide_index=True, key="insp_ops")


def figure_png() -> bytes:
    panels = [(shown.title, image, sample, shown.mean, shown.std) for shown, image, sample in drawn]
    figure = crop_pictures.comparison_figure(panels, f"{where} · seed {draw_seed}")
    return crop_pictures.png_bytes(figure)


st.download_button(
    "Download figure (PNG)",
    figure_png,
    file_name=f"crops_seed{draw_seed}.png",
    mime="image/png",
    icon=":material/download:",
    key="insp_download",
)
