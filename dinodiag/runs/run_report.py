"""Everything ``python -m dinodiag open-run DIR`` says about a run: the log's diagnosis, the
crop config checked like any config, and what the checkpoints have learned.

    report = build_report("/out/dinov2_run", data="sample", checkpoints="latest")
    print(report.to_text())
    report.verdict            # "fail" when a finding or a crop check fails
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS, get_preset, load_config
from dinodiag.checks.report import CheckReport
from dinodiag.checks.runner import run_checks
from dinodiag.errors import DinodiagError, TrainingError
from dinodiag.runs.checkpoint_eval import (
    CheckpointEvaluation,
    EvalData,
    evaluate_checkpoints,
    open_eval_data,
)
from dinodiag.runs.crop_config import NEEDS_IMAGES, config_findings, scaled_reference
from dinodiag.runs.dinov2_run import RELEASED_PRESET, open_run
from dinodiag.runs.findings import LEVELS, Finding, worst_level
from dinodiag.runs.opened_run import OpenedRun
from dinodiag.runs.run_diagnosis import diagnose
from dinodiag.train.eval.knn_noise import min_test_images
from dinodiag.train.models.load import CheckpointFile

CHECKPOINT_CHOICES = ("latest", "all", "none")  # or an iteration number / a file
# What checkpoints are evaluated on without --data: synthetic labelled shapes, enough held-out
# images (300 >= min_test_images) for a k-NN figure that resolves 10 points.
DEFAULT_EVAL_DATA = "generated:n=1000,val_n=300"


def default_reference(run: OpenedRun | None = None) -> str:
    """The recipe a run's crops are held against. A DINOv2 run: DINOv2 as its released code
    runs (``dinov2-released``: its crops, blur 0 / ~0.9 / 0.5), so that a failure is a change
    the user made, not the blur bug every run of that code shares. A dinodiag run: the reference
    preset it trained with, if any."""
    if run is not None and run.kind == "dinodiag" and run.pipeline is not None:
        name = run.pipeline.name
        if name in PRESETS and PRESETS[name].reference:
            return name
    return RELEASED_PRESET


def check_crops(
    run: OpenedRun,
    dataset: Any,
    *,
    expect: str | None = None,
    samples: int = 16,
    seed: int = 0,
) -> CheckReport | None:
    """dinodiag's pipeline checks on the crops the run trained with (:attr:`OpenedRun.pipeline`:
    ``config.yaml``'s ``crops:`` and the photometric rates of the code it names), against the
    reference ``expect`` (a preset name or a config file; default :func:`default_reference`).
    None when the run names no crops."""
    if run.pipeline is None:
        return None
    expect = expect or default_reference(run)
    reference, _ = scaled_reference(load_config(expect), run.pipeline)
    expect_name = get_preset(expect).name if Path(expect).suffix == "" else str(expect)
    return run_checks(
        build_pipeline(run.pipeline),
        dataset,
        expect=reference,
        expect_name=expect_name,
        config=run.pipeline,
        samples=samples,
        seed=seed,
        pipeline_name=run.pipeline.name,
        data_name=getattr(dataset, "name", None),
    )


def choose_checkpoints(run: OpenedRun, which: str) -> list[CheckpointFile]:
    """The checkpoints to evaluate: ``latest`` (default: the newest teacher checkpoint, else
    the newest of any kind), ``all`` (every teacher checkpoint, for the k-NN curve), ``none``,
    an iteration number, or a file. :class:`TrainingError` naming what exists otherwise."""
    found = run.checkpoints
    if which == "none":
        return []
    if which in ("latest", "all"):
        teachers = [c for c in found if c.kind in ("teacher", "dinodiag")] or found
        return teachers if which == "all" else teachers[-1:]
    if which.isdigit():
        chosen = [c for c in found if c.iteration == int(which)]
        if chosen:
            return chosen[:1]
        have = ", ".join(str(c.iteration) for c in found if c.iteration is not None) or "none"
        raise TrainingError(
            f"{run.path} has no checkpoint at iteration {which}; its checkpoints are at "
            f"iterations {have}."
        )
    path = Path(which).expanduser()
    if path.is_file():
        return [CheckpointFile(path, "file", None)]
    raise TrainingError(
        f"--checkpoint {which!r} is not one of {', '.join(CHECKPOINT_CHOICES)}, an iteration "
        "number or an existing checkpoint file."
    )


def config_crop_findings(run: OpenedRun, expect: str | None = None) -> tuple[list[Finding], str]:
    """The crop config judged from its values alone (no images), against the reference scaled
    to the run's resolution; and the note on the scaling ("" when none)."""
    if run.pipeline is None:
        return [], ""
    expect = expect or default_reference(run)
    reference, note = scaled_reference(load_config(expect), run.pipeline)
    name = get_preset(expect).name if Path(expect).suffix == "" else str(expect)
    return config_findings(run.pipeline, reference, name), note


