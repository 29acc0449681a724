"""Error types raised by dinodiag.

Every error is meant for a person: it names the file / field / value that is
wrong and says what to do. The CLI turns any :class:`DinodiagError` into exit
code 2 with the message; the app shows the message in the page.
"""

from __future__ import annotations

import reprlib

from dinodiag.printable import printable


class DinodiagError(Exception):
    """Base class of every error dinodiag raises on purpose (bad input, not a bug)."""

    def __str__(self) -> str:
        # A message quoting a file name with undecodable bytes (a Latin-1 name in a UTF-8
        # locale) must still print, go into a report and into the page: bytes escaped.
        return printable(super().__str__())


class ConfigError(DinodiagError, ValueError):
    """A configuration value, key or file is invalid (names the field, value and allowed range)."""


class DataError(DinodiagError, ValueError):
    """A dataset spec, folder or image file cannot be used (names the path and the reason)."""


class PipelineSpecError(DinodiagError, ValueError):
    """A bring-your-own pipeline spec cannot be imported, built or run (names the spec)."""


class TrainingError(DinodiagError, RuntimeError):
    """A training run cannot start or continue (names the knob / file and what to try)."""


class PipelineTimeoutError(PipelineSpecError):
    """A pipeline took longer than the time limit on one sample: its code looks stuck (names
    the spec, the sample and its image, and the limit)."""


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel = 3  # nesting levels quoted before "..."
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 6  # items per collection
_SHOWN.maxstring = _SHOWN.maxother = 80  # characters of one string / other value


def shown(value: object) -> str:
    """``repr(value)`` cut to a readable size, for quoting a value in an error message.

    A config value can be huge (a YAML alias bomb expands to millions of items, a pasted
    string can be megabytes): the message quotes the start of it, never the whole, and never
    builds the whole ``repr`` first (:mod:`reprlib` stops at its limits).

        shown(list(range(1000)))   # "[0, 1, 2, 3, 4, 5, ...]"
    """
    return _SHOWN.repr(value)
