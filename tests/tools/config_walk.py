"""Walk a training config from the command line to the first step (issue 22's measure).

Runs ``python -m dinodiag train`` in this process (``dinodiag.cli.main``) under
``sys.settrace`` and records every call into a function defined in a ``dinodiag/`` file
whose arguments, at entry, hold the config: a ``TrainConfig`` or one of its sections
(``ModelConfig``, ``OptimConfig``, ...; matched with ``isinstance``, since ``with_overrides``
rebuilds them) or the ``argparse.Namespace`` of the flags, before the config exists.
``self`` counts (a method of the config); the attributes of other arguments do not (a
``RunState`` holding the config is not the config). Recording starts at the first call given
the Namespace (the command: the presets built while the CLI is imported are left out) and
stops at the first call of the step function (``dinodiag/train/step.py:train_step``); the run
then ends its one step.

Calls in code without a file of dinodiag (dataclass-generated ``__init__``, ``<string>``) and
comprehension frames are left out. Only the main thread is traced (the step-0 k-NN thread and
the loader's workers are not). It measures the one path the given flags take, not every
branch: a DINOv2 ``--config``, your own ``--pipeline`` or ``--resume`` take others.

A file is *entered* once per maximal run of consecutive calls in it: the walk
``A, A, B, A`` enters A twice and B once. A section validated on construction that calls a
helper elsewhere (``__post_init__`` -> ``typed_config.check_bounds``) enters both files once
per section each time the config is rebuilt. Issue 22 is done when every file is entered once
or twice. Run from the repository root (this file is not collected by pytest)::

    .venv/bin/python tests/tools/config_walk.py             # table: file, entries, calls
    .venv/bin/python tests/tools/config_walk.py --verbose   # ... and the walk, by call depth
    .venv/bin/python tests/tools/config_walk.py --json      # the same as JSON
    .venv/bin/python tests/tools/config_walk.py -- --preset cpu-demo --max-steps 1
    PYTHONPATH=/tmp/old-checkout .venv/bin/python tests/tools/config_walk.py  # another layout

The flags after ``--`` replace the default ``--preset tiny-test --max-steps 1``; the tool adds
``--run-dir`` (a temporary directory) unless they name one. It exits 0 when the walk reached
the first step, 1 when the run ended before it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import sys
import tempfile
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

DEFAULT_TRAIN_FLAGS = ("--preset", "tiny-test", "--max-steps", "1")
STOP_AT = ("dinodiag/train/step.py", "train_step")  # the first optimisation step begins here
# Where TrainConfig lives: the recipe layer today, train/config.py before issue 22.
CONFIG_MODULES = ("dinodiag.recipe.config", "dinodiag.train.config")
SKIPPED_FRAMES = frozenset({"<listcomp>", "<genexpr>", "<setcomp>", "<dictcomp>"})
_CO_VARARGS, _CO_VARKEYWORDS = 0x04, 0x08  # inspect.CO_VARARGS / CO_VARKEYWORDS


@dataclass(frozen=True)
class Call:
    """One call of the walk: where it entered and which arguments carried the config."""

    file: str  # relative to the directory above the package: dinodiag/train/cli.py
    function: str  # qualified name: TrainConfig.with_overrides
    line: int  # first line of the function
    carriers: tuple[str, ...]  # the arguments holding the config, "name: Type"
    depth: int = 0  # stack frames below the walk's first call (the CLI command)


@dataclass(frozen=True)
class FileEntries:
    file: str
    entries: int  # maximal runs of consecutive calls in this file
    calls: int  # calls of the walk in this file
    first_function: str  # the function the walk entered it by first


@dataclass(frozen=True)
class Walk:
    argv: tuple[str, ...]  # what dinodiag.cli.main was given
    calls: tuple[Call, ...]  # in call order, up to the first step
    reached_step: bool  # the step function was called (recording stopped there)
    exit_code: int | None  # the CLI's exit code (None: it raised)

    def files(self) -> list[FileEntries]:
        return count_entries((c.file, c.function) for c in self.calls)

    def to_dict(self, verbose: bool = False) -> dict[str, Any]:
        files = self.files()
        out: dict[str, Any] = {
            "argv": list(self.argv),
            "stop_at": ":".join(STOP_AT),
            "reached_step": self.reached_step,
            "exit_code": self.exit_code,
            "files_crossed": len(files),
            "entries": sum(f.entries for f in files),
            "calls": len(self.calls),
            "files": [dataclasses.asdict(f) for f in files],
        }
        if verbose:
            out["walk"] = [dataclasses.asdict(c) for c in self.calls]
        return out


def count_entries(walk: Iterable[tuple[str, str]]) -> list[FileEntries]:
    """Per file of a walk of ``(file, function)`` calls, in the order first entered: how many
    times the walk enters it (maximal runs of consecutive calls there), its calls, and the
    function it entered by first."""
    entries: dict[str, int] = {}
    calls: dict[str, int] = {}
    first: dict[str, str] = {}
    previous = None
    for file, function in walk:
        if file != previous:
            entries[file] = entries.get(file, 0) + 1
            first.setdefault(file, function)
        calls[file] = calls.get(file, 0) + 1
        previous = file
    return [FileEntries(f, entries[f], calls[f], first[f]) for f in entries]


def config_types() -> tuple[type, ...]:
    """``TrainConfig``, its section dataclasses and ``argparse.Namespace`` (the flags before
    the config exists), from the layout of the dinodiag that is imported."""
    import dinodiag

    package_dir = Path(dinodiag.__file__).parent
    for name in CONFIG_MODULES:
        # Looked for in that package only: an editable install's finder would otherwise
        # supply dinodiag.recipe from another checkout to an old layout on PYTHONPATH.
        if not package_dir.joinpath(*name.split(".")[1:]).with_suffix(".py").is_file():
            continue
        module = importlib.import_module(name)
        train_config = getattr(module, "TrainConfig", None)
        if isinstance(train_config, type) and dataclasses.is_dataclass(train_config):
            hints = typing.get_type_hints(train_config)
            sections = [
                hints[f.name]
                for f in dataclasses.fields(train_config)
                if isinstance(hints.get(f.name), type) and dataclasses.is_dataclass(hints[f.name])
            ]
            return (train_config, *sections, argparse.Namespace)
    raise SystemExit(
        f"config_walk: no TrainConfig dataclass in {' or '.join(CONFIG_MODULES)} of the "
        "dinodiag on sys.path: run from the repository root (or set PYTHONPATH to a checkout)."
    )


def _arguments(frame: FrameType) -> list[tuple[str, Any]]:
    """The arguments of a frame at its 'call' event; ``*args`` and ``**kwargs`` opened one
    level (their items are arguments too)."""
    code = frame.f_code
    count = code.co_argcount + code.co_kwonlyargcount
    star = code.co_flags & _CO_VARARGS
    names = code.co_varnames[: count + bool(star) + bool(code.co_flags & _CO_VARKEYWORDS)]
    local = frame.f_locals
    out: list[tuple[str, Any]] = []
    for index, name in enumerate(names):
        value = local.get(name)
        if index == count and star and isinstance(value, tuple):
            out += [(f"{name}[{i}]", item) for i, item in enumerate(value)]
        elif index >= count and isinstance(value, dict):
            out += [(f"{name}[{key!r}]", item) for key, item in value.items()]
        else:
            out.append((name, value))
    return out


class _Recorder:
    """The trace function: from the first call given the flags' Namespace (the presets built
    while the CLI is imported are not the walk) to the step function's first call."""

    def __init__(self, package_dir: Path, carriers: tuple[type, ...]) -> None:
        self.root = str(package_dir.parent) + "/"
        self.package = str(package_dir) + "/"
        self.carriers = carriers
        self.calls: list[Call] = []
        self.reached_step = False
        self.kinds: dict[CodeType, int] = {}  # 0 elsewhere, 1 a dinodiag function, 2 the step
        self.base_depth = 0  # stack depth of the walk's first call

    def _kind(self, code: CodeType) -> int:
        file = code.co_filename
        if not file.startswith(self.package) or code.co_name in SKIPPED_FRAMES:
            return 0
        return 2 if (file[len(self.root) :], code.co_name) == STOP_AT else 1

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        code = frame.f_code
        kind = self.kinds.get(code)
        if kind is None:
            kind = self.kinds[code] = self._kind(code)
        if kind == 2:
            self.reached_step = True
            sys.settrace(None)  # the rest of the run is not part of the walk
        elif kind == 1:
            carried = [(n, v) for n, v in _arguments(frame) if isinstance(v, self.carriers)]
            if not self.calls and not any(isinstance(v, argparse.Namespace) for _, v in carried):
                return None  # not started: the command line starts the walk
            if carried:
                depth = _depth(frame)
                self.base_depth = self.base_depth or depth
                self.calls.append(
                    Call(
                        code.co_filename[len(self.root) :],
                        code.co_qualname,
                        code.co_firstlineno,
                        tuple(f"{name}: {type(value).__name__}" for name, value in carried),
                        depth - self.base_depth,
                    )
                )
        return None  # no line events: calls only


