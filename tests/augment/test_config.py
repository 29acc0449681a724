"""Config validation, YAML/JSON round trips and DINOv2 config files."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from dinodiag.augment.config import (
    MAX_SAMPLE_PIXELS,
    PipelineConfig,
    ViewAugment,
    config_from_dict,
    flatten,
    load_config_file,
    sample_pixels,
    save_config,
    to_dict,
)
from dinodiag.augment.presets import PRESETS, get_preset, load_config
from dinodiag.errors import ConfigError
from tests.facts import assert_mentions


def test_defaults_are_the_dinov2_recipe() -> None:
    cfg = PipelineConfig()
    assert cfg.global_crops_scale == (0.32, 1.0)
    assert cfg.local_crops_scale == (0.05, 0.32)
    assert (cfg.global_crops_number, cfg.local_crops_number) == (2, 8)
    assert (cfg.global_crops_size, cfg.local_crops_size) == (224, 96)
    assert (cfg.global1.blur_p, cfg.global2.blur_p, cfg.local.blur_p) == (1.0, 0.1, 0.5)
    assert (cfg.global1.solarize_p, cfg.global2.solarize_p, cfg.local.solarize_p) == (0.0, 0.2, 0.0)
    assert cfg.global1.jitter_p == 0.8 and cfg.global1.grayscale_p == 0.2
    assert (
        cfg.global1.brightness,
        cfg.global1.contrast,
        cfg.global1.saturation,
        cfg.global1.hue,
    ) == (0.4, 0.4, 0.2, 0.1)
    assert cfg.num_views == 10


@pytest.mark.parametrize(
    ("changes", "field", "allowed"),
    [
        ({"global_crops_scale": (0.9, 0.4)}, "global_crops_scale", "min <= max"),
        ({"local_crops_scale": (0.0, 0.3)}, "local_crops_scale", "(0, 1]"),
        ({"global_crops_scale": (0.4, 1.5)}, "global_crops_scale", "(0, 1]"),
        ({"local_crops_number": -1}, "local_crops_number", "[0, 64]"),
        ({"global_crops_number": 0}, "global_crops_number", "[1, 16]"),
        ({"global_crops_size": 0}, "global_crops_size", "[1, 1024]"),
        ({"local_crops_size": -5}, "local_crops_size", "[1, 1024]"),
        ({"patch_size": 0}, "patch_size", "[1, 1024]"),
        ({"crop_ratio": (1.5, 0.5)}, "crop_ratio", "min <= max"),
        ({"interpolation": "cubic"}, "interpolation", "bicubic"),
        ({"std": (0.2, 0.0, 0.2)}, "std", "positive"),
        ({"global1": ViewAugment(flip_p=1.5)}, "global1.flip_p", "[0, 1]"),
        ({"local": ViewAugment(hue=0.7)}, "local.hue", "[0, 0.5]"),
        ({"global2": ViewAugment(blur_sigma=(2.0, 0.1))}, "global2.blur_sigma", "min <= max"),
    ],
)
def test_impossible_values_name_field_value_and_range(
    changes: dict, field: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        PipelineConfig(**changes)
    message = str(info.value)
    assert message.startswith(field + " = ")
    assert allowed in message


def test_unknown_key_gets_did_you_mean() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"global_crop_scale": [0.3, 1.0]})
    assert_mentions(str(info.value), "unknown key", "'global_crop_scale'", "Did you mean")
    assert str(info.value).endswith("'global_crops_scale'?")


def test_unknown_nested_key_gets_did_you_mean() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"global1": {"blur_prob": 0.5}})
    assert_mentions(str(info.value), "unknown key", "'global1.blur_prob'", "Did you mean 'blur_p'")


def test_unrelated_unknown_key_lists_known_keys() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"zzz": 1})
    message = str(info.value)
    assert_mentions(message, "unknown key", "'zzz'", "Known keys")
    assert "Did you mean" not in message
    assert_mentions(message, *(f.name for f in fields(PipelineConfig)))


@pytest.mark.parametrize(
    ("data", "facts"),
    [
        # the field and its value first, then the type it should have
        ({"local_crops_number": "eight"}, ["local_crops_number = 'eight'", "an integer"]),
        ({"local_crops_number": 2.5}, ["local_crops_number = 2.5", "an integer"]),
        ({"global_crops_scale": 0.4}, ["global_crops_scale = 0.4", "a list of 2"]),
        ({"global_crops_scale": [0.4, "x"]}, ["global_crops_scale[1] = 'x'"]),
        ({"global1": {"flip_p": True}}, ["global1.flip_p = True", "wrong type"]),
        ({"global1": 3}, ["global1 must be a mapping"]),
        ({"interpolation": 3}, ["interpolation = 3", "a string"]),
    ],
)
def test_wrong_types_are_errors(data: dict, facts: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert_mentions(str(info.value), *facts)


def test_nested_value_errors_carry_the_path() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"global2": {"solarize_p": 2.0}})
    assert str(info.value).startswith("global2.solarize_p = 2.0 ")
    assert_mentions(str(info.value), "[0, 1]")


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_every_preset(tmp_path, name: str, suffix: str) -> None:
    cfg = PRESETS[name].config
    path = save_config(cfg, tmp_path / f"cfg{suffix}")
    assert load_config(path) == cfg
    if suffix == ".json":
        assert json.loads(path.read_text())["global_crops_scale"] == list(cfg.global_crops_scale)


def test_replace_validates_and_merges_nested() -> None:
    cfg = PipelineConfig().replace(local_crops_number=6, global1={"blur_p": 0.3})
    assert cfg.local_crops_number == 6 and cfg.global1.blur_p == 0.3 and cfg.global1.flip_p == 0.5
    with pytest.raises(ConfigError):
        PipelineConfig().replace(local_crops_scale=(0.5, 0.1))


def test_flatten_and_to_dict() -> None:
    flat = flatten(PipelineConfig())
    assert flat["global1.blur_p"] == 1.0 and flat["global_crops_scale"] == (0.32, 1.0)
    assert to_dict(PipelineConfig())["local"]["blur_sigma"] == [0.1, 2.0]


DINOV2_YAML = """
MODEL:
  WEIGHTS: ''
