"""dinodiag.dashboard.sidebar: the sidebar's decisions without Streamlit."""

from __future__ import annotations

import io
import threading
import tracemalloc

import pytest
from PIL import Image

import dinodiag
from dinodiag.dashboard import field_edits, sidebar
from dinodiag.data import ImageLoadError
from dinodiag.errors import ConfigError, DataError
from tests.facts import assert_mentions


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("source", "path", "expected"),
    [
        ("sample", "", "sample"),
        ("folder", " /data/x ", "folder:/data/x"),
        ("cifar10", "/data/c", "cifar10:/data/c"),
        ("stl10", "/s", "stl10:/s"),
        ("generated", "", "generated:n=64,size=32,classes=10,seed=0"),  # wording is the feature
    ],
)
def test_dataset_spec(source, path, expected):
    assert sidebar.dataset_spec(source, path, generated_images=64, generated_size=32) == expected


def test_only_path_sources_ask_for_a_path():
    assert sidebar.path_label("folder") == "Folder path"
    assert sidebar.path_label("cifar100") == sidebar.path_label("stl10") == "Dataset root"
    assert sidebar.path_label("sample") is None and sidebar.path_label("upload") is None
    assert set(sidebar.PATH_SOURCES) < set(sidebar.DATASET_SOURCES)


def test_dataset_spec_needs_a_path_and_a_known_source():
    with pytest.raises(DataError) as info:
        sidebar.dataset_spec("folder", "  ")
    assert_mentions(str(info.value), "path", "image folder")
    with pytest.raises(DataError, match="unknown dataset source"):
        sidebar.dataset_spec("imagenet")


def test_uploaded_images_keep_good_files_and_report_bad_ones():
    ds = sidebar.UploadedImages([("a.png", png()), ("bad.jpg", b"nope"), ("empty.png", b"")])
    assert len(ds) == 1 and ds[0][0].size == (40, 30) and ds[0][1] == -1
    assert ds.describe(0) == "upload: a.png"
    assert {p.path for p in ds.problems} == {"bad.jpg", "empty.png"}
    assert_mentions(sidebar.describe_dataset(ds), "1 images", "unlabelled", "2 unusable file(s)")
    assert ds.key == sidebar.upload_key(
        [("a.png", png()), ("bad.jpg", b"nope"), ("empty.png", b"")]
    )
    with pytest.raises(DataError) as info:
        sidebar.UploadedImages([("bad.jpg", b"nope")])
    assert_mentions(str(info.value), "none of the uploaded files", "usable image", "bad.jpg")
    with pytest.raises(DataError, match="no image uploaded"):
        sidebar.UploadedImages([])


def test_a_huge_upload_is_refused_from_its_header_without_decoding(monkeypatch):
    big = png((9000, 9000))  # the case: ~250 KiB on disk, 309 MiB decoded
    assert len(big) < 400_000
    decoded: list[str] = []
    real_load = sidebar.load_image_bytes
    monkeypatch.setattr(
        sidebar,
        "load_image_bytes",
        lambda data, name: decoded.append(name) or real_load(data, name),
    )
    tracemalloc.start()
    ds = sidebar.UploadedImages([("huge.png", big), ("ok.png", png())])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert decoded == ["ok.png"]  # the 9000 x 9000 one was never decoded
    assert peak < 30 * 2**20, f"{peak / 2**20:.0f} MiB"  # decoding it traces 72 MiB (RSS 1.3 GB)
    assert len(ds) == 1 and ds.describe(0) == "upload: ok.png"
    (problem,) = ds.problems
    assert problem.path == "huge.png"
    # its size, its megapixels, the bound, the memory it would take and what to do
    assert_mentions(problem.reason, "9000 x 9000", "81.0 megapixels", "16", "309 MiB", "resize it")
    with pytest.raises(DataError) as info:
        sidebar.UploadedImages([("huge.png", big)])
    assert_mentions(str(info.value), "none of the uploaded files", "huge.png", "9000 x 9000")
    with pytest.raises(ImageLoadError, match="81.0 megapixels"):
        sidebar.load_upload(big, "huge.png")  # the training page's single upload
    assert sidebar.load_upload(png(), "a.png").size == (40, 30)


def test_uploads_have_a_total_pixel_budget():
    each = png((4000, 3000))  # 12 Mpx: fine alone, three are 36 Mpx
    assert len(sidebar.UploadedImages([("a.png", each), ("b.png", each)])) == 2
    with pytest.raises(DataError) as info:
        sidebar.UploadedImages([("a.png", each), ("b.png", each), ("c.png", each)])
    message = str(info.value)
    assert_mentions(message, "3 uploaded images", "36.0 megapixels", "at most 32", "folder")
    assert_mentions(
        sidebar.UPLOAD_LIMITS, "200 files", "16 megapixels each", "32 megapixels in all"
    )


def test_problem_rows_list_every_unusable_file():
    ds = sidebar.UploadedImages([("a.png", png()), ("bad.jpg", b"nope"), ("empty.png", b"")])
    rows = sidebar.problem_rows(ds)
    assert [row["file"] for row in rows] == ["bad.jpg", "empty.png"]
    assert rows[1]["reason"] == "empty file (0 bytes)" and "not an image" in rows[0]["reason"]
    assert sidebar.problem_rows(object()) == []


