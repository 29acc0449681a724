"""The Yours vs reference tab's view comes from the library: frames, verdict, band, K."""

from __future__ import annotations

from dinodiag import rundir
from dinodiag.dashboard.versus_view import versus_view
from tests.knn_runs import fake_run

LABELS = {"yours": "yours (seed-broken)", "reference": "reference (dinov2)"}


def test_the_view_reads_both_runs_and_judges_them(tmp_path):
    now = {
        "yours": rundir.read_run(fake_run(tmp_path, "a", [10.0, 11.0, 12.0])),
        "reference": rundir.read_run(fake_run(tmp_path, "b", [10.0, 30.0, 45.0])),
    }
    view = versus_view(now, LABELS, active=False)
    assert set(view.frames) == set(LABELS.values())
    assert list(view.frames[LABELS["reference"]].query("kind == 'eval'")["knn_top1"]) == [
        10.0,
        30.0,
        45.0,
    ]
    level, text = view.verdict
    assert level in ("success", "warning", "error", "info") and text
    assert not text.startswith("So far")
    assert versus_view(now, LABELS, active=True).verdict[1].startswith(("So far", text))
    assert view.no_knn is None and view.prototypes == {}  # fake configs name no K


def test_one_run_alone_has_no_verdict(tmp_path):
    now = {"yours": rundir.read_run(fake_run(tmp_path, "a", [10.0, 11.0]))}
    view = versus_view(now, LABELS, active=True)
    assert view.verdict is None and view.band is None
