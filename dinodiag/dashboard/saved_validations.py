"""The dashboard's last validation reports, kept on disk so that a reload finds them.

A browser reload starts a new Streamlit session, and the session state goes with the old
one: Home's "Last validation" would be back to NOT RUN. The report is saved instead where
the app already keeps what must outlive a session, its runs directory
(``$DINODIAG_RUNS_DIR``, default ``runs/``), in ``.dashboard/validations/`` (no run marker:
the Training page does not list it). Not the URL: a link would then carry a verdict that
the reader never ran (and could be edited to say PASS), and the Validation page needs the
whole report, not a line. A report is saved under its signature, the sidebar choice it
checked (pipeline key, dataset key, reference, seed, images): the checks are seeded, so the
same signature gives the same report, whoever asks.

    save(signature, report)
    latest(current)   # (report, signature): the one for this choice, else the newest
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dinodiag.checks.report import CheckReport
from dinodiag.dashboard.sidebar import short_hash
from dinodiag.rundir import runs_root

KEPT = 32  # reports kept; older ones are deleted as new ones are saved
SUBDIR = Path(".dashboard") / "validations"


def folder(root: str | Path | None = None) -> Path:
    """Where the reports are saved (``root``: the runs directory, default :func:`runs_root`)."""
    return Path(root if root is not None else runs_root()) / SUBDIR


def save(signature: Sequence[Any], report: CheckReport, root: str | Path | None = None) -> Path:
    """Save ``report`` under ``signature``; the oldest beyond :data:`KEPT` are deleted.
    Written to a temporary file first, then renamed: a reader never sees half a file."""
    where = folder(root)
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{short_hash(json.dumps(list(signature), default=str), 16)}.json"
    record = {"signature": list(signature), "saved": time.time(), "report": report.to_dict()}
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(record, default=str), encoding="utf-8")
    partial.replace(path)
    for old in sorted(where.glob("*.json"), key=lambda p: p.stat().st_mtime)[:-KEPT]:
        old.unlink(missing_ok=True)
    return path


def _records(root: str | Path | None) -> list[dict[str, Any]]:
    """Every readable saved record, newest first (a damaged file is skipped)."""
    records = []
    for path in folder(root).glob("*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            record["report"] = CheckReport.from_dict(record["report"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        records.append(record)
    return sorted(records, key=lambda r: r.get("saved", 0), reverse=True)


def latest(
    current: Sequence[Any], root: str | Path | None = None
) -> tuple[CheckReport, tuple[Any, ...]] | None:
    """``(report, its signature)``: the newest saved for the choice ``current`` (compared on
    its first four parts: pipeline, dataset, reference, seed), else the newest of all (the
    page says it is out of date), None when nothing was saved."""
    records = _records(root)
    for record in records:
        if [str(v) for v in record["signature"][:4]] == [str(v) for v in list(current)[:4]]:
            return record["report"], tuple(record["signature"])
    if records:
        return records[0]["report"], tuple(records[0]["signature"])
    return None
