"""Sampled statistics: what the pipeline actually draws over many images."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dinodiag import stats
from dinodiag.dashboard import (
    comparisons,
    crop_pictures,
    labels,
    stats_charts,
    stats_histograms,
    stats_rates,
)
from dinodiag.errors import DinodiagError
from pages import _shared as ui

ctx = ui.require(
    "Sampled statistics",
    "Runs the pipeline on many images and records what it sampled. Wrong crop scales live here, "
    "not in the output tensors: a view of the right size and range can still come from the wrong "
    "crop. Shaded: the configured range; dashed: the reference range; hover a bar for its "
    "numbers.",
)

choices = comparisons.statistics_choices(ctx)
c_n, c_compare = st.columns([3, 2], vertical_alignment="bottom")
st.session_state.setdefault("stats_n", 500)  # set before the widget: tests may lower it
n_samples = c_n.slider("Samples (images drawn)", 50, 2000, step=50, key="stats_n")
compare = c_compare.selectbox(
    "Compare on the same images with", list(choices), format_func=choices.get, key="stats_compare"
)

repeats = labels.repeats_line(n_samples, len(ctx.dataset))
if repeats:
    st.caption(repeats)
shown = [comparisons.sidebar_pipeline(ctx)]
other = comparisons.statistics_comparison(compare, ctx)
if other is not None:
    shown.append(other)

frames: dict[str, pd.DataFrame] = {}
try:
    for run in shown:
        bar = st.progress(0.0, text=f"Sampling {n_samples} images through {run.title}…")

        def progress(done: int, total: int, bar: st.delta_generator.DeltaGenerator = bar) -> None:
            update = labels.sampling_progress(done, total)
            if update is not None:
                bar.progress(update[0], text=update[1])

        frames[run.title] = ui.sampled_frame(
            run.key, ctx.dataset_key, n_samples, ctx.seed, run.pipeline, ctx.dataset, progress
        )
        bar.empty()
except (DinodiagError, ValueError) as exc:
    ui.show_error(exc)
    st.stop()

main = frames[shown[0].title]
if main.empty:
    st.warning("The pipeline returned no view to measure.")
    st.stop()
if main["scale"].isna().all():
    st.warning(
        "No torchvision crop ran inside the pipeline: crop scales are not measured; the "
        "operation rates below still are."
    )

numbers = {name: labels.headline_numbers(frame) for name, frame in frames.items()}
head = numbers[shown[0].title]
second = numbers[shown[1].title] if other is not None else None
metrics = labels.headline_metrics(head, ctx.config, second, other.title if other else "")
for column, metric in zip(st.columns(len(metrics)), metrics, strict=True):
    column.metric(
        metric.label, metric.value, delta=metric.delta, delta_color="off", help=metric.help
    )
line = f"{int(head['samples'])} images, {int(head['views'])} views, seed {ctx.seed}"
if other is not None:
    line += f" · {labels.delta_line(shown[0].title, other.title)}"
st.caption(f"{line} · {ctx.pipeline_line}")

ref_ranges = stats_charts.config_ranges(ctx.reference_config)
configured = {  # your own pipeline's ranges: what its recorded RandomResizedCrop calls say
    run.title: stats_charts.config_ranges(run.config)
    if run.config is not None
    else stats_charts.recorded_ranges(frames[run.title])
    for run in shown
}
# One computation of the crops outside the reference's range: the charts' notes and the text.
outside = stats_charts.outside_shares(frames, ref_ranges)
histograms = stats_histograms.histograms(frames, configured, ref_ranges, outside, ctx.reference)
for row in range(0, len(histograms), 3):
    for column, chart in zip(st.columns(3), histograms[row : row + 3], strict=True):
        column.altair_chart(chart, width="stretch")
if outside:
    st.markdown(
        f"**Outside {ctx.reference}'s range** (the dashed lines):\n"
        + "\n".join(f"- {line}" for line in stats_charts.outside_lines(outside, ctx.reference))
    )

st.subheader("Summary per view group")
number = st.column_config.NumberColumn(format="%.3f")
pipeline_column = st.column_config.TextColumn(width="medium")  # "seed-broken" whole
summary = comparisons.per_pipeline(stats.summarize, shown, frames)
st.dataframe(
    summary,
    hide_index=True,
    key="stats_summary",
    height=35 * (len(summary) + 1) + 3,
    column_config={"pipeline": pipeline_column}
    | {c: number for c in ("min", "p05", "median", "p95", "max")},
)

st.subheader(f"Photometric operations per view: measured vs {ctx.reference}")
st.caption(
    "How often each operation applied to global view 1, global view 2 and the local views. "
    "Bars: measured; black tick: the reference's probability; grey band: the counts a correct "
    "pipeline gives at this sample size (binomial); red outline: far outside it."
)


def reference_rates(frame: pd.DataFrame, config: object) -> pd.DataFrame:
    return stats.rates(frame, config, ctx.reference_config)


rate_tables = {run.title: reference_rates(frames[run.title], run.config) for run in shown}
run_configs = {run.title: run.config for run in shown}
for column, chart in zip(
    st.columns(3), stats_rates.rates_charts(rate_tables, run_configs), strict=True
):
    column.altair_chart(chart, width="stretch")
rates = comparisons.per_pipeline(reference_rates, shown, frames)
rates = labels.with_interval(rates)  # low / high as one cell; "–" where there is none
bar = st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.2f")
first = ["kind", "operation", "measured", "expected", "interval", "configured", "verdict"]
st.dataframe(
    rates,
    hide_index=True,
    key="stats_rates",
    height=35 * min(len(rates) + 1, 20) + 3,
    column_order=[*first, *(c for c in rates.columns if c not in first)],
    column_config={
        "measured": bar,
        "configured": bar,
        "expected": bar,
        "pipeline": pipeline_column,
    },
)
untold = int(pd.to_numeric(main.get("unknown_steps"), errors="coerce").fillna(0).sum())
if untold:
    st.info(
        f"{untold} step(s) changed images in ways dinodiag could not tell: what they did is "
        "not counted above (see the crop inspector's operations table).",
        icon=":material/help:",
    )

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader(f"Drawn strengths vs {ctx.reference}")
    strengths = comparisons.per_pipeline(
        lambda frame, _config: stats.strengths(frame, ctx.reference_config), shown, frames
    )
    st.dataframe(
        strengths,
        hide_index=True,
        key="stats_strengths",
        column_config={"pipeline": pipeline_column} | {c: number for c in ("min", "max")},
    )
with right:
    st.subheader("Image sizes vs crop sizes")
    sizes = ui.image_sizes(ctx.dataset_key, ctx.dataset)
    g_side, l_side = stats_charts.crop_sides(ctx.config, main)
    st.image(crop_pictures.png_bytes(stats_charts.image_size_figure(sizes, g_side, l_side), dpi=80))
    st.caption(labels.upsampled_line(sizes, g_side))

raw = pd.concat([frame.assign(pipeline=name) for name, frame in frames.items()], ignore_index=True)
st.download_button(
    "Download raw samples (CSV)",
    lambda: raw.to_csv(index=False),
    mime="text/csv",
    file_name=f"dinodiag_samples_{n_samples}_seed{ctx.seed}.csv",
    icon=":material/download:",
    key="stats_csv",
)
