"""Crop inspector: the crops of one image, drawn on the source and shown view by view."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

import dinodiag
from dinodiag.dashboard import crop_pictures, labels, sidebar
from dinodiag.errors import DinodiagError
from pages import _shared as ui

ctx = ui.require(need_dataset=False, need_pipeline=False)
st.title("Crop inspector")
st.caption(
    "Every crop the pipeline cut from one image: boxes on the source (globals in orange / red, "
    "locals in cyan, numbered like the views), then each view as the model sees it "
    "(de-normalised), labelled with the parameters it was sampled with."
)

COMPARE = {
    "none": "Nothing: one pipeline",
    "reference": f"Reference ({ctx.reference})",
    "seed": "The seed's broken vs fixed pipelines",
}
c_image, c_upload, c_compare, c_draw = st.columns([3, 3, 3, 2], vertical_alignment="bottom")
upload = c_upload.file_uploader(
    "…or inspect your own image", type=["jpg", "jpeg", "png", "webp", "bmp"], key="insp_upload"
)
compare = c_compare.selectbox(
    "Side by side with", list(COMPARE), format_func=COMPARE.get, key="insp_compare"
)
if c_draw.button("Resample", icon=":material/casino:", type="primary", key="insp_resample"):
    st.session_state["insp_draw"] = st.session_state.get("insp_draw", 0) + 1
draw = st.session_state.get("insp_draw", 0)
draw_seed = ctx.seed * 100_003 + draw

try:
    if upload is not None:
        pairs = [(upload.name, upload.getvalue())]
        data_key = f"upload:{sidebar.upload_key(pairs)}"
        dataset = ui.cached_uploads(data_key, pairs)
    elif ctx.dataset is not None:
        dataset, data_key = ctx.dataset, ctx.dataset_key
    else:
        raise DinodiagError(
            f"{ctx.dataset_error} Fix the dataset in the sidebar, or upload an image here."
        )
except DinodiagError as exc:
    ui.show_error(exc)
    st.stop()

index = 0
if upload is None and len(dataset) > 1:
    last = len(dataset) - 1
    if last <= 400:
        index = c_image.slider("Image", 0, last, 0, key="insp_index")
    else:
        index = int(c_image.number_input(f"Image (0–{last})", 0, last, 0, key="insp_index_n"))

# The runs to show: (title, pipeline, cache key, mean, std).
runs: list[tuple[str, Any, str, Any, Any]] = []
if compare == "seed":
    for name in ("seed-broken", "seed-fixed"):
        cfg = dinodiag.get_preset(name).config
        runs.append(
            (name, dinodiag.build_pipeline(cfg), sidebar.config_key(cfg), cfg.mean, cfg.std)
        )
else:
    if ctx.pipeline is None:
        st.error(
            f"**Pipeline:** {ctx.pipeline_error} Fix it in the sidebar.", icon=":material/error:"
        )
        st.stop()
    mean, std = (ctx.config.mean, ctx.config.std) if ctx.config is not None else (None, None)
    runs.append((ctx.pipeline_label, ctx.pipeline, ctx.pipeline_key, mean, std))
    if compare == "reference":
        ref = ctx.reference_config
        runs.append(
            (
                f"reference: {ctx.reference}",
                dinodiag.build_pipeline(ref),
                sidebar.config_key(ref),
                ref.mean,
                ref.std,
            )
        )

drawn = []
try:
    for title, pipeline, key, mean, std in runs:
        image, sample, where = ui.draw_views(key, data_key, index, draw_seed, pipeline, dataset)
        drawn.append((title, image, sample, mean, std))
except DinodiagError as exc:
    ui.show_error(exc)
    st.stop()

image = drawn[0][1]
st.markdown(
    f"**{labels.short_source(where)}** · {image.size[0]} × {image.size[1]} px · draw #{draw} "
    f"(pipeline seed {draw_seed}) · same image and seed for every pipeline shown"
)


def show_views(sample: Any, mean: Any, std: Any, tile: int) -> None:
    """Global views then local views, shown at their relative output size."""
    views = crop_pictures.view_images(sample, mean, std)
    g_side = max((v.shape[-1] for v in sample.global_crops), default=1)
    for group, label in (("global", "Global crops"), ("local", "Local crops")):
        items = [(img, cap) for img, cap, rec in views if (rec.group if rec else "global") == group]
        if not items:
            st.caption(f"{label}: none")
            continue
        side = items[0][0].size[0]
        width = max(48, round(tile * side / g_side))
        st.markdown(f"**{label}** · {len(items)} × {side} px")
        st.image(
            [crop_pictures.with_margin(img, 4) for img, _ in items],
            caption=[cap for _, cap in items],
            output_format="PNG",
            width=width + 8,
        )


if len(drawn) == 1:
    title, image, sample, mean, std = drawn[0]
    left, right = st.columns([5, 7], gap="large")
    left.image(
        crop_pictures.draw_crop_boxes(image, sample.records),
        caption=f"{title}: crop boxes on the source",
    )
    with right:
        show_views(sample, mean, std, tile=200)
else:
    for column, (title, image, sample, mean, std) in zip(
        st.columns(len(drawn), gap="large"), drawn, strict=True
    ):
        with column:
            st.subheader(title)
            st.image(crop_pictures.draw_crop_boxes(image, sample.records, longer_side=420))
            show_views(sample, mean, std, tile=150)

for title, _, sample, _, _ in drawn:
    for note in sample.notes:
        st.info(f"{title}: {note}", icon=":material/info:")

st.subheader("Sampled parameters per view")
tables = []
for title, _, sample, _, _ in drawn:
    frame = pd.DataFrame(crop_pictures.records_table(sample.records))
    if len(drawn) > 1:
        frame.insert(0, "pipeline", title)
    tables.append(frame)
st.dataframe(
    pd.concat(tables, ignore_index=True),
    hide_index=True,
    key="insp_table",
    column_config={
        c: st.column_config.NumberColumn(format="%.3f")
        for c in ("scale", "ratio", "brightness", "contrast", "saturation", "hue", "blur σ")
    },
)


def figure_png() -> bytes:
    panels = [
        crop_pictures.inspector_figure(img, smp, m, s, title=f"{t} · {where} · seed {draw_seed}")
        for t, img, smp, m, s in drawn
    ]
    return crop_pictures.png_bytes(crop_pictures.side_by_side(panels))


st.download_button(
    "Download figure (PNG)",
    figure_png,
    file_name=f"crops_seed{draw_seed}.png",
    mime="image/png",
    icon=":material/download:",
    key="insp_download",
)
