"""What a check run keeps (flat in the sample count) and what its report lists."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

from conftest import ListDataset, make_image
from PIL import Image

from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS
from dinodiag.augment.records import MultiCropSample
from dinodiag.checks.evidence import EXAMPLES_KEPT, Evidence
from dinodiag.checks.runner import run_checks
from dinodiag.cli import main
from dinodiag.data import open_dataset
from tests.facts import assert_mentions

SMALL = PRESETS["dinov2"].config.replace(
    global_crops_size=32, local_crops_size=16, local_crops_number=4
)
DATA = ListDataset([make_image(120, 90, seed=i) for i in range(5)])


class Watched:
    """A built pipeline whose every view is watched through a weak reference."""

    def __init__(self) -> None:
        self.inner = build_pipeline(SMALL)
        self.config = SMALL
        self.views: list[weakref.ref] = []

    def __call__(self, image: Image.Image, seed: int | None = None) -> MultiCropSample:
        sample = self.inner(image, seed=seed)
        self.views += [weakref.ref(v) for v in sample.views]
        return sample


def test_only_the_first_samples_views_outlive_the_tally() -> None:
    """40 samples checked: the views of the first few (and of the repeat) survive, no more."""
    pipeline = Watched()
    evidence_holder: list[Evidence] = []
    import dinodiag.checks.runner as runner

    original = runner.Evidence

    class Keeping(original):  # keep the evidence alive to look at it
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            evidence_holder.append(self)

    runner.Evidence = Keeping
    try:
        report = run_checks(pipeline, DATA, expect=SMALL, samples=40)
    finally:
        runner.Evidence = original
    gc.collect()
    alive = sum(ref() is not None for ref in pipeline.views)
    per_sample = SMALL.num_views
    assert len(pipeline.views) == 41 * per_sample  # 40 samples + the determinism repeat
    assert alive == (EXAMPLES_KEPT + 1) * per_sample
    evidence = evidence_holder[0]
    assert evidence.sample_count == 40 and len(evidence.examples) == EXAMPLES_KEPT
    assert len(evidence.rows) == 40 * per_sample
    assert "operations" not in evidence.frame.columns  # rows stay flat: records keep the detail
    assert report.verdict in ("pass", "warn")


def test_tallies_match_what_the_whole_samples_say() -> None:
    """Running per-channel sums give the mean / std of every view concatenated."""
    import torch

    evidence = Evidence(SMALL, "small", SMALL)
    samples = [build_pipeline(SMALL)(DATA[i][0], seed=i) for i in range(5)]
    for i, sample in enumerate(samples):
        evidence.add(sample, i)
    pixels = torch.cat([v.reshape(3, -1) for s in samples for v in s.views], dim=1).double()
    mean, std = evidence.channel_stats()
    assert mean == [float(m) for m in pixels.mean(dim=1)]
    assert max(abs(a - float(b)) for a, b in zip(std, pixels.std(dim=1), strict=True)) < 1e-9
    assert evidence.view_counts == {(2, 4): 5}
    assert dict(evidence.shapes["locals"]) == {"3x16x16": 20}


def _folder_with_bad_files(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        make_image(120, 90, seed=i).save(folder / f"good_{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes((folder / "good_0.png").read_bytes()[:100])
    return folder


def test_every_unusable_file_is_listed_in_the_json_and_markdown(tmp_path: Path) -> None:
    folder = _folder_with_bad_files(tmp_path)
    dataset = open_dataset(str(folder), split="all")
    report = run_checks(build_pipeline(SMALL), dataset, expect=SMALL, samples=6)
    listed = {Path(f["path"]).name for f in report.unusable_files}
    assert listed == {"broken.jpg", "empty.png", "truncated.png"}
    data = json.loads(report.to_json())
    assert {Path(f["path"]).name for f in data["unusable_files"]} == listed
    assert all(f["reason"] for f in data["unusable_files"])
    markdown = report.to_markdown()
    assert_mentions(markdown, "Unusable files", "(3, skipped)")
    assert all(name in markdown for name in listed)


def test_the_cli_lists_every_unusable_file(tmp_path: Path, capsys) -> None:
    folder = _folder_with_bad_files(tmp_path)
    code = main(["check", "--data", str(folder), "--samples", "6", "--preset", "small-images"])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert_mentions(out, "3 unusable file(s)", "skipped")
    for name in ("broken.jpg", "empty.png", "truncated.png"):
        assert name in out
