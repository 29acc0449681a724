"""Check results and the report they make: table, JSON and Markdown forms."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("fail", "warn", "pass", "skip")  # worst first: the order reports are sorted in


@dataclass
class CheckResult:
    id: str  # stable id, e.g. "view_count"
    title: str  # short human name
    status: str  # "pass" | "warn" | "fail" | "skip"
    measured: Any  # what the pipeline produced / sampled (JSON-friendly)
    expected: Any  # what the reference expects
    message: str  # a sentence a person can act on

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")


@dataclass
class CheckReport:
    results: list[CheckResult]
    pipeline: str  # what was checked (preset name, file, spec)
    expected: str  # the reference it was checked against
    data: str  # the dataset the samples came from
    samples: int
    seed: int
    notes: list[str] = field(default_factory=list)  # e.g. own code output conversions
    # Every file of the dataset found unusable while checking: {"path", "reason"} each.
    unusable_files: list[dict[str, str]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        statuses = {r.status for r in self.results}
        for status in ("fail", "warn"):
            if status in statuses:
                return status
        return "pass"

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in STATUSES}

    def by_id(self, check_id: str) -> CheckResult:
        for result in self.results:
            if result.id == check_id:
                return result
        raise KeyError(check_id)

    def sorted(self) -> list[CheckResult]:
        """Failing checks first, then warnings, passes and skips (stable within a status)."""
        return sorted(self.results, key=lambda r: STATUSES.index(r.status))

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "counts": self.counts(),
            "pipeline": self.pipeline,
            "expected": self.expected,
            "data": self.data,
            "samples": self.samples,
            "seed": self.seed,
            "notes": list(self.notes),
            "unusable_files": [dict(f) for f in self.unusable_files],
            "checks": [asdict(r) for r in self.sorted()],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckReport:
        """The report :meth:`to_dict` wrote (a saved report read back). Raises ``KeyError`` /
        ``TypeError`` / ``ValueError`` when ``data`` is not one."""
        return cls(
            results=[CheckResult(**check) for check in data["checks"]],
            pipeline=data["pipeline"],
            expected=data["expected"],
            data=data["data"],
            samples=int(data["samples"]),
            seed=int(data["seed"]),
            notes=list(data.get("notes", [])),
            unusable_files=[dict(f) for f in data.get("unusable_files", [])],
        )

    def to_markdown(self) -> str:
        lines = [
            f"# dinodiag check: {self.verdict.upper()}",
            "",
            f"- pipeline: `{self.pipeline}`",
            f"- expected: `{self.expected}`",
            f"- data: `{self.data}` ({self.samples} samples, seed {self.seed})",
            "",
            markdown_table(self.sorted()),
        ]
        if self.notes:
            lines += ["", "Notes:", *[f"- {n}" for n in self.notes]]
        if self.unusable_files:
            lines += ["", f"Unusable files in the dataset ({len(self.unusable_files)}, skipped):"]
            lines += [f"- `{f['path']}`: {f['reason']}" for f in self.unusable_files]
        return "\n".join(lines) + "\n"

    def to_table(self, width: int = 100) -> str:
        """A plain-text table for the terminal: one block per check, failing first."""
        counts = self.counts()
        lines = [
            f"pipeline: {self.pipeline}",
            f"expected: {self.expected}",
            f"data:     {self.data} ({self.samples} samples, seed {self.seed})",
            "",
        ]
        for r in self.sorted():
            lines.append(
                f"[{r.status.upper():4}] {r.id:22} measured: {_short(r.measured, width - 40)}"
            )
            lines.append(f"       {'':22} expected: {_short(r.expected, width - 40)}")
            if r.status != "pass":
                lines.append(f"       {'':22} {r.message}")
        for note in self.notes:
            lines.append(f"note: {note}")
        if self.unusable_files:
            lines += ["", f"{len(self.unusable_files)} unusable file(s) in the dataset, skipped:"]
            lines += [f"  {f['path']}: {f['reason']}" for f in self.unusable_files]
        lines += [
            "",
            f"verdict: {self.verdict.upper()}  "
            + ", ".join(count_words(counts[s], s) for s in STATUSES if counts[s]),
        ]
        return "\n".join(lines)


def markdown_table(
    results: Sequence[CheckResult],
    status_text: Callable[[str], str] = str.upper,
    value_text: Callable[[Any], str] = str,
    titles: bool = False,
) -> str:
    """The results as a Markdown table, one row each in the order given: status, check,
    measured, expected, what to do.

    ``status_text`` and ``value_text`` turn a status and a measured / expected value into
    cell text (the report file: ``FAIL`` and the full value; the dashboard: a badge and a
    shortened value); ``titles`` puts each check's title before its id. Cells are escaped
    (``|``, newlines) so that any value keeps the table intact.
    """
    lines = ["| status | check | measured | expected | what to do |", "|---|---|---|---|---|"]
    for r in results:
        check = f"**{_cell(r.title)}** · `{r.id}`" if titles else f"`{r.id}`"
        cells = [
            _cell(status_text(r.status)),
            check,
            _cell(value_text(r.measured)),
            _cell(value_text(r.expected)),
            _cell(r.message),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


COUNT_NOUNS = {  # status -> (one, several): "1 warning", "3 warnings", "2 failed"
    "fail": ("failed", "failed"),
    "warn": ("warning", "warnings"),
    "pass": ("passed", "passed"),
    "skip": ("skipped", "skipped"),
}


def count_words(count: int, status: str) -> str:
    """``1 warning``, ``2 warnings``, ``3 failed``: a count of checks with a status, as said."""
    one, several = COUNT_NOUNS[status]
    return f"{count} {one if count == 1 else several}"


def plain_value(value: Any) -> str:
    """A measured / expected value as a person reads it, not as Python prints it: a mapping
    as ``key: value; key: value`` (nested ones ``a = 1, b = 2``), a list as ``0.4, 1``, an
    empty one as ``none``. The terminal table and the dashboard show values this way."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_nested(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return _nested(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _nested(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} = {_nested(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_nested(v) for v in value) + ")" if value else "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _short(value: Any, width: int) -> str:
    text = plain_value(value)
    return text if len(text) <= width else text[: width - 3] + "..."
