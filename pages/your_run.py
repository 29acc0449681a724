"""Your run: open a DINOv2 output directory (or a dinodiag run) and see why it does or does not
learn: a diagnosis in words from its log, its curves with dinodiag's charts (overlayable with
dinodiag's runs), its crop config checked, and what its checkpoints learned. The logic is in
``dinodiag.runs`` (dinov2_run, run_diagnosis, run_report, checkpoint_eval)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dinodiag import runs
from dinodiag.dashboard import curves as rc
from dinodiag.dashboard.labels import status_badge
from dinodiag.errors import DinodiagError
from dinodiag.runs import checkpoint_curve as curve
from dinodiag.runs import checkpoint_eval as ce
from dinodiag.runs.dinov2_run import open_run
from dinodiag.runs.dinov2_schedules import schedule_frames
from dinodiag.runs.opened_run import OpenedRun
from dinodiag.runs.run_diagnosis import diagnose
from dinodiag.runs.run_report import (
    check_crops,
    checkpoint_findings,
    default_reference,
    evaluation_line,
    summary_lines,
)
from dinodiag.runs.run_stamp import log_is_growing, run_stamp
from dinodiag.train.models.load import LoadedBackbone, load_backbone
from dinodiag.train.models.vit import VisionTransformer
from pages import _shared as ui
from pages import _training_charts as charts

TABS = ["Curves", "Crop config", "Checkpoints"]
PATH_KEY = "yr_path"
EVAL_IMAGES = curve.EVAL_IMAGES  # bank / test images at most of one checkpoint's k-NN
CURVES_KEY = "yr_curves"  # session: the k-NN of every checkpoint, per run, data and seed
TIMING = rc.Panel(
    "timing",
    "Iteration time and the part spent waiting for data (s)",
    ("iter_time", "data_time"),
    "train",
    False,
    False,
    "DINOv2's iter_time includes data_time: when data_time is most of it, the loader is the "
    "bottleneck.",
)


REFRESH_SECONDS = 10  # re-read a log that grows (a run still training) this often


@st.cache_data(max_entries=8, show_spinner="Reading the run directory…")
def cached_run(path: str, _stamp: tuple[float, ...], launch: int | None = None) -> OpenedRun:
    return open_run(path, launch=launch)


@st.cache_resource(max_entries=4, show_spinner="Loading the checkpoint…")
def cached_backbone(path: str, mtime: float) -> LoadedBackbone:
    return load_backbone(path)


@st.cache_data(max_entries=16, show_spinner="Evaluating the checkpoint…")
def cached_evaluation(path: str, mtime: float, data: str, seed: int) -> ce.CheckpointEvaluation:
    eval_data = ce.open_eval_data(data, bank_max=EVAL_IMAGES[0], test_max=EVAL_IMAGES[1], seed=seed)
    return ce.evaluate(cached_backbone(path, mtime), eval_data)


@st.cache_data(max_entries=8, show_spinner="Checking the crops…")
def cached_crop_report(run_key: str, data_key: str, expect: str, seed: int, _run, _dataset):
    return check_crops(_run, _dataset, expect=expect, seed=seed)


def diagnosis(run: OpenedRun) -> None:
    """What the log says: problems in full (evidence, what to try), passes folded away."""
    findings = diagnose(run) + checkpoint_findings(st.session_state.get("yr_evaluated", []))
    problems = [f for f in findings if f.level != "pass"]
    passes = [f for f in findings if f.level == "pass"]
    st.subheader("Diagnosis from the log")
    for finding in problems:
        st.markdown(f"{status_badge(finding.level)} **{finding.title}**  \n{finding.evidence}")
        if finding.advice:
            st.caption(f"Try: {finding.advice}")
    if passes:
        with st.expander(f"{len(passes)} rule(s) find nothing wrong", icon=":material/check:"):
            for finding in passes:
                st.markdown(
                    f"{status_badge(finding.level)} **{finding.title}**: {finding.evidence}"
                )


def curves_tab(run: OpenedRun) -> None:
    others = {r.run_id: r for r in runs.list_runs()}
    overlay = st.multiselect(
        "Overlay dinodiag runs",
        list(others),
        key="yr_overlay",
        help="Runs of the Training page, each in the colour it has there.",
    )
    options = charts.controls("yr")
    frames = {run.name: run.metrics, **{i: charts.metrics(others[i].path) for i in overlay}}
    ln_k = {run.name: run.num_prototypes} if run.num_prototypes else {}
    ln_k.update(charts.prototypes([others[i] for i in overlay]))
    common = {"options": options, "ln_k": ln_k, "key": "yr"}
    left, right = st.columns(2)
    with left:
        charts.panel(
            frames,
            rc.PANELS["loss"],
            **common,
            rules=rc.ln_k_lines(ln_k),
            note="Dashed: ln K of each run.",
        )
    with right:
        charts.panel(frames, TIMING if run.kind == "dinov2" else rc.PANELS["speed"], **common)
    schedules = schedule_frames(
        run.name, run.metrics, run.train_rows, run.dinov2_config, run.world_size
    )
    if len(schedules) == 1:  # nothing recomputed: the overlaid runs' own schedules too
        schedules = frames
    charts.panel(schedules, rc.PANELS["schedules"], **common)
    if run.dinov2_config is not None:
        st.caption(
            "Colours: the logged values and DINOv2's schedules recomputed from config.yaml; "
            "where the log follows the config the two lines coincide. DINOv2 does not log the "
            "teacher temperature: only the recomputed curve."
        )
    if run.kind == "dinodiag":
        charts.panel(frames, rc.PANELS["knn"], **common)


def crops_tab(run: OpenedRun, ctx: Any) -> None:
    if run.pipeline is None:
        st.info("The run names no crops (no config.yaml / config.json).", icon=":material/info:")
        return
    if ctx.dataset is None:
        st.error(f"The sidebar dataset is not usable: {ctx.dataset_error}", icon=":material/error:")
        return
    expect = default_reference(run)
    st.caption(f"{run.recipe}. Checked against `{expect}` on the sidebar's images.")
    report = cached_crop_report(
        f"{run.path}:{run_stamp(run.path)}", ctx.dataset_key, expect, ctx.seed, run, ctx.dataset
    )
    st.markdown(f"**Verdict:** {status_badge(report.verdict)}")
    for result in report.sorted():
        if result.status != "pass":
            st.markdown(f"{status_badge(result.status)} **{result.title}**: {result.message}")
    passed = [r.title for r in report.results if r.status == "pass"]
    st.caption(f"{len(passed)} checks pass: " + ", ".join(passed))


def checkpoints_tab(run: OpenedRun, ctx: Any) -> None:
    if not run.checkpoints:
        st.info(
            "No checkpoint in this directory: DINOv2 writes eval/training_<iter>/"
            "teacher_checkpoint.pth every evaluation.eval_period_iterations.",
            icon=":material/info:",
        )
        return
    spec, why = ctx.training_data()
    labels = {str(c.path): c.label for c in run.checkpoints}
    chosen = st.selectbox(
        "Checkpoint", list(labels)[::-1], format_func=labels.get, key="yr_checkpoint"
    )
    mtime = Path(chosen).stat().st_mtime
    try:
        backbone = cached_backbone(chosen, mtime)
    except DinodiagError as exc:
        ui.show_error(exc)
        return
    st.caption(f"{backbone.description}. " + " ".join(backbone.notes))
    if spec is None:
        st.warning(f"k-NN needs a dataset with splits: {why}", icon=":material/warning:")
    elif st.button("Evaluate on the sidebar dataset", key="yr_eval", icon=":material/play_arrow:"):
        try:
            result = cached_evaluation(chosen, mtime, spec, ctx.seed)
        except DinodiagError as exc:
            ui.show_error(exc)
        else:
            st.markdown(evaluation_line(result))
            for finding in checkpoint_findings([result]):
                if finding.level != "pass":
                    st.markdown(
                        f"{status_badge(finding.level)} **{finding.title}**  \n{finding.evidence}"
                    )
                    st.caption(f"Try: {finding.advice}")
            if result.note:
                st.caption(result.note)
    if spec is not None and len(run.checkpoints) > 1:
        curve_section(run, spec, ctx.seed)
    look_inside(backbone, ctx)


def curve_section(run: OpenedRun, spec: str, seed: int) -> None:
    """The k-NN of every checkpoint: evaluated in a process of its own (minutes for a dozen
    checkpoints), followed every second; the curve is kept in the session for this run."""
    wanted = json.dumps([str(run.path), run.launch, spec, seed])
    found = st.session_state.setdefault(CURVES_KEY, {}).get(wanted)
    if st.button("k-NN of every checkpoint", key="yr_curve", icon=":material/show_chart:"):
        if found and "job" in found:
            curve.discard_job(Path(found["job"]))
        job = curve.start_curve(run.path, spec, seed, launch=run.launch)
        found = st.session_state[CURVES_KEY][wanted] = {"job": str(job)}
    if not found:
        return
    if "job" in found:
        curve_progress(wanted, Path(found["job"]))
    elif "error" in found:
        st.error(
            f"**The k-NN of the checkpoints failed:** {found['error']}", icon=":material/error:"
        )
    else:
        knn_curve(run, pd.DataFrame(found["rows"]))


def curve_progress(wanted: str, job: Path) -> None:
    def answer(status: curve.CurveStatus) -> dict[str, Any]:
        if status.frame is None:
            return {"error": status.error or "its process ended without an answer"}
        return {"rows": status.frame.to_dict(orient="records")}

    ui.follow_job(
        lambda: curve.read_curve(job),
        lambda status: f"Evaluating the checkpoints: {status.line()}",
        answer,
        lambda found: st.session_state[CURVES_KEY].__setitem__(wanted, found),
        lambda: curve.discard_job(job),
    )


def knn_curve(run: OpenedRun, frame: pd.DataFrame) -> None:
    """The curve over checkpoints (collapsed checkpoints carry no k-NN: not drawn) and its
    table, from the rows of :func:`dinodiag.runs.checkpoint_eval.knn_frame`."""
    charts.panel({run.name: frame}, rc.PANELS["knn"], x="step", smoothing=0.0, key="yr_ckpt")
    if (frame["knn_status"] == "meaningless").any():
        st.warning(
            "Some checkpoints' features collapsed: their k-NN is meaningless and not drawn.",
            icon=":material/warning:",
        )
    st.dataframe(
        frame[
            [
                "label",
                "knn_top1",
                "knn_low",
                "knn_high",
                "test_images",
                "knn_status",
                "collapse",
                "feature_std",
                "effective_rank",
                "mean_cosine",
            ]
        ],
        hide_index=True,
        key="yr_curve_table",
    )


def look_inside(backbone: LoadedBackbone, ctx: Any) -> None:
    st.markdown("**Look inside** (CLS attention per head, patch-feature PCA)")
    if not isinstance(backbone.model, VisionTransformer):
        st.caption("A ResNet has no attention maps or patch tokens.")
        return
    if ctx.dataset is None or not len(ctx.dataset):
        st.caption("Choose images in the sidebar to look at.")
        return
    index = st.number_input(
        f"Image index (0–{len(ctx.dataset) - 1})", 0, len(ctx.dataset) - 1, 0, key="yr_image"
    )
    image, _ = ctx.dataset[int(index)]
    result = ce.inspect(backbone, image)
    cols = st.columns(3)
    cols[0].image(result.image, caption="input (centre square)", width="stretch")
    cols[1].image(result.mean_overlay, caption="CLS attention, mean of the heads", width="stretch")
    cols[2].image(
        result.pca_image, caption="patch features: first 3 PCA components", width="stretch"
    )
    st.image(
        result.head_overlays,
        width=120,
        caption=[f"head {i}" for i in range(len(result.head_overlays))],
    )


ctx = ui.context()
st.title("Your run")
st.markdown(
    "Open the output directory of **your DINOv2 training run** (`train.output_dir`: "
    "`training_metrics.json`, `config.yaml`, `eval/training_<iter>/teacher_checkpoint.pth`) or a "
    "dinodiag run directory. The same from a terminal: `python -m dinodiag open-run DIR`."
)
path_text = st.text_input(
    "Run directory", key=PATH_KEY, placeholder="/checkpoints/my_dinov2_run"
).strip()
ui.keep_place("your_run")  # ?dir=...: a reload or a shared link opens the same directory
if not path_text:
    st.info("Type the path of a run directory on this machine.", icon=":material/folder_open:")
    st.stop()
path = Path(path_text).expanduser()


def launch_choice(run: OpenedRun) -> int | None:
    """A picker for the launch of an appended log (default the last)."""
    if len(run.launches) < 2:
        return None
    labels = {launch.index: launch.line() for launch in run.launches}
    return st.selectbox(
        f"Launch ({len(run.launches)} appended in this log)",
        list(labels)[::-1],
        format_func=lambda i: labels[i][:160],
        key="yr_launch",
        help="DINOv2 appends every launch and resume to the same log; the last is diagnosed "
        "unless you pick another.",
    )


@st.fragment(run_every=REFRESH_SECONDS if path.is_dir() and log_is_growing(path) else None)
def report(path: Path) -> OpenedRun | None:
    try:
        first = cached_run(str(path), run_stamp(path))
        launch = launch_choice(first)
        run = first if launch is None else cached_run(str(path), run_stamp(path), launch)
    except DinodiagError as exc:
        ui.show_error(exc)
        return None
    if log_is_growing(path):
        st.caption(
            f"The log is growing: re-read every {REFRESH_SECONDS} s (like `open-run --follow`)."
        )
    st.code("\n".join(summary_lines(run)), language=None, wrap_lines=True)
    diagnosis(run)
    return run


run = report(path)
if run is None:
    st.stop()
tabs = dict(zip(TABS, st.tabs(TABS, key="yr_tab", on_change="rerun"), strict=True))
with tabs["Curves"]:
    if tabs["Curves"].open:
        curves_tab(run)
with tabs["Crop config"]:
    if tabs["Crop config"].open:
        crops_tab(run, ctx)
with tabs["Checkpoints"]:
    if tabs["Checkpoints"].open:
        checkpoints_tab(run, ctx)
