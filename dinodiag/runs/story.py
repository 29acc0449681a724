"""Yours vs the reference: two short runs that differ only in their pipeline, and the verdict.

The same training preset, data, model, seed, number of steps and time budget; one run trains
your pipeline (the sidebar's recipe or your own code), the other the reference recipe scaled
to the same crop sizes. The seed story is one instance: the seed's broken pipeline as "yours",
its fixed one as the reference. The dashboard's "Yours vs reference" tab starts them and shows
the verdict.

    specs = versus_specs(LaunchSpec(preset="cpu-demo").with_code("my_aug.py:build"),
                         get_preset("dinov2").config, steps=200, max_seconds=300)
    start_versus(specs, together=False)                 # two run directories, one queue
    members = latest_story(runs.list_runs())            # {"yours": RunInfo, "reference": ...}
    level, sentence = versus_verdict(yours_metrics, reference_metrics)

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

import pandas as pd

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.presets import get_preset
from dinodiag.errors import ConfigError
from dinodiag.runs import manager
from dinodiag.runs.launch_spec import (
    LaunchSpec,
    reference_at,
    resolve_launch,
    scaled_pipeline,
    spec_for_recipe,
)
from dinodiag.train.eval.knn_noise import CLEAR, KnnChange, judge_change, knn_noise, min_test_images
from dinodiag.train.presets import get_train_preset

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


def versus_specs(
    yours: LaunchSpec,
    reference: PipelineConfig,
    steps: int = VERSUS_STEPS,
    max_seconds: float | None = VERSUS_SECONDS,
    threads: int | None = None,
) -> dict[str, LaunchSpec]:
    """The two runs: ``yours`` (a spec training a recipe or your code, with the preset, data
    and knobs of the comparison) and the same spec training ``reference`` at your crop sizes
    and patch. Both get ``steps``, the time budget ``max_seconds`` (None / 0: none) and k-NN
    at step 0 and five more times. Raises what :func:`resolve_launch` raises."""
    if steps < 1:
        raise ConfigError(f"steps per run = {steps}: give at least 1 step per run.")
    base = get_train_preset(yours.preset).config
    spec = replace(
        yours,
        max_steps=steps,
        max_seconds=max_seconds or 0,
        threads=threads,
        epochs=max(base.run.epochs, 1000.0),  # the schedules fit the steps (or the clock)
        eval_every=max(1, steps // 5),
        label="versus-yours",
    )
    if not spec.brought:  # pin the recipe's counts and sizes: no preset override changes them
        preset_plan = resolve_launch(replace(spec, pipeline=None), check_data=False)
        recipe = spec.pipeline or preset_plan.pipeline
        patch = spec.patch_size or base.model.patch_size
        size = spec.global_size or preset_plan.pipeline.global_crops_size
        spec = spec_for_recipe(spec, scaled_pipeline(recipe, size, patch), patch)
    plan = resolve_launch(spec, check_data=spec.brought)
    spec = replace(spec, patch_size=plan.config.model.patch_size)
    other = reference_at(plan, reference)
    reference_spec = spec_for_recipe(replace(spec, label="versus-reference"), other, None)
    return {"yours": spec, "reference": reference_spec}


def story_specs(
    preset: str = STORY_PRESET, steps: int = STORY_STEPS, threads: int | None = None
) -> dict[str, LaunchSpec]:
    """The seed story as a comparison: the seed's broken pipeline as "yours", its fixed one as
    the reference, both at the preset's global crop size with locals as large (as in the
    seed); no time limit. The fixed recipe computes five times more views per image (2 + 8
    instead of 2): its run takes ~2x longer."""
    if steps < 1:
        raise ConfigError(f"seed story steps = {steps}: give at least 1 step per run.")
    base = get_train_preset(preset).config
    preset_pipeline = resolve_launch(LaunchSpec(preset=preset), check_data=False).pipeline
    size, patch = preset_pipeline.global_crops_size, base.model.patch_size
    yours = LaunchSpec(preset=preset, pipeline=story_pipeline("yours", size, patch))
    specs = versus_specs(yours, story_pipeline("reference", size, patch), steps, None, threads)
    return {role: replace(spec, label=f"story-{role}") for role, spec in specs.items()}


def start_versus(
    specs: dict[str, LaunchSpec], together: bool, root: Path | None = None, kind: str = "versus"
) -> list[Path]:
    """Launch the two runs, tagged with one story id and ``kind`` ("versus" or "seed");
    returns their run directories.

    ``together``: both at once, each with half of the cores; otherwise one queue runs them
    one after the other (best on a CPU). Raises ``DinodiagError`` when a run cannot start.
    """
    if together:
        threads = max(1, (os.cpu_count() or 1) // 2)
        specs = {role: replace(spec, threads=threads) for role, spec in specs.items()}
    story = time.strftime("%Y%m%d-%H%M%S")
    extras = [{"story": story, "role": role, "story_kind": kind} for role in specs]
    if together:
        return [
            manager.launch(spec, root, extra)
            for spec, extra in zip(specs.values(), extras, strict=True)
        ]
    return manager.launch_queue(list(specs.values()), root, extras)


def start_story(steps: int, together: bool, root: Path | None = None) -> list[Path]:
    """Launch the seed story's two runs (:func:`story_specs`, :func:`start_versus`)."""
    return start_versus(story_specs(STORY_PRESET, steps), together, root, kind="seed")


def latest_story(infos: Sequence[manager.RunInfo]) -> dict[str, manager.RunInfo]:
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


def story_labels(members: dict[str, manager.RunInfo]) -> dict[str, str]:
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
