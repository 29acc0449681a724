"""Sampled statistics: what the pipeline actually draws over many images."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

import dinodiag
from dinodiag import stats
from dinodiag.dashboard import crop_pictures, labels, sidebar, stats_charts
from dinodiag.errors import DinodiagError
from pages import _shared as ui

ctx = ui.require()
st.title("Sampled statistics")
st.caption(
    "Runs the pipeline on many images and records what it sampled. Wrong crop scales live here, "
    "not in the output tensors: a view of the right size and range can still come from the wrong "
    "crop. Shaded: the configured range; dashed: the reference range."
)

presets = [name for name in dinodiag.PRESETS if name != ctx.pipeline_label]
options = ["none", "reference", *presets]
choice_names = {
    "none": "Nothing",
    "reference": f"Reference ({ctx.reference})",
    **{p: p for p in presets},
}
c_n, c_compare = st.columns([3, 2], vertical_alignment="bottom")
st.session_state.setdefault("stats_n", 500)  # set before the widget: tests may lower it
n_samples = c_n.slider("Samples (images drawn)", 50, 2000, step=50, key="stats_n")
compare = c_compare.selectbox(
    "Compare on the same images with", options, format_func=choice_names.get, key="stats_compare"
)

runs = [(ctx.pipeline_label, ctx.pipeline, ctx.pipeline_key, ctx.config)]
if compare != "none":
    other = ctx.reference_config if compare == "reference" else dinodiag.get_preset(compare).config
    name = f"{other.name} (reference)" if compare == "reference" else other.name
    if name == runs[0][0]:
        name += " (2)"
    runs.append((name, dinodiag.build_pipeline(other), sidebar.config_key(other), other))

frames: dict[str, pd.DataFrame] = {}
try:
    for name, pipeline, key, _ in runs:
        bar = st.progress(0.0, text=f"Sampling {n_samples} images through {name}…")

        def progress(done: int, total: int, bar: st.delta_generator.DeltaGenerator = bar) -> None:
            if done % 25 == 0 or done == total:
                bar.progress(done / total, text=f"Sampling: {done} / {total} images")

        frames[name] = ui.sampled_frame(
            key, ctx.dataset_key, n_samples, ctx.seed, pipeline, ctx.dataset, progress
        )
        bar.empty()
except (DinodiagError, ValueError) as exc:
    ui.show_error(exc)
    st.stop()

main_name, main = runs[0][0], frames[runs[0][0]]
if main.empty:
    st.warning("The pipeline recorded no crop: nothing to measure (no RandomResizedCrop inside).")
    st.stop()


def fmt(value: float, pattern: str = "{:.2f}") -> str:
    return "–" if value is None or math.isnan(value) else pattern.format(value)


numbers = {name: labels.headline_numbers(frame) for name, frame in frames.items()}
head = numbers[main_name]
second = numbers[runs[1][0]] if len(runs) > 1 else None
cfg = ctx.config
metrics = [
    (
        "Global scale",
        "global_scale",
        "{:.2f}",
        f"median; configured {cfg.global_crops_scale[0]:g}–{cfg.global_crops_scale[1]:g}"
        if cfg
        else "median",
    ),
    (
        "Local scale",
        "local_scale",
        "{:.2f}",
        f"median; configured {cfg.local_crops_scale[0]:g}–{cfg.local_crops_scale[1]:g}"
        if cfg
        else "median",
    ),
    (
        "Local upsampling",
        "local_upsampling",
        "{:.1f}×",
        "median over local crops: output side / crop side in source pixels",
    ),
    ("Global-pair IoU", "global_iou", "{:.2f}", "median overlap (IoU) of the two global crops"),
    ("Fallback rate", "fallback_rate", "{:.1%}", "RandomResizedCrop gave up and centre-cropped"),
]
for column, (label, key, pattern, help_text) in zip(st.columns(len(metrics)), metrics, strict=True):
    delta = None
    if second is not None and not math.isnan(second[key]) and not math.isnan(head[key]):
        delta = f"{fmt(head[key] - second[key], '{:+.2f}')} vs {runs[1][0]}"
    column.metric(label, fmt(head[key], pattern), delta=delta, delta_color="off", help=help_text)
st.caption(
    f"{int(head['samples'])} images, {int(head['views'])} views, seed {ctx.seed} · "
    f"{ctx.pipeline_line}"
)

ref_ranges = stats_charts.config_ranges(ctx.reference_config)
configured = {
    name: stats_charts.config_ranges(config) for name, _, _, config in runs if config is not None
}


@st.cache_data(show_spinner=False, max_entries=16)
def histogram_png(
    keys: tuple[str, ...], _frames: dict, _configured: dict, _reference: dict
) -> bytes:
    return crop_pictures.png_bytes(
        stats_charts.stats_figure(_frames, _configured, _reference), dpi=90
    )


hist_key = tuple(f"{key}|{ctx.dataset_key}|{n_samples}|{ctx.seed}" for _, _, key, _ in runs) + (
    ctx.reference,
)
st.image(histogram_png(hist_key, frames, configured, ref_ranges), width="stretch")

st.subheader("Summary per view group")
summaries = []
for name, _, _, config in runs:
    summary = stats.summarize(frames[name], config)
    summary.insert(0, "pipeline", name)
    summaries.append(summary)
number = st.column_config.NumberColumn(format="%.3f")
summary = pd.concat(summaries, ignore_index=True)
st.dataframe(
    summary,
    hide_index=True,
    key="stats_summary",
    height=35 * (len(summary) + 1) + 3,
    column_config={c: number for c in ("min", "p05", "median", "p95", "max")},
)

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Photometric operations: measured vs configured")
    rate_tables = []
    for name, _, _, config in runs:
        table = stats.rates(frames[name], config)
        table.insert(0, "pipeline", name)
        rate_tables.append(table)
    rates = pd.concat(rate_tables, ignore_index=True)
    bar = st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.2f")
    st.dataframe(
        rates,
        hide_index=True,
        key="stats_rates",
        height=35 * min(len(rates) + 1, 20) + 3,
        column_config={"measured": bar, "configured": bar},
    )
with right:
    st.subheader("Image sizes vs crop sizes")
    sizes = ui.image_sizes(ctx.dataset_key, ctx.dataset)
    g_side = cfg.global_crops_size if cfg else int(main[main["group"] == "global"]["out_w"].max())
    l_side = cfg.local_crops_size if cfg else None
    st.image(crop_pictures.png_bytes(stats_charts.image_size_figure(sizes, g_side, l_side), dpi=80))
    share = labels.share_smaller(sizes, g_side)
    st.caption(
        f"{fmt(share, '{:.0%}')} of {len(sizes)} images have a shorter side below the "
        f"{g_side} px global crop: every global crop of those is upsampled."
    )

raw = pd.concat([frame.assign(pipeline=name) for name, frame in frames.items()], ignore_index=True)
st.download_button(
    "Download raw samples (CSV)",
    lambda: raw.to_csv(index=False),
    mime="text/csv",
    file_name=f"dinodiag_samples_{n_samples}_seed{ctx.seed}.csv",
    icon=":material/download:",
    key="stats_csv",
)