def checkpoint_findings(evaluations: list[CheckpointEvaluation]) -> list[Finding]:
    """What the newest evaluated checkpoint's features say: collapse beats k-NN (a k-NN on
    collapsed features is meaningless), too few test images to judge, or the k-NN with its
    interval."""
    if not evaluations:
        return []
    e = evaluations[-1]
    facts = (
        f"{e.label}: feature std {e.feature_std:.4f}, effective rank {e.effective_rank:.1f}, "
        f"mean cosine {e.mean_cosine:.3f} over {e.images} images"
    )
    if e.collapse == "complete":
        return [
            Finding(
                "fail",
                "features_collapse",
                "Collapsed features: every image maps to the same feature",
                f"{facts}; the k-NN figure on them is meaningless and is not reported as accuracy.",
                "A complete (uniform or one-hot) collapse: check that the teacher is an EMA of "
                "the student, the centering is applied (train.centering), the teacher "
                "temperature warms up from 0.04, the batch is >= 64 per process and the lr is "
                "not too high; restart from a checkpoint before the collapse.",
            )
        ]
    if e.collapse == "dimensional":
        return [
            Finding(
                "warn",
                "features_collapse",
                "Dimensional collapse: the features span only a few directions",
                f"{facts}; the k-NN rests on {e.effective_rank:.1f} effective dimensions.",
                "Keep KoLeo on (dino.koleo_loss_weight 0.1), raise the batch, lower the lr; "
                "compare with an earlier checkpoint (--checkpoint all).",
            )
        ]
    found = [Finding("pass", "features_collapse", "The features are spread", facts + ".")]
    if e.knn_status == "too_few":
        found.append(
            Finding(
                "info",
                "knn_evidence",
                "Too few test images to judge the k-NN",
                f"k-NN top-1 {e.knn_top1:.1f}% on {e.test_images} test images (95% interval "
                f"{e.knn_low:.1f}-{e.knn_high:.1f}%).",
                f"Evaluate on a dataset with at least {min_test_images()} held-out images "
                "(--data DIR with class sub-folders).",
            )
        )
    return found


