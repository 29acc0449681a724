"""Training curves in the pages: a run keeps its colour in every chart, runs can be filtered."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from apphelpers import assert_no_exception, texts

from dinodiag import runs
from dinodiag.dashboard.run_names import run_colors

IDS = ("20260509-220101-cpu-demo", "20260509-221500-cpu-demo", "20260509-223000-seed-fixed")


def fake_run(root: Path, run_id: str, knn_end: float, state: str = "finished") -> None:
    """A run directory as the trainer leaves it (status, config, metrics), written by hand."""
    folder = root / run_id
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(
        json.dumps(
            {"state": state, "step": 20, "total_steps": 20, "started": 1.7e9, "message": "done"}
        )
    )
    (folder / "config.json").write_text(
        json.dumps(
            {
                "name": "cpu-demo",
                "pipeline": {"name": run_id.split("-", 2)[2]},
                "model": {"num_prototypes": 256},
            }
        )
    )
    rows = [{"kind": "eval", "step": 0, "epoch": 0.0, "time": 0.0, "knn_top1": 10.0}]
    rows += [
        {
            "kind": "train",
            "step": s,
            "epoch": s / 10,
            "time": 3.0 * s,
            "loss": 6 - math.log(s),
            "lr": 1e-3 * s,
        }
        for s in range(1, 21)
    ]
    rows.append({"kind": "eval", "step": 20, "epoch": 2.0, "time": 60.0, "knn_top1": knn_end})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def three_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "runs"
    monkeypatch.setenv(runs.RUNS_ENV, str(root))
    for run_id, knn in zip(IDS, (12.0, 30.0, 45.0), strict=True):
        fake_run(root, run_id, knn)
    return root


def colour_scales(at) -> list[dict]:
    """The colour scale of the smoothed line of every chart on the page."""
    scales = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        for layer in spec["layer"]:
            encoding = layer.get("encoding", {})
            if layer["mark"]["type"] == "line" and encoding.get("y", {}).get("field") == "value":
                scales.append(encoding["color"]["scale"])
    return scales


def test_a_run_has_one_colour_in_every_chart_of_the_comparison(app, three_runs):
    at = app()
    at.switch_page("pages/training.py").run()
    at.session_state["tr_tab"] = "Compare runs"
    at.run()
    at.multiselect(key="cmp_runs").set_value(list(IDS[:2])).run()
    first = colour_scales(at)
    assert len(first) == 2  # k-NN top-1 and total loss
    colours = run_colors(IDS)
    for scale in first:
        assert scale["domain"] == ["cpu-demo 22:01", "cpu-demo 22:15"]  # short names
        assert scale["range"] == [colours[IDS[0]], colours[IDS[1]]]
    at.multiselect(key="cmp_runs").set_value(list(IDS[1:])).run()
    second = colour_scales(at)
    assert all(s["range"][0] == colours[IDS[1]] for s in second)  # the same run, the same colour
    assert len(set(colours.values())) == 3


def test_runs_are_filtered_by_name_and_state(app, three_runs):
    fake_run(three_runs, "20260509-230000-tiny", 5.0, state="stopped")
    at = app()
    at.switch_page("pages/training.py").run()
    at.session_state["tr_tab"] = "Compare runs"
    at.run()
    at.text_input(key="cmp_filter").set_value("seed-fixed").run()
    assert list(at.dataframe[0].value["run"]) == [IDS[2]]
    assert "1 of 4 runs match." in texts(at)
    at.text_input(key="cmp_filter").set_value("").run()
    at.pills(key="cmp_states").set_value(["stopped"]).run()
    assert_no_exception(at)
    assert list(at.dataframe[0].value["run"]) == ["20260509-230000-tiny"]


def test_charts_offer_csv_and_json_of_what_they_show(app, three_runs):
    at = app()
    at.switch_page("pages/training.py").run()
    at.session_state["tr_tab"] = "Compare runs"
    at.run()
    keys = {b.proto.label for b in at.get("download_button")}
    assert {"CSV", "JSON"} <= keys
