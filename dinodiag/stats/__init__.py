"""Sampled statistics: what the pipeline actually drew, over many images.

:func:`sample_views` runs a pipeline (built or own) over N images of a dataset and returns
one row per view with the recorded parameters and derived measures (:mod:`.frames`, on the box
geometry of :mod:`.geometry`); :func:`summarize` condenses the crop measures
(:mod:`.summaries`), :func:`rates` the application rate of every photometric operation per view
(global 1, global 2, locals) against the configured and the expected probability, with a
binomial tolerance (:func:`binomial_interval`; :mod:`.binomial_rates`), and :func:`strengths`
the ranges of the drawn strengths (jitter factors, blur sigma, solarize threshold) against the
expected ranges (:mod:`.strength_ranges`).

    frame = sample_views(dinodiag.build_pipeline(cfg), open_dataset("sample"), n_samples=500)
    summarize(frame, cfg); rates(frame, cfg, expect); strengths(frame, expect)
"""

from dinodiag.stats.binomial_rates import binomial_interval, rate_verdict, rates
from dinodiag.stats.frames import (
    COLUMNS,
    KINDS,
    Dataset,
    Pipeline,
    RowFrames,
    empty_dataset_error,
    recipe_for,
    sample_rows,
    sample_tasks,
    sample_views,
    view_kind,
)
from dinodiag.stats.strength_ranges import expected_range, strengths
from dinodiag.stats.summaries import summarize

__all__ = [
    "COLUMNS",
    "KINDS",
    "Dataset",
    "Pipeline",
    "RowFrames",
    "binomial_interval",
    "empty_dataset_error",
    "expected_range",
    "rate_verdict",
    "rates",
    "recipe_for",
    "sample_rows",
    "sample_tasks",
    "sample_views",
    "strengths",
    "summarize",
    "view_kind",
]
