"""How a run looks in every chart and page: one colour for its whole life, a short name.

A run's colour is derived from its id, not from the order a chart happens to draw it in,
so the same run is the same colour in the live view, the comparison, the seed story and
"Your run". The palette has eleven well-separated colours that read on white (each at
least 3:1, WCAG's bar for graphics); a run starts at the slot its id hashes
to and steps on past any colour taken by the ten runs created just before it (ids sort
by start time), so any eleven consecutive runs are eleven different colours and a run's colour
depends only on older runs: deleting a run changes a later one's only where it had to step.

    colours = run_colors(["20260509-220101-cpu-demo", "20260509-221500-cpu-demo"])
    names = short_names(["20260509-220101-cpu-demo", "20260509-221500-cpu-demo"])
    # {"20260509-220101-cpu-demo": "cpu-demo 22:01", "20260509-221500-cpu-demo": "cpu-demo 22:15"}
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence

# Eleven distinct hues, each at least 3:1 against white (WCAG 2 for graphics: tab10's orange,
# pink, olive and cyan are 2.0-2.7, too faint for a line on white), none grey (the charts keep
# grey for reference lines). Test: tests/dashboard/test_run_palette.py computes the contrast.
PALETTE = (
    "#1f77b4",  # blue
    "#c85200",  # dark orange
    "#2ca02c",  # green
    "#d62728",  # red
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#d6268a",  # magenta
    "#6b7000",  # dark olive
    "#00838f",  # teal
    "#1a3a8f",  # navy
    "#b8860b",  # dark goldenrod
)
# A dinodiag run id: ``YYYYMMDD-HHMMSS-label`` (``dinodiag.rundir.new_run_id``).
_RUN_ID = re.compile(r"^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-(.+)$")


def _slot(name: str) -> int:
    """The palette slot a name hashes to (sha1: the same in every process, unlike hash())."""
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) % len(PALETTE)


def _free_colour(name: str, taken: set[str]) -> str:
    start = _slot(name)
    for step in range(len(PALETTE)):
        colour = PALETTE[(start + step) % len(PALETTE)]
        if colour not in taken:
            return colour
    return PALETTE[start]


def run_colors(runs: Iterable[str], extra: Sequence[str] = ()) -> dict[str, str]:
    """The colour of every run id in ``runs`` and of every name in ``extra``.

    Pass *every* run the runs directory holds as ``runs`` (not only the ones drawn), so that
    a chart of two runs gives them the colours they have everywhere. ``extra`` are series
    that are not dinodiag runs (an opened DINOv2 run, the schedules recomputed from its
    config): they take colours the newest runs of ``runs`` do not have, in the order given.
    """
    ordered = sorted(set(runs))
    colours: dict[str, str] = {}
    window = len(PALETTE) - 1
    for i, run in enumerate(ordered):
        recent = {colours[r] for r in ordered[max(0, i - window) : i]}
        colours[run] = _free_colour(run, recent)
    taken = {colours[r] for r in ordered[-window:]}
    for name in extra:
        if name in colours:
            continue
        colours[name] = _free_colour(name, taken)
        taken.add(colours[name])
    return colours


def short_name(run_id: str, label: str | None = None, detail: int = 0) -> str:
    """A readable name for a run: the label part of a dinodiag run id with its start time
    (``cpu-demo 22:01``), or ``label`` when one is given (``broken``). ``detail`` 1 adds the
    date (``cpu-demo 05-09 22:01``; a label gets the time: ``broken 22:01``), 2 the seconds.
    A name that is not a dinodiag run id is returned as it is (or after its label)."""
    match = _RUN_ID.match(run_id)
    if match is None:
        return f"{label} ({run_id})" if label and detail else (label or run_id)
    _, month, day, hour, minute, second, tail = match.groups()
    when = f"{hour}:{minute}" + (f":{second}" if detail >= 2 else "")
    if label:
        return label if detail == 0 else f"{label} {month}-{day} {when}"
    if detail >= 1:
        when = f"{month}-{day} {when}"
    return f"{tail} {when}"


def short_names(
    runs: Iterable[str], labels: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """:func:`short_name` of each run, unique among ``runs``: where two would read the same,
    they get the date, then the seconds, then their full id."""
    ordered = list(dict.fromkeys(runs))
    labels = labels or {}
    names = {run: short_name(run, labels.get(run)) for run in ordered}
    for detail in (1, 2, 3):
        seen: dict[str, int] = {}
        for name in names.values():
            seen[name] = seen.get(name, 0) + 1
        clashing = [run for run in ordered if seen[names[run]] > 1]
        if not clashing:
            break
        for run in clashing:
            names[run] = run if detail == 3 else short_name(run, labels.get(run), detail)
    return names