def _depth(frame: FrameType | None) -> int:
    depth = 0
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


def train_argv(train_flags: Sequence[str], run_dir: Path) -> list[str]:
    """``train`` with the flags (the defaults when none), and ``--run-dir`` unless given."""
    flags = list(train_flags) or list(DEFAULT_TRAIN_FLAGS)
    given = any(f == "--run-dir" or f.startswith("--run-dir=") for f in flags)
    return ["train", *flags, *([] if given else ["--run-dir", str(run_dir / "run")])]


def record_walk(train_flags: Sequence[str] = ()) -> Walk:
    """Run ``python -m dinodiag train`` with ``train_flags`` here, its console lines on
    standard error, and return the config's walk up to the first step."""
    import dinodiag
    from dinodiag.cli import main

    with contextlib.suppress(ImportError):  # imported untraced: a third of the run's time
        import torch  # noqa: F401
    recorder = _Recorder(Path(dinodiag.__file__).resolve().parent, config_types())
    with tempfile.TemporaryDirectory(prefix="config-walk-") as tmp:
        argv = train_argv(train_flags, Path(tmp))
        before = sys.gettrace()  # a coverage tracer, say: put back afterwards
        exit_code = None
        try:
            with contextlib.redirect_stdout(sys.stderr):
                sys.settrace(recorder)
                exit_code = main(argv)
        finally:
            sys.settrace(before)
    return Walk(tuple(argv), tuple(recorder.calls), recorder.reached_step, exit_code)


