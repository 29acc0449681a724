"""Yours vs the reference: two short runs that differ only in their pipeline, and the verdict.

The same training preset, data, model, seed and number of steps; one run trains your pipeline
(the sidebar's recipe or your own code), the other the reference recipe scaled to the same
crop sizes. With a time budget, one after the other (the queue), yours trains within the
budget and the reference then trains exactly as many steps as yours reached, without a time
limit (:func:`dinodiag.runs.manager.match_steps`): the steps are equal whatever each pipeline
costs. Both at once, each stops at the budget and their steps may differ (the page says so).
The seed story is one instance: the seed's broken pipeline as "yours", its fixed one as the
reference. The dashboard's "Yours vs reference" tab starts them and shows the verdict.

    base = with_own_pipeline(get_train_preset("cpu-demo").config, "my_aug.py:build")
    plans = versus_plans(base, get_preset("dinov2").config, steps=200, max_seconds=300)
    start_versus(plans, together=False)                 # two run directories, one queue
    members = latest_story(runs.list_runs())            # {"yours": RunInfo, "reference": ...}
    level, sentence = versus_verdict(yours_metrics, reference_metrics)
    verdict_band(yours_metrics, reference_metrics)      # the noise band the verdict uses

The verdict reads the k-NN gain of each run over its step-0 baseline and compares it with the
k-NN's own noise (binomial on the held-out images, :mod:`dinodiag.train.eval.knn_noise`, the
one rule every page uses): a gain or a difference under twice its noise is not a result, nor
is any gain on fewer test images than resolve 10 points, and the verdict says so.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from dinodiag import rundir
from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.presets import get_preset
from dinodiag.errors import ConfigError
from dinodiag.probe.spec import is_pipeline_spec
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.plan import RunPlan, scaled_pipeline
from dinodiag.runs import manager
from dinodiag.runs.run_plan import plan_run, preset_plan, recipe_overrides, reference_at
from dinodiag.train.eval.knn_noise import CLEAR, KnnChange, judge_change, knn_noise, min_test_images

ROLES = ("yours", "reference")
LEGACY_ROLES = {"broken": "yours", "fixed": "reference"}  # roles of stories before "versus"
STORY_PIPELINES = {"yours": "seed-broken", "reference": "seed-fixed"}  # the seed story's recipes
ROLE_LABELS = {"yours": "yours", "reference": "the reference"}
SEED_LABELS = {"yours": "broken (seed-broken)", "reference": "fixed (seed-fixed)"}
STORY_PRESET = "cpu-demo"  # the training preset both runs use: minutes on 2 CPU cores
STORY_STEPS = 100  # default length of each run (steps): ~2 + 5 min on 2 free cores
VERSUS_STEPS = 300  # default length of a "yours vs reference" run
VERSUS_SECONDS = 300  # and its default time budget (s), set-up and k-NN included


def story_pipeline(role: str, global_size: int, patch_size: int) -> PipelineConfig:
    """The seed's broken ("yours") / fixed ("reference") recipe at ``global_size`` px (the
    seed used 96 px).

    Counts and scales are the seed's (broken: 2 views, global 0.2-1, no locals; fixed: 2 + 8
    locals, 0.4-1 / 0.05-0.4), globals and locals at the same size, as in the seed.
    """
    recipe = get_preset(STORY_PIPELINES[LEGACY_ROLES.get(role, role)]).config
    return recipe.replace(
        global_crops_size=global_size,
        local_crops_size=global_size,
        patch_size=patch_size,
        name=f"{recipe.name}@{global_size}px",
    )


def versus_plans(
    yours: TrainConfig,
    reference: PipelineConfig,
    steps: int = VERSUS_STEPS,
    max_seconds: float | None = VERSUS_SECONDS,
    threads: int | None = None,
    recipe: PipelineConfig | None = None,
    check_data: bool = True,
) -> dict[str, RunPlan]:
    """The two runs: ``yours`` (the preset, data and knobs of the comparison; your own code
    when its data.pipeline is code, else ``recipe``, else the preset's recipe, pinned at the
    preset's crop size) and the same config training ``reference`` at your crop sizes and
    patch. Both get ``steps``, the time budget ``max_seconds`` (None / 0: none; the schedules
    then follow the clock, ``run.fit_to_time``) and k-NN at step 0 and five more times.
    Raises what :func:`~dinodiag.runs.run_plan.plan_run` raises."""
    if steps < 1:
        raise ConfigError(f"steps per run = {steps}: give at least 1 step per run.")
    run: dict[str, Any] = {
        "run.max_steps": steps,
        "run.max_seconds": max_seconds or None,
        "run.epochs": max(yours.run.epochs, 1000.0),  # the schedules fit the steps (or clock)
        "run.eval_every": max(1, steps // 5),
    }
    if threads:
        run["run.threads"] = threads  # else the preset's (cpu-demo: 1)
    if max_seconds:
        run["run.fit_to_time"] = True  # yours' schedules end at its last step, as the
        # reference's do over the steps it is given (equal steps: manager.match_steps)
    if is_pipeline_spec(yours.data.pipeline):
        mine = plan_run(yours, run, label="versus-yours")  # measured, patch adapted
    else:  # pin the recipe's counts and sizes: no preset override changes them
        own = plan_run(yours, check_data=False).pipeline  # the config's own recipe
        patch = yours.model.patch_size
        size = yours.data.global_crops_size or own.global_crops_size
        pinned = scaled_pipeline(recipe or own, size, patch)
        overrides = {**run, **recipe_overrides(pinned, patch)}
        mine = plan_run(
            yours, overrides, recipe=pinned, label="versus-yours", check_data=check_data
        )
    other = reference_at(mine, reference)
    theirs = plan_run(
        mine.config,
        recipe_overrides(other),
        recipe=other,
        label="versus-reference",
        check_data=check_data,
    )
    return {"yours": mine, "reference": theirs}


def story_plans(
    preset: str = STORY_PRESET, steps: int = STORY_STEPS, threads: int | None = None
) -> dict[str, RunPlan]:
    """The seed story as a comparison: the seed's broken pipeline as "yours", its fixed one as
    the reference, both at the preset's global crop size with locals as large (as in the
    seed); no time limit. The fixed recipe computes five times more views per image (2 + 8
    instead of 2): its run takes ~2x longer."""
    if steps < 1:
        raise ConfigError(f"seed story steps = {steps}: give at least 1 step per run.")
    own = preset_plan(preset)
    size, patch = own.pipeline.global_crops_size, own.config.model.patch_size
    base = own.config
    plans = versus_plans(
        base,
        story_pipeline("reference", size, patch),
        steps,
        None,
        threads,
        recipe=story_pipeline("yours", size, patch),
        check_data=False,
    )
    return {role: replace(plan, label=f"story-{role}") for role, plan in plans.items()}


def start_versus(
    plans: dict[str, RunPlan], together: bool, root: Path | None = None, kind: str = "versus"
) -> list[Path]:
    """Launch the two runs, tagged with one story id and ``kind`` ("versus" or "seed");
    returns their run directories.

    ``together``: both at once, each with half of the cores (a time budget may stop them at
    different steps); otherwise one queue runs them one after the other (best on a CPU) and
    the reference trains as many steps as yours reached (``same_steps``). Raises
    ``DinodiagError`` when a run cannot start.
    """
    story = time.strftime("%Y%m%d-%H%M%S")
    extras = [{"story": story, "role": role, "story_kind": kind} for role in plans]
    if together:
        threads = max(1, (os.cpu_count() or 1) // 2)
        return [
            manager.launch(plan.with_run({"run.threads": threads}), root, extra)
            for plan, extra in zip(plans.values(), extras, strict=True)
        ]
    extras[-1][manager.SAME_STEPS] = True  # the reference: yours' steps, whatever its speed
    return manager.launch_queue(list(plans.values()), root, extras)


def start_story(steps: int, together: bool, root: Path | None = None) -> list[Path]:
    """Launch the seed story's two runs (:func:`story_plans`, :func:`start_versus`)."""
    return start_versus(story_plans(STORY_PRESET, steps), together, root, kind="seed")


