"""The seed story: the seed's broken and fixed pipelines trained side by side, and the verdict.

The same training preset, data, model, seed and number of steps (the same images seen);
only the crops differ. The dashboard's "Seed story" tab starts it and shows its verdict.

    specs = story_specs("cpu-demo", steps=100)          # {"broken": LaunchSpec, "fixed": ...}
    start_story(100, together=False)                    # two run directories, one queue
    members = latest_story(runs.list_runs())            # {"broken": RunInfo, "fixed": RunInfo}
    level, sentence = story_verdict(broken_metrics, fixed_metrics)
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.presets import get_preset
from dinodiag.errors import ConfigError
from dinodiag.runs import manager
from dinodiag.runs.compare import metrics_summary
from dinodiag.runs.launch_spec import LaunchSpec, resolve_launch
from dinodiag.train.presets import get_train_preset

STORY_PIPELINES = {"broken": "seed-broken", "fixed": "seed-fixed"}  # role -> the seed's recipe
ROLE_LABELS = {"broken": "broken (seed-broken)", "fixed": "fixed (seed-fixed)"}
STORY_PRESET = "cpu-demo"  # the training preset both runs use: minutes on 2 CPU cores
STORY_STEPS = 100  # default length of each run (steps): ~2 + 5 min on 2 free cores
CLEAR_GAIN = 3.0  # k-NN points the fixed run must gain beyond the broken one to call it


def story_pipeline(role: str, global_size: int, patch_size: int) -> PipelineConfig:
    """The seed's broken / fixed recipe at ``global_size`` px (the seed used 96 px).

    Counts and scales are the seed's (broken: 2 views, global 0.2-1, no locals; fixed: 2 + 8
    locals, 0.4-1 / 0.05-0.4), globals and locals at the same size, as in the seed.
    """
    recipe = get_preset(STORY_PIPELINES[role]).config
    return recipe.replace(
        global_crops_size=global_size,
        local_crops_size=global_size,
        patch_size=patch_size,
        name=f"{recipe.name}@{global_size}px",
    )


def story_specs(
    preset: str = STORY_PRESET, steps: int = STORY_STEPS, threads: int | None = None
) -> dict[str, LaunchSpec]:
    """The two runs of the seed story: the same preset, data, seed and number of steps (the
    same images seen), the seed's two recipes; no time limit.

    The pipeline is the only difference, so the crop knobs are set from it explicitly (the
    cpu-demo preset would otherwise force its own 4 local crops). The fixed recipe computes
    five times more views per image (2 + 8 instead of 2): its run takes ~2x longer. k-NN at
    step 0 and five more times.
    """
    if steps < 1:
        raise ConfigError(f"seed story steps = {steps}: give at least 1 step per run.")
    base = get_train_preset(preset).config
    preset_pipeline = resolve_launch(LaunchSpec(preset=preset), check_data=False).pipeline
    size, patch = preset_pipeline.global_crops_size, base.model.patch_size
    specs = {}
    for role in STORY_PIPELINES:
        recipe = story_pipeline(role, size, patch)
        specs[role] = LaunchSpec(
            preset=preset,
            pipeline=recipe,
            max_steps=steps,
            max_seconds=0,
            threads=threads,
            epochs=max(base.run.epochs, 1000.0),
            eval_every=max(1, steps // 5),
            local_crops=recipe.local_crops_number,
            global_size=size,
            local_size=size,
            label=f"story-{role}",
        )
    return specs


def start_story(steps: int, together: bool, root: Path | None = None) -> list[Path]:
    """Launch the story's two runs, tagged with one story id; returns their run directories.

    ``together``: both at once, each with half of the cores; otherwise one queue runs them
    one after the other (best on a CPU). Raises ``DinodiagError`` when a run cannot start.
    """
    cores = os.cpu_count() or 1
    specs = story_specs(STORY_PRESET, steps, threads=max(1, cores // 2) if together else None)
    story = time.strftime("%Y%m%d-%H%M%S")
    extras = [{"story": story, "role": role} for role in specs]
    if together:
        return [
            manager.launch(spec, root, extra)
            for spec, extra in zip(specs.values(), extras, strict=True)
        ]
    return manager.launch_queue(list(specs.values()), root, extras)


def latest_story(infos: Sequence[manager.RunInfo]) -> dict[str, manager.RunInfo]:
    """The runs of the newest story: ``{"broken": info, "fixed": info}`` (may be partial)."""
    stories = sorted({r.story for r in infos if r.story})
    if not stories:
        return {}
    members = {r.role: r for r in infos if r.story == stories[-1] and r.role in STORY_PIPELINES}
    return {role: members[role] for role in STORY_PIPELINES if role in members}


def story_verdict(broken: pd.DataFrame, fixed: pd.DataFrame) -> tuple[str, str]:
    """``(level, sentence)`` comparing the story's two runs by k-NN top-1 gain over the
    step-0 baseline (metrics frames of ``rundir.read_metrics``); level is "success" (the
    fixed pipeline learns clearly more), "warning" (no clear difference) or "info" (not
    enough k-NN points yet)."""
    b, f = metrics_summary(broken), metrics_summary(fixed)
    if None in (b["knn_start"], b["knn_best"], f["knn_start"], f["knn_best"]):
        return "info", "The verdict comes when both runs have a k-NN evaluation after step 0."
    gain_b = b["knn_best"] - b["knn_start"]  # type: ignore[operator]
    gain_f = f["knn_best"] - f["knn_start"]  # type: ignore[operator]
    text = (
        f"k-NN top-1 over the random-weights baseline: broken pipeline {gain_b:+.1f} points "
        f"({b['knn_start']:.1f}% → best {b['knn_best']:.1f}%), fixed pipeline {gain_f:+.1f} "
        f"points ({f['knn_start']:.1f}% → best {f['knn_best']:.1f}%)."
    )
    if gain_f >= gain_b + CLEAR_GAIN:
        return "success", text + " The multi-crop recipe learns clearly faster than two wide views."
    return "warning", text + (
        " No clear difference yet: train both longer (resume each for more steps in the Live "
        "tab) and compare again."
    )