@dataclass
class RunReport:
    """The diagnosis, crop check and checkpoint evaluations of one run."""

    run: OpenedRun
    findings: list[Finding]
    crops: CheckReport | None
    evaluations: list[CheckpointEvaluation] = field(default_factory=list)
    data: str = ""
    crop_findings: list[Finding] = field(default_factory=list)  # config values only
    crop_note: str = ""  # how the reference was scaled, or ""
    eval_data: str = ""  # what the checkpoints were evaluated on

    @property
    def log_verdict(self) -> str:
        """The worst of the findings from the log and the checkpoints' features."""
        return worst_level(self.findings + checkpoint_findings(self.evaluations))

    @property
    def crop_verdict(self) -> str:
        """The crop check's verdict (on images with --data, else from the config values)."""
        if self.crops is not None:
            return {"skip": "pass"}.get(self.crops.verdict, self.crops.verdict)
        return worst_level(self.crop_findings)

    @property
    def verdict(self) -> str:
        """The worse of :attr:`log_verdict` and :attr:`crop_verdict`."""
        return min((self.log_verdict, self.crop_verdict), key=LEVELS.index)

    def to_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "run": str(run.path),
            "kind": run.kind,
            "verdict": self.verdict,
            "log_verdict": self.log_verdict,
            "crop_verdict": self.crop_verdict,
            "iterations_logged": int(len(run.train_rows)),
            "num_prototypes": run.num_prototypes,
            "sources": run.sources,
            "launch": None if run.launch is None else run.launch + 1,
            "launches": [asdict(launch) for launch in run.launches],
            "crop_findings": [asdict(f) for f in self.crop_findings],
            "checkpoint_findings": [asdict(f) for f in checkpoint_findings(self.evaluations)],
            "eval_data": self.eval_data,
            "world_size": run.world_size,
            "notes": run.notes,
            "findings": [asdict(f) for f in self.findings],
            "crops": self.crops.to_dict() if self.crops is not None else None,
            "crops_recipe": run.recipe,
            "checkpoints": [
                {"path": str(c.path), "kind": c.kind, "iteration": c.iteration}
                for c in run.checkpoints
            ],
            "evaluations": [asdict(e) for e in self.evaluations],
            "data": self.data,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def to_text(self, width: int = 100) -> str:
        lines = [*summary_lines(self.run), "", "Diagnosis from the log:"]
        lines += _finding_lines(self.findings, width)
        lines += ["", "Crop config:"]
        if self.run.pipeline is None:
            lines.append("  not checked: the run names no crops (no config.yaml / config.json).")
        elif self.crops is None:
            lines += _wrapped(f"from its values alone (no --data): {self.run.recipe}", "  ", width)
            if self.crop_note:
                lines += _wrapped(f"reference: {self.crop_note}", "  ", width)
            lines += _finding_lines(self.crop_findings, width)
            lines += _wrapped(f"not checked: {NEEDS_IMAGES}.", "  ", width)
        else:
            lines += _wrapped(f"on {self.data}: {self.run.recipe}", "  ", width)
            if self.crop_note:
                lines += _wrapped(f"reference: {self.crop_note}", "  ", width)
            lines += ["  " + line for line in self.crops.to_table(width - 2).splitlines()]
        lines += ["", f"Checkpoints (on {self.eval_data or 'no data'}):"]
        if not self.evaluations:
            lines.append("  none evaluated.")
        for e in self.evaluations:
            lines.append(f"  {e.label}: {e.description}")
            lines += _wrapped(evaluation_line(e), "    ", width)
            if e.note:
                lines += _wrapped(e.note, "    ", width)
        lines += _finding_lines(checkpoint_findings(self.evaluations), width)
        lines += [
            "",
            f"verdict: {self.verdict.upper()} (log and checkpoints: {self.log_verdict.upper()}; "
            f"crops: {self.crop_verdict.upper()})",
        ]
        return "\n".join(lines)


def _finding_lines(findings: list[Finding], width: int) -> list[str]:
    lines = []
    for f in findings:
        lines.append(f"  [{f.level.upper():4}] {f.title}")
        lines += _wrapped(f.evidence, "         ", width)
        if f.advice and f.level != "pass":
            lines += _wrapped(f"try: {f.advice}", "         ", width)
    return lines


def _wrapped(text: str, indent: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent) or [indent]


def evaluation_line(e: CheckpointEvaluation) -> str:
    """``k-NN top-1 42.0% (95% 37.8-46.4, 500 test / 2000 bank images) top-5 80.0% (k 20) |
    feature std ...``; on collapsed features or too few test images, the k-NN says so."""
    knn = "k-NN: -"
    if e.knn_top1 is not None:
        images = f"{e.test_images} test / {e.bank_images} bank images"
        if e.knn_status == "meaningless":
            knn = (
                f"k-NN meaningless: the features collapsed (top-1 {e.knn_top1:.1f}% on "
                f"{images} is an artefact of ties)"
            )
        else:
            knn = (
                f"k-NN top-1 {e.knn_top1:.1f}% (95% {e.knn_low:.1f}-{e.knn_high:.1f}, {images}) "
                f"top-5 {e.knn_top5:.1f}% (k {e.knn_k})"
            )
            if e.knn_status == "too_few":
                knn += f": too few test images to judge (fewer than {min_test_images()})"
    return (
        f"{knn} | feature std {e.feature_std:.4f} | effective rank {e.effective_rank:.1f} of "
        f"{e.images} images | mean cosine {e.mean_cosine:.3f} | {e.image_size} px, "
        f"{e.seconds:.1f} s"
    )


