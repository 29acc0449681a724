"""How often each operation applied per view kind, against the configured and the expected
probability, with a binomial tolerance: :func:`rates`, :func:`binomial_interval`,
:func:`rate_verdict`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.records import PHOTOMETRIC_KINDS
from dinodiag.stats.frames import KINDS, recipe_for

OPERATIONS = (
    ("fallback", None),
    ("flip", "flip_p"),
    ("jitter", "jitter_p"),
    ("grayscale", "grayscale_p"),
    ("blur", "blur_p"),
    ("solarize", "solarize_p"),
)
# The rate tests of one report (3 view kinds x 5 operations) share this false-alarm rate, so
# a correct pipeline fails one of them about once in a thousand reports.
RATE_ALPHA = 1e-3
RATE_TESTS = len(KINDS) * len(PHOTOMETRIC_KINDS)
FAR_FROM_EXPECTED = 0.05  # a rate off by less than this is a warning, not a failure


def binomial_interval(n: int, p: float, alpha: float = RATE_ALPHA / RATE_TESTS) -> tuple[int, int]:
    """Counts ``(low, high)`` a Binomial(n, p) lands in with probability >= 1 - alpha.

    Each tail outside holds at most ``alpha / 2`` (exact, summed in log space); with p = 0
    or 1 the interval is the single count 0 or n: any other count is impossible.
    """
    if n <= 0:
        return 0, 0
    if p <= 0.0:
        return 0, 0
    if p >= 1.0:
        return n, n
    log_p, log_q = math.log(p), math.log1p(-p)
    log_pmf = [
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * log_p
        + (n - k) * log_q
        for k in range(n + 1)
    ]
    pmf = np.exp(np.asarray(log_pmf))
    below = np.cumsum(pmf)  # P(X <= k)
    above = np.cumsum(pmf[::-1])[::-1]  # P(X >= k)
    low = int(np.argmax(below > alpha / 2))  # first k whose lower tail exceeds alpha / 2
    high = int(n - np.argmax(above[::-1] > alpha / 2))
    return low, high


def rate_verdict(applied: int, n: int, p: float) -> str:
    """``"ok"`` inside the binomial interval of ``p``; outside it ``"off"`` (by less than
    :data:`FAR_FROM_EXPECTED`) or ``"far"``; ``""`` without an expectation or a count."""
    if n == 0 or p is None or math.isnan(p):
        return ""
    low, high = binomial_interval(n, p)
    if low <= applied <= high:
        return "ok"
    return "far" if abs(applied / n - p) >= FAR_FROM_EXPECTED else "off"


def rates(
    frame: pd.DataFrame,
    config: PipelineConfig | None = None,
    expect: PipelineConfig | None = None,
) -> pd.DataFrame:
    """Measured application rate of each operation per view kind.

    Against the pipeline's configured p (``config``; NaN for your own pipeline) and the
    expected p (``expect``, e.g. the reference), with the binomial acceptance interval of
    the expected p at this count (``low`` / ``high``, as rates) and a ``verdict``
    (:func:`rate_verdict`). Views whose value is unknown are not counted (``n``).
    """
    rows = []
    for kind in KINDS:
        part = frame[frame["kind"] == kind] if len(frame) else frame
        if part.empty:
            continue
        for op, prob_field in OPERATIONS:
            values = part[op].dropna() if op in part else pd.Series([], dtype=object)
            if values.empty:
                continue
            n = int(values.size)
            applied = int(values.astype(bool).sum())
            configured = expected = math.nan
            if config is not None and prob_field is not None:
                configured = getattr(recipe_for(config, kind), prob_field)
            if expect is not None and prob_field is not None:
                expected = getattr(recipe_for(expect, kind), prob_field)
            low, high = (math.nan, math.nan)
            if not math.isnan(expected):
                low, high = (count / n for count in binomial_interval(n, expected))
            rows.append(
                {
                    "kind": kind,
                    "operation": op,
                    "n": n,
                    "applied": applied,
                    "measured": applied / n,
                    "configured": configured,
                    "expected": expected,
                    "low": low,
                    "high": high,
                    "verdict": rate_verdict(applied, n, expected),
                }
            )
    columns = ["kind", "operation", "n", "applied", "measured", "configured", "expected"]
    return pd.DataFrame(rows, columns=[*columns, "low", "high", "verdict"])
