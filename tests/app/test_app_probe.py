"""The pages on your own pipeline: per-view operations, rates per view, the photometric checks;
and the inspector naming the image it actually shows."""

from __future__ import annotations

import textwrap

from apphelpers import assert_no_exception, errors, texts
from PIL import Image

from tests.facts import assert_mentions

# A DINOv2-shaped pipeline whose blur hands 1 - p to RandomApply (as DINOv2's own class does).
INVERTED_BLUR = textwrap.dedent(
    '''
    """Two 64 px globals and four 32 px locals; the blur's probability is inverted."""
    from torchvision import transforms as T

    class Blur(T.RandomApply):
        def __init__(self, p):
            super().__init__([T.GaussianBlur(9, sigma=(0.1, 2.0))], p=1 - p)

    def build():
        def view(size, scale, blur_p, solarize_p):
            return T.Compose([
                T.RandomResizedCrop(size, scale=scale),
                T.RandomHorizontalFlip(),
                T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
                T.RandomGrayscale(p=0.2),
                Blur(blur_p),
                T.RandomSolarize(128, p=solarize_p),
                T.ToTensor(),
                T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
            ])
        first, second = view(64, (0.32, 1.0), 1.0, 0.0), view(64, (0.32, 1.0), 0.1, 0.2)
        local = view(32, (0.05, 0.32), 0.5, 0.0)
        return lambda im: {
            "global_crops": [first(im), second(im)],
            "local_crops": [local(im) for _ in range(4)],
        }
    '''
)


def _own(app, tmp_path, **state):
    """The sidebar on your own pipeline (tests using it take the allow_code fixture)."""
    module = tmp_path / "inverted.py"
    module.write_text(INVERTED_BLUR)
    at = app(pl_source="own", pl_spec=f"{module}:build", **state)
    assert not errors(at), errors(at)
    return at


def test_the_inspector_lists_every_operation_of_each_own_view(app, tmp_path, allow_code):
    at = _own(app, tmp_path)
    at.switch_page("pages/inspector.py").run()
    assert_no_exception(at)
    assert "Operations per view, in order" in texts(at)
    operations = at.dataframe[1].value
    first = operations[operations["view"] == "G1"]
    kinds = list(first["kind"])
    assert kinds[:2] == ["crop", "flip"] and kinds[-2:] == ["to_tensor", "normalize"]
    blur = first[first["operation"] == "Blur"].iloc[0]
    assert blur["applied"] == "no" and "p 0" in blur["parameters"]
    assert blur["read from"] == "torchvision v1"
    assert {"torchvision v1"} == set(first["read from"])
    at.selectbox(key="insp_ops_view").set_value("L2").run()
    assert set(at.dataframe[1].value["view"]) == {"L2"}
    # The views' captions now carry what your own pipeline drew, as a built one's do.
    captions = at.image[1].captions
    assert captions[0].startswith("G1 · scale") and "blur" not in captions[0]


def test_statistics_show_rates_per_view_against_the_reference(app, tmp_path, allow_code):
    at = _own(app, tmp_path, stats_n=50)
    at.switch_page("pages/statistics.py").run()
    assert_no_exception(at)
    rates = at.dataframe[1].value.set_index(["kind", "operation"])
    assert rates.loc[("global1", "blur"), "measured"] == 0.0
    assert rates.loc[("global1", "blur"), "expected"] == 1.0
    assert rates.loc[("global1", "blur"), "verdict"] == "far"
    assert rates.loc[("local", "blur"), "verdict"] == "ok"
    strengths = at.dataframe[2].value
    assert {"brightness", "blur_sigma", "solarize_threshold"} <= set(strengths["strength"])
    assert_mentions(texts(at), "Photometric operations", "measured vs dinov2")  # the reference


def test_validation_fails_the_inverted_blur_and_names_the_cause(app, tmp_path, allow_code):
    at = _own(app, tmp_path)
    at.switch_page("pages/validation.py").run()
    at.button(key="val_run").click().run()
    assert_no_exception(at)
    report = at.session_state["dinodiag_last_report"]
    rates = report.by_id("photometric_rates")
    assert rates.status == "fail"
    # the view, the operation and how often it happened of how many samples
    view1 = [part for part in rates.message.split("; ") if part.startswith("global view 1: ")]
    assert any("blurred" in part and "0 of 16 samples" in part for part in view1), view1
    assert "passes 1 - p to RandomApply" in rates.message
    table = next(m.value for m in at.markdown if m.value.startswith("| status |"))
    assert "`photometric_rates`" in table


def test_the_inspector_names_the_image_it_shows_when_one_is_unusable(app, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    Image.new("RGB", (120, 90), (200, 30, 30)).save(folder / "b_good.png")
    Image.new("RGB", (100, 80), (30, 30, 200)).save(folder / "c_good.png")
    at = app(ds_source="folder", ds_path=str(folder))
    at.switch_page("pages/inspector.py").run()
    assert_no_exception(at)
    text = texts(at)
    # Image 0 is the broken file (folders list their files sorted): the next one is shown,
    # captioned with its own name, and a warning names the file that was skipped.
    warning = next(w.value for w in at.warning if "cannot be used" in w.value)
    assert_mentions(warning, "a_broken.jpg", "next usable image, 1.")  # skipped, and the one shown
    caption = next(m.value for m in at.markdown if "× " in m.value and " px · draw #" in m.value)
    assert "b_good.png" in caption and "120 × 90 px" in caption and "a_broken" not in caption
    assert "c_good.png" not in text
