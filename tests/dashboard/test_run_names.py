"""dinodiag.dashboard.run_names: a run's colour for its whole life, short readable names."""

from __future__ import annotations

from dinodiag.dashboard.run_names import PALETTE, run_colors, short_name, short_names


def run_ids(n: int, label: str = "cpu-demo") -> list[str]:
    return [f"20260509-{10 + i // 60:02d}{i % 60:02d}00-{label}" for i in range(n)]


def test_a_runs_colour_does_not_depend_on_the_runs_drawn_beside_it():
    ids = run_ids(6)
    everything = run_colors(ids)
    assert run_colors(ids[:3]) == {i: everything[i] for i in ids[:3]}  # newer runs change nothing
    assert run_colors(reversed(ids)) == everything  # nor the order they are listed in
    assert set(everything.values()) <= set(PALETTE)
    assert "#7f7f7f" not in PALETTE  # grey is for reference lines


def test_any_nine_consecutive_runs_have_nine_different_colours():
    ids = run_ids(40)
    colours = run_colors(ids)
    for start in range(len(ids) - len(PALETTE) + 1):
        window = [colours[i] for i in ids[start : start + len(PALETTE)]]
        assert len(set(window)) == len(PALETTE), start


def test_series_that_are_not_runs_take_colours_the_newest_runs_do_not_have():
    ids = run_ids(3)
    colours = run_colors(ids, extra=["my_dinov2_run", "config.yaml"])
    assert len(set(colours.values())) == 5
    assert {k: colours[k] for k in ids} == run_colors(ids)


def test_short_names_are_the_label_and_start_time_made_unique_when_needed():
    assert short_name("20260509-220101-cpu-demo") == "cpu-demo 22:01"
    assert short_name("20260509-220101-cpu-demo", detail=1) == "cpu-demo 05-09 22:01"
    assert short_name("my_dinov2_run") == "my_dinov2_run"
    assert short_name("20260509-220101-cpu-demo", label="broken") == "broken"
    names = short_names(
        ["20260509-220101-cpu-demo", "20260510-220159-cpu-demo", "20260509-221500-cpu-demo"]
    )
    assert names == {
        "20260509-220101-cpu-demo": "cpu-demo 05-09 22:01",
        "20260510-220159-cpu-demo": "cpu-demo 05-10 22:01",
        "20260509-221500-cpu-demo": "cpu-demo 22:15",
    }
    same_minute = short_names(["20260509-220101-cpu-demo", "20260509-220159-cpu-demo"])
    assert list(same_minute.values()) == ["cpu-demo 05-09 22:01:01", "cpu-demo 05-09 22:01:59"]
    roles = short_names(
        ["20260509-220101-tiny", "20260509-221500-tiny", "20260509-223000-tiny"],
        {"20260509-220101-tiny": "broken", "20260509-221500-tiny": "broken"},
    )
    assert list(roles.values()) == ["broken 05-09 22:01", "broken 05-09 22:15", "tiny 22:30"]
    assert len(set(short_names(run_ids(200)).values())) == 200  # always unique
