"""Bring-your-own pipelines: spec loading, output normalisation, RandomResizedCrop recording."""

from __future__ import annotations

import re
import textwrap

import pytest
import torch
import torchvision.transforms as T
from PIL import Image
from torchvision.transforms import v2

from dinodiag.errors import PipelineSpecError
from dinodiag.probe.pipeline import OwnPipeline, load_pipeline_spec
from tests.facts import assert_mentions

SEED_SPEC = "examples/seed_pipeline.py:build_two_view_augment"


def test_seed_two_view_pipeline_is_measured(image: Image.Image) -> None:
    pipe = load_pipeline_spec(SEED_SPEC, '{"img_size": 96}')
    sample = pipe(image, seed=0)
    assert len(sample.global_crops) == 2 and sample.local_crops == []
    assert [r.recorded_by for r in sample.records] == ["RandomResizedCrop(v1)"] * 2
    for rec in sample.records:
        assert rec.configured_scale == (0.2, 1.0) and rec.configured_size == (96, 96)
        assert (
            0.19 <= rec.scale <= 1.0 and rec.source_size == image.size and rec.out_size == (96, 96)
        )


def test_dict_output_and_group_assignment(image: Image.Image) -> None:
    pipe = load_pipeline_spec(
        "examples/seed_pipeline.py:build_multicrop_augment", {"num_local_crops": 3}
    )
    sample = pipe(image, seed=1)
    assert (len(sample.global_crops), len(sample.local_crops)) == (2, 3)
    assert [r.group for r in sample.records] == ["global", "global", "local", "local", "local"]
    assert [r.configured_scale for r in sample.records][2] == (0.05, 0.4)
    assert sample.local_crops[0].shape[-2:] == (96, 96)  # the write-up's locals, by default


def test_the_readme_training_example_makes_small_views(image: Image.Image) -> None:
    """README "Train your own pipeline": 32 px globals and 16 px locals, a CPU's sizes."""
    kwargs = {"img_size": 32, "local_size": 16, "num_local_crops": 4}
    sample = load_pipeline_spec("examples/seed_pipeline.py:build_multicrop_augment", kwargs)(
        image, seed=0
    )
    assert [v.shape[-1] for v in sample.global_crops] == [32, 32]
    assert [v.shape[-1] for v in sample.local_crops] == [16, 16, 16, 16]


def test_seeded_calls_are_reproducible_and_restore_global_rng(image: Image.Image) -> None:
    pipe = load_pipeline_spec(SEED_SPEC)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = pipe(image, seed=7)
    after = torch.rand(1)
    b = pipe(image, seed=7)
    assert torch.equal(after, expected_next), "a seeded call must not disturb the caller's RNG"
    assert all(torch.equal(x, y) for x, y in zip(a.views, b.views, strict=False))
    assert [r.box for r in a.records] == [r.box for r in b.records]


def test_v2_records_and_fallback() -> None:
    crop = v2.RandomResizedCrop(16, scale=(0.5, 1.0))
    pipe = OwnPipeline(
        lambda im: [
            v2.functional.to_dtype(v2.functional.pil_to_tensor(crop(im)), torch.float32, scale=True)
        ],
        "v2",
    )
    sample = pipe(Image.new("RGB", (3000, 10)), seed=0)
    assert sample.records[0].recorded_by == "RandomResizedCrop(v2)"
    assert sample.records[0].fallback is True


def test_pil_outputs_are_flagged(image: Image.Image) -> None:
    pipe = OwnPipeline(lambda im: [T.RandomResizedCrop(16)(im), T.RandomResizedCrop(16)(im)], "pil")
    sample = pipe(image, seed=0)
    assert sample.global_crops[0].shape == (3, 16, 16)
    assert any("PIL images" in note for note in sample.notes)


def test_pipeline_without_random_resized_crop_is_noted(image: Image.Image) -> None:
    pipe = OwnPipeline(lambda im: [T.ToTensor()(im.resize((8, 8)))] * 2, "resize")
    sample = pipe(image)
    assert [r.box for r in sample.records] == [None, None]  # one record per view, no crop
    # the user's own Image.resize is an operation too, with PIL's default filter
    assert [op.kind for op in sample.records[0].operations] == ["resize", "to_tensor"]
    assert_mentions(sample.records[0].resampled_by, "resize", "PIL Image.resize", "bicubic")
    assert any("no torchvision crop" in note for note in sample.notes)


def test_list_output_takes_leading_same_size_views_as_globals(image: Image.Image) -> None:
    views = [torch.zeros(3, 32, 32)] * 2 + [torch.zeros(3, 16, 16)] * 4
    sample = OwnPipeline(lambda im: views, "x")(image)
    assert (len(sample.global_crops), len(sample.local_crops)) == (2, 4)
    sample = OwnPipeline(lambda im: views, "x", n_global=1)(image)
    assert (len(sample.global_crops), len(sample.local_crops)) == (1, 5)


