"""The one planner of what a run trains (dinodiag.recipe.plan): its rules on a fake of the data
(no torch, nothing opened), then the command line and the form planning the same run through
the real training images and agreeing on the config or on the field / flag they refuse."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dinodiag.augment.presets import get_preset
from dinodiag.errors import ConfigError
from dinodiag.recipe.crops import ViewShapes
from dinodiag.recipe.plan import PIPELINE_FILE, Measured, plan_run
from dinodiag.recipe.presets import get_train_preset
from tests.facts import assert_mentions

REPO = Path(__file__).resolve().parents[2]
CODE = "mine.py:build"  # a spec of your own code (the fake measures it; nothing is imported)


def views(*sizes: int, local: int = 0) -> ViewShapes:
    """Two global views of ``sizes[0]`` px (and ``local`` of ``sizes[1]``), as measured."""
    local_size = (sizes[1], sizes[1]) if local else None
    return ViewShapes(2, (sizes[0], sizes[0]), local, local_size, (0.0, 1.0), label=CODE)


@dataclass
class FakeData:
    """The training data and machine as a plan asks for them, with what it was asked."""

    images: int = 64
    shapes: ViewShapes | None = None
    gpus: int = 0
    asked: list[dict[str, bool]] = field(default_factory=list)

    def measure(self, config: Any, *, images: bool, views: bool, gpus: bool) -> Measured:
        self.asked.append({"images": images, "views": views, "gpus": gpus})
        return Measured(
            images=self.images if images else None,
            views=self.shapes if views else None,
            gpus=self.gpus if gpus else None,
        )


def tiny(**changes: Any) -> Any:
    return get_train_preset("tiny-test").config.with_overrides(changes)


def refusal(base: Any, changes: dict[str, Any], data: Any = None, **kw: Any) -> str:
    with pytest.raises(ConfigError) as error:
        plan_run(base, changes, data, **kw)
    return str(error.value)


# --- your own code ----------------------------------------------------------------------


def test_your_code_drops_the_presets_crop_knobs_and_trains_its_measured_views():
    data = FakeData(shapes=views(16, 8, local=2))
    plan = plan_run(tiny(), {"data.pipeline": CODE}, data)
    crops = (plan.config.data.local_crops, plan.config.data.global_crops_size)
    assert crops == (None, None) and plan.config.data.local_crops_size is None
    assert plan.own and plan.recipe is None and plan.views == data.shapes
    assert (plan.pipeline.global_crops_size, plan.pipeline.local_crops_number) == (16, 2)
    assert plan.config.model.patch_size == 4 and plan.adapted == ""
    assert data.asked == [{"images": True, "views": True, "gpus": True}]  # one call
    assert plan.train_images == 64


@pytest.mark.parametrize(
    ("field", "flag", "value"),
    [
        ("data.local_crops", "--local-crops", 3),
        ("data.global_crops_size", "--global-crops-size", 16),
        ("data.local_crops_size", "--local-crops-size", 8),
    ],
)
def test_a_crop_knob_with_your_code_is_refused_before_the_code_runs(field, flag, value):
    data = FakeData(shapes=views(16))
    message = refusal(tiny(), {"data.pipeline": CODE, field: value}, data)
    assert_mentions(message, flag, field, "--pipeline-kwargs")
    assert data.asked == []  # refused by the planner, not by measuring the code


def test_keyword_arguments_for_a_recipe_are_refused_naming_the_field():
    message = refusal(tiny(), {"data.pipeline_kwargs": '{"size": 16}'}, FakeData())
    assert_mentions(message, "data.pipeline_kwargs", "'small-images'")
    with pytest.raises(ConfigError, match="data.pipeline_kwargs"):
        tiny(**{"data.pipeline_kwargs": "{}"})  # no such config: DataConfig refuses it


def test_the_patch_adapts_to_your_crops_with_a_note_saying_so():
    plan = plan_run(tiny(), {"data.pipeline": CODE}, FakeData(shapes=views(18)))
    assert plan.config.model.patch_size == 3  # divides 18, nearest to the preset's 4
    assert plan.pipeline.patch_size == 3 and plan.pipeline.global_crops_size == 18
    assert_mentions(plan.adapted, "patch size 3", "of 4", "18x18", "--patch-size")


def test_a_patch_you_give_is_kept_and_refused_when_it_does_not_divide_your_crops():
    data = FakeData(shapes=views(18))
    message = refusal(tiny(), {"data.pipeline": CODE, "model.patch_size": 4}, data)
    assert_mentions(message, "18x18", "patch size 4", "--patch-size 3 or 6 or 2")
    fits = plan_run(tiny(), {"data.pipeline": CODE, "model.patch_size": 6}, data)
    assert fits.config.model.patch_size == 6 and fits.adapted == ""


def test_crops_that_only_a_patch_of_one_divides_are_refused_not_adapted():
    message = refusal(tiny(), {"data.pipeline": CODE}, FakeData(shapes=views(17)))
    assert_mentions(message, "17x17", "4", "--patch-size 1")
    given = plan_run(
        tiny(), {"data.pipeline": CODE, "model.patch_size": 1}, FakeData(shapes=views(17))
    )
    assert given.config.model.patch_size == 1  # asked for by name: a token per pixel


def test_your_code_cannot_be_planned_without_its_data():
    assert_mentions(refusal(tiny(), {"data.pipeline": CODE}), "data.pipeline", CODE)


def test_resuming_your_code_measures_nothing_the_trainer_measures_the_stored_code():
    no_crops = {"data.local_crops": None, "data.global_crops_size": None}
    base = tiny(**{"data.pipeline": CODE, **no_crops, "data.local_crops_size": None})
    data = FakeData(shapes=views(18))
    plan = plan_run(base, {"run.max_steps": 9}, data, count_images=False, resume=True)
    assert plan.pipeline is None and plan.views is None and plan.config.run.max_steps == 9
    assert data.asked == [{"images": False, "views": False, "gpus": True}]


# --- what a resume keeps ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("data.local_crops", 4),
        ("data.global_crops_size", 32),
        ("data.pipeline", "dinov2"),
        ("data.pipeline", CODE),
        ("data.dinov2_blur", "published"),
    ],
)
def test_a_resumed_run_refuses_a_change_of_its_crops_naming_the_field(field, value):
    message = refusal(tiny(), {field: value}, FakeData(), resume=True)
    assert_mentions(message, field, "--run-dir")


def test_a_resumed_run_takes_the_same_crops_and_other_changes():
    plan = plan_run(tiny(), {"data.local_crops": 2, "run.max_steps": 8}, FakeData(), resume=True)
    assert plan.config.data.local_crops == 2 and plan.config.run.max_steps == 8


# --- architecture, pipeline files, recipes -----------------------------------------------


def test_a_new_architecture_gets_its_own_width_unless_given_or_resumed():
    assert tiny().model.embed_dim == 32
    small = plan_run(tiny(), {"model.arch": "vit_small"}).config.model
    assert (small.embed_dim, small.num_heads) == (None, None)
    same = plan_run(tiny(), {"model.arch": "vit_tiny"}).config.model
    assert (same.embed_dim, same.num_heads) == (32, 2)
    given = plan_run(tiny(), {"model.arch": "vit_small", "model.embed_dim": 96}).config.model
    assert (given.embed_dim, given.num_heads) == (96, None)


def test_a_pipeline_file_sets_the_patch_unless_the_patch_is_given(tmp_path: Path):
    path = tmp_path / "p8.yaml"
    path.write_text("student: {patch_size: 8}\ncrops: {global_crops_size: 16}\n")
    plan = plan_run(tiny(), {"data.pipeline": str(path)})
    assert plan.config.model.patch_size == 8 and plan.pipeline.patch_size == 8
    message = refusal(tiny(), {"data.pipeline": str(path), "model.patch_size": 4})
    assert_mentions(message, str(path), "patch size 8", "--patch-size 8")


def test_a_recipe_is_scaled_to_the_run_and_named_as_the_file_its_launcher_writes():
    plan = plan_run(tiny(), {"data.local_crops": 4}, recipe=get_preset("dinov2").config)
    assert plan.config.data.pipeline == PIPELINE_FILE and plan.recipe == plan.pipeline
    assert (plan.pipeline.global_crops_size, plan.pipeline.local_crops_size) == (16, 8)
    assert plan.pipeline.local_crops_number == 4 and plan.pipeline.patch_size == 4


# --- the machine and the data ------------------------------------------------------------


def test_a_gpu_that_is_not_here_is_refused_naming_run_device():
    message = refusal(tiny(), {"run.device": "cuda:3"}, FakeData(gpus=0))
    assert message.startswith("run.device") and "'cuda:3'" in message
    assert_mentions(message, "no CUDA GPU")
    assert plan_run(tiny(), {"run.device": "cuda:3"}, FakeData(gpus=4)).config.run.device
    unchecked = FakeData(gpus=0)  # --print-config: a config prints on any machine
    plan_run(tiny(), {"run.device": "cuda:3"}, unchecked, check_machine=False)
    assert unchecked.asked[0]["gpus"] is False


@pytest.mark.parametrize(("device", "gpus"), [("auto", 0), ("cpu", 0), ("cpu", 2)])
def test_vit_large_on_a_cpu_is_refused_naming_model_arch(device, gpus):
    changes = {"model.arch": "vit_large", "run.device": device}
    message = refusal(tiny(), changes, FakeData(gpus=gpus))
    assert message.startswith("model.arch") and "--device cuda" in message


def test_vit_large_where_a_gpu_runs_it_is_planned():
    plan = plan_run(tiny(), {"model.arch": "vit_large"}, FakeData(gpus=1))
    assert plan.config.model.arch == "vit_large" and plan.config.model.embed_dim is None


def test_koleo_with_a_batch_of_one_is_refused_by_the_config_itself():
    message = refusal(tiny(), {"data.batch_size": 1})  # no data: the config refuses it
    assert_mentions(message, "data.batch_size = 1", "KoLeo", "--koleo-weight 0")
    plan = plan_run(tiny(), {"data.batch_size": 1, "optim.koleo_weight": 0.0}, FakeData())
    assert plan.config.data.batch_size == 1


def test_a_batch_larger_than_the_training_set_names_the_field_and_the_largest_batch():
    message = refusal(tiny(), {"data.batch_size": 100}, FakeData(images=64))
    assert message.startswith("data.batch_size = 100")
    assert_mentions(message, "training set (64", "at most 64")
    unopened = plan_run(tiny(), {"data.batch_size": 100}, FakeData(), count_images=False)
    assert unopened.train_images is None and unopened.steps is None
    with pytest.raises(ConfigError, match="at most 64"):
        unopened.with_images(FakeData(images=64))


def test_planned_steps_follow_the_trainers_epoch():
    plan = plan_run(tiny(), {"run.max_steps": None, "run.epochs": 2}, FakeData(images=64))
    assert plan.steps == 2 * 64 // 4
    fixed = plan_run(tiny(), {"run.max_steps": None, "run.epoch_length": 10}, FakeData())
    assert fixed.steps == 10  # DINOv2's OFFICIAL_EPOCH_LENGTH, whatever the images
    assert plan.with_run({"run.max_steps": 5}).steps == 5
    with pytest.raises(ConfigError, match="run"):
        plan.with_run({"data.batch_size": 8})


# --- the command line and the form plan the same run -------------------------------------

SEED = str(REPO / "examples" / "seed_pipeline.py") + ":build_two_view_augment"


def cli(*argv: str) -> Any:
    """The config ``train ARGV`` trains, or its ConfigError's message."""
    from dinodiag.cli import build_parser
    from dinodiag.train.run_config import config_from_args

    try:
        return config_from_args(build_parser().parse_args(["train", *argv]))
    except ConfigError as exc:
        return str(exc)