def test_base_config_from_preset_yaml_and_dinov2_file():
    assert sidebar.base_config(sidebar.PipelineChoice(preset="dino")).global_crops_scale == (
        0.4,
        1.0,
    )
    cfg = sidebar.base_config(
        sidebar.PipelineChoice(
            "config", config_text="local_crops_number: 6\n", config_name="mine.yaml"
        )
    )
    assert cfg.local_crops_number == 6 and cfg.name == "mine"
    dinov2_file = "crops:\n  local_crops_size: 98\nstudent:\n  patch_size: 14\n"
    cfg = sidebar.base_config(sidebar.PipelineChoice("config", config_text=dinov2_file))
    assert (cfg.local_crops_size, cfg.patch_size) == (98, 14)


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("", ["paste a YAML"]),
        ("a: [" * 20_000 + "]" * 20_000, ["nested more than 50 levels"]),
        ('{"local_crops_number": 8, "local_crops_number": 0}', ["appears twice"]),
        ("local_crops_size: .inf", ["local_crops_size = inf", "wrong type", "finite integer"]),
        ("a: [1, 2", ["not valid YAML", "line 1", "column 4"]),
        ("global_crop_scale: [0.4, 1.0]", ["'global_crop_scale'", "'global_crops_scale'"]),
        ("local_crops_number: -2", ["local_crops_number = -2", "invalid", "[0, 64]"]),
    ],
)
def test_base_config_errors_name_the_problem(text, facts):
    with pytest.raises(ConfigError) as info:
        sidebar.base_config(sidebar.PipelineChoice("config", config_text=text))
    message = str(info.value)
    # what was pasted is named as such, whatever is wrong with it (an empty box: what to do)
    assert message.startswith("pasted config: ") or not text, message
    assert_mentions(message, *facts)


def test_edits_are_applied_and_validated():
    base = dinodiag.load_config("seed-broken")
    fixed = field_edits.apply_edits(base, {"global_crops_scale": (0.4, 1.0), "local.blur_p": 0.2})
    assert fixed.global_crops_scale == (0.4, 1.0) and fixed.local.blur_p == 0.2
    assert field_edits.apply_edits(base, {}) is base
    with pytest.raises(ConfigError) as info:
        field_edits.apply_edits(base, {"global1.blur_p": 2.0})
    assert str(info.value).startswith("global1.blur_p = 2.0 ")
    assert_mentions(str(info.value), "[0, 1]")
    choice = sidebar.PipelineChoice(preset="seed-broken")
    edited = field_edits.apply_edits(sidebar.base_config(choice), {"local_crops_number": 8})
    assert edited.local_crops_number == 8 and edited.global_crops_scale == (0.2, 1.0)


def test_editable_fields_cover_every_field_with_help():
    cfg = dinodiag.load_config("dinov2")
    fields = {f.key: f for f in field_edits.editable_fields(cfg)}
    assert set(fields) == set(dinodiag.augment.config.flatten(cfg))
    assert fields["global_crops_scale"].kind == "pair" and fields["mean"].kind == "triple"
    assert fields["interpolation"].kind == "choice" and "bicubic" in fields["interpolation"].options
    assert (
        fields["local_crops_number"].kind == "int" and fields["global2.solarize_p"].kind == "float"
    )
    assert fields["global2.solarize_p"].section == "global2"
    assert "6-10 typical" in fields["local_crops_number"].help  # the comment in config.py
    assert all(f.help for f in fields.values())  # every field explains itself, even wrapped lines
    # Upper bounds for the widgets, from the config's own limits, with the reason in the help.
    assert fields["global_crops_size"].max_value == fields["local_crops_size"].max_value == 1024
    assert fields["local_crops_number"].max_value == 64
    assert fields["global_crops_number"].max_value == 16
    assert "At most 64" in fields["local_crops_number"].help
    assert "16,777,216 pixels" in fields["local_crops_size"].help
    assert fields["global1.blur_p"].max_value is None


def test_changed_values_ignore_float_noise():
    cfg = dinodiag.load_config("dinov2")
    values = {
        "global_crops_scale": (0.32 + 1e-12, 1.0),
        "local_crops_number": 6,
        "local.blur_p": 0.5,
    }
    assert field_edits.changed_values(cfg, values) == {"local_crops_number": 6}


def test_describe_config():
    broken = sidebar.describe_config(dinodiag.load_config("seed-broken"))
    assert broken.startswith("seed-broken: ")
    assert_mentions(broken, "2 × 96 px globals (0.2–1)", "no local crops", "patch 16")
    assert "8 × 96 px locals (0.05–0.4)" in sidebar.describe_config(dinodiag.load_config("dino"))


def test_reference_names_exclude_the_seed_examples():
    names = sidebar.reference_names()
    assert "dinov2" in names and "seed-broken" not in names and "seed-fixed" not in names


def test_lru_store_evicts_the_least_recently_used_and_is_thread_safe():
    store = sidebar.LRUStore(capacity=2)
    store.put("a", 1)
    store.put("b", 2)
    assert store.get("a") == 1  # "a" is now the most recent
    store.put("c", 3)
    assert store.get("b") is None and store.get("a") == 1 and len(store) == 2
    threads = [threading.Thread(target=lambda i=i: store.put(i, i)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) == 2
