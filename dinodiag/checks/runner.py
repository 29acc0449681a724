"""Pipeline checks: one click (or one command) tells what is wrong with a multi-crop pipeline.

:func:`run_checks` runs the pipeline (built from a config, or the user's own code) on a few
images, gathers the output tensors and the sampled crop
records, and evaluates every check against an expected config (a preset, the
user's YAML or a DINOv2 config file). Each check returns a
:class:`~dinodiag.checks.report.CheckResult` with a stable id, a status, the measured
and expected values and a sentence a person can act on.

Checks use what was *measured* (output tensors, recorded operations) wherever they
can, so the same checks work on your own pipeline; the config of a built
pipeline is used only for what cannot be measured (e.g. its configured scale
range, for the message). The samples are tallied one by one
(:class:`~dinodiag.checks.evidence.Evidence`): memory does not grow with their number
beyond a few kilobytes of statistics each. The samples are drawn on one torch thread per
process, in one worker process per available core (:func:`dinodiag.workers.run_tasks`): the
report is the same for any number of workers.
"""

from __future__ import annotations

from dinodiag.augment.config import PipelineConfig
from dinodiag.checks.crops import (
    check_global_scale,
    check_local_scale,
    check_local_vs_global_size,
    check_patch_multiple,
    check_source_size,
    check_upsampling,
)
from dinodiag.checks.evidence import Check, Evidence, sample_digest_of
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
from dinodiag.stats.frames import Dataset, Pipeline, empty_dataset_error, sample_tasks
from dinodiag.workers import (
    DEFAULT_TIMEOUT,
    InProcess,
    Note,
    one_torch_thread,
    run_tasks,
    whole_sample,
)

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
    workers: int | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    on_note: Note | None = None,
) -> CheckReport:
    """Run every check on ``samples`` images of ``dataset`` through ``pipeline``.

    ``config`` defaults to ``pipeline.config`` (``None`` for your own pipeline).
    Errors raised by the user's pipeline propagate as ``PipelineSpecError``; a sample that
    takes longer than ``timeout`` seconds as ``PipelineTimeoutError``; an empty dataset (or
    split) is a ``DataError`` naming it. ``workers``: processes drawing the samples (one per
    available core by default, 1 = this process; :func:`dinodiag.workers.run_tasks`).
    """
    if len(dataset) == 0:
        raise empty_dataset_error(dataset, "nothing to check")
    if samples < 1:
        raise ValueError(f"samples = {samples} is invalid: allowed an integer >= 1")
    config = config if config is not None else getattr(pipeline, "config", None)
    tasks = sample_tasks(dataset, samples, seed)
    ev = Evidence(expect, expect_name or expect.name, config)
    name = pipeline_name or getattr(pipeline, "spec", None)
    digests = run_tasks(
        pipeline,
        dataset,
        tasks,
        sample_digest_of,
        workers=workers,
        timeout=timeout,
        name=name,
        on_note=on_note,
    )
    for digest in digests:
        ev.merge(digest)
    with one_torch_thread():  # sample 0 drawn again with its seed: the determinism check
        again = InProcess(pipeline, dataset, whole_sample, timeout, name or repr(pipeline))
        ev.repeat = again(tasks[0])
    if hasattr(dataset, "image_sizes"):  # the dataset's own sizes (headers), else the sampled
        ev.image_sizes = dataset.image_sizes(limit=500) or ev.image_sizes
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
