"""Error types raised by dinodiag.

Every error is meant for a person: it names the file / field / value that is
wrong and says what to do. The CLI turns any :class:`DinodiagError` into exit
code 2 with the message; the app shows the message in the page.
"""

from __future__ import annotations


class DinodiagError(Exception):
    """Base class of every error dinodiag raises on purpose (bad input, not a bug)."""


class ConfigError(DinodiagError, ValueError):
    """A configuration value, key or file is invalid (names the field, value and allowed range)."""


class DataError(DinodiagError, ValueError):
    """A dataset spec, folder or image file cannot be used (names the path and the reason)."""


class PipelineSpecError(DinodiagError, ValueError):
    """A bring-your-own pipeline spec cannot be imported, built or run (names the spec)."""


class TrainingError(DinodiagError, RuntimeError):
    """A training run cannot start or continue (names the knob / file and what to try)."""
