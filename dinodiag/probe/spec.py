"""Load a user's pipeline factory from a spec: ``path/to/file.py:factory`` or
``package.module:factory``, with keyword arguments as JSON.

Errors name the spec, the underlying exception and the line of the user's code.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dinodiag.errors import PipelineSpecError, shown

# What a user's code may raise that is an error of the spec, not of dinodiag: any exception,
# and SystemExit (a file that calls sys.exit() or runs argparse when imported), which would
# otherwise end the CLI or the app's script run without a word. KeyboardInterrupt still stops.
USER_CODE_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit)


def names_a_file(target: str) -> bool:
    """Whether the part of a spec before ``:factory`` is a file path (``x.py``, ``a/b``)
    rather than a module name: the one rule for it."""
    return target.endswith(".py") or "/" in target or "\\" in target


def is_pipeline_spec(text: str) -> bool:
    """Whether a pipeline value is the user's code (``file.py:factory`` /
    ``pkg.mod:factory``) rather than a preset name or a config file."""
    target, sep, name = text.strip().rpartition(":")
    if not sep or not target or not name or (len(target) == 1 and target.isalpha()):
        return False  # no colon, or a Windows drive letter
    if not all(part.isidentifier() for part in name.split(".")):
        return False
    return names_a_file(target) or all(part.isidentifier() for part in target.split("."))


def _load_module(spec: str, target: str) -> Any:
    if names_a_file(target):
        path = Path(target).expanduser()
        if not path.is_file():
            raise PipelineSpecError(f"pipeline spec {spec!r}: file {str(path)!r} does not exist.")
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
        module_name = f"dinodiag_user_{path.stem}_{digest}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise PipelineSpecError(
                f"pipeline spec {spec!r}: {str(path)!r} cannot be imported as Python."
            )
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        # The user's file may import siblings next to it.
        folder = str(path.parent.resolve())
        sys.path.insert(0, folder)
        try:
            module_spec.loader.exec_module(module)
        except USER_CODE_ERRORS as exc:
            sys.modules.pop(module_name, None)
            raise PipelineSpecError(
                f"pipeline spec {spec!r}: importing {str(path)!r} raised {describe_exception(exc)}"
            ) from exc
        finally:
            if folder in sys.path:  # the file may have removed it itself
                sys.path.remove(folder)
        return module
    try:
        return importlib.import_module(target)
    except USER_CODE_ERRORS as exc:
        raise PipelineSpecError(
            f"pipeline spec {spec!r}: importing module {target!r} raised {describe_exception(exc)}"
        ) from exc


def describe_exception(exc: BaseException) -> str:
    """``TypeError: message (file.py, line 12)``: the exception and where in the user's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""
    text = f"{type(exc).__name__}: {exc}{where}"
    if isinstance(exc, SystemExit):
        text += (
            "; the code called sys.exit() (or argparse gave up on the command line): keep "
            "scripts' entry points under `if __name__ == '__main__':`"
        )
    return text


def parse_kwargs(kwargs: str | dict[str, Any] | None, spec: str = "") -> dict[str, Any]:
    """Keyword arguments for the factory from a JSON object string or a dict."""
    if kwargs is None or kwargs == "":
        return {}
    if isinstance(kwargs, dict):
        return kwargs
    try:
        value = json.loads(kwargs)
    except json.JSONDecodeError as exc:
        raise PipelineSpecError(
            f"pipeline kwargs for {spec!r} are not valid JSON ({exc.msg} at column {exc.colno}): "
            f'{shown(kwargs)}; write a JSON object such as {{"img_size": 96}}.'
        ) from None
    except RecursionError:  # thousands of nested brackets: json recurses once per level
        raise PipelineSpecError(
            f"pipeline kwargs for {spec!r} nest too deep to read: {shown(kwargs)}; write a "
            'JSON object of plain values, such as {"img_size": 96}.'
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise PipelineSpecError(
            f"pipeline kwargs for {spec!r} cannot be read ({shown(str(exc))}): {shown(kwargs)}; "
            'write a JSON object of plain values, such as {"img_size": 96}.'
        ) from None
    if not isinstance(value, dict):
        raise PipelineSpecError(
            f"pipeline kwargs for {spec!r} must be a JSON object, got {shown(kwargs)}."
        )
    return value


def load_factory(spec: str) -> Callable[..., Any]:
    """The callable named by ``FILE.py:NAME`` or ``package.module:NAME``."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name or (len(target) == 1 and target.isalpha()):
        raise PipelineSpecError(
            f"pipeline spec {spec!r} must look like path/to/file.py:factory or "
            "package.module:factory."
        )
    module = _load_module(spec, target)
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            names = [
                n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))
            ]
            close = difflib.get_close_matches(part, names, n=1)
            hint = (
                f" Did you mean {close[0]!r}?"
                if close
                else f" Callables there: {', '.join(names[:12]) or 'none'}."
            )
            raise PipelineSpecError(
                f"pipeline spec {spec!r}: {target!r} has no attribute {part!r}.{hint}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise PipelineSpecError(
            f"pipeline spec {spec!r}: {name!r} is a {type(obj).__name__}, not a callable factory."
        )
    return obj
