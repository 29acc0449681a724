"""dinodiag.stats.binomial_rates: application rates per view kind, with a binomial tolerance."""

from __future__ import annotations

import math

from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS
from dinodiag.stats.binomial_rates import binomial_interval, rate_verdict, rates
from dinodiag.stats.frames import sample_views


def test_rates_against_config(small_dataset) -> None:
    cfg = PRESETS["dinov2"].config.replace(global_crops_size=32, local_crops_size=16)
    frame = sample_views(build_pipeline(cfg), small_dataset, 60, seed=0)
    table = rates(frame, cfg)
    blur = table[(table.operation == "blur")].set_index("kind")
    assert blur.loc["global1", "measured"] == 1.0 and blur.loc["global1", "configured"] == 1.0
    assert blur.loc["global2", "configured"] == 0.1 and blur.loc["local", "configured"] == 0.5
    assert abs(blur.loc["local", "measured"] - 0.5) < 0.1
    solarize = table[(table.operation == "solarize")].set_index("kind")
    assert solarize.loc["global1", "measured"] == 0.0


def test_binomial_interval_is_exact_and_degenerate_at_the_ends() -> None:
    assert binomial_interval(64, 1.0) == (64, 64) and binomial_interval(64, 0.0) == (0, 0)
    low, high = binomial_interval(100, 0.5, alpha=0.05)
    assert (low, high) == (40, 60)  # the textbook two-sided 95% acceptance region
    assert rate_verdict(0, 64, 1.0) == "far" and rate_verdict(63, 64, 1.0) == "off"
    assert rate_verdict(64, 64, 1.0) == "ok" and rate_verdict(5, 10, math.nan) == ""


def test_rates_against_the_expected_recipe(small_dataset) -> None:
    released = PRESETS["dinov2-released"].config
    frame = sample_views(build_pipeline(released), small_dataset, 40, seed=0)
    table = rates(frame, released, PRESETS["dinov2"].config).set_index(["kind", "operation"])
    blur = table.loc[("global1", "blur")]
    assert (blur.applied, blur.n, blur.configured, blur.expected) == (0, 40, 0.0, 1.0)
    assert blur.verdict == "far" and blur.low == blur.high == 1.0
    assert table.loc[("local", "blur"), "verdict"] == "ok"
    assert table.loc[("global2", "solarize"), "verdict"] == "ok"


def test_stats_command_prints_rates_against_the_expectation_and_strengths(capsys) -> None:
    from dinodiag.cli import main

    code = main(["stats", "--preset", "dinov2-released", "--samples", "30", "--expect", "dinov2"])
    out = capsys.readouterr().out
    assert code == 0 and "expected: dinov2" in out
    # each table's header row, by its second column: the fields it shows
    rows = [line.split() for line in out.splitlines()]
    headers = {row[1]: row[2:] for row in rows if row[:1] == ["kind"]}
    # the rates: measured against configured and expected, with the binomial interval
    rate_fields = ["measured", "configured", "expected", "low", "high", "verdict"]
    assert headers["operation"][2:] == rate_fields
    global1_blur = next(line for line in out.splitlines() if "global1" in line and "blur " in line)
    assert global1_blur.split()[-1] == "far"  # never blurred; dinov2 blurs global 1 always
    # the strengths: the range drawn against the expected one
    assert headers["strength"][1:] == ["min", "max", "expected", "inside"]
