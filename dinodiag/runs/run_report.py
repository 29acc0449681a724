"""Everything ``python -m dinodiag open-run DIR`` says about a run: the log's diagnosis, the
crop config checked like any config, and what the checkpoints have learned.

    report = build_report("/out/dinov2_run", data="sample", checkpoints="latest")
    print(report.to_text())
    report.verdict            # "fail" when a finding or a crop check fails
"""

from __future__ import annotations

import json
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
from dinodiag.runs.dinov2_run import RELEASED_PRESET, OpenedRun, open_run
from dinodiag.runs.findings import LEVELS, Finding, worst_level
from dinodiag.runs.run_diagnosis import diagnose
from dinodiag.train.models.load import CheckpointFile

CHECKPOINT_CHOICES = ("latest", "all", "none")  # or an iteration number / a file


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
    reference = load_config(expect)
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


@dataclass
class RunReport:
    """The diagnosis, crop check and checkpoint evaluations of one run."""

    run: OpenedRun
    findings: list[Finding]
    crops: CheckReport | None
    evaluations: list[CheckpointEvaluation] = field(default_factory=list)
    data: str = ""

    @property
    def verdict(self) -> str:
        """``fail`` when a finding or a crop check fails, else the worst of the rest."""
        levels = [worst_level(self.findings)]
        if self.crops is not None:
            levels.append({"skip": "pass"}.get(self.crops.verdict, self.crops.verdict))
        return min(levels, key=LEVELS.index)

    def to_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "run": str(run.path),
            "kind": run.kind,
            "verdict": self.verdict,
            "iterations_logged": int(len(run.train_rows)),
            "num_prototypes": run.num_prototypes,
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
        for f in self.findings:
            lines.append(f"  [{f.level.upper():4}] {f.title}")
            lines += _wrapped(f.evidence, "         ", width)
            if f.advice and f.level != "pass":
                lines += _wrapped(f"try: {f.advice}", "         ", width)
        lines += ["", "Crop config:"]
        if self.crops is None:
            lines.append("  not checked: the run names no crops (no config.yaml / config.json).")
        else:
            lines += _wrapped(self.run.recipe, "  ", width)
            lines += ["  " + line for line in self.crops.to_table(width - 2).splitlines()]
        lines += ["", f"Checkpoints (on {self.data or 'no data'}):"]
        if not self.evaluations:
            lines.append("  none evaluated.")
        for e in self.evaluations:
            lines.append(f"  {e.label}: {e.description}")
            lines.append("    " + evaluation_line(e))
            if e.note:
                lines += _wrapped(e.note, "    ", width)
        lines += ["", f"verdict: {self.verdict.upper()}"]
        return "\n".join(lines)


def _wrapped(text: str, indent: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent) or [indent]


def evaluation_line(e: CheckpointEvaluation) -> str:
    """``k-NN top-1 42.0% top-5 80.0% (k 20) | feature std 0.031 | effective rank 12.4 ...``"""
    knn = "k-NN: -"
    if e.knn_top1 is not None:
        knn = f"k-NN top-1 {e.knn_top1:.1f}% top-5 {e.knn_top5:.1f}% (k {e.knn_k})"
    return (
        f"{knn} | feature std {e.feature_std:.4f} | effective rank {e.effective_rank:.1f} of "
        f"{e.images} images | mean cosine {e.mean_cosine:.3f} | {e.image_size} px, "
        f"{e.seconds:.1f} s"
    )


def summary_lines(run: OpenedRun) -> list[str]:
    """What was read: the run, its log, its config and its checkpoints."""
    kind = "DINOv2 output directory" if run.kind == "dinov2" else "dinodiag run directory"
    rows = run.train_rows
    logged = "no iterations logged"
    if len(rows):
        steps = pd.to_numeric(rows["step"], errors="coerce")
        logged = f"{len(rows)} log rows, iterations {int(steps.min())}-{int(steps.max())}"
    facts = [f"run:         {run.path} ({kind})", f"log:         {logged}"]
    if run.dinov2_config is not None:
        world = f", {run.world_size} processes" if run.world_size else ""
        facts.append(
            f"config:      {run.dinov2_config.source} (K = {run.num_prototypes}, "
            f"epoch = {run.epoch_length} iterations{world})"
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
    data: str = "sample",
    checkpoints: str = "latest",
    expect: str | None = None,
    samples: int = 16,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    eval_data: EvalData | None = None,
) -> RunReport:
    """Open the run, diagnose its log, check its crops on ``data`` and evaluate the chosen
    checkpoints there (see :func:`choose_checkpoints`). ``progress`` receives a line per step."""
    from dinodiag.data import inspection_split, open_dataset

    say = progress or (lambda _line: None)
    run = open_run(path)
    findings = diagnose(run)
    dataset = open_dataset(data, split=inspection_split(data))
    crops = check_crops(run, dataset, expect=expect, samples=samples, seed=seed)
    report = RunReport(run, findings, crops, data=data)
    chosen = choose_checkpoints(run, checkpoints)
    if not chosen:
        return report
    eval_data = eval_data or open_eval_data(data, seed=seed)

    def step(i: int, n: int, checkpoint: CheckpointFile) -> None:
        say(f"evaluating {checkpoint.label} ({i + 1}/{n}) on {data}")

    try:
        report.evaluations = evaluate_checkpoints(chosen, eval_data, progress=step)
    except DinodiagError as exc:
        raise type(exc)(f"{exc} (--checkpoint none skips the evaluation)") from None
    return report
