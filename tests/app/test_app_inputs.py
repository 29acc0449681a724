"""Bad input never crashes the app: each case shows a message naming the problem."""

from __future__ import annotations

import io
import textwrap

import numpy as np
from apphelpers import assert_no_exception, errors, texts
from PIL import Image

from tests.facts import assert_mentions

TWO_VIEW_AUGMENT = textwrap.dedent(
    '''
    """The seed write-up's broken pipeline, written the usual torchvision way."""
    from torchvision import transforms

    def build_two_view_augment(img_size=96):
        one = transforms.Compose([
            transforms.RandomResizedCrop(img_size, scale=(0.2, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ])
        return lambda image: [one(image), one(image)]

    def build_raising():
        def transform(image):
            raise RuntimeError("my augmentation is broken")
        return transform
    '''
)


def png_bytes(size: tuple[int, int] = (120, 90)) -> bytes:
    array = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def warnings(at) -> list[str]:
    return [str(w.value) for w in at.warning]


def test_missing_folder_is_an_error_in_the_sidebar_and_a_pointer_in_the_pages(app):
    at = app(ds_source="folder", ds_path="/no/such/folder")
    assert any("/no/such/folder" in e and "does not exist" in e for e in errors(at))
    at.switch_page("pages/statistics.py").run()
    assert_no_exception(at)
    assert at.title[0].value == "Sampled statistics"  # the page keeps its title
    assert len(errors(at)) == 1  # the sidebar's message, not repeated by the page
    assert any("**Images:** not usable" in w and "1 · Images" in w for w in warnings(at))
    at.switch_page("pages/inspector.py").run()
    assert_no_exception(at)
    assert any("Or upload an image here." in w for w in warnings(at))


def test_folder_without_images_names_the_folder(app, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    at = app(ds_source="folder", ds_path=str(tmp_path))
    assert_no_exception(at)
    assert any(str(tmp_path) in e for e in errors(at)), errors(at)


def test_uploads_corrupt_files_are_reported_good_ones_used(app):
    at = app(ds_source="upload")
    at.file_uploader(key="ds_upload").set_value(
        [("broken.jpg", b"this is not a jpeg", "image/jpeg")]
    )
    at.run()
    assert_no_exception(at)
    assert any(
        "none of the uploaded files" in e and "usable" in e and "broken.jpg" in e
        for e in errors(at)
    )
    at.file_uploader(key="ds_upload").set_value(
        [
            ("broken.jpg", b"this is not a jpeg", "image/jpeg"),
            ("good.png", png_bytes(), "image/png"),
        ]
    )
    at.run()
    assert not errors(at)
    assert "1 unusable file(s) skipped" in texts(at)
    at.switch_page("pages/inspector.py").run()
    assert_no_exception(at)
    assert "upload: good.png" in texts(at) and "120 × 90 px" in texts(at)


def test_inspector_accepts_its_own_upload(app):
    at = app()
    at.switch_page("pages/inspector.py").run()
    at.file_uploader(key="insp_upload").set_value(("mine.png", png_bytes((300, 200)), "image/png"))
    at.run()
    assert_no_exception(at)
    assert "upload: mine.png" in texts(at) and "300 × 200 px" in texts(at)
    assert len(at.image[2].captions) == 8


def test_invalid_yaml_names_the_line(app):
    at = app(pl_source="config", pl_text="global_crops_scale: [0.4, 1.0\nlocal_crops_number: 8\n")
    assert_no_exception(at)
    assert any("not valid YAML" in e and "line" in e for e in errors(at)), errors(at)
    at.switch_page("pages/validation.py").run()
    assert at.title[0].value == "Validation"
    assert any("**Pipeline:** not usable" in w for w in warnings(at))


def test_dinov2_training_config_is_read(app):
    text = (
        "crops:\n  global_crops_scale: [0.32, 1.0]\n  local_crops_number: 6\n"
        "student:\n  patch_size: 14\n"
    )
    at = app(pl_source="config", pl_text=text)
    assert not errors(at)
    context = at.session_state["dinodiag_context"]
    assert context.config.local_crops_number == 6 and context.config.patch_size == 14


def test_out_of_range_values_name_the_field_and_range(app):
    at = app(pl_source="config", pl_text="global_crops_scale: [0.9, 0.2]\n")
    assert any("global_crops_scale" in e and "min <= max" in e for e in errors(at)), errors(at)
    at = app()
    widget = next(w for w in at.number_input if w.label == "global_crops_number")
    widget.set_value(0).run()
    assert_no_exception(at)
    assert any("global_crops_number = 0 " in e and "invalid" in e for e in errors(at)), errors(at)
    widget = next(w for w in at.number_input if w.label == "global_crops_number")
    widget.set_value(2).run()
    assert not errors(at)


def test_field_edits_change_the_pipeline(app):
    at = app()
    widget = next(w for w in at.number_input if w.label == "local_crops_number")
    widget.set_value(4).run()
    assert "Edited: `local_crops_number`" in texts(at)
    at.switch_page("pages/inspector.py").run()
    assert len(at.image[2].captions) == 4


def test_bad_spec_and_bad_kwargs_are_errors(app, tmp_path, allow_code):
    at = app(pl_source="own", pl_spec="no_such_file.py:build")
    assert_no_exception(at)
    assert any("no_such_file.py" in e and "does not exist" in e for e in errors(at)), errors(at)
    module = tmp_path / "my_augment.py"
    module.write_text(TWO_VIEW_AUGMENT)
    at = app(
        pl_source="own", pl_spec=f"{module}:build_two_view_augment", pl_kwargs="{img_size: 96}"
    )
    assert any("not valid JSON" in e for e in errors(at)), errors(at)


def test_own_pipeline_is_validated_and_its_errors_shown(app, tmp_path, allow_code):
    module = tmp_path / "my_augment.py"
    module.write_text(TWO_VIEW_AUGMENT)
    at = app(
        pl_source="own", pl_spec=f"{module}:build_two_view_augment", pl_kwargs='{"img_size": 96}'
    )
    assert not errors(at)
    at.switch_page("pages/validation.py").run()
    at.button(key="val_run").click().run()
    assert_no_exception(at)
    report = at.session_state["dinodiag_last_report"]
    assert report.by_id("view_count").status == "fail"
    assert report.by_id("global_scale").status == "fail"  # measured from its RandomResizedCrop
    at.switch_page("pages/inspector.py").run()
    assert_no_exception(at)
    assert [c.split(" · ")[0] for c in at.image[1].captions] == ["G1", "G2"]

    at = app(pl_source="own", pl_spec=f"{module}:build_raising")
    at.switch_page("pages/validation.py").run()
    at.button(key="val_run").click().run()
    assert_no_exception(at)
    assert any("my augmentation is broken" in e for e in errors(at)), errors(at)


def test_generated_dataset(app):
    at = app(ds_source="generated", ds_gen_n=20, ds_gen_size=64)
    assert "generated" in texts(at) and "20 images, 10 classes" in texts(at)
    at.switch_page("pages/inspector.py").run()
    assert_no_exception(at)
    assert "64 × 64 px" in texts(at)


def test_missing_cifar_root(app, allow_code):
    at = app(ds_source="cifar10", ds_path="/no/cifar")
    # what is missing, where it was looked for, and how to fetch it
    [error] = [e for e in errors(at) if "CIFAR-10" in e]
    assert_mentions(error, "not found", "/no/cifar", "--download")
