"""The command line: tables, JSON reports, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dinodiag.cli import main
from tests.facts import assert_mentions


def test_presets_lists_every_preset(capsys) -> None:
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("dinov2", "dino", "lightly", "seed-broken", "seed-fixed"):
        assert name in out
    assert "source:" in out


def test_check_seed_broken_exits_1_and_writes_json(tmp_path, capsys) -> None:
    report = tmp_path / "r.json"
    markdown = tmp_path / "r.md"
    code = main(
        [
            "check",
            "--preset",
            "seed-broken",
            "--samples",
            "4",
            "--json",
            str(report),
            "--markdown",
            str(markdown),
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "[FAIL] view_count" in out and "verdict: FAIL" in out
    data = json.loads(report.read_text())
    statuses = {c["id"]: c["status"] for c in data["checks"]}
    assert statuses["view_count"] == "fail" and statuses["global_scale"] == "fail"
    assert set(data["checks"][0]) == {"id", "status", "measured", "expected", "message", "title"}
    assert "| FAIL | `view_count`" in markdown.read_text()


def test_check_dinov2_exits_0(capsys) -> None:
    assert main(["check", "--preset", "dinov2", "--samples", "3"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out


def test_check_config_file_and_expect_file(tmp_path, capsys) -> None:
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        "crops:\n  global_crops_scale: [0.32, 1.0]\n  local_crops_number: 8\nstudent:\n  "
        "patch_size: 16\n"
    )
    assert main(["check", "--config", str(cfg), "--expect", str(cfg), "--samples", "2"]) == 0
    assert "expected: train" in capsys.readouterr().out


def test_check_own_pipeline(capsys) -> None:
    code = main(
        [
            "check",
            "--pipeline",
            "examples/seed_pipeline.py:build_two_view_augment",
            "--pipeline-kwargs",
            '{"img_size": 96}',
            "--samples",
            "3",
        ]
    )
    assert code == 1
    assert "RandomResizedCrop" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--preset", "dinov3"], "Did you mean 'dinov2'"),
        (["check", "--config", "missing.yaml"], "does not exist"),
        (["check", "--pipeline", "examples/seed_pipeline.py:nope"], "has no attribute 'nope'"),
        (["check", "--pipeline-kwargs", "{}"], "only applies with --pipeline"),
        (["check", "--data", "/no/such/folder"], "/no/such/folder"),
        (["check", "--samples", "0"], "--samples = 0"),
        (["stats", "--samples", "-3"], "--samples = -3"),
        (["check", "--expect", "nonsense"], "unknown preset 'nonsense'"),
    ],
)
def test_input_errors_exit_2_with_a_message(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--preset", "dinov2", "--config", "x.yaml"])
    assert info.value.code == 2


def test_stats_prints_summary_and_writes_csv(tmp_path, capsys) -> None:
    csv = tmp_path / "s.csv"
    assert main(["stats", "--preset", "seed-fixed", "--samples", "5", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "Crop measures" in out and "Application rates" in out and "local_coverage" in out
    assert len(csv.read_text().splitlines()) == 1 + 5 * 10


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dinodiag", "check", "--preset", "seed-broken", "--samples", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "verdict: FAIL" in result.stdout


def test_inspection_sees_every_image_of_a_folder(capsys) -> None:
    from dinodiag.data import inspection_split

    assert inspection_split("sample") == "all" and inspection_split("generated:size=32") == "train"
    assert inspection_split("cifar10:/data") == "train"
    assert main(["check", "--preset", "dinov2", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "sample_images (all)" in out and "/20 images have a short side" in out


# ------------------------------------------------------------------ bad input names itself
def test_a_directory_as_config_says_it_is_a_directory(tmp_path, capsys) -> None:
    assert main(["check", "--config", str(tmp_path), "--samples", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"'{tmp_path}'" in err  # the path given, first
    assert_mentions(err, "config file", "directory")


@pytest.mark.parametrize("command", ["check", "stats"])
@pytest.mark.parametrize(("value", "why"), [("-1", "-1 is negative"), ("x", "'x' is not an")])
def test_a_bad_seed_names_the_option(command: str, value: str, why: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--seed", value])
    assert info.value.code == 2
    assert f"argument --seed: {why}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--json", "{tmp}"], ["--json {tmp}", "directory", "file name"]),
        (["check", "--markdown", "{tmp}"], ["--markdown {tmp}", "directory"]),
        (["check", "--json", "{tmp}/no/such/r.json"], ["{tmp}/no/such", "does not exist"]),
        (["stats", "--csv", "{tmp}"], ["--csv {tmp}", "directory"]),
        (["stats", "--csv", "/proc/x.csv"], ["--csv /proc/x.csv", "cannot be written"]),
        (["check", "--write-fixed", "/proc/fixed.yaml"], ["--write-fixed /proc/fixed.yaml"]),
    ],
)
def test_an_unwritable_output_fails_before_any_work(
    tmp_path, monkeypatch, argv: list[str], message: list[str], capsys
) -> None:
    import dinodiag.checks.runner
    import dinodiag.stats

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the checks / sampling ran before the output path was checked")

    monkeypatch.setattr(dinodiag.checks.runner, "run_checks", no_work)
    monkeypatch.setattr(dinodiag.stats, "sample_views", no_work)
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    assert main([*argv, "--samples", "1"]) == 2
    # the option and the path as given, and what is wrong with it
    facts = [fact.replace("{tmp}", str(tmp_path)) for fact in message]
    assert_mentions(capsys.readouterr().err, *facts)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("global_crops_size: .inf\n", ["global_crops_size = inf", "wrong type"]),
        ("global2:\n  solarize_p: .nan\n", ["global2.solarize_p = nan", "wrong type"]),
        ("a: " + "[" * 20_000 + "]" * 20_000 + "\n", ["nested", "50 levels"]),
        ("local_crops_number: 2\nlocal_crops_number: 8\n", ["'local_crops_number'", "appears"]),
        ("local_crops_size: 4096\n", ["local_crops_size = 4096", "invalid", "integer"]),
    ],
)
def test_hostile_config_files_exit_2_with_a_message(tmp_path, text: str, message: list, capsys):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    assert main(["check", "--config", str(path), "--samples", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cfg.yaml" in err and len(err) < 600  # the file named
    assert_mentions(err, *message)


# ------------------------------------------------------------------ the dashboard launcher
def test_app_starts_streamlit_on_loopback_without_code(monkeypatch, capsys) -> None:
    from dinodiag.dashboard import launch

    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(
        launch, "run_forwarding_signals", lambda command, env: calls.append((command, env)) or 0
    )
    monkeypatch.delenv("DINODIAG_ALLOW_BROWSER_CODE", raising=False)
    monkeypatch.delenv("DINODIAG_ALLOWED_HOSTS", raising=False)
    assert main(["app", "--port", "8600"]) == 0
    (command, env), *_ = calls
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("serve.py")
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "8600"
    assert command[command.index("--server.maxUploadSize") + 1] == "50"
    assert "DINODIAG_ALLOW_BROWSER_CODE" not in env
    assert env["DINODIAG_ALLOWED_HOSTS"] == ""  # serve.py's Host rule: loopback and the address
    assert capsys.readouterr().err == ""

    argv = ["app", "--allow-browser-code", "--address", "0.0.0.0", "--allow-host", "box.lan"]
    assert main(argv) == 0
    command, env = calls[1]
    assert env["DINODIAG_ALLOWED_HOSTS"] == "box.lan"
    hosts = [command[i + 1] for i, flag in enumerate(command) if flag == "--server.allowedHosts"]
    assert hosts == ["localhost", "127.0.0.1", "::1", "box.lan"]  # not 0.0.0.0: not a name
    assert env["DINODIAG_ALLOW_BROWSER_CODE"] == "1"
    assert command[command.index("--server.address") + 1] == "0.0.0.0"
    err = capsys.readouterr().err
    assert "code from the browser is allowed" in err and "listening on 0.0.0.0" in err


def test_the_cli_takes_specs_without_the_dashboard_switch(monkeypatch, capsys) -> None:
    monkeypatch.delenv("DINODIAG_ALLOW_BROWSER_CODE", raising=False)  # it runs as its caller
    argv = ["check", "--pipeline", "examples/seed_pipeline.py:build_two_view_augment"]
    assert main([*argv, "--samples", "2"]) == 1  # the seed pipeline fails its checks
    assert "verdict: FAIL" in capsys.readouterr().out


SEED_SPEC = "examples/seed_pipeline.py:build_two_view_augment"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ("[" * 3000 + "]" * 3000, "nest too deep to read"),  # was a RecursionError traceback
        ('{"img_size": "' + "x" * 100_000 + '"}', "calling the factory(img_size="),
        ('{"img_size": ' + "1" * 100_000 + "}", "cannot be read ('Exceeds the limit"),
    ],
)
def test_hostile_pipeline_kwargs_are_a_short_usage_error(kwargs: str, message: str, capsys):
    assert main(["check", "--pipeline", SEED_SPEC, "--pipeline-kwargs", kwargs]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert len(err) < 1000  # a value is quoted to 80 characters, never whole


def test_open_run_refuses_an_unknown_expect_as_check_does(tmp_path, capsys) -> None:
    # a run naming no crops never reads --expect: it used to exit 0 with no word about it
    (tmp_path / "training_metrics.json").write_text('{"iteration": 9, "total_loss": 1.0}\n')
    argv = ["--expect", "dinov9"]
    assert main(["open-run", str(tmp_path), *argv, "--checkpoint", "none"]) == 2
    assert "Did you mean 'dinov2'?" in capsys.readouterr().err
    assert main(["check", *argv]) == 2  # the same rule, the same message
    assert "Did you mean 'dinov2'?" in capsys.readouterr().err
    assert main(["open-run", str(tmp_path), "--expect", "dino", "--checkpoint", "none"]) == 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_config_that_is_no_regular_file_says_what_it_is(tmp_path, capsys) -> None:
    import threading

    fifo = tmp_path / "cfg.yaml"
    os.mkfifo(fifo)  # no writer: opening it for reading would wait forever
    cases = {
        str(fifo): "is a FIFO (named pipe), not a regular file",
        "/dev/zero": "is a character device, not a regular file",  # was "does not exist"
        str(tmp_path): "is a directory: give a YAML / JSON file in it",
        str(tmp_path / "missing.yaml"): "does not exist",
    }
    for path, message in cases.items():
        codes: list[int] = []
        reader = threading.Thread(
            target=lambda p=path, c=codes: c.append(
                main(["check", "--config", p, "--samples", "1"])
            ),
            daemon=True,
        )
        reader.start()
        reader.join(timeout=30)
        assert not reader.is_alive(), f"reading {path} blocked"
        assert codes == [2]
        err = capsys.readouterr().err
        # a long path is shortened in the message (at most 80 characters of a value)
        assert message in err and f"config file '{path[:20]}" in err, err


def test_a_mistyped_command_gets_did_you_mean(capsys):
    from dinodiag.cli import main as cli_main

    assert cli_main(["chek", "--data", "sample"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'chek'" in err and "did you mean 'check'?" in err
    assert cli_main(["zzz"]) == 2
    assert "did you mean" not in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["check", "--help"], ["chek"]])
def test_help_and_usage_errors_answer_without_importing_torch(argv):
    """--help and usage errors once took 2-6 s: torch was imported before the arguments were
    parsed. They now never import it (timed in bench/bench_cli_help.py)."""
    probe = (
        "import sys\nfrom dinodiag.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60
    )
    assert done.stderr.strip().splitlines()[-1] == "NO-TORCH", done.stderr
