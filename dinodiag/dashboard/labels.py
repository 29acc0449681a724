"""What the pages show as text: status badges, the check table, verdicts, headline numbers.

Plain functions of dinodiag results (a ``CheckReport``, a ``sample_views``
DataFrame) that return Markdown or numbers; the Streamlit pages display them.
Nothing imports Streamlit. Badges use Streamlit's Markdown directive syntax
(``:red-badge[FAIL]``), which is plain text here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dinodiag.augment.config import PipelineConfig
from dinodiag.checks.report import CheckReport, count_words, markdown_table


def short_source(text: str, root: Path | None = None) -> str:
    """An item description with ``root`` (default: the current folder) stripped from its path."""
    path = Path(text)
    if not path.is_absolute():
        return text
    try:
        return str(path.relative_to((root or Path.cwd()).resolve()))
    except ValueError:
        return text


# ------------------------------------------------------------------------------ reports

STATUS_BADGES = {
    "pass": ":green-badge[PASS]",
    "warn": ":orange-badge[WARN]",
    "fail": ":red-badge[FAIL]",
    "skip": ":gray-badge[SKIP]",
}


STATE_BADGES = {
    "queued": ":gray-badge[QUEUED]",
    "running": ":blue-badge[RUNNING]",
    "finished": ":green-badge[FINISHED]",
    "stopped": ":orange-badge[STOPPED]",
    "failed": ":red-badge[FAILED]",
}


def status_badge(status: str) -> str:
    """Markdown badge of a check status, a verdict or a run state (``:red-badge[FAIL]``)."""
    return {**STATUS_BADGES, **STATE_BADGES}.get(status, f":gray-badge[{status.upper()}]")


def short_value(value: Any, width: int = 90) -> str:
    """A measured / expected value as short text for a table cell."""
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:.3g}"
    elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
        text = "(" + ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in value) + ")"
    elif isinstance(value, dict):
        text = "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
        width = max(width, 200)
    elif isinstance(value, (list, tuple)):
        text = _plain(value)
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _plain(value: Any) -> str:
    """Nested dicts and lists as readable text: ``a 1 (x), b 2``; an empty one is ``none``."""
    if isinstance(value, dict):
        return ", ".join(f"{k} = {_plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value) or "none"
    return str(value)


VERDICT_SENTENCES = {
    "fail": "The pipeline does not match the reference: fix the failing checks first.",
    "warn": "No hard failure, but some settings differ from the reference or look risky.",
    "pass": "Everything matches the reference recipe.",
}


def last_validation(report: CheckReport | None, stale: str | None = None) -> str:
    """The home page's "Last validation" line (Markdown): the verdict and its counts, or
    that it no longer applies (``stale``: why, from :func:`validation_staleness`)."""
    if report is None:
        return (
            "**Last validation:** :gray-badge[NOT RUN] open **Validation** and press "
            "*Run all checks*."
        )
    counts = report.counts()
    line = (
        f"`{report.pipeline}` against `{report.expected}`: {counts.get('fail', 0)} failed, "
        f"{count_words(counts.get('warn', 0), 'warn')}, {counts.get('pass', 0)} passed."
    )
    if stale:
        return (
            f"**Last validation:** :gray-badge[OUT OF DATE] {stale}: it was "
            f"{report.verdict.upper()} for {line} Run the checks again on **Validation**."
        )
    return f"**Last validation:** {status_badge(report.verdict)} {line}"


def report_markdown_table(report: CheckReport) -> str:
    """The check results (failing first) as the report's Markdown table, with status badges,
    check titles and shortened values (``dinodiag.checks.report.markdown_table``)."""
    return markdown_table(report.sorted(), status_badge, short_value, titles=True)


# ------------------------------------------------------------------------------ numbers


def number_text(value: Any, pattern: str = "{:.2f}") -> str:
    """``value`` formatted with ``pattern``; "–" when it is missing or not a number (NaN too)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(number) else pattern.format(number)


@dataclass(frozen=True)
class Metric:
    """One ``st.metric``: label, value text, optional delta text and help."""

    label: str
    value: str
    delta: str | None = None
    help: str | None = None
    delta_color: str = "normal"  # "off": grey, a change that is not a result (k-NN noise)


# ------------------------------------------------------------------------------ statistics


