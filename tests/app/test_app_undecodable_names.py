"""A folder holding a file name that is not UTF-8 (Latin-1 ``café``): every page opens it,
and the unusable-files table names the file with its undecodable byte escaped."""

from __future__ import annotations

import os
from pathlib import Path

from apphelpers import assert_no_exception
from PIL import Image

PAGES = ("pages/inspector.py", "pages/statistics.py", "pages/validation.py", "pages/home.py")


def test_every_page_opens_a_folder_with_a_latin1_file_name(app, tmp_path: Path) -> None:
    Image.new("RGB", (64, 48), (200, 20, 20)).save(tmp_path / "plain.png")
    Image.new("RGB", (64, 48), (20, 20, 200)).save(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.png"))
    Path(os.fsdecode(bytes(tmp_path) + b"/bad_caf\xe9.jpg")).write_bytes(b"\xff\xd8 no jpeg")
    at = app(ds_source="folder", ds_path=str(tmp_path))
    for page in PAGES:
        at.switch_page(page).run()
        assert_no_exception(at)
    tables = [frame.value for frame in at.sidebar.dataframe]
    named = [str(name) for table in tables for name in table.get("file", [])]
    assert named and all(name.endswith("bad_caf\\xe9.jpg") for name in named), named
