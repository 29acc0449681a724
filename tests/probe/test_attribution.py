"""Recorded operations given to the views that they made: records for each style of pipeline."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms as T
from conftest import make_image
from other_methods import HandCrop, vissl
from own_pipelines import (
    BICUBIC,
    GLOBAL,
    LOCAL,
    N_LOCAL,
    dino_v1_style,
    dinov2_style,
    v2_style,
    without_jitter,
)
from PIL import Image
from torchvision.transforms import v2

from dinodiag.augment.records import recipe_operations
from dinodiag.probe.pipeline import OwnPipeline
from tests.facts import assert_mentions

IMAGE = make_image(96, 72, seed=4)


def records(transform, seed: int = 0, image: Image.Image = IMAGE):
    return OwnPipeline(transform, "test")(image, seed=seed)


def kinds(record) -> list[str]:
    return [op.kind for op in record.operations]


def test_dinov2_style_views_carry_every_operation_in_order() -> None:
    sample = records(dinov2_style())
    assert [(r.group, r.index) for r in sample.records] == [
        ("global", 0),
        ("global", 1),
        *(("local", i) for i in range(N_LOCAL)),
    ]
    first, second = sample.records[0], sample.records[1]
    assert kinds(first)[:2] == ["crop", "flip"] and kinds(first)[-2:] == ["to_tensor", "normalize"]
    assert "solarize" in kinds(second) and "solarize" not in kinds(first)
    for record in sample.records:
        size = GLOBAL if record.group == "global" else LOCAL
        assert record.configured_size == (size, size) and record.out_size == (size, size)
        assert record.recorded_by == "RandomResizedCrop(v1)" and record.box is not None
        assert record.mean == (0.485, 0.456, 0.406) and record.std == (0.229, 0.224, 0.225)
        assert record.blur is not None and record.flip is not None and record.unknown_steps == 0
    # torchvision's blur at p=1.0 always ran on global view 1, with its drawn sigma
    blur = next(op for op in first.operations if op.kind == "blur")
    assert blur.applied and 0.1 <= blur.params["sigma"] <= 2.0 == blur.params["sigma_range"][1]
    assert first.blur is True and first.blur_sigma == blur.params["sigma"]
    assert "in RandomApply(p=1)" in blur.note
    assert any("global_crops_teacher" in n and "weak_flag" in n for n in sample.notes)


def test_jitter_factors_and_order_come_from_the_draw() -> None:
    found = None
    for seed in range(10):
        for record in records(dinov2_style(), seed).records:
            if record.jitter:
                found = record
                break
        if found:
            break
    assert found is not None
    op = next(op for op in found.operations if op.kind == "jitter")
    assert 0.6 <= found.brightness <= 1.4 and 0.8 <= found.saturation <= 1.2
    assert abs(found.hue) <= 0.1 and sorted(found.jitter_order) == sorted(
        ("brightness", "contrast", "saturation", "hue")
    )
    assert op.params["brightness_range"] == (0.6, 1.4) and op.source == "torchvision v1"


def test_an_inverted_probability_blur_is_recorded_as_not_applied_with_its_p() -> None:
    sample = records(dinov2_style("inverted"))
    first = sample.records[0]
    skipped = next(op for op in first.operations if op.name == "InvertedBlur")
    assert (skipped.kind, skipped.applied) == ("apply", False)
    assert skipped.params["p"] == 0.0 and skipped.params["wraps_kinds"] == ["blur"]
    assert first.blur is False  # p=1.0 handed over as 1 - 1.0: never blurs


def test_hand_written_steps_are_judged_by_their_effect() -> None:
    seen = {"blur": 0, "solarize": 0}
    for seed in range(12):
        sample = records(dino_v1_style(), seed)
        assert len(sample.global_crops) == 2 and len(sample.local_crops) == N_LOCAL
        first, second = sample.records[0], sample.records[1]
        blur = next(op for op in first.operations if op.name == "PlainBlur")
        assert (blur.kind, blur.applied, blur.source) == ("blur", True, "measured")
        assert first.blur is True
        solarize = next(op for op in second.operations if op.name == "Solarization")
        assert solarize.kind == "solarize"
        assert second.solarize is solarize.applied
        seen["solarize"] += bool(solarize.applied)
        seen["blur"] += sum(bool(r.blur) for r in sample.records[2:])
    assert 0 < seen["solarize"] < 12 and 0 < seen["blur"] < 12 * N_LOCAL


def test_transforms_v2_on_tensors() -> None:
    sample = records(v2_style())
    first = sample.records[0]
    assert first.recorded_by == "RandomResizedCrop(v2)" and kinds(first)[0] == "to_tensor"
    assert first.blur is True and 0.1 <= first.blur_sigma <= 2.0
    assert all(op.source == "torchvision v2" for op in first.operations)


def test_a_pipeline_without_jitter_never_jitters() -> None:
    for record in records(without_jitter()).records:
        assert record.jitter is False and "jitter" not in kinds(record)


def test_views_built_crop_first_then_colour_are_matched_by_their_objects() -> None:
    """Every crop first, then every colour step: the objects still tell which is which."""
    crop_big, crop_small = T.RandomResizedCrop(GLOBAL), T.RandomResizedCrop(LOCAL)
    grey = T.Compose([T.RandomGrayscale(p=1.0), T.ToTensor()])
    keep = T.Compose([T.RandomGrayscale(p=0.0), T.ToTensor()])

    def pipeline(image: Image.Image) -> dict:
        bases = [crop_big(image), crop_big(image), crop_small(image)]
        return {"global_crops": [grey(bases[0]), keep(bases[1])], "local_crops": [grey(bases[2])]}

    sample = records(pipeline)
    assert [r.grayscale for r in sample.records] == [True, False, True]
    assert [r.configured_size for r in sample.records] == [(GLOBAL, GLOBAL)] * 2 + [(LOCAL, LOCAL)]
    assert all(kinds(r) == ["crop", "grayscale", "to_tensor"] for r in sample.records)


def test_views_converted_after_the_transforms_are_matched_by_order() -> None:
    view = T.Compose([T.RandomResizedCrop(GLOBAL), T.RandomHorizontalFlip(p=1.0), T.ToTensor()])
    sample = records(lambda im: [view(im).clone(), view(im).clone()])
    assert [r.flip for r in sample.records] == [True, True]
    assert all(r.box is not None for r in sample.records)
    assert any("matched to them by order" in n for n in sample.notes)


def test_a_crop_of_a_resized_input_says_so() -> None:
    view = T.Compose([T.Resize(60), T.RandomResizedCrop(GLOBAL), T.ToTensor()])
    record = records(lambda im: [view(im)]).records[0]
    assert_mentions(record.recorded_by, "RandomResizedCrop(v1)", "resized input")
    assert record.source_size == (80, 60) and kinds(record) == ["resize", "crop", "to_tensor"]


def test_plain_crops_and_pipelines_without_any_crop() -> None:
    center = records(lambda im: [T.ToTensor()(T.CenterCrop(40)(im))]).records[0]
    assert center.box == (28.0, 16.0, 40.0, 40.0) and center.recorded_by == "CenterCrop(v1)"
    assert center.configured_scale is None
    plain = OwnPipeline(lambda im: [T.ToTensor()(im.resize((8, 8)))] * 2, "resize")(IMAGE)
    assert [r.box for r in plain.records] == [None, None]
    assert any("no torchvision crop" in n for n in plain.notes)


@pytest.mark.parametrize("make", [dinov2_style, dino_v1_style])
def test_own_and_built_records_list_their_operations_alike(make) -> None:
    record = records(make()).records[0]
    assert recipe_operations(record) == record.operations  # your own view's own list
    import dinodiag

    built = dinodiag.build_pipeline(dinodiag.load_config("dinov2"))(IMAGE, seed=0).records[0]
    ops = recipe_operations(built)
    assert [op.kind for op in ops] == [
        "crop",
        "flip",
        "jitter",
        "grayscale",
        "blur",
        "solarize",
        "normalize",
    ]
    assert ops[4].applied is True and ops[4].params["sigma"] == built.blur_sigma


def test_a_view_returned_twice_is_one_chain() -> None:
    view = T.Compose([T.RandomResizedCrop(GLOBAL), T.ToTensor()])

    def pipeline(image: Image.Image) -> list[torch.Tensor]:
        out = view(image)
        return [out, out]

    sample = records(pipeline)
    assert sample.records[0].box == sample.records[1].box


def test_a_crop_drawn_with_get_params_by_the_users_code_is_the_views_crop() -> None:
    def own_crop(image: Image.Image) -> Image.Image:
        top, left, h, w = T.RandomResizedCrop.get_params(image, (0.3, 0.6), (0.75, 1.33))
        return image.crop((left, top, left + w, top + h)).resize((GLOBAL, GLOBAL))

    view = T.Compose([own_crop, T.RandomHorizontalFlip(p=1.0), T.ToTensor()])
    record = records(lambda im: [view(im)]).records[0]
    assert kinds(record)[:2] == ["crop", "resize"]  # the draw, then the step that used it
    assert record.configured_scale == (0.3, 0.6) and 0.29 <= record.scale <= 0.61
    assert record.recorded_by == "RandomResizedCrop(v1)" and record.flip is True
    assert "drawn by your code" in record.operations[0].note


def test_the_users_own_code_between_transforms_is_judged_by_its_effect() -> None:
    """A blur called by hand between two Composes: the chain goes on across it."""
    from PIL import ImageFilter

    crop = T.Compose([T.RandomResizedCrop(GLOBAL), T.RandomHorizontalFlip(p=1.0)])
    finish = T.Compose([T.ToTensor()])

    def pipeline(image: Image.Image) -> list:
        base = crop(image)
        return [finish(base.filter(ImageFilter.GaussianBlur(1.5)))]

    record = records(pipeline).records[0]
    assert kinds(record) == ["crop", "flip", "blur", "to_tensor"]
    gap = record.operations[2]
    assert gap.name == "your code" and gap.source == "measured"
    assert "outside any Compose" in gap.note and record.blur is True


def test_a_list_wide_pipeline_lists_every_step_of_every_view_applied_or_not() -> None:
    """VISSL's way: one step makes every crop, each later step runs on the whole list."""
    sample = records(vissl(n_local=4), seed=3)
    applied: dict[str, set] = {"flip": set(), "blur": set()}
    for record in sample.records:
        names = [op.name for op in record.operations]
        assert names[:2] == ["RandomResizedCrop", "RandomHorizontalFlip"], names
        assert names[3:] == ["RandomGrayscale", "VisslBlur", "ToTensor", "Normalize"], names
        assert kinds(record)[2] in ("jitter", "apply")  # ColorJitter, or its RandomApply skipped
        for op in record.operations:
            if op.kind in applied:
                applied[op.kind].add(op.applied)
        assert record.blur == any(op.kind == "blur" and op.applied for op in record.operations)
    # steps that did not change a view are listed too, as not applied
    assert applied == {"flip": {True, False}, "blur": {True, False}}


