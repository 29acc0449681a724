"""The shared sidebar's rules that ``app.py`` follows while it draws the widgets: which error
keeps the last valid pipeline on the pages, what the field edits give, which sources are off
on this server, and the URL a script run ends with.

    base = config_before_edits(choice)              # ConfigTextError: the text itself is bad
    outcome = apply_field_values(base, values)      # the edited config, or the invalid value
    outcome.config, outcome.kept_edits, outcome.error, outcome.edited_line
    query = link_query(st.session_state, code_allowed, edits, "training", st.query_params)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dinodiag.augment.config import PipelineConfig
from dinodiag.dashboard import chart_view, field_edits, links, security, sidebar
from dinodiag.errors import ConfigError

OWN_SPEC_WAITING = (
    "type a spec such as my_augment.py:build_transform in the sidebar "
    "(a factory returning the transform)."
)
OWN_CODE_OFF = "your own pipeline code is off on this server (see the sidebar)."
DATASET_ROOTS_OFF = "dataset roots are off on this server (see the sidebar)."
OFF_HERE = " (off on this server)"  # a source label's tail while the source is off


class ConfigTextError(ConfigError):
    """The pasted / uploaded config itself is not usable (not a field edit): the pages keep
    the last valid pipeline's results, greyed, under the error."""


def config_before_edits(choice: sidebar.PipelineChoice) -> PipelineConfig:
    """The sidebar's config before the field edits (:func:`sidebar.base_config`); a config
    that cannot be read raises :class:`ConfigTextError`, which keeps the last valid one."""
    try:
        return sidebar.base_config(choice)
    except ConfigError as exc:
        raise ConfigTextError(str(exc)) from None


def keeps_last_good(error: Exception, last_good: Any) -> bool:
    """Whether the pages show the ``last_good`` pipeline of the session (greyed, stale) in
    place of ``error``: only for a config text that is not usable, never for a field edit
    (its box and *Reset edits* are at hand) or with nothing valid yet."""
    return last_good is not None and isinstance(error, ConfigTextError)


def source_labels(sources: Mapping[str, str], code_allowed: bool, kind: str) -> dict[str, str]:
    """The labels of a source menu (``kind``: "dataset" or "pipeline"), each source that
    would run code chosen in the browser (:func:`security.needs_code`) marked
    :data:`OFF_HERE` when this server does not allow it."""

    def off(source: str) -> bool:
        return not code_allowed and security.needs_code(**{f"{kind}_source": source})

    return {source: label + OFF_HERE * off(source) for source, label in sources.items()}


def edit_prefix(base: PipelineConfig, nonce: int) -> str:
    """The field widgets' key prefix: a new base config or *Reset edits* (``nonce``) gives
    new widgets, at the base's values."""
    return f"edit:{sidebar.short_hash(sidebar.config_key(base))}:{nonce}"


@dataclass(frozen=True)
class EditOutcome:
    """What the field widgets' values make of the base config."""

    config: PipelineConfig | None  # the edited config, None while a value is invalid
    edits: dict[str, Any] = field(default_factory=dict)  # fields that differ from the base
    error: ConfigError | None = None  # the invalid value, named by its field

    @property
    def kept_edits(self) -> dict[str, Any]:
        """The edits the URL keeps: none while a value is invalid."""
        return self.edits if self.error is None else {}

    @property
    def edited_line(self) -> str | None:
        """``Edited: `local_crops_number`, `solarize_p``` (`` (invalid)`` while a value is),
        None when nothing is edited."""
        if not self.edits and self.error is None:
            return None
        named = ", ".join(f"`{name}`" for name in self.edits) or "a field"
        return f"Edited: {named}" + (" (invalid)" if self.error is not None else "")


def apply_field_values(base: PipelineConfig, values: Mapping[str, Any]) -> EditOutcome:
    """The field widgets' ``values`` (text as typed) applied to ``base``: the fields that
    differ and the edited config, or the :class:`ConfigError` of the first invalid value."""
    edits: dict[str, Any] = {}
    try:
        edits = field_edits.changed_values(base, field_edits.parse_field_values(base, values))
        return EditOutcome(field_edits.apply_edits(base, edits), edits)
    except ConfigError as exc:
        return EditOutcome(None, edits, exc)


def link_query(
    state: Mapping[str, Any],
    code_allowed: bool,
    edits: Mapping[str, Any] | None,
    page: str,
    current: Mapping[str, str],
) -> dict[str, str] | None:
    """The page URL's parameters after this script run: the sidebar's choices and the
    page's place (:func:`links.to_query`), the charts' view kept from ``current``
    (:func:`chart_view.page_params`); None when the URL holds them already."""
    query = links.to_query(state, code_allowed, edits, page)
    query |= chart_view.page_params(current)
    return None if query == dict(current) else query