def latest_story(infos: Sequence[rundir.RunInfo]) -> dict[str, rundir.RunInfo]:
    """The runs of the newest comparison: ``{"yours": info, "reference": info}`` (may be
    partial); the seed stories of earlier versions (roles broken / fixed) count too."""
    stories = sorted({r.story for r in infos if r.story})
    if not stories:
        return {}
    members = {
        LEGACY_ROLES.get(r.role or "", r.role): r
        for r in infos
        if r.story == stories[-1] and LEGACY_ROLES.get(r.role or "", r.role) in ROLES
    }
    return {role: members[role] for role in ROLES if role in members}


def story_labels(members: dict[str, rundir.RunInfo]) -> dict[str, str]:
    """How the page names the two runs: the seed story's broken / fixed, or yours / reference."""
    seed = any(r.story_kind == "seed" or r.role in LEGACY_ROLES for r in members.values())
    return SEED_LABELS if seed else ROLE_LABELS


# ----------------------------------------------------------------------------- the verdict
@dataclass(frozen=True)
class KnnGain:
    """A run's k-NN top-1 from step 0 to its last evaluation, with the chance spread."""

    start: float  # % at step 0 (random weights)
    end: float  # % at the last evaluation
    best: float  # best % seen
    steps: int  # steps at the last evaluation
    evaluations: int  # k-NN evaluations, step 0 included
    test_images: int | None  # held-out images of each evaluation

    @property
    def gain(self) -> float:
        return self.end - self.start

    @property
    def change(self) -> KnnChange:
        """The gain judged by :func:`~dinodiag.train.eval.knn_noise.judge_change`."""
        return judge_change(self.start, self.end, self.test_images)

    @property
    def noise(self) -> float | None:
        """Standard deviation (points) of the gain by chance alone."""
        return self.change.noise

    @property
    def clear(self) -> bool:
        """Whether the gain is beyond :data:`CLEAR` x its noise on enough test images (an
        unknown test size or fewer than ``min_test_images()`` never count)."""
        return self.change.is_clear

    @property
    def too_few(self) -> bool:
        """Whether its test set is too small to resolve a 10-point change."""
        return self.change.status == "too_few"

    def phrase(self) -> str:
        """``+12.3 k-NN points in 300 steps (14.0% → 26.3%)``."""
        return (
            f"{self.gain:+.1f} k-NN points in {self.steps} steps ({self.start:.1f}% → "
            f"{self.end:.1f}%)"
        )


