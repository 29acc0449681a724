"""Every Markdown link of README.md and docs/*.md to a local file or heading resolves.

The README is the front door and docs/ the reference behind it; a moved section or a renamed
heading must not leave a link that leads nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.facts import assert_mentions

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target); the text may wrap onto the next line.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of ``page``'s headings (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Each local link of ``page`` that names a missing file or heading, with the reason."""
    text = CODE_SPAN.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_relative_to(root.resolve()):
            broken.append(f"{target}: outside the repository")
        elif not file.exists():
            broken.append(f"{target}: no file {file.relative_to(root.resolve())}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {target.partition("#")[0] for target in LINK.findall(readme)}
    assert {f"docs/{p.name}" for p in PAGES[1:]} <= linked


def test_the_readme_shows_every_screenshot_it_links() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shots = {t for t in LINK.findall(readme) if t.startswith("docs/screenshots/")}
    on_disk = {f"docs/screenshots/{p.name}" for p in (ROOT / "docs" / "screenshots").glob("*.png")}
    assert shots == on_disk


def test_a_broken_file_or_heading_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## The `train` flags\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Top\n\n[ok](docs/other.md#the-train-flags) [self](#top) [web](https://example.org)\n"
        "[gone](docs/missing.md) [no heading](docs/other.md#nowhere) [wrapped\ntext](#nope)\n"
        "`[in code](docs/missing.md)`\n```\n[in a block](docs/missing.md)\n```\n"
    )
    problems = broken_links(page, tmp_path)
    # each broken link as written, first; then what is missing, and where it was looked for
    assert [problem.split(": ")[0] for problem in problems] == [
        "docs/missing.md",
        "docs/other.md#nowhere",
        "#nope",
    ]
    assert_mentions(problems[0], "no file")
    assert_mentions(problems[1], "no heading #nowhere", "other.md")
    assert_mentions(problems[2], "no heading #nope", "README.md")


def test_slugs_follow_github() -> None:
    assert slug("cpu-demo in 5 minutes") == "cpu-demo-in-5-minutes"
    assert slug("Pipelines: presets, config files, your own code") == (  # wording is the feature
        "pipelines-presets-config-files-your-own-code"  # GitHub's anchor, to the character
    )
    assert slug("`train`") == "train"
