"""Pipeline checks: one click (or one command) tells what is wrong with a multi-crop pipeline.

:func:`run_checks` runs the pipeline (built from a config, or brought by the
user) on a few images, gathers the output tensors and the sampled crop
records, and evaluates every check against an expected config (a preset, the
user's YAML or a DINOv2 config file). Each check returns a
:class:`~dinodiag.checks.report.CheckResult` with a stable id, a status, the measured
and expected values and a sentence a person can act on.

Checks use what was *measured* (output tensors, recorded operations) wherever they
can, so the same checks work on a brought pipeline; the config of a built
pipeline is used only for what cannot be measured (e.g. its configured scale
range, for the message). The samples are tallied one by one
(:class:`~dinodiag.checks.evidence.Evidence`): memory does not grow with their number
beyond a few kilobytes of statistics each.
"""

from __future__ import annotations

import numpy as np

from dinodiag.augment.config import PipelineConfig
from dinodiag.checks.crops import (
    check_global_scale,
    check_local_scale,
    check_local_vs_global_size,
    check_patch_multiple,
    check_source_size,
    check_upsampling,
)
from dinodiag.checks.evidence import Check, Evidence
from dinodiag.checks.photometric import check_photometric_params, check_photometric_rates
from dinodiag.checks.reference import check_reference_diff
from dinodiag.checks.report import CheckReport
from dinodiag.checks.tensors import (
    check_channels,
    check_collate,
    check_determinism,
    check_distinct_views,
    check_dtype,
    check_finite,
    check_normalization,
    check_value_range,
    check_view_count,
    check_view_sizes,
)
from dinodiag.stats import Dataset, Pipeline

CHECKS: list[Check] = [
    check_view_count,
    check_view_sizes,
    check_dtype,
    check_channels,
    check_finite,
    check_value_range,
    check_normalization,
    check_global_scale,
    check_local_scale,
    check_local_vs_global_size,
    check_patch_multiple,
    check_distinct_views,
    check_determinism,
    check_upsampling,
    check_source_size,
    check_photometric_rates,
    check_photometric_params,
    check_reference_diff,
    check_collate,
]
CHECK_IDS = [c.__name__.removeprefix("check_") for c in CHECKS]


def run_checks(
    pipeline: Pipeline,
    dataset: Dataset,
    *,
    expect: PipelineConfig,
    expect_name: str | None = None,
    config: PipelineConfig | None = None,
    samples: int = 16,
    seed: int = 0,
    pipeline_name: str | None = None,
    data_name: str | None = None,
) -> CheckReport:
    """Run every check on ``samples`` images of ``dataset`` through ``pipeline``.

    ``config`` defaults to ``pipeline.config`` (``None`` for a brought pipeline).
    Errors raised by the user's pipeline propagate as ``PipelineSpecError``.
    """
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: nothing to check")
    if samples < 1:
        raise ValueError(f"samples = {samples} is invalid: allowed an integer >= 1")
    config = config if config is not None else getattr(pipeline, "config", None)
    order = np.random.default_rng(seed).permutation(len(dataset))
    ev = Evidence(expect, expect_name or expect.name, config)
    sizes: list[tuple[int, int]] = []
    first_image = None
    for i in range(samples):
        image_index = int(order[i % len(order)])
        image, _ = dataset[image_index]
        first_image = first_image or image
        ev.add(pipeline(image, seed=seed * 1_000_003 + i), image_index)
        if len(sizes) < 500:
            sizes.append(image.size)
    ev.repeat = pipeline(first_image, seed=seed * 1_000_003)
    if hasattr(dataset, "image_sizes"):
        sizes = dataset.image_sizes(limit=500) or sizes
    ev.image_sizes = sizes
    notes = sorted(ev.notes)
    results = [check(ev) for check in CHECKS]
    problems = list(getattr(dataset, "problems", None) or [])
    return CheckReport(
        results=results,
        pipeline=pipeline_name or (config.name if config is not None else repr(pipeline)),
        expected=ev.expect_name,
        data=data_name or getattr(dataset, "name", type(dataset).__name__),
        samples=samples,
        seed=seed,
        notes=notes,
        unusable_files=[{"path": str(p.path), "reason": str(p.reason)} for p in problems],
    )
