"""Validation: every check of dinodiag.checks.runner in one click, failing checks first, and
the fixes: the corrected config, its diff, as dinodiag YAML or a DINOv2 ``crops:`` section."""

from __future__ import annotations

import streamlit as st

from dinodiag.augment.presets import get_preset
from dinodiag.checks.fixes import compact_yaml, dinov2_section, plan_fixes
from dinodiag.checks.runner import run_checks
from dinodiag.dashboard import labels, saved_validations
from dinodiag.dashboard.progress import CountingPipeline, progress_text
from dinodiag.errors import DinodiagError
from pages import _shared as ui

CONFIG_KEY = "val_config"  # session_state: the config the last report checked (None: your code)
AUTORUN_KEY = "val_autorun"  # session_state: run the checks on the next run (after a reload)
MAX_SAMPLES = 256  # images the checks sample at most (about a minute on two cores)


def load_into_sidebar(text: str) -> None:
    """on_click of "Load into the sidebar": the corrected config becomes the pasted config
    (widget state may only change in a callback, before the widgets are drawn)."""
    st.session_state["pl_source"] = "config"
    st.session_state["pl_text"] = text
    st.session_state["pl_prefer"] = "text"  # used even when a config file is uploaded
    st.session_state[AUTORUN_KEY] = True
    st.session_state.pop("val_fix_shown", None)


ctx = ui.require(
    "Validation",
    "One click runs every check on a few images: view count and sizes, value range and "
    "normalisation, the crop scales actually sampled, local vs global size, upsampling, "
    "determinism, how often each photometric operation ran per view and how strong it was, "
    "batching, and how the config differs from the reference recipe.",
)

c_run, c_samples, c_info = st.columns([2, 3, 5], vertical_alignment="bottom")
st.session_state.setdefault("val_samples", 16)  # set before the widget: tests may change it
asked = c_samples.number_input(  # no max_value: a box refusing 99999 keeps its hint over it
    "Images to sample",
    min_value=1,
    step=4,
    key="val_samples",
    help=f"1 to {MAX_SAMPLES}. More images make the rates and scales more certain; "
    f"{MAX_SAMPLES} take about a minute on two cores (a bar shows how far it is).",
)
samples = min(int(asked), MAX_SAMPLES)
if asked > MAX_SAMPLES:
    st.caption(
        f"{int(asked):,} images asked: the checks sample at most {MAX_SAMPLES}; "
        f"using {MAX_SAMPLES}."
    )
c_info.markdown(f"`{ctx.pipeline_label}` against **{ctx.reference}** · seed {ctx.seed}")
signature = (ctx.pipeline_key, ctx.dataset_key, ctx.reference, ctx.seed, int(samples))
repeats = labels.repeats_line(int(samples), len(ctx.dataset))
if repeats:
    st.caption(repeats)