def form(changes: dict[str, Any], code: str = "", kwargs: str = "") -> Any:
    """The config the training form plans for the tiny-test preset, or its message."""
    from dinodiag.runs.run_plan import plan_run as form_plan
    from dinodiag.train.pipelines import with_own_pipeline

    base = get_train_preset("tiny-test").config
    base = with_own_pipeline(base, code, kwargs) if code else base
    try:
        return form_plan(base, changes).config
    except ConfigError as exc:
        return str(exc)


AGREE = [  # (flags, the form's changes, your code's kwargs or None, the config's facts)
    ([], {}, None, {("model", "patch_size"): 4, ("data", "local_crops"): 2}),
    (["--arch", "vit_small"], {"model.arch": "vit_small"}, None, {("model", "embed_dim"): None}),
    ([], {}, '{"img_size": 18}', {("model", "patch_size"): 3, ("data", "local_crops"): None}),
    (
        ["--patch-size", "6"],
        {"model.patch_size": 6},
        '{"img_size": 18}',
        {("model", "patch_size"): 6},
    ),
]


@pytest.mark.parametrize(("flags", "changes", "kwargs", "facts"), AGREE)
def test_the_command_line_and_the_form_plan_the_same_config(flags, changes, kwargs, facts):
    code = ["--pipeline", SEED, "--pipeline-kwargs", kwargs] if kwargs else []
    by_cli = cli("--preset", "tiny-test", *code, *flags)
    by_form = form(changes, SEED if kwargs else "", kwargs or "")
    assert by_cli == by_form
    for (section, name), value in facts.items():
        assert getattr(getattr(by_cli, section), name) == value


