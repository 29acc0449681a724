"""Every page with the default sidebar (sample images, dinov2 preset): content, no crash."""

from __future__ import annotations

from apphelpers import assert_no_exception, errors, texts

from tests.facts import assert_mentions


def test_home_says_what_is_selected_and_links_every_page(app):
    at = app()
    assert "not learning" in at.title[0].value
    text = texts(at)
    assert "sample_images" in text  # the dataset line
    # the pipeline line: its name, then each crop kind's count, size and scale range
    assert_mentions(
        text, "dinov2: 2 × 224 px globals", "(0.32–1)", "8 × 96 px locals", "(0.05–0.32)"
    )
    assert "NOT RUN" in text  # no validation yet
    assert {link.proto.page for link in at.page_link} >= {"inspector", "statistics", "validation"}
    assert not errors(at)


def test_inspector_shows_source_boxes_and_every_view_labelled(app):
    at = app()
    at.switch_page("pages/inspector.py").run()
    assert_no_exception(at)
    assert at.title[0].value == "Crop inspector"
    boxes, globals_, locals_ = at.image[0], at.image[1], at.image[2]
    assert "crop boxes" in boxes.captions[0]
    assert [c.split(" · ")[0] for c in globals_.captions] == ["G1", "G2"]
    assert [c.split(" · ")[0] for c in locals_.captions] == [f"L{i}" for i in range(1, 9)]
    assert all("scale" in c and "ratio" in c for c in globals_.captions + locals_.captions)
    table = at.dataframe[0].value
    assert list(table["view"]) == ["G1", "G2", *[f"L{i}" for i in range(1, 9)]]
    assert table["scale"].between(0.05, 1.0).all()
    assert {"flip", "jitter", "grayscale", "blur σ", "solarize", "fallback"} <= set(table.columns)
    assert "Download figure (PNG)" in [b.proto.label for b in at.download_button]


def test_inspector_resample_draws_new_crops(app):
    at = app()
    at.switch_page("pages/inspector.py").run()
    before = at.dataframe[0].value["scale"].tolist()
    captions_before = at.image[2].captions
    at.button(key="insp_resample").click().run()
    assert_no_exception(at)
    assert at.dataframe[0].value["scale"].tolist() != before
    assert at.image[2].captions != captions_before
    assert "draw #1" in texts(at)


def test_inspector_side_by_side_with_the_seed_pipelines(app):
    at = app()
    at.switch_page("pages/inspector.py").run()
    at.selectbox(key="insp_compare").set_value("seed").run()
    assert_no_exception(at)
    assert [s.value for s in at.subheader][:2] == ["seed-broken", "seed-fixed"]
    table = at.dataframe[0].value
    assert (table["pipeline"] == "seed-broken").sum() == 2  # two views only: bug 2 of the seed
    assert (table["pipeline"] == "seed-fixed").sum() == 10


def test_statistics_tables_have_the_expected_rows(app):
    at = app(stats_n=50)
    at.switch_page("pages/statistics.py").run()
    assert_no_exception(at)
    assert not errors(at)
    summary = at.dataframe[0].value
    rows = set(zip(summary["group"], summary["measure"], strict=True))
    assert rows == {
        ("global", "scale"),
        ("global", "ratio"),
        ("global", "upsampling"),
        ("global", "global_iou"),
        ("local", "scale"),
        ("local", "ratio"),
        ("local", "upsampling"),
        ("local", "local_coverage"),
    }
    scale = summary[(summary["group"] == "global") & (summary["measure"] == "scale")].iloc[0]
    assert scale["configured"] == "0.32-1" and 0.32 <= scale["min"] <= scale["max"] <= 1.0
    rates = at.dataframe[1].value
    assert set(rates["kind"]) == {"global1", "global2", "local"}
    assert {"flip", "jitter", "grayscale", "blur", "solarize", "fallback"} <= set(
        rates["operation"]
    )
    labels = [m.label for m in at.metric]
    assert {"Global scale", "Local scale", "Local upsampling", "Fallback rate"} <= set(labels)
    assert len(at.image) == 1  # image sizes (histograms and rates: Vega-Lite charts)
    assert "Download raw samples (CSV)" in [b.proto.label for b in at.download_button]


def test_statistics_compares_two_configs_on_the_same_images(app):
    at = app(stats_n=50, stats_compare="seed-broken")
    at.switch_page("pages/statistics.py").run()
    assert_no_exception(at)
    summary = at.dataframe[0].value
    assert set(summary["pipeline"]) == {"dinov2", "seed-broken"}
    broken = summary[(summary["pipeline"] == "seed-broken") & (summary["measure"] == "scale")]
    assert list(broken["group"]) == ["global"]  # no local crops in the broken pipeline
    assert broken.iloc[0]["min"] < 0.32  # its global scale reaches below the DINOv2 range


def test_validation_of_the_seed_broken_pipeline_fails_view_count_and_global_scale(app):
    at = app()
    at.selectbox(key="pl_preset").set_value("seed-broken").run()
    at.switch_page("pages/validation.py").run()
    assert "Press **Run all checks**" in texts(at)
    assert "Try the preset `seed-broken`" not in texts(at)  # it is the one shown already
    at.button(key="val_run").click().run()
    assert_no_exception(at)
    report = at.session_state["dinodiag_last_report"]
    assert report.verdict == "fail"
    assert report.by_id("view_count").status == "fail"
    assert report.by_id("global_scale").status == "fail"
    table = next(m.value for m in at.markdown if m.value.startswith("| status |"))
    rows = table.splitlines()[2:]
    assert len(rows) == len(report.results)
    assert all(
        ":red-badge[FAIL]" in row for row in rows[: report.counts()["fail"]]
    )  # failing first
    assert any("`view_count`" in row and ":red-badge[FAIL]" in row for row in rows)
    assert any("`global_scale`" in row and ":red-badge[FAIL]" in row for row in rows)
    assert "Verdict :red-badge[FAIL]" in texts(at)
    assert {b.proto.label for b in at.download_button} >= {
        "Download report (JSON)",
        "Download report (Markdown)",
    }
    at.switch_page("pages/home.py").run()
    assert ":red-badge[FAIL]" in texts(at)  # the home page shows the last verdict


def test_validation_suggests_the_broken_preset_only_when_another_pipeline_is_shown(app):
    at = app()
    at.switch_page("pages/validation.py").run()
    assert_mentions(texts(at), "**Run all checks**", "Try the preset `seed-broken`")  # on dinov2