def knn_gain(frame: pd.DataFrame) -> KnnGain | None:
    """The k-NN gain of a metrics frame (``rundir.read_metrics``); None without an evaluation
    after step 0."""
    if frame.empty or "knn_top1" not in frame or "kind" not in frame:
        return None
    evals = frame[frame["kind"] == "eval"]
    evals = evals[pd.to_numeric(evals["knn_top1"], errors="coerce").notna()]
    if len(evals) < 2:
        return None
    values = evals["knn_top1"].astype(float).tolist()
    tests = pd.to_numeric(evals.get("knn_test", pd.Series(dtype=float)), errors="coerce").dropna()
    return KnnGain(
        start=values[0],
        end=values[-1],
        best=max(values),
        steps=int(evals["step"].iloc[-1]),
        evaluations=len(values),
        test_images=int(tests.iloc[-1]) if len(tests) else None,
    )


def compare_gains(a: KnnGain, b: KnnGain) -> tuple[str, float, float]:
    """``(outcome, difference, noise)`` of two runs' gains: "too_short" (neither gain is
    beyond its noise, or either is measured on too few test images to judge), "yours" /
    "reference" (the first / second learns clearly more), "same" (the difference
    ``a.gain - b.gain`` is within :data:`CLEAR` x its ``noise``)."""
    if (not a.clear and not b.clear) or a.too_few or b.too_few:  # too few images: no verdict
        return "too_short", a.gain - b.gain, max(a.noise or 0.0, b.noise or 0.0)
    # Runs with the same seed and model start from the same weights: the same step-0 k-NN, so
    # the difference of the gains is that of the last evaluations (their noises add).
    parts = [knn_noise(g.end, g.test_images) for g in (a, b)]
    if a.start != b.start:
        parts += [knn_noise(g.start, g.test_images) for g in (a, b)]
    noise = math.sqrt(sum(n * n for n in parts if n is not None))
    difference = a.gain - b.gain
    if difference > CLEAR * noise:
        return "yours", difference, noise
    if difference < -CLEAR * noise:
        return "reference", difference, noise
    return "same", difference, noise


def verdict_band(
    yours: pd.DataFrame,
    reference: pd.DataFrame,
    names: tuple[str, str] = ("yours", "the reference"),
) -> pd.DataFrame:
    """The band the verdict draws its line with, for the k-NN chart: where the last k-NN of
    ``yours`` would show the same gain as the reference's (``value``), ± :data:`CLEAR` x the
    noise of the difference (``low`` / ``high``, points), as :func:`compare_gains` judges it:
    yours' last point inside the band is "about as much", above it "yours learns clearly more",
    below it "the reference". Columns ``value``, ``low``, ``high``, ``label``, ``run``; empty
    until both runs have a gain, and when the verdict is "too short" (neither gain beyond its
    noise, or too few test images: then the step-0 zone is the noise that counts)."""
    columns = ["value", "low", "high", "label", "run"]
    a, b = knn_gain(yours), knn_gain(reference)
    if a is None or b is None:
        return pd.DataFrame(columns=columns)
    outcome, _, noise = compare_gains(a, b)
    if outcome == "too_short":
        return pd.DataFrame(columns=columns)
    level, half = a.start + b.gain, CLEAR * noise  # yours' end at the reference's gain
    first, second = names
    label = (
        f"the verdict's noise: {first} ending in this band learns about as much as {second} "
        f"(±{half:.1f} points)"
    )
    row = {
        "value": level,
        "low": max(0.0, level - half),
        "high": min(100.0, level + half),
        "label": label,
        "run": first,
    }
    return pd.DataFrame([row], columns=columns)


