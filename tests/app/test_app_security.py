"""Safe by default: no code from the browser unless the server's owner allows it, bounded
uploads and configs, a loud page when the server listens beyond this machine."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from apphelpers import assert_no_exception, errors, server_address, texts
from PIL import Image

from tests.facts import assert_mentions, missing_facts

GETOUTPUT = "subprocess:getoutput"  # a spec that is a shell: getoutput(cmd=...)


def png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def warnings_of(at) -> str:
    return "\n".join(str(w.value) for w in at.warning)


def _line(text: str, start: str) -> str:
    """The first line of text that starts with start (a status line such as **Pipeline:**)."""
    return next(line for line in text.splitlines() if line.startswith(start))


def _names(text: str, *facts: str) -> bool:
    return not missing_facts(text, *facts)


# ------------------------------------------------------------------------ your own code
def test_own_code_is_off_by_default_and_runs_nothing(app, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    at = app(pl_source="own", pl_spec=GETOUTPUT, pl_kwargs=f'{{"cmd": "touch {marker}"}}')
    assert not marker.exists()
    told = warnings_of(at)
    # what is off, the two ways to turn it on, and the risk of doing so
    assert_mentions(told, "own pipeline code", "off on this server")
    assert "make run ALLOW_CODE=1" in told and "DINODIAG_ALLOW_BROWSER_CODE=1" in told
    assert_mentions(told, "run code", "user who started the server")
    assert not [w for w in at.text_input if w.key == "pl_spec"]  # no box to type code in
    for page in ("pages/inspector.py", "pages/statistics.py", "pages/validation.py"):
        at.switch_page(page).run()
        assert_no_exception(at)
        assert not marker.exists()
    assert not [b for b in at.button if b.key == "val_run"]  # nothing to validate
    assert_mentions(_line(warnings_of(at), "**Pipeline:**"), "not usable", "sidebar")
    assert "own pipeline code" in warnings_of(at)  # said once, there


def test_own_code_runs_once_the_server_allows_it(app, tmp_path: Path, allow_code) -> None:
    marker = tmp_path / "ran"
    app(pl_source="own", pl_spec=GETOUTPUT, pl_kwargs=f'{{"cmd": "touch {marker}"}}')
    assert marker.exists()  # the switch is real: with it, a spec is code on the server


# ------------------------------------------------------------------------ dataset roots
def planted_cifar_root(root: Path, marker: Path) -> Path:
    """A CIFAR-10 root whose meta file would run ``touch marker`` when unpickled."""

    class Planted:
        def __reduce__(self) -> tuple:
            import os

            return (os.system, (f"touch {marker}",))

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "batches.meta").write_bytes(pickle.dumps(Planted()))
    rows = np.zeros((2, 3072), dtype=np.uint8)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({"data": rows, "labels": [0, 1]}))
    return root


@pytest.mark.parametrize("source", ["cifar10", "cifar100", "stl10"])
def test_dataset_roots_are_off_by_default(app, tmp_path: Path, source: str) -> None:
    marker = tmp_path / "pwned"
    root = planted_cifar_root(tmp_path / "root", marker)
    at = app(ds_source=source, ds_path=str(root))
    assert_no_exception(at)
    assert not marker.exists()
    assert_mentions(warnings_of(at), "Dataset roots", "off on this server")
    assert not [w for w in at.text_input if w.key == "ds_path"]
    at.switch_page("pages/statistics.py").run()
    assert_mentions(_line(warnings_of(at), "**Images:**"), "not usable", "sidebar")
    assert at.title[0].value == "Sampled statistics"


def test_an_allowed_root_still_never_unpickles_code(app, tmp_path: Path, allow_code) -> None:
    marker = tmp_path / "pwned"
    root = planted_cifar_root(tmp_path / "root", marker)
    at = app(ds_source="cifar10", ds_path=str(root))
    assert not marker.exists()
    assert any("posix.system" in e and "not loaded" in e for e in errors(at)), errors(at)


def test_the_folder_box_stays_on(app, tmp_path: Path) -> None:
    for index in range(3):
        Image.new("RGB", (50, 40), (index * 60, 0, 0)).save(tmp_path / f"{index}.png")
    at = app(ds_source="folder", ds_path=str(tmp_path))
    assert not errors(at) and "3 images, unlabelled" in texts(at)


# ------------------------------------------------------------------------ exposure
def test_a_server_listening_beyond_loopback_says_so_on_every_page(app) -> None:
    at = app()
    assert "listens on" not in warnings_of(at)  # 127.0.0.1: nothing to say
    server_address("0.0.0.0")
    at.run()
    assert_mentions(_line(warnings_of(at), "**This dashboard"), "listens", "'0.0.0.0'")
    at.switch_page("pages/validation.py").run()
    assert "listens on address '0.0.0.0'" in warnings_of(at)
    server_address(None)  # unset: Streamlit binds every interface
    at.run()
    assert_mentions(warnings_of(at), "listens", "every network interface")


def test_listening_beyond_loopback_with_code_allowed_is_an_error(app, allow_code) -> None:
    server_address("0.0.0.0")
    at = app()
    assert any("browser is allowed" in e and "0.0.0.0" in e for e in errors(at)), errors(at)


# ------------------------------------------------------------------------ memory bounds
def test_uploads_are_bounded_and_the_sidebar_says_so(app) -> None:
    at = app(ds_source="upload")
    assert_mentions(texts(at), "200 files", "16 megapixels each", "32 megapixels in all")
    at.file_uploader(key="ds_upload").set_value([("huge.png", png((9000, 9000)), "image/png")])
    at.run()
    assert_no_exception(at)
    facts = ("huge.png", "9000 x 9000", "81.0 megapixels")
    assert any(_names(e, *facts) for e in errors(at)), errors(at)


def test_the_inspector_upload_is_bounded_too(app) -> None:
    at = app()
    at.switch_page("pages/inspector.py").run()
    at.file_uploader(key="insp_upload").set_value(("huge.png", png((9000, 9000)), "image/png"))
    at.run()
    assert_no_exception(at)
    assert any(_names(e, "81.0 megapixels", "16") for e in errors(at)), errors(at)


def test_edit_widgets_have_the_configs_upper_bounds(app) -> None:
    at = app()
    widgets = {w.label: w for w in at.number_input}
    assert widgets["local_crops_size"].max == widgets["global_crops_size"].max == 1024
    assert widgets["local_crops_number"].max == 64
    widgets["local_crops_number"].set_value(64).run()
    widgets = {w.label: w for w in at.number_input}
    widgets["local_crops_size"].set_value(1024).run()  # each in range, together too much
    assert_no_exception(at)
    message = next(e for e in errors(at) if "pixels is invalid" in e)
    assert_mentions(message, "2 x 224²", "64 x 1024²", "67,209,216 pixels")
    assert "MiB as float32 tensors" in message


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("global_crops_scale: " + "[" * 20_000 + "]" * 20_000, ["nested", "50 levels"]),
        (
            'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
            + "".join(
                f"b{i}: &b{i} [{','.join(['*a' if i == 0 else f'*b{i - 1}'] * 9)}]\n"
                for i in range(8)
            )
            + "global_crops_scale: *b7\n",
            ["expands", "10,000 values"],
        ),
        ('{"local_crops_number": 8, "local_crops_number": 0}', ["'local_crops_number'", "twice"]),
        ("local_crops_size: .nan\n", ["local_crops_size = nan", "wrong type"]),
    ],
)
def test_hostile_pasted_configs_are_messages(app, text: str, facts: list[str]) -> None:
    at = app(pl_source="config", pl_text=text)
    assert_no_exception(at)
    pasted = [e for e in errors(at) if e.startswith("pasted config: ")]
    assert any(not missing_facts(e, *facts) for e in pasted), errors(at)
    assert all(len(e) < 1000 for e in errors(at))


# ------------------------------------------------------------------------ unusable files
def test_the_count_of_unusable_files_opens_the_list(app, tmp_path: Path) -> None:
    for index in range(3):
        Image.new("RGB", (50, 40), (0, index * 60, 0)).save(tmp_path / f"good_{index}.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not a png")
    at = app(ds_source="folder", ds_path=str(tmp_path))
    at.switch_page("pages/statistics.py").run()  # sampling loads every image: notes.png fails
    assert_no_exception(at)
    (expander,) = [e for e in at.sidebar.expander if "unusable file(s)" in e.label]
    assert expander.label.startswith("2 unusable file(s)")
    table = at.sidebar.dataframe[0].value
    assert list(table.columns) == ["file", "reason"]
    reasons = dict(zip(table["file"], table["reason"], strict=True))
    assert reasons[str(tmp_path / "empty.jpg")] == "empty file (0 bytes)"
    assert "not an image" in reasons[str(tmp_path / "notes.png")]