clicked = c_run.button(
    "Run all checks", type="primary", icon=":material/play_arrow:", key="val_run"
)
if clicked or st.session_state.pop(AUTORUN_KEY, False):
    bar = st.progress(0.0, text="Checking…")

    def report_progress(done: int, total: int, elapsed: float) -> None:
        bar.progress(done / total, text=progress_text(done, total, elapsed))

    try:
        report = run_checks(
            CountingPipeline(ctx.pipeline, int(samples), report_progress),
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
        st.session_state[CONFIG_KEY] = ctx.config
        st.session_state.pop("val_fix_shown", None)
        saved_validations.save(signature, report)  # Home and this page find it after a reload
    except (DinodiagError, ValueError) as exc:
        st.session_state.pop(ui.REPORT_KEY, None)
        ui.show_error(exc)
        st.stop()
    finally:
        bar.empty()

if ui.REPORT_KEY not in st.session_state:  # a reload: this choice's report, when one was saved
    found = saved_validations.latest(signature)
    if found is not None and labels.validation_staleness(found[1], signature) is None:
        st.session_state[ui.REPORT_KEY], st.session_state["val_signature"] = found
        st.session_state[CONFIG_KEY] = ctx.config
report = st.session_state.get(ui.REPORT_KEY)
if report is None:
    on_broken = ctx.choice.source == "preset" and ctx.choice.preset == "seed-broken"
    hint = "" if on_broken else " Try the preset `seed-broken` to see what a broken one looks like."
    st.info(f"Press **Run all checks**.{hint}", icon=":material/info:")
    st.stop()
current = st.session_state.get("val_signature") == signature
if not current:
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

# ------------------------------------------------------------------------------ the fixes
st.subheader("Apply the fixes")
checked = st.session_state.get(CONFIG_KEY)
if report.verdict == "pass":
    st.caption("Nothing to fix: every check passes.")
    st.stop()
if checked is None:
    st.info(
        "This pipeline is your own code: dinodiag cannot rewrite it. Each failing or warning "
        "row above says what to change; `python -m dinodiag check --preset "
        f"{ctx.reference} --write-fixed crops.yaml --fixed-format dinov2` writes the "
        "reference's crops to compare with.",
        icon=":material/code:",
    )
    st.stop()
c_apply, c_warn, c_size = st.columns([2, 2.5, 2.5], vertical_alignment="center")
with_warnings = c_warn.toggle(
    "Fix the warnings too", value=True, key="val_fix_warn", help="Off: only failing checks."
)
small_images = any(r.id == "source_size" and r.status != "pass" for r in report.results)
keep_size = c_size.toggle(
    f"Keep my resolution ({checked.global_crops_size} px)",
    value=small_images,
    key="val_fix_size",
    help=f"Scale {report.expected}'s crop sizes to your global size (patch-aligned) instead "
    "of raising yours to the reference's: for a dataset of small images, where larger crops "
    "would only upsample them. On by default when the images are smaller than the crops.",
)
if c_apply.button("Apply the fixes", icon=":material/build:", key="val_fix", type="primary"):
    st.session_state["val_fix_shown"] = True
if not st.session_state.get("val_fix_shown"):
    st.caption(
        "One click makes the corrected config: every value a failing (and warning) check "
        f"judged set to {report.expected}'s, with the diff, to download as dinodiag YAML or "
        "as the crops: section of a DINOv2 config, or to load into the sidebar and re-check."
    )
    st.stop()
reference_config = get_preset(report.expected).config
levels = ("fail", "warn") if with_warnings else ("fail",)
plan = plan_fixes(report, checked, reference_config, report.expected, levels, keep_size)
if plan.resolution:
    st.caption(
        f"{plan.resolution[0].upper()}{plan.resolution[1:]}. A re-check against "
        f"{report.expected} still names the size difference: that is the resolution you keep."
    )
if not plan.fixes:
    st.success("No config value to change for these checks.", icon=":material/check:")
else:
    st.dataframe(plan.rows(), hide_index=True, key="val_fix_table")
    st.code(plan.diff(), language="diff")
for check, status, message in plan.left:
    st.warning(
        f"{labels.status_badge(status)} `{check}` is not fixed by a config value: {message}",
        icon=":material/report:",
    )
fixed_yaml = compact_yaml(plan.fixed)
c_yaml, c_dinov2, c_load = st.columns(3)
c_yaml.download_button(
    "Download (dinodiag YAML)",
    fixed_yaml,
    file_name=f"{plan.fixed.name}.yaml",
    mime="text/yaml",
    icon=":material/download:",
    key="val_fix_yaml",
)
c_dinov2.download_button(
    "Download (DINOv2 crops:)",
    dinov2_section(plan.fixed, plan),
    file_name=f"{plan.fixed.name}-dinov2-crops.yaml",
    mime="text/yaml",
    icon=":material/download:",
    key="val_fix_dinov2",
    help="The crops: section and student.patch_size, to paste into your DINOv2 training "
    "config; values a DINOv2 config cannot set are listed as comments.",
)
c_load.button(
    "Load into the sidebar and re-check",
    icon=":material/refresh:",
    key="val_fix_load",
    on_click=load_into_sidebar,
    args=(fixed_yaml,),
)
code_only = plan.code_only()
if code_only:
    st.caption(
        "A DINOv2 config cannot set "
        + ", ".join(f"`{fix.field}`" for fix in code_only)
        + ": DINOv2's augmentation code fixes them (the DINOv2 download lists them as comments)."
    )