def format_table(walk: Walk, verbose: bool = False) -> str:
    files = walk.files()
    width = max([len("file"), *(len(f.file) for f in files)])
    lines = [f"{'file':<{width}}  entries  calls  first function"]
    lines += [f"{f.file:<{width}}  {f.entries:>7}  {f.calls:>5}  {f.first_function}" for f in files]
    most = max((f.entries for f in files), default=0)
    reached = "reached" if walk.reached_step else "did NOT reach"
    lines += [
        "",
        f"files crossed: {len(files)}; entries: {sum(f.entries for f in files)}; calls: "
        f"{len(walk.calls)}; most entries of one file: {most} (issue 22's target: 2)",
        f"the walk {reached} the first step ({':'.join(STOP_AT)}); train exit code "
        f"{walk.exit_code}; argv: {' '.join(walk.argv)}",
    ]
    if verbose:
        lines += ["", "walk:"]
        lines += [
            f"  {'  ' * min(max(c.depth, 0), 20)}{c.file}:{c.function}({', '.join(c.carriers)})"
            for c in walk.calls
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="flags after -- go to 'train' (default: " + " ".join(DEFAULT_TRAIN_FLAGS) + ")",
    )
    parser.add_argument("--verbose", action="store_true", help="also print the walk in order")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("train_flags", nargs="*", help="flags of python -m dinodiag train")
    args = parser.parse_args(argv)
    walk = record_walk(args.train_flags)
    if args.json:
        print(json.dumps(walk.to_dict(verbose=args.verbose), indent=2))
    else:
        print(format_table(walk, verbose=args.verbose))
    return 0 if walk.reached_step else 1


if __name__ == "__main__":
    sys.exit(main())