REFUSE = [  # (flags, the form's changes, your code's kwargs or None, flag, field, more facts)
    (["--device", "cuda:3"], {"run.device": "cuda:3"}, None, "--device", "run.device", []),
    (["--arch", "vit_large"], {"model.arch": "vit_large"}, None, "--arch", "model.arch", []),
    (["--batch-size", "1"], {"data.batch_size": 1}, None, "--batch-size", "data.batch_size", []),
    (
        ["--pipeline-kwargs", "{}"],
        {"data.pipeline_kwargs": "{}"},
        None,
        "--pipeline-kwargs",
        "data.pipeline_kwargs",
        [],
    ),
    (
        ["--local-crops", "3"],
        {"data.local_crops": 3},
        '{"img_size": 16}',
        "--local-crops",
        "data.local_crops",
        [],
    ),
    (
        ["--patch-size", "4"],
        {"model.patch_size": 4},
        '{"img_size": 18}',
        "--patch-size",
        "patch size 4",
        ["18x18"],
    ),
]


@pytest.mark.parametrize(("flags", "changes", "kwargs", "flag", "field", "more"), REFUSE)
def test_the_command_line_and_the_form_refuse_the_same_run(
    flags, changes, kwargs, flag, field, more
):
    code = ["--pipeline", SEED, "--pipeline-kwargs", kwargs] if kwargs else []
    by_cli = cli("--preset", "tiny-test", *code, *flags)
    by_form = form(changes, SEED if kwargs else "", kwargs or "")
    assert isinstance(by_cli, str) and isinstance(by_form, str)
    assert_mentions(by_cli, flag, field, *more)  # the command line names its flag
    assert_mentions(by_form, field, *more)