student:
  arch: vit_small
  patch_size: 14
  drop_path_rate: 0.3
crops:
  global_crops_scale:
  - 0.32
  - 1.0
  local_crops_number: 8
  local_crops_scale:
  - 0.05
  - 0.32
  global_crops_size: 224
  local_crops_size: 98
optim:
  epochs: 100
"""


def test_reads_a_dinov2_training_config(tmp_path) -> None:
    path = tmp_path / "vits14.yaml"
    path.write_text(DINOV2_YAML)
    cfg = load_config(path)
    assert cfg.patch_size == 14 and cfg.local_crops_size == 98
    assert cfg.global_crops_scale == (0.32, 1.0) and cfg.name == "vits14"


def test_dinov2_config_with_unknown_crop_key(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("crops:\n  local_crop_number: 8\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_mentions(
        str(info.value),
        "bad.yaml",
        "'crops.local_crop_number'",
        "Did you mean",
        "'local_crops_number'",
    )


def test_dinov2_config_with_impossible_value(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("crops:\n  global_crops_scale: [1.0, 0.32]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_mentions(str(info.value), "bad.yaml", "global_crops_scale", "(1.0, 0.32)", "min <= max")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("global_crops_scale: [0.3, 1.0\n", r"not valid YAML/JSON at line"),
        ("", r"the file is empty"),
        ("- 1\n- 2\n", r"expected a mapping"),
    ],
)
def test_broken_files(tmp_path, text: str, pattern: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        load_config_file(path)


def test_missing_file_and_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("no/such/file.yaml")
    with pytest.raises(ConfigError) as info:
        load_config("dinov3")
    assert_mentions(str(info.value), "unknown preset", "'dinov3'", "Did you mean 'dinov2'")


def test_presets_have_descriptions_sources_and_expected_values() -> None:
    assert set(PRESETS) >= {"dinov2", "dino", "lightly", "seed-broken", "seed-fixed"}
    for preset in PRESETS.values():
        assert preset.description and preset.source
    assert get_preset("dino").config.global_crops_scale == (0.4, 1.0)
    assert get_preset("dino").config.local_crops_scale == (0.05, 0.4)
    assert get_preset("lightly").config.local_crops_number == 6
    broken = get_preset("seed-broken").config
    assert broken.local_crops_number == 0 and broken.global_crops_scale == (0.2, 1.0)
    assert broken.global_crops_size == 96 and broken.local_crops_size == 32
    fixed = get_preset("seed_fixed").config  # underscores accepted
    assert fixed.global_crops_size == fixed.local_crops_size == 96
    assert fixed.local_crops_scale == (0.05, 0.4)


def test_a_partial_nested_view_keeps_the_views_own_defaults() -> None:
    # global1's default blurs always (blur_p 1.0): a file that changes only its flip keeps that
    cfg = config_from_dict({"global1": {"flip_p": 0.0}, "global2": {"blur_p": 0.3}})
    assert cfg.global1 == ViewAugment(flip_p=0.0, blur_p=1.0)
    assert cfg.global2.blur_p == 0.3 and cfg.global2.solarize_p == 0.2


# ------------------------------------------------------------------ bounds and hostile files
def test_crop_sizes_and_counts_have_upper_bounds_with_the_cost() -> None:
    with pytest.raises(ConfigError) as info:
        PipelineConfig(global_crops_size=4096)
    message = str(info.value)
    assert message.startswith("global_crops_size = 4096 ")
    assert_mentions(message, "[1, 1024]", "12 MiB", "float32")
    counts = [("local_crops_number", 65, "[0, 64]"), ("global_crops_number", 17, "[1, 16]")]
    for field, value, allowed in counts:
        with pytest.raises(ConfigError) as info:
            PipelineConfig(**{field: value})
        assert str(info.value).startswith(f"{field} = {value} ")
        assert_mentions(str(info.value), allowed)
    PipelineConfig(global_crops_size=1024, local_crops_size=1024, local_crops_number=2)  # fits


def test_the_views_of_one_sample_have_a_pixel_budget() -> None:
    # Each field in range, together 13 GB per image before the bound (the issue's case, scaled
    # to the new size limit: 2 x 1024² + 64 x 512² px).
    with pytest.raises(ConfigError) as info:
        PipelineConfig(global_crops_size=1024, local_crops_size=512, local_crops_number=64)
    message = str(info.value)
    # the four fields, their values, the total, its memory and the bound
    assert_mentions(message, "global_crops_number", "global_crops_size", "local_crops_number")
    assert_mentions(message, "local_crops_size", "2 x 1024²", "64 x 512²", "18,874,368 pixels")
    assert_mentions(message, "216 MiB", "16,777,216 pixels")
    assert sample_pixels(PipelineConfig()) == 2 * 224**2 + 8 * 96**2 == 174_080
    assert MAX_SAMPLE_PIXELS >= max(sample_pixels(p.config) for p in PRESETS.values())


def test_the_issue_crops_are_refused_in_a_file(tmp_path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("global_crops_size: 4096\nlocal_crops_size: 4096\nlocal_crops_number: 64\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert_mentions(str(info.value), "big.yaml", "global_crops_size = 4096", "[1, 1024]")


@pytest.mark.parametrize(
    ("name", "text", "field", "expected"),
    [
        ("inf.yaml", "global_crops_size: .inf\n", "global_crops_size = inf", "finite integer"),
        ("nan.yaml", "global1:\n  blur_p: .nan\n", "global1.blur_p = nan", "finite number"),
        ("neg.yaml", "local_crops_scale: [-.inf, 0.3]\n", "local_crops_scale[0] = -inf", "finite"),
        ("d2.yaml", "crops:\n  local_crops_size: .NaN\n", "local_crops_size = nan", "finite"),
        ("big.json", '{"global_crops_size": 1.0e+999}', "global_crops_size = inf", "finite"),
    ],
)
def test_inf_and_nan_name_the_file_and_the_field(
    tmp_path, name: str, text: str, field: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {field} has the wrong type"), message
    assert expected in message


def test_an_alias_bomb_in_a_config_file_gives_a_short_message(tmp_path) -> None:
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(levels) + "\nglobal_crops_scale: *a8\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert str(info.value).startswith(f"{path}: ")
    assert_mentions(str(info.value), "10,000 values")
    assert len(str(info.value)) < 400


def test_a_long_bad_value_is_quoted_short() -> None:
    # Within the alias limit, but a wrong type: the message quotes the start, not 9,000 items.
    with pytest.raises(ConfigError) as info:
        config_from_dict({"global_crops_scale": [[0.5] * 30] * 300})
    message = str(info.value)
    assert message.startswith("global_crops_scale = [[0.5, ")
    assert_mentions(message, "0.5, ...], ")  # each list cut short
    assert len(message) < 300
    with pytest.raises(ConfigError) as info:
        config_from_dict({"name": 7, "interpolation": "x" * 100_000})
    assert len(str(info.value)) < 300


def test_deep_nesting_in_a_file_is_a_message(tmp_path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("global_crops_scale: " + "[" * 20_000 + "]" * 20_000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_mentions(str(info.value), "deep.yaml", "nested", "50 levels")


def test_duplicate_keys_in_a_json_config_are_refused(tmp_path) -> None:
    path = tmp_path / "dup.json"
    path.write_text('{"local_crops_number": 8, "local_crops_number": 0}')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_mentions(str(info.value), "dup.json", "'local_crops_number'", "twice")


def test_a_directory_is_not_a_config_file(tmp_path) -> None:
    folder = tmp_path / "configs.yaml"  # even with a config suffix
    folder.mkdir()
    for given in (tmp_path, folder):
        with pytest.raises(ConfigError) as info:
            load_config(given)
        # the path is quoted shortened past 80 characters (tmp paths under xdist are long)
        assert_mentions(str(info.value), given.name, "directory", "YAML / JSON file")


def test_a_huge_file_is_refused_without_reading_it_all(tmp_path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("name: " + "x" * 3_000_000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert_mentions(str(info.value), "huge.yaml", "1,000,001 characters", "1,000,000")
