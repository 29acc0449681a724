"""An ended run without k-NN: the training page's k-NN panel says why (none planned, or the
run ended before the first), not "No k-NN evaluation yet." (``run_status.knn_absence``)."""

from __future__ import annotations

import json
from pathlib import Path

from apphelpers import assert_no_exception

from dinodiag import runs
from tests.facts import assert_mentions

RUN = "20260509-220101-tiny-test"


def write_run(root: Path, state: str, eval_every: int) -> None:
    """A run directory as the trainer leaves it (its three files), five train rows, no eval."""
    folder = root / RUN
    folder.mkdir(parents=True)
    status = {"state": state, "step": 5, "total_steps": 5, "started": 1.7e9, "message": state}
    (folder / "status.json").write_text(json.dumps(status))
    config = {"name": "tiny-test", "run": {"eval_every": eval_every}}
    (folder / "config.json").write_text(json.dumps(config))
    rows = [{"kind": "train", "step": s, "time": 0.1 * s, "loss": 9.0 - s} for s in range(1, 6)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def knn_caption(app, tmp_path, monkeypatch, state: str, eval_every: int) -> str:
    write_run(tmp_path, state, eval_every)
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path))
    at = app()
    at.session_state["tr_run"] = RUN
    at.switch_page("pages/training.py").run()
    at.session_state["tr_tab"] = "Live"
    at.run()
    assert_no_exception(at)
    captions = [c.value for c in at.caption if "k-NN evaluation" in c.value]
    assert len(captions) == 1, captions  # the k-NN panel's
    return captions[0]


def test_a_finished_run_with_no_knn_planned_says_so(app, tmp_path, monkeypatch):
    caption = knn_caption(app, tmp_path, monkeypatch, "finished", 0)
    assert caption.startswith("No k-NN evaluation")
    assert_mentions(caption, "none was planned")


def test_a_run_that_failed_before_its_first_knn_says_so(app, tmp_path, monkeypatch):
    caption = knn_caption(app, tmp_path, monkeypatch, "failed", 100)
    assert_mentions(caption, "ended (failed)", "before the first")  # its state, and when
    assert "yet" not in caption
