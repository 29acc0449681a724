"""The sidebar's choices in the page's URL, so that a reload or a shared link restores them.

The page itself is the URL's path (``/statistics``); the dataset, the pipeline (with its
field edits), the reference and the seed are query parameters, written only where they
differ from the defaults::

    /statistics?preset=seed-broken&seed=3&edits={"local_crops_number":4}
    /training?tab=Compare+runs&runs=run-a,run-b

A page keeps its own place in the URL too (:data:`PAGE_PARAMS`, written only on that page):
the Training page's tab and selected run(s), Your run's directory, the inspector's side by
side mode.

:func:`to_query` turns the widgets' values into parameters, :func:`from_query` turns a URL's
parameters back into widget values (each checked: an unknown preset or a seed of "x" is left
out with a note, never an exception). Code from the browser stays behind its opt-in
(:mod:`dinodiag.dashboard.security`): without it a pipeline spec and a CIFAR / STL-10 root
are never written into a URL and never read from one, so a link cannot make the server run
code it was not allowed to run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dinodiag.augment.presets import PRESETS
from dinodiag.dashboard import security
from dinodiag.dashboard.sidebar import (
    DATASET_SOURCES,
    PATH_SOURCES,
    PIPELINE_SOURCES,
    reference_names,
)

# query parameter -> (widget key in session_state, default value)
PARAMS: dict[str, tuple[str, Any]] = {
    "data": ("ds_source", "sample"),
    "path": ("ds_path", ""),
    "images": ("ds_gen_n", 200),
    "side": ("ds_gen_size", 96),
    "pipeline": ("pl_source", "preset"),
    "preset": ("pl_preset", "dinov2"),
    "config": ("pl_text", ""),
    "spec": ("pl_spec", ""),
    "kwargs": ("pl_kwargs", ""),
    "reference": ("reference", "dinov2"),
    "seed": ("seed", 0),
}
EDITS = "edits"  # query parameter of the field edits (JSON object: flat key -> value)
PENDING_EDITS = "links_pending_edits"  # session_state: edits read from a URL, not yet shown
MAX_CONFIG_CHARS = 4000  # a pasted config longer than this stays out of the URL
RANGES = {"seed": (0, None), "images": (10, 5000), "side": (16, 512)}  # the widgets' bounds
CODE_PARAMS = ("spec", "kwargs")  # a pipeline from the user's code: behind the opt-in
# A page's own place: page url path -> {query parameter: (widget key, default)}. A list value
# (the runs overlaid) travels comma-joined; run ids never hold a comma (runs.new_run_id).
PAGE_PARAMS: dict[str, dict[str, tuple[str, Any]]] = {
    "training": {
        "tab": ("tr_tab", "Live"),
        "run": ("tr_run", None),
        "runs": ("cmp_runs", None),
    },
    "your_run": {"dir": ("yr_path", "")},
    "inspector": {"compare": ("insp_compare", "none")},
}
TRAINING_TABS = ("Live", "New run", "Yours vs reference", "Compare runs", "Look inside")
INSPECTOR_MODES = ("none", "reference", "seed")  # comparisons.inspector_choices' keys
MAX_PAGE_VALUE_CHARS = 1000  # a run id list or a path longer than this stays out of the URL


def page_query(page: str, state: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters of ``page``'s own place (``state``: the session state), defaults
    and over-long values left out."""
    query = {}
    for name, (key, default) in PAGE_PARAMS.get(page, {}).items():
        value = state.get(key, default)
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value) or None
        if value is None or str(value) == str(default) or len(str(value)) > MAX_PAGE_VALUE_CHARS:
            continue
        query[name] = str(value)
    return query