def spec_error(call, *args) -> str:
    """The message of the PipelineSpecError that call(*args) raises."""
    with pytest.raises(PipelineSpecError) as info:
        call(*args)
    return str(info.value)


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        textwrap.dedent("""
        import torch
        def good(size=8):
            return lambda im: [torch.zeros(3, size, size), torch.ones(3, size, size)]
        def factory_raises(**kw):
            raise RuntimeError("no GPU here")
        def transform_raises():
            def t(im):
                raise ValueError("bad image")
            return t
        def returns_number():
            return lambda im: 42
        def returns_bad_dict():
            return lambda im: {"views": []}
        def returns_empty():
            return lambda im: []
        def returns_no_globals():
            return lambda im: {"global_crops": [], "local_crops": []}
        def exits_when_built():
            import sys
            sys.exit(2)
        def exits_when_called():
            def t(im):
                raise SystemExit("usage: train.py [-h]")
            return t
        NOT_CALLABLE = 3
    """)
    )
    return path


def test_spec_errors_name_the_spec_and_the_cause(user_file, image: Image.Image) -> None:
    spec = f"{user_file}:good"
    assert load_pipeline_spec(spec, '{"size": 4}')(image).global_crops[0].shape == (3, 4, 4)
    cases = [
        ("nofile.py:f", None, r"file 'nofile.py' does not exist"),
        (f"{user_file}:goood", None, r"has no attribute 'goood'. Did you mean 'good'"),
        (f"{user_file}:NOT_CALLABLE", None, r"'NOT_CALLABLE' is a int, not a callable"),
        (
            f"{user_file}:factory_raises",
            '{"a": 1}',
            r"calling the factory\(a=1\) raised RuntimeError: no GPU here",
        ),
        (f"{user_file}:good", '{"size": ', r"not valid JSON"),
        (f"{user_file}:good", "[1, 2]", r"must be a JSON object"),
        (f"{user_file}:good", '{"colour": 1}', r"raised TypeError"),
        (
            "no_such_module_xyz:f",
            None,
            r"importing module 'no_such_module_xyz' raised ModuleNotFoundError",
        ),
        ("just_a_name", None, r"must look like path/to/file.py:factory"),
    ]
    for spec_text, kwargs, pattern in cases:
        with pytest.raises(PipelineSpecError, match=pattern):
            load_pipeline_spec(spec_text, kwargs)


def test_errors_when_called(user_file, image: Image.Image) -> None:
    message = spec_error(load_pipeline_spec(f"{user_file}:transform_raises"), image)
    assert_mentions(message, "ValueError: bad image", "200x150 RGB")
    assert re.search(r"\(at mine\.py, line \d+\)", message), message
    message = spec_error(load_pipeline_spec(f"{user_file}:returns_number"), image)
    assert_mentions(message, "output[0]", "type int", "torch tensor")
    with pytest.raises(PipelineSpecError, match=r"dict without 'global_crops'"):
        load_pipeline_spec(f"{user_file}:returns_bad_dict")(image)
    message = spec_error(load_pipeline_spec(f"{user_file}:returns_empty"), image)
    assert_mentions(message, "empty list", "no views")
    with pytest.raises(PipelineSpecError, match=r"returned no global crops"):
        load_pipeline_spec(f"{user_file}:returns_no_globals")(image)


def test_system_exit_in_the_spec_is_an_error_of_the_spec(user_file, tmp_path, image) -> None:
    """A spec that calls sys.exit (argparse at import time, a script's main) must not end
    the CLI or the app's script run: it is reported like any other error of the spec."""
    message = spec_error(load_pipeline_spec, f"{user_file}:exits_when_built")
    assert_mentions(message, "factory()", "SystemExit: 2", "sys.exit")
    message = spec_error(load_pipeline_spec(f"{user_file}:exits_when_called"), image)
    assert_mentions(message, "SystemExit: usage: train.py", "called on")
    script = tmp_path / "train_script.py"
    script.write_text("import argparse\nargparse.ArgumentParser().parse_args(['--nope'])\n")
    message = spec_error(load_pipeline_spec, f"{script}:build")
    assert_mentions(message, "importing", "train_script.py'", "SystemExit")


def test_import_error_in_user_file(tmp_path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import numpy\nraise ImportError('missing dependency foo')\n")
    message = spec_error(load_pipeline_spec, f"{path}:f")
    assert_mentions(message, "importing", "broken.py'", "ImportError", "missing dependency foo")
    assert_mentions(message, "(at broken.py, line 2)")


def test_module_spec(image: Image.Image) -> None:
    pipe = load_pipeline_spec("torchvision.transforms:RandomResizedCrop", {"size": 8})
    sample = pipe(image, seed=0)
    assert len(sample.global_crops) == 1 and len(sample.records) == 1
    assert any("PIL images" in n for n in sample.notes)