def test_interpolation_is_recorded_for_every_crop_and_resize() -> None:
    """torchvision v1 (its bilinear default) and v2, a hand-written crop through torchvision's
    functional, PIL's Image.resize and torch's interpolate in hand-written steps."""

    def pil_resize(image: Image.Image) -> Image.Image:
        return image.resize((GLOBAL, GLOBAL), Image.BILINEAR)

    def tensor_resize(tensor: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(tensor[None], size=(LOCAL, LOCAL))[0]

    views = [
        T.Compose([T.RandomResizedCrop(GLOBAL), T.ToTensor()]),
        v2.Compose([v2.PILToTensor(), v2.RandomResizedCrop(GLOBAL, interpolation=BICUBIC)]),
        T.Compose([HandCrop(GLOBAL, (0.3, 1.0), T.InterpolationMode.NEAREST), T.ToTensor()]),
        T.Compose([pil_resize, T.ToTensor()]),
        T.Compose([T.ToTensor(), tensor_resize]),
    ]
    found = records(lambda im: [view(im) for view in views]).records
    # each says what resampled: the step, the library call under a hand-written one, the filter
    steps = [
        ["RandomResizedCrop"],
        ["RandomResizedCrop"],
        ["HandCrop", "torchvision resized_crop"],
        ["pil_resize", "PIL Image.resize"],
        ["tensor_resize", "torch interpolate"],
    ]
    for record, facts in zip(found, steps, strict=True):
        assert_mentions(record.resampled_by, *facts, record.interpolation)
    assert found[0].resampled_by == "RandomResizedCrop: bilinear"  # torchvision's own: no call
    assert [r.interpolation for r in found] == [
        "bilinear",
        "bicubic",
        "nearest",
        "bilinear",
        "nearest",
    ]
    assert found[2].configured_scale == (0.3, 1.0)  # the draw beside it is still the crop
    assert [op.kind for op in found[3].operations] == ["resize", "to_tensor"]