def test_a_batch_larger_than_the_data_is_refused_by_the_form_and_by_the_trainer(tmp_path):
    """The command line leaves the count to the trainer (each DDP rank opens its shard): both
    name the batch flag / field and the 64 images."""
    from dinodiag.cli import main

    assert_mentions(form({"data.batch_size": 100}), "data.batch_size = 100", "at most 64")
    run_dir = tmp_path / "big"
    argv = ["train", "--preset", "tiny-test", "--batch-size", "100", "--run-dir", str(run_dir)]
    assert main(argv) == 2 and not run_dir.exists()


def test_a_planned_run_directory_trains_the_forms_plan(tmp_path: Path):
    from dinodiag.runs.manager import prepare
    from dinodiag.runs.run_plan import plan_run as form_plan
    from dinodiag.train.pipelines import with_own_pipeline

    base = with_own_pipeline(get_train_preset("tiny-test").config, SEED, '{"img_size": 18}')
    plan = form_plan(base, {"data.batch_size": 8})
    assert plan.config.model.patch_size == 3  # adapted to the code's 18 px crops
    run_dir = prepare(plan, tmp_path)
    assert cli("--run-dir", str(run_dir)) == plan.config
    assert_mentions(cli("--run-dir", str(run_dir), "--preset", "tiny-test"), "--preset")
    assert_mentions(cli("--run-dir", str(run_dir), "--local-crops", "2"), "--local-crops")
    recipe = form_plan(get_train_preset("tiny-test").config, {}, recipe=get_preset("dinov2").config)
    recipe_dir = prepare(recipe, tmp_path)
    planned = cli("--run-dir", str(recipe_dir))
    assert planned.data.pipeline == str(recipe_dir / PIPELINE_FILE)
    assert planned.with_overrides({"data.pipeline": PIPELINE_FILE}) == recipe.config


def test_resume_refuses_a_crop_flag_naming_it(tmp_path: Path):
    """A run's config.json as the trainer writes it; --resume with a changed crop knob."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    saved = get_train_preset("tiny-test").config.to_dict()
    (run_dir / "config.json").write_text(json.dumps(saved), encoding="utf-8")
    message = cli("--run-dir", str(run_dir), "--resume", "--local-crops", "4")
    assert_mentions(message, "--local-crops 4", "data.local_crops", "--run-dir")
    kept = cli("--run-dir", str(run_dir), "--resume", "--max-steps", "9")
    assert kept.run.max_steps == 9 and kept.data.local_crops == 2


def test_resume_of_your_changed_code_reaches_the_trainers_refusal(tmp_path: Path, capsys):
    """The planner measures nothing on --resume of your code: the trainer compares the file
    with the run's stored hash, refuses it as changed, and --allow-pipeline-change goes on."""
    from dinodiag.cli import main

    code = tmp_path / "mine.py"
    code.write_text((REPO / "examples" / "seed_pipeline.py").read_text(), encoding="utf-8")
    run_dir = tmp_path / "run"
    own = ["--pipeline", f"{code}:build_two_view_augment", "--pipeline-kwargs", '{"img_size": 18}']
    first = ["train", "--preset", "tiny-test", *own, "--max-steps", "1", "--run-dir", str(run_dir)]
    assert main(first) == 0
    code.write_text(code.read_text() + "\n# tuned\n", encoding="utf-8")
    capsys.readouterr()
    resume = ["train", "--run-dir", str(run_dir), "--resume", "--max-steps", "2"]
    assert main(resume) == 2
    assert_mentions(capsys.readouterr().err, "changed", "--allow-pipeline-change")
    assert main([*resume, "--allow-pipeline-change"]) == 0
    assert json.loads((run_dir / "config.json").read_text())["model"]["patch_size"] == 3