def headline_numbers(frame: Any) -> dict[str, float]:
    """The numbers the statistics page puts in metrics (NaN when not measurable).

    ``frame`` is a ``dinodiag.stats.sample_views`` DataFrame (one row per view).
    """

    def median(group: str, column: str) -> float:
        part = frame[frame["group"] == group][column] if len(frame) else []
        values = [float(v) for v in part if v is not None and not math.isnan(float(v))]
        return float(sorted(values)[len(values) // 2]) if values else math.nan

    fallback = frame["fallback"].dropna().astype(bool) if len(frame) else []
    return {
        "samples": float(frame["sample"].nunique()) if len(frame) else 0.0,
        "views": float(len(frame)),
        "fallback_rate": float(fallback.mean()) if len(fallback) else math.nan,
        "global_scale": median("global", "scale"),
        "local_scale": median("local", "scale"),
        "local_upsampling": median("local", "upsampling"),
        "global_iou": median("global", "global_iou"),
        "local_coverage": median("local", "local_coverage"),
    }


def _range_help(scale: tuple[float, float] | None) -> str:
    return f"median; configured {scale[0]:g}–{scale[1]:g}" if scale else "median"


def headline_metrics(
    numbers: dict[str, float],
    config: PipelineConfig | None,
    other: dict[str, float] | None = None,
    other_name: str = "",
) -> list[Metric]:
    """The statistics page's metrics from :func:`headline_numbers`, each with the difference
    to ``other`` (the compared pipeline's numbers) when both are measured: the number alone
    (``+0.19``; a tile is too narrow for "vs dinov2 (reference)"), what it is taken against
    in the help and in :func:`delta_line`."""
    rows = [
        (
            "Global scale",
            "global_scale",
            "{:.2f}",
            _range_help(config.global_crops_scale if config else None),
        ),
        (
            "Local scale",
            "local_scale",
            "{:.2f}",
            _range_help(config.local_crops_scale if config else None),
        ),
        (
            "Local upsampling",
            "local_upsampling",
            "{:.1f}×",
            "median over local crops: output side / crop side in source pixels",
        ),
        ("Global-pair IoU", "global_iou", "{:.2f}", "median overlap (IoU) of the two global crops"),
        (
            "Fallback rate",
            "fallback_rate",
            "{:.1%}",
            "RandomResizedCrop gave up and centre-cropped",
        ),
    ]
    metrics = []
    for label, key, pattern, help_text in rows:
        delta = None
        if other is not None and not math.isnan(other[key]) and not math.isnan(numbers[key]):
            delta = number_text(numbers[key] - other[key], "{:+.2f}")
        if delta is not None:
            help_text += f"; below it: the difference to {other_name}"
        metrics.append(Metric(label, number_text(numbers[key], pattern), delta, help_text))
    return metrics


def delta_line(name: str, other_name: str) -> str:
    """What the statistics page's metric deltas are: ``Under each number: seed-broken minus
    dinov2 (reference).``"""
    return f"Under each number: {name} minus {other_name}."


def sampling_progress(done: int, total: int) -> tuple[float, str] | None:
    """``(fraction, text)`` for the sampling progress bar, every 25 images and at the end
    (None: no update, so that the bar does not slow the sampling down)."""
    if done % 25 and done != total:
        return None
    return done / total, f"Sampling: {done} / {total} images"


def share_smaller(sizes: list[tuple[int, int]], side: int) -> float:
    """Fraction of images whose shorter side is below ``side`` px (their crops are upsampled)."""
    if not sizes:
        return float("nan")
    return sum(min(w, h) < side for w, h in sizes) / len(sizes)


def upsampled_line(sizes: list[tuple[int, int]], side: int) -> str:
    """How many images are smaller than the global crop: their global crops are upsampled."""
    share = number_text(share_smaller(sizes, side), "{:.0%}")
    return (
        f"{share} of {len(sizes)} images have a shorter side below the {side} px global crop: "
        "every global crop of those is upsampled."
    )


def repeats_line(samples: int, images: int) -> str | None:
    """What a sample count larger than the dataset means, or None when it is not larger:
    ``500 samples from 20 images: each image is drawn 25 times, with new crops each time.``"""
    if images <= 0 or samples <= images:
        return None
    each = samples / images
    times = f"{each:.0f}" if each == int(each) else f"{math.floor(each)}–{math.ceil(each)}"
    return (
        f"{samples} samples from {images} images: each image is drawn {times} times, with new "
        "crops each time (the statistics of the crops are still those of the pipeline; the "
        "image-size figures count each image once)."
    )


def validation_staleness(saved: tuple | None, current: tuple) -> str | None:
    """Why the last validation no longer describes the sidebar, or None when it still does.

    ``saved`` / ``current``: ``(pipeline key, dataset key, reference, seed)``.
    """
    if saved is None or tuple(saved[:4]) == tuple(current[:4]):
        return None
    parts = ("pipeline", "dataset", "reference", "seed")
    changed = [name for name, a, b in zip(parts, saved, current, strict=False) if a != b]
    return f"the {' and '.join(changed)} changed since"


def with_interval(rates: Any) -> Any:
    """A :func:`dinodiag.stats.rates` table with its ``low`` / ``high`` columns as one text
    column ``interval`` (``0.41–0.59``; ``–`` where the reference has no rate), so that no
    cell reads "None"."""
    text = [
        "–" if low is None or high is None or low != low else f"{low:.2f}–{high:.2f}"
        for low, high in zip(rates["low"], rates["high"], strict=True)
    ]
    return rates.drop(columns=["low", "high"]).assign(interval=text)
