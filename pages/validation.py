"""Validation: every check of dinodiag.checks.runner in one click, failing checks first."""

from __future__ import annotations

import streamlit as st

from dinodiag.checks.runner import run_checks
from dinodiag.dashboard import labels
from dinodiag.errors import DinodiagError
from pages import _shared as ui

ctx = ui.require()
st.title("Validation")
st.caption(
    "One click runs every check on a few images: view count and sizes, value range and "
    "normalisation, the crop scales actually sampled, local vs global size, upsampling, "
    "determinism, how often each photometric operation ran per view and how strong it was, "
    "batching, and how the config differs from the reference recipe."
)

c_run, c_samples, c_info = st.columns([2, 2, 5], vertical_alignment="bottom")
samples = c_samples.number_input("Images to sample", 1, 256, 16, step=4, key="val_samples")
c_info.markdown(f"`{ctx.pipeline_label}` against **{ctx.reference}** · seed {ctx.seed}")
signature = (ctx.pipeline_key, ctx.dataset_key, ctx.reference, int(samples), ctx.seed)

if c_run.button("Run all checks", type="primary", icon=":material/play_arrow:", key="val_run"):
    try:
        with st.spinner("Running the checks…"):
            report = run_checks(
                ctx.pipeline,
                ctx.dataset,
                expect=ctx.reference_config,
                expect_name=ctx.reference,
                config=ctx.config,
                samples=int(samples),
                seed=ctx.seed,
                pipeline_name=ctx.pipeline_label,
                data_name=getattr(ctx.dataset, "name", None),
            )
        st.session_state[ui.REPORT_KEY] = report
        st.session_state["val_signature"] = signature
    except (DinodiagError, ValueError) as exc:
        st.session_state.pop(ui.REPORT_KEY, None)
        ui.show_error(exc)
        st.stop()

report = st.session_state.get(ui.REPORT_KEY)
if report is None:
    st.info(
        "Press **Run all checks**. Try the preset `seed-broken` to see what a broken "
        "pipeline looks like.",
        icon=":material/info:",
    )
    st.stop()
if st.session_state.get("val_signature") != signature:
    st.warning(
        "These results are for an earlier sidebar choice; press **Run all checks** again.",
        icon=":material/history:",
    )

counts = report.counts()
with st.container(border=True):
    c_verdict, *c_counts = st.columns([4, 1, 1, 1, 1])
    c_verdict.markdown(f"### Verdict {labels.status_badge(report.verdict)}")
    verdict = labels.VERDICT_SENTENCES[report.verdict]
    c_verdict.markdown(f"`{report.pipeline}` against `{report.expected}`: {verdict}")
    c_verdict.caption(f"{report.data} · {report.samples} images · seed {report.seed}")
    for column, status in zip(c_counts, ("fail", "warn", "pass", "skip"), strict=True):
        column.metric(status.upper(), counts.get(status, 0))

st.markdown(labels.report_markdown_table(report))
for note in report.notes:
    st.info(note, icon=":material/info:")
if report.unusable_files:
    with st.expander(f"{len(report.unusable_files)} unusable file(s) in the dataset, skipped"):
        st.dataframe(report.unusable_files, hide_index=True, key="val_unusable")

c_json, c_md, _ = st.columns([1, 1, 2])
c_json.download_button(
    "Download report (JSON)",
    report.to_json(),
    file_name="dinodiag_report.json",
    mime="application/json",
    icon=":material/download:",
    key="val_json",
)
c_md.download_button(
    "Download report (Markdown)",
    report.to_markdown(),
    file_name="dinodiag_report.md",
    mime="text/markdown",
    icon=":material/download:",
    key="val_md",
)
