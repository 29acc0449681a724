"""dinodiag.dashboard.view_records: view names, captions and the parameters table."""

from __future__ import annotations

from PIL import Image

import dinodiag
from dinodiag.augment.records import ViewRecord
from dinodiag.dashboard.view_records import records_frame, records_table, view_caption


def view(group: str, index: int, side: float, **sampled: object) -> ViewRecord:
    """A square crop of a 200 x 100 source."""
    return ViewRecord(
        group=group,
        index=index,
        source_size=(200, 100),
        box=(0, 0, side, side),
        scale=side * side / 20000,
        ratio=1.0,
        **sampled,
    )


def test_view_caption_names_view_and_every_sampled_parameter():
    ops = {"flip": True, "jitter": True, "grayscale": False, "blur": True, "solarize": True}
    caption = view_caption(view("local", 2, 50, blur_sigma=1.234, fallback=True, **ops))
    assert caption.startswith("L3 · scale 0.12 · ratio 1.00")
    for word in ("FALLBACK", "flip", "jitter", "blur σ1.2", "solarize"):
        assert word in caption
    assert "gray" not in caption
    none = dict.fromkeys(("flip", "jitter", "grayscale", "blur", "solarize", "fallback"), False)
    caption = view_caption(view("global", 1, 100, **none))
    assert caption.split(" · ") == ["G2", "scale 0.50", "ratio 1.00", "no photometric op"]
    assert view_caption(view("global", 0, 10)) == "G1 · scale 0.01 · ratio 1.00"  # crops only
    assert "\n" in view_caption(view("global", 0, 10, flip=True), multiline=True)
    assert view_caption(None) == "no record"


def test_records_table_and_frame_have_one_row_per_view():
    image = Image.new("RGB", (160, 120), (30, 120, 200))
    sample = dinodiag.build_pipeline(dinodiag.load_config("lightly"))(image, seed=3)
    rows = records_table(sample.records)
    assert [r["view"] for r in rows] == ["G1", "G2", *[f"L{i}" for i in range(1, 7)]]
    assert all(0 < r["scale"] <= 1 for r in rows)
    alone = records_frame([("lightly", sample.records)])
    assert "pipeline" not in alone and len(alone) == 8
    both = records_frame([("lightly", sample.records), ("two", sample.records[:2])])
    assert list(both.columns)[:2] == ["pipeline", "view"]
    assert list(both["pipeline"]) == ["lightly"] * 8 + ["two"] * 2


def test_operations_table_lists_each_views_operations_in_order():
    import torchvision.transforms as T

    from dinodiag.dashboard.view_records import operations_frame, operations_table
    from dinodiag.probe.pipeline import OwnPipeline

    image = Image.new("RGB", (160, 120), (30, 120, 200))
    view = T.Compose(
        [
            T.RandomResizedCrop(32),
            T.RandomApply([T.GaussianBlur(5)], p=0.0),
            T.RandomSolarize(128, p=1.0),
            T.ToTensor(),
        ]
    )
    sample = OwnPipeline(lambda im: [view(im)], "mine")(image, seed=0)
    rows = operations_table(sample.records)
    assert [(r["step"], r["operation"], r["applied"]) for r in rows] == [
        (1, "RandomResizedCrop", "yes"),
        (2, "RandomApply", "no"),
        (3, "RandomSolarize", "yes"),
        (4, "ToTensor", "yes"),
    ]
    assert "p 0" in rows[1]["parameters"] and "wraps (GaussianBlur)" in rows[1]["parameters"]
    assert (
        rows[2]["parameters"] == "p 1 · threshold 128" and rows[0]["read from"] == "torchvision v1"
    )
    built = dinodiag.build_pipeline(dinodiag.load_config("dinov2"))(image, seed=1).records
    both = operations_frame([("mine", sample.records), ("dinov2", built[:1])])
    assert list(both.columns)[:3] == ["pipeline", "view", "step"]
    assert list(both[both.pipeline == "dinov2"]["kind"]) == [
        "crop",
        "flip",
        "jitter",
        "grayscale",
        "blur",
        "solarize",
        "normalize",
    ]
    untold = view_caption(ViewRecord("global", 0, (10, 10), unknown_steps=2))
    assert untold == "G1 · 2 untold step(s)"