def page_values(page: str, params: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """``(widget values, notes)`` of ``page``'s own parameters in a URL, each checked: a tab
    or a mode the page does not have is left out with a note. Run ids are taken as they are
    (the Training page shows the newest run when the named one is gone)."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    allowed = {"tab": TRAINING_TABS, "compare": INSPECTOR_MODES}
    for name, (key, _) in PAGE_PARAMS.get(page, {}).items():
        text = params.get(name)
        if text is None:
            continue
        if len(text) > MAX_PAGE_VALUE_CHARS:
            notes.append(f"the link's `{name}` is longer than {MAX_PAGE_VALUE_CHARS} characters.")
        elif name in allowed and text not in allowed[name]:
            notes.append(f"`{name}={text}` is not one of {', '.join(allowed[name])}.")
        elif name == "runs":
            values[key] = [part for part in text.split(",") if part]
        else:
            values[key] = text
    return values, notes


def _code_path(state: Mapping[str, Any]) -> bool:
    """Whether the dataset path is a dataset root that needs the opt-in (CIFAR / STL-10)."""
    return security.needs_code(dataset_source=state.get("ds_source"))


def to_query(
    state: Mapping[str, Any],
    code_allowed: bool,
    edits: Mapping[str, Any] | None = None,
    page: str = "",
) -> dict[str, str]:
    """The query parameters of the sidebar's current widget values (``state``: the session
    state), defaults left out, then ``page``'s own place (:func:`page_query`). Only the
    parameters the chosen sources use are written (no ``preset`` once the pipeline is a
    config). Without ``code_allowed`` no spec, no factory
    arguments and no CIFAR / STL-10 root are written."""
    source = state.get("ds_source", "sample")
    pipeline = state.get("pl_source", "preset")
    used = {"data", "pipeline", "reference", "seed"}
    if source in PATH_SOURCES and (code_allowed or not _code_path(state)):
        used.add("path")
    if source == "generated":
        used |= {"images", "side"}
    if pipeline == "preset":
        used.add("preset")
    elif pipeline == "config" and len(str(state.get("pl_text", ""))) <= MAX_CONFIG_CHARS:
        used.add("config")
    elif pipeline == "own" and code_allowed:
        used |= set(CODE_PARAMS)
    query = {}
    for name, (key, default) in PARAMS.items():
        value = state.get(key, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if name in used and value is not None and str(value) != str(default):
            query[name] = str(value)
    if edits:
        query[EDITS] = json.dumps(dict(edits), separators=(",", ":"), sort_keys=True)
    return query | page_query(page, state)


def from_query(
    params: Mapping[str, str], code_allowed: bool, page: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """``(widget values, notes)`` from a URL's query parameters (``page``'s own too). Each
    value is checked against what its widget accepts; a bad one is left out with a note
    saying so. Field edits come back under :data:`PENDING_EDITS` (the sidebar applies them
    once its config is known).
    Without ``code_allowed``, a spec, factory arguments or a dataset root needing the opt-in
    are dropped with a note: nothing from a URL runs code the server did not allow."""
    values: dict[str, Any] = {}
    notes: list[str] = []

    def choice(name: str, allowed: list[str] | tuple[str, ...]) -> None:
        if name in params:
            if params[name] in allowed:
                values[PARAMS[name][0]] = params[name]
            else:
                notes.append(f"`{name}={params[name]}` is not one of {', '.join(allowed)}.")

    choice("data", list(DATASET_SOURCES))
    if params.get("pipeline") == "byo":  # links made before the source was named "own"
        params = {**params, "pipeline": "own"}
    choice("pipeline", list(PIPELINE_SOURCES))
    choice("preset", list(PRESETS))
    choice("reference", reference_names())
    for name, (low, high) in RANGES.items():
        if name not in params:
            continue
        try:
            number = int(params[name])
        except ValueError:
            number = None
        if number is None or number < low or (high is not None and number > high):
            bound = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
            notes.append(f"`{name}={params[name]}` is not {bound}.")
        else:
            values[PARAMS[name][0]] = number
    if "config" in params:
        if len(params["config"]) <= MAX_CONFIG_CHARS:
            values["pl_text"] = params["config"]
        else:
            notes.append(f"the link's config is longer than {MAX_CONFIG_CHARS} characters.")
    if "path" in params:
        if code_allowed or not security.needs_code(dataset_source=values.get("ds_source")):
            values["ds_path"] = params["path"]
        else:
            notes.append(
                "this link names a dataset root, and dataset roots are off on this server: the "
                "root was not read."
            )
    carried = [name for name in CODE_PARAMS if params.get(name)]
    if carried and code_allowed:
        values.update({PARAMS[name][0]: params[name] for name in carried})
    elif carried:
        notes.append(
            "this link carries a pipeline spec (your own code), and code from the browser is "
            "off on this server: the spec was not loaded and nothing of it ran."
        )
    if EDITS in params:
        try:
            edits = json.loads(params[EDITS])
        except ValueError:
            edits = None
        if isinstance(edits, dict):
            values[PENDING_EDITS] = {str(k): _tuple(v) for k, v in edits.items()}
        else:
            notes.append("the link's field edits are not a JSON object: left out.")
    page_taken, page_notes = page_values(page, params)
    return values | page_taken, notes + page_notes


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
