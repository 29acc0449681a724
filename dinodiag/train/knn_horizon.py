"""Can a planned run conclude? Whether its k-NN test set can resolve a change at all, and
whether its steps are enough to move k-NN beyond the noise, from the evidence there is.

What is known before the run: the test images (``data.knn_test_max``, or fewer when the
validation split is smaller) and so the smallest change they resolve
(:func:`~dinodiag.train.eval.knn_noise.resolvable_points`). What is not: how many steps it
takes this model, data and recipe to move k-NN beyond that. That is only estimated from
evidence: earlier runs of the same preset and data on this machine (the step at which their
k-NN first moved beyond the noise), and the repository's benchmark of the preset
(``bench/results/<preset>.json``). Each statement names its evidence; without any it says so.

    evidence = runs_evidence("runs", "cpu-demo", "generated")
    judge_plan(planned_steps=50, knn_test=500, evidence=evidence, step_s=0.46).sentence()
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dinodiag import rundir
from dinodiag.train.estimate import TimeEstimate
from dinodiag.train.eval.knn_noise import (
    RESOLVE_POINTS,
    judge_change,
    min_test_images,
    resolvable_points,
)

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench" / "results"  # in a source checkout


@dataclass(frozen=True)
class Evidence:
    """Where k-NN first moved beyond its noise in earlier runs like this one."""

    source: str  # what it is, for a person ("bench/results/cpu_demo.json, 3 runs at 0cd7bdd")
    clear_steps: tuple[int, ...]  # per run that got there: the first step beyond the noise
    never: tuple[int, ...]  # per run that did not: its last evaluated step


def first_clear_step(curve: Sequence[tuple[int, float]], n_test: int | None) -> int | None:
    """The first step whose k-NN top-1 is up from step 0 beyond the noise (``curve``:
    ``(step, top1)`` in step order, step 0 first); None when none is."""
    if len(curve) < 2:
        return None
    start = curve[0][1]
    for step, top1 in curve[1:]:
        if judge_change(start, top1, n_test).status == "up":
            return int(step)
    return None


def _evidence(
    source: str, curves: Sequence[tuple[Sequence[tuple[int, float]], int | None]]
) -> Evidence | None:
    clear, never = [], []
    for curve, n_test in curves:
        if len(curve) < 2:
            continue
        step = first_clear_step(curve, n_test)
        if step is None:
            never.append(int(curve[-1][0]))
        else:
            clear.append(step)
    if not clear and not never:
        return None
    return Evidence(source, tuple(clear), tuple(never))


def bench_evidence(
    preset: str, knn_test: int | None, bench_dir: Path = BENCH_DIR
) -> Evidence | None:
    """The repository's benchmark of ``preset`` (``bench/results/<preset>.json``, each run's
    k-NN curve) judged on ``knn_test`` images (the benchmark records the preset's); None when
    there is none (an installed package has no ``bench/``)."""
    path = bench_dir / f"{preset.replace('-', '_')}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    curves = []
    for run in data.get("runs", []):
        curve = [(int(p["step"]), float(p["knn_top1"])) for p in run.get("curve", [])]
        curves.append((curve, knn_test))
    commit = data.get("commit", "?")
    source = f"bench/results/{path.name} ({len(curves)} {preset} runs at {commit})"
    return _evidence(source, curves)


def runs_evidence(root: str | Path, preset: str, data: str | None) -> Evidence | None:
    """Earlier runs of ``preset`` on ``data`` in the runs directory ``root`` (this machine):
    each run's k-NN curve judged on its own test images. None without such a run."""
    curves, names = [], []
    for path in rundir.scan_run_dirs(root)[0]:
        config = rundir.read_config(path) or {}
        if config.get("name") != preset or (config.get("data") or {}).get("data") != data:
            continue
        frame = rundir.read_metrics(path, kind="eval")
        if frame.empty or "knn_top1" not in frame:
            continue
        rows = frame.dropna(subset=["knn_top1"]).sort_values("step")
        curve = [(int(s), float(v)) for s, v in zip(rows["step"], rows["knn_top1"], strict=True)]
        tests = rows["knn_test"].dropna() if "knn_test" in rows else []
        curves.append((curve, int(tests.iloc[-1]) if len(tests) else None))
        names.append(path.name)
    if not curves:
        return None
    return _evidence(f"{len(curves)} earlier {preset} run(s) on {data} in {root}", curves)


@dataclass(frozen=True)
class PlanJudgement:
    """Whether a planned run can show k-NN learning beyond the noise."""

    status: str  # "no_knn" | "too_few_images" | "too_short" | "long_enough" | "unknown"
    planned_steps: int  # steps the run is expected to make (budget included)
    knn_test: int | None  # held-out images of its k-NN
    resolves: float | None  # smallest change (points) those images resolve
    evidence: tuple[Evidence, ...]  # what the step estimate rests on
    needed_steps: int | None  # the evidence's median first step beyond the noise
    needed_seconds: float | None  # that many steps here (set-up and k-NN included)

    @property
    def short_by(self) -> int | None:
        """Steps missing to reach :attr:`needed_steps` (0 when long enough)."""
        if self.needed_steps is None:
            return None
        return max(0, self.needed_steps - self.planned_steps)

    def sentence(self) -> str:
        """What a person reads before launching (one paragraph, no Markdown)."""
        if self.status == "no_knn":
            return "k-NN is off in this run: nothing will say whether it learns."
        images = f"{self.knn_test} test images"
        if self.status == "too_few_images":
            return (
                f"Too few test images to judge: k-NN on {images} cannot resolve a "
                f"{RESOLVE_POINTS:.0f}-point change (it takes {min_test_images()}; these resolve "
                f"{self.resolves:.0f} points). Raise data.knn_test_max or use data with a larger "
                "validation split."
            )
        noise = f"{images} resolve a change of {self.resolves:.1f} points"
        if not self.evidence:
            return (
                f"k-NN noise: {noise}. No earlier run of this preset and data here and no "
                f"benchmark: whether {self.planned_steps} steps move k-NN beyond that cannot be "
                "told before the run. The first k-NN evaluations will (the Live tab's verdict)."
            )
        sources = "; ".join(_evidence_text(e) for e in self.evidence)
        if self.needed_steps is None:
            return (
                f"k-NN noise: {noise}. Evidence: {sources}. No run there moved k-NN beyond the "
                f"noise, so how long is long enough is not known; {self.planned_steps} steps "
                "may well be too short."
            )
        where = f" (~{self.needed_seconds:.0f} s here)" if self.needed_seconds else ""
        if self.status == "too_short":
            return (
                f"Likely too short to judge: {noise}; k-NN moved beyond that by step "
                f"{self.needed_steps} (median) in {sources}. The planned {self.planned_steps} "
                f"steps are {self.short_by} short: plan at least {self.needed_steps} "
                f"steps{where}. An estimate: the step is that of their k-NN evaluation, and "
                "a shorter run also has a shorter lr schedule."
            )
        return (
            f"Long enough by the evidence: {noise}; k-NN moved beyond that by step "
            f"{self.needed_steps} (median) in {sources}; {self.planned_steps} steps are planned."
        )


def _evidence_text(evidence: Evidence) -> str:
    text = evidence.source
    if evidence.clear_steps:
        low, high = min(evidence.clear_steps), max(evidence.clear_steps)
        text += f", by step {low}" + (f"-{high}" if high != low else "")
    if evidence.never:
        text += f"; {len(evidence.never)} never did (by step {max(evidence.never)})"
    return text


def judge_plan(
    planned_steps: int,
    knn_test: int | None,
    evidence: Sequence[Evidence | None] = (),
    *,
    eval_every: int = 1,
    setup_s: float = 0.0,
    step_s: float | None = None,
    eval_s: float = 0.0,
) -> PlanJudgement:
    """Judge a plan of ``planned_steps`` with k-NN on ``knn_test`` images (``eval_every`` 0:
    k-NN off) against ``evidence``; ``step_s`` etc. (the estimate's) turn the steps it needs
    into seconds here."""
    found = tuple(e for e in evidence if e is not None)
    resolves = resolvable_points(knn_test)

    def judgement(
        status: str, needed: int | None = None, seconds: float | None = None
    ) -> PlanJudgement:
        return PlanJudgement(status, planned_steps, knn_test, resolves, found, needed, seconds)

    if not eval_every or not knn_test:
        return judgement("no_knn")
    if knn_test < min_test_images():
        return judgement("too_few_images")
    steps = [s for e in found for s in e.clear_steps]
    if not steps:
        return judgement("unknown")
    needed = int(statistics.median(steps))
    seconds = None
    if step_s is not None:
        evaluations = needed // eval_every if eval_every else 0
        seconds = setup_s + needed * step_s + evaluations * eval_s
    status = "too_short" if planned_steps < needed else "long_enough"
    return judgement(status, needed, seconds)


def judge_estimate(
    estimate: TimeEstimate, preset: str, data: str | None, runs_root: str | Path
) -> PlanJudgement:
    """:func:`judge_plan` of a measured run (``train --estimate``): its expected steps and test
    images, the evidence of earlier runs in ``runs_root`` and of the preset's benchmark, and
    the measured times to say how long the steps it needs take here."""
    evidence = [runs_evidence(runs_root, preset, data), bench_evidence(preset, estimate.knn_test)]
    return judge_plan(
        estimate.steps,
        estimate.knn_test,
        evidence,
        eval_every=estimate.eval_every,
        setup_s=estimate.setup_s,
        step_s=estimate.step_s,
        eval_s=estimate.eval_s,
    )