def too_few_sentence(a: KnnGain, b: KnnGain) -> str:
    """Why two gains on a small test set say nothing: the images and the rule."""
    images = min(g.test_images or 0 for g in (a, b) if g.too_few)
    return (
        f"Too few test images to judge: {images} held-out images cannot resolve a "
        f"10-point change (it takes {min_test_images()}); raise the k-NN test images "
        "(data.knn_test_max) or use a dataset with a larger validation split."
    )


PENDING = "The verdict comes when both runs have a k-NN evaluation after step 0."


def versus_verdict(
    yours: pd.DataFrame,
    reference: pd.DataFrame,
    names: tuple[str, str] = ("yours", "the reference"),
) -> tuple[str, str, str]:
    """``(outcome, level, sentence)`` comparing the two runs' k-NN gains over their step-0
    baselines, against the k-NN noise. ``outcome`` is "pending" (no k-NN after step 0 in both
    yet) or one of :func:`compare_gains`; ``level`` the Streamlit box: "info", "success" or
    "warning"."""
    a, b = knn_gain(yours), knn_gain(reference)
    if a is None or b is None:
        return "pending", "info", PENDING
    first, second = names
    outcome, difference, noise = compare_gains(a, b)
    text = f"{first.capitalize()} gains {a.phrase()}, {second} {b.phrase()}. "
    margin = f"{abs(difference):.1f} points, {{}} the k-NN noise of ±{CLEAR * noise:.1f}"
    if outcome == "too_short" and (a.too_few or b.too_few):
        return outcome, "info", text + too_few_sentence(a, b)
    if outcome == "too_short":
        return (
            outcome,
            "info",
            text
            + (
                f"Too short to judge: neither gain is beyond the k-NN noise (±{CLEAR * noise:.1f} "
                f"points on {a.test_images or b.test_images} held-out images by chance alone). "
                "Train both longer (more steps or a larger time budget), then compare again."
            ),
        )
    if outcome == "yours":
        return (
            outcome,
            "success",
            text + (f"{first.capitalize()} learns clearly more ({margin.format('beyond')})."),
        )
    if outcome == "reference":
        return (
            outcome,
            "warning",
            text
            + (
                f"{second.capitalize()} learns clearly more ({margin.format('beyond')}): {first} "
                "holds the model back. The Validation page says which of its checks fail."
            ),
        )
    return (
        outcome,
        "success",
        text
        + (
            f"{first.capitalize()} learns about as much as {second} (the difference, "
            f"{margin.format('is within')})."
        ),
    )


def story_verdict(broken: pd.DataFrame, fixed: pd.DataFrame) -> tuple[str, str]:
    """``(level, sentence)`` of the seed story: "success" when the fixed pipeline learns
    clearly more than the broken one (the story's point), "warning" when that does not show,
    "info" while pending or too short to judge."""
    a, b = knn_gain(broken), knn_gain(fixed)
    if a is None or b is None:
        return "info", PENDING
    outcome, difference, noise = compare_gains(a, b)
    text = f"The broken pipeline gains {a.phrase()}, the fixed pipeline {b.phrase()}. "
    if outcome == "too_short" and (a.too_few or b.too_few):
        return "info", text + too_few_sentence(a, b)
    if outcome == "too_short":
        return "info", text + (
            f"Too short to judge: neither gain is beyond the k-NN noise (±{CLEAR * noise:.1f} "
            "points): train both longer and compare again."
        )
    if outcome == "reference":
        return "success", text + (
            f"The multi-crop recipe learns clearly faster than two wide views "
            f"({-difference:.1f} points more, beyond the noise of ±{CLEAR * noise:.1f})."
        )
    return "warning", text + (
        f"No clear win for the fixed recipe yet (a difference of {-difference:+.1f} points, "
        f"noise ±{CLEAR * noise:.1f}): train both longer (resume each for more steps in the "
        "Live tab) and compare again."
    )