def summary_lines(run: OpenedRun) -> list[str]:
    """What was read: the run, its log (which files, which launch), its config and K (with
    their sources) and its checkpoints."""
    kind = {"dinov3": "dinov3", "dino": "DINO v1"}.get(run.flavour, "DINOv2")
    kind = f"{kind} output directory" if run.kind == "dinov2" else "dinodiag run directory"
    rows = run.train_rows
    logged = "no iterations logged"
    if len(rows):
        steps = pd.to_numeric(rows["step"], errors="coerce")
        unit = "epochs" if run.flavour == "dino" else "iterations"
        logged = f"{len(rows)} log rows, {unit} {int(steps.min())}-{int(steps.max())}"
        if run.sources.get("log"):
            logged += f" (from {run.sources['log']})"
    if len(run.launches) > 1 and run.launch is not None:
        logged += f"; launch {run.launch + 1} of {len(run.launches)} appended launches"
    facts = [f"run:         {run.path} ({kind})", f"log:         {logged}"]
    if run.dinov2_config is not None:
        world = f", {run.world_size} processes" if run.world_size else ""
        planned = f", {run.planned_iterations} planned" if run.planned_iterations else ""
        facts.append(
            f"config:      {run.dinov2_config.source} (epoch = {run.epoch_length} "
            f"iterations{planned}{world})"
        )
    if run.num_prototypes:
        source = run.sources.get("num_prototypes")
        facts.append(
            f"K:           {run.num_prototypes} (ln K = {math.log(run.num_prototypes):.4f})"
            + (f", from {source}" if source else "")
        )
    kinds: dict[str, list[str]] = {}
    for c in run.checkpoints:
        kinds.setdefault(c.kind, []).append("?" if c.iteration is None else str(c.iteration))
    listed = "; ".join(f"{len(v)} {k} ({', '.join(v[-6:])})" for k, v in kinds.items())
    facts.append(f"checkpoints: {listed or 'none'}")
    facts += [f"note:        {n}" for n in run.notes]
    return facts


def build_report(
    path: str | Path,
    *,
    data: str | None = None,
    checkpoints: str = "latest",
    expect: str | None = None,
    samples: int = 16,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    eval_data: EvalData | None = None,
    launch: int | None = None,
    num_prototypes: int | None = None,
) -> RunReport:
    """Open the run, diagnose its log (``launch``: 0-based, default the last), judge its crops
    (on ``data`` when given, else from the config values alone) and evaluate the chosen
    checkpoints (see :func:`choose_checkpoints`) on ``data``, else on
    :data:`DEFAULT_EVAL_DATA`. ``progress`` receives a line per step."""
    from dinodiag.data import inspection_split, open_dataset

    say = progress or (lambda _line: None)
    run = open_run(path, launch=launch, num_prototypes=num_prototypes)
    findings = diagnose(run)
    crops = None
    if data is not None:
        dataset = open_dataset(data, split=inspection_split(data))
        crops = check_crops(run, dataset, expect=expect, samples=samples, seed=seed)
    crop_findings, crop_note = config_crop_findings(run, expect)
    report = RunReport(
        run, findings, crops, data=data or "", crop_findings=crop_findings, crop_note=crop_note
    )
    chosen = choose_checkpoints(run, checkpoints)
    if not chosen:
        return report
    spec = data or DEFAULT_EVAL_DATA
    report.eval_data = spec if data else f"{spec} (synthetic shapes: --data DIR for your images)"
    eval_data = eval_data or open_eval_data(spec, seed=seed)

    def step(i: int, n: int, checkpoint: CheckpointFile) -> None:
        say(f"evaluating {checkpoint.label} ({i + 1}/{n}) on {spec}")

    try:
        report.evaluations = evaluate_checkpoints(chosen, eval_data, progress=step)
    except DinodiagError as exc:
        raise type(exc)(f"{exc} (--checkpoint none skips the evaluation)") from None
    return report
