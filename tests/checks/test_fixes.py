"""dinodiag.checks.fixes and ``check --write-fixed``: from a report to the corrected config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import dinodiag
from dinodiag.augment.config import load_config_file
from dinodiag.augment.presets import get_preset
from dinodiag.checks.fixes import (
    dinov2_section,
    plan_fixes,
    reference_target,
    resolve_format,
    summary_lines,
    write_fixed,
)
from dinodiag.checks.runner import run_checks
from dinodiag.cli import main
from dinodiag.data import open_dataset
from dinodiag.errors import ConfigError
from tests.facts import assert_mentions

DINOV2 = get_preset("dinov2").config


@pytest.fixture(scope="module")
def sample():
    return open_dataset("sample", split="all")


def report_of(config, dataset, expect=DINOV2, name="dinov2"):
    pipeline = dinodiag.build_pipeline(config)
    return run_checks(pipeline, dataset, expect=expect, expect_name=name, config=config, samples=6)


def test_the_seed_broken_pipeline_gets_every_failing_value_of_the_reference(sample):
    broken = get_preset("seed-broken").config
    plan = plan_fixes(report_of(broken, sample), broken, DINOV2, "dinov2")
    changes = {fix.field: (fix.current, fix.fixed) for fix in plan.fixes}
    assert changes == {
        "global_crops_size": (96, 224),
        "global_crops_scale": ((0.2, 1.0), (0.32, 1.0)),
        "local_crops_number": (0, 8),
        "local_crops_size": (32, 96),  # added locals take the reference's size and scale
        "local_crops_scale": ((0.05, 0.2), (0.05, 0.32)),
    }
    by_field = {fix.field: fix for fix in plan.fixes}
    assert by_field["global_crops_scale"].checks == ("global_scale", "reference_diff")
    assert by_field["global_crops_scale"].status == "fail"
    assert plan.fixed.name == "seed-broken-fixed"
    assert report_of(plan.fixed, sample).verdict == "pass"  # re-checked: every check passes
    lines = [line for line in plan.diff().splitlines() if line[:2] not in ("--", "++")]
    removed = dict(line[1:].split(": ", 1) for line in lines if line.startswith("-"))
    added = dict(line[1:].split(": ", 1) for line in lines if line.startswith("+"))
    before_after = {key: (removed[key], added.get(key)) for key in removed}
    assert before_after["global_crops_size"] == ("96", "224")
    assert before_after["local_crops_number"] == ("0", "8")
    assert before_after["global_crops_scale"] == ("[0.2, 1.0]", "[0.32, 1.0]")


def test_warnings_are_fixed_too_unless_only_failures_are_asked_for(sample):
    dino = get_preset("dino").config  # DINO v1 scales: warnings against DINOv2, no failure
    report = report_of(dino, sample)
    assert report.verdict == "warn"
    plan = plan_fixes(report, dino, DINOV2, "dinov2")
    assert [f.field for f in plan.fixes] == ["global_crops_scale", "local_crops_scale"]
    assert {f.status for f in plan.fixes} == {"warn"}
    only_failures = plan_fixes(report, dino, DINOV2, "dinov2", levels=("fail",))
    assert not only_failures.fixes and only_failures.fixed == dino
    assert summary_lines(only_failures)[0].startswith("nothing to change")


def test_photometric_fixes_are_code_only_for_a_dinov2_config(sample):
    no_blur = get_preset("dinov2").config.replace(
        name="no-blur", global1={"blur_p": 0.0}, local={"blur_p": 0.0}
    )
    plan = plan_fixes(report_of(no_blur, sample), no_blur, DINOV2, "dinov2")
    assert {f.field for f in plan.fixes} == {"global1.blur_p", "local.blur_p"}
    assert [f.field for f in plan.code_only()] == ["global1.blur_p", "local.blur_p"]
    text = dinov2_section(plan.fixed, plan)
    assert_mentions(text, "# Not settable", "global1.blur_p = 1 (now 0)")
    rows = plan.rows()
    assert rows[0]["in a DINOv2 config"] == "no: DINOv2's code"


def test_the_reference_size_variant_follows_the_configs_patch_size():
    patch14 = DINOV2.replace(name="vitl14", patch_size=14, local_crops_size=96)
    target = reference_target(patch14, DINOV2, "dinov2")
    assert (target.global_crops_size, target.local_crops_size, target.patch_size) == (224, 98, 14)
    assert reference_target(DINOV2, DINOV2, "dinov2") == DINOV2


def test_a_source_size_warning_is_left_with_its_message_not_changed(tmp_path: Path):
    from PIL import Image

    for i in range(4):
        Image.new("RGB", (64, 48), (i * 40, 90, 20)).save(tmp_path / f"small_{i}.png")
    small = open_dataset(str(tmp_path), split="all")
    report = report_of(DINOV2, small)
    assert report.by_id("source_size").status in ("warn", "fail")
    plan = plan_fixes(report, DINOV2, DINOV2, "dinov2")
    assert not plan.fixes
    assert "source_size" in [check for check, _, _ in plan.left]
    assert any(line.startswith("not fixed by the config:") for line in summary_lines(plan))


def test_the_dinov2_section_reads_back_as_the_same_crops(tmp_path: Path, sample):
    broken = get_preset("seed-broken").config
    plan = plan_fixes(report_of(broken, sample), broken, DINOV2, "dinov2")
    path = write_fixed(plan, tmp_path / "crops.yaml", "dinov2")
    data = yaml.safe_load(path.read_text())
    assert data == {
        "crops": {
            "global_crops_scale": [0.32, 1.0],
            "local_crops_number": 8,
            "local_crops_scale": [0.05, 0.32],
            "global_crops_size": 224,
            "local_crops_size": 96,
        },
        "student": {"patch_size": 16},
    }
    read = load_config_file(path)  # a DINOv2 config file, read as DINOv2 reads it
    assert (read.global_crops_scale, read.local_crops_number) == ((0.32, 1.0), 8)
    json_path = write_fixed(plan, tmp_path / "fixed.json")
    assert load_config_file(json_path) == plan.fixed


def test_the_format_comes_from_the_extension_or_the_flag():
    assert resolve_format("fixed.yaml") == resolve_format("f.JSON") == "dinodiag"
    assert resolve_format("crops.yml", "dinov2") == "dinov2"
    with pytest.raises(ConfigError, match=r"fixed\.txt: give a \.yaml"):
        resolve_format("fixed.txt")
    with pytest.raises(ConfigError, match="DINOv2 configs are YAML"):
        resolve_format("crops.json", "dinov2")


def test_cli_write_fixed_writes_the_corrected_config_and_it_passes(tmp_path: Path, capsys):
    fixed = tmp_path / "fixed.yaml"
    code = main(["check", "--preset", "seed-broken", "--samples", "4", "--write-fixed", str(fixed)])
    assert code == 1  # the checked pipeline failed; the fixed file is written anyway
    out = capsys.readouterr().out
    assert_mentions(out, "corrected dinodiag config", f"written to {fixed}")
    # one line per value set: the field, the value before and after, the checks it fixes
    changes = dict(line.strip().split(": ", 1) for line in out.splitlines() if " -> " in line)
    assert_mentions(
        changes["global_crops_scale"], "(0.2, 1) -> (0.32, 1)", "global_scale", "reference_diff"
    )
    assert load_config_file(fixed).local_crops_number == 8
    assert main(["check", "--config", str(fixed), "--samples", "4"]) == 0
    crops = tmp_path / "crops.yaml"
    args = ["check", "--preset", "seed-broken", "--samples", "4", "--write-fixed", str(crops)]
    assert main([*args, "--fixed-format", "dinov2"]) == 1
    assert_mentions(capsys.readouterr().out, "DINOv2 crops: section", f"written to {crops}")
    assert yaml.safe_load(crops.read_text())["crops"]["local_crops_size"] == 96


@pytest.mark.parametrize(
    ("args", "facts"),
    [
        (["--write-fixed", "fixed.txt"], ["--write-fixed fixed.txt:", ".yaml", ".json"]),
        (["--fixed-format", "dinov2"], ["--fixed-format", "only", "with --write-fixed"]),
        (
            ["--pipeline", "x.py:f", "--write-fixed", "f.yaml"],
            ["--write-fixed", "--pipeline", "none to correct"],
        ),
        (["--write-fixed", "/no/such/dir/f.yaml"], ["/no/such/dir ", "does not exist"]),
    ],
)
def test_cli_write_fixed_refuses_bad_input_before_checking(args, facts, capsys):
    assert main(["check", *args]) == 2
    assert_mentions(capsys.readouterr().err, *facts)
