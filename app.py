"""dinodiag dashboard. Run: ``make run`` (or ``python -m dinodiag app``, or ``streamlit run
app.py``: ``.streamlit/config.toml`` next to this file binds it to 127.0.0.1 either way).

Routes the pages with ``st.navigation`` and owns the shared sidebar (dataset,
pipeline, reference, seed), whose widgets keep their values on every page. The
sidebar's choices are resolved by ``dinodiag.dashboard.sidebar`` into a context that the
pages read (``pages/_shared.py``); pages only lay out widgets and call dinodiag. The choices
live in the URL too (``dinodiag.dashboard.links``): a reload or a shared link restores them.

Inputs that make the server run code chosen in the browser (your own pipeline code, dataset
roots) are off unless the server was started with ``DINODIAG_ALLOW_BROWSER_CODE=1``
(``dinodiag.dashboard.security``); the page says so loudly when the server listens beyond
this machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import streamlit as st

from dinodiag.augment.config import dump_yaml
from dinodiag.augment.presets import PRESETS
from dinodiag.dashboard import links, security, sidebar
from dinodiag.dashboard import sidebar_rules as rules
from dinodiag.dashboard.context import SidebarContext
from dinodiag.data import IMAGE_EXTENSIONS
from dinodiag.errors import DinodiagError
from pages import _shared as ui
from pages._widgets import field_widgets

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="dinodiag", page_icon=":material/biotech:", layout="wide")
CODE_ALLOWED = security.browser_code_allowed(os.environ)  # set by whoever started the server
EDITS_KEY = "dinodiag_edits"  # session_state: the field edits of this run (for the URL)
LINKS_KEY = "dinodiag_links_read"  # session_state: the URL's choices were read (once a session)
LAST_GOOD_KEY = "dinodiag_last_good"  # session_state: (choice, config, pipeline, key) last valid
STALE_CSS = """<style>
.stMain :is(.st-key-stale_banner, div:has(> .st-key-stale_banner)) ~ div {
  opacity: 0.45; filter: grayscale(1); }
</style>"""  # the page below the banner greyed: results of the last valid pipeline (Streamlit
# 1.67 wraps a keyed container in a stLayoutWrapper div: the page follows the wrapper)


def defaults(**values: Any) -> None:
    """Widget defaults set through the session state, not the widget's ``value`` / ``index``:
    a value restored from a link (or set by a test) then never clashes with the default."""
    for key, value in values.items():
        st.session_state.setdefault(key, value)


def navigation() -> Any:
    pages = [
        st.Page(HERE / "pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page(HERE / "pages/inspector.py", title="Crop inspector", icon=":material/crop:"),
        st.Page(
            HERE / "pages/statistics.py", title="Sampled statistics", icon=":material/bar_chart:"
        ),
        st.Page(HERE / "pages/validation.py", title="Validation", icon=":material/fact_check:"),
        st.Page(HERE / "pages/your_run.py", title="Your run", icon=":material/folder_open:"),
    ]
    if (HERE / "pages/training.py").exists():
        pages.append(
            st.Page(HERE / "pages/training.py", title="Training", icon=":material/model_training:")
        )
    return st.navigation(pages)


def dataset_sidebar() -> tuple[Any, str, str | None, Any, bool]:
    """(dataset, cache key, error message, status slot, waiting) from the dataset widgets.

    ``waiting``: nothing chosen yet (no upload, no path typed): the message says what to do
    and is not an error. The slot is where :func:`dataset_status` writes the dataset's line
    and its unusable files, before the page and again after it (the page's loads may find
    more of them).
    """
    sb = st.sidebar
    sb.subheader("1 · Images", help="The images the pipeline is applied to.")
    sources = rules.source_labels(sidebar.DATASET_SOURCES, CODE_ALLOWED, "dataset")
    source = sb.selectbox(
        "Dataset",
        list(sources),
        format_func=sources.get,
        key="ds_source",
    )
    if security.needs_code(dataset_source=source) and not CODE_ALLOWED:
        sb.warning(security.code_off_message(source), icon=":material/lock:")
        return None, "", rules.DATASET_ROOTS_OFF, None, False
    try:
        if source == "upload":
            files = sb.file_uploader(
                "Images (JPEG, PNG, ...)",
                type=[e.lstrip(".") for e in IMAGE_EXTENSIONS],
                accept_multiple_files=True,
                key="ds_upload",
                help=sidebar.UPLOAD_LIMITS,
            )
            sb.caption(sidebar.UPLOAD_LIMITS)
            pairs = [(f.name, f.getvalue()) for f in files or []]
            if not pairs:
                return None, "", "drop JPEG / PNG files on the uploader in the sidebar.", None, True
            key = f"upload:{sidebar.upload_key(pairs)}"
            dataset = ui.cached_uploads(key, pairs)
        else:
            path, count, size = "", 200, 96
            label = sidebar.path_label(source)
            if label is not None:
                path = sb.text_input(label, key="ds_path", placeholder="/data/my_images")
                if not path.strip():
                    what = sidebar.waiting_for_path(source)
                    sb.caption(what)
                    return None, "", what, None, True
            if source == "generated":
                defaults(ds_gen_n=200, ds_gen_size=96)
                count = sb.number_input("Images", 10, 5000, step=50, key="ds_gen_n")
                size = sb.number_input("Side (px)", 16, 512, step=16, key="ds_gen_size")
            key = sidebar.dataset_spec(source, path, count, size)
            dataset = ui.sidebar_dataset(key)
    except DinodiagError as exc:
        message = sidebar.menu_words(str(exc))
        sb.error(message, icon=":material/error:")
        return None, "", message, None, False
    slot = sb.empty()
    dataset_status(slot, dataset)
    return dataset, key, None, slot, False


def dataset_status(slot: Any, dataset: Any) -> None:
    """The dataset's line; its count of unusable files opens the list (which file, why)."""
    if slot is None:
        return
    with slot.container():
        st.caption(sidebar.describe_dataset(dataset))
        rows = sidebar.problem_rows(dataset)
        if rows:
            with st.expander(f"{len(rows)} unusable file(s): which and why"):
                st.dataframe(rows, hide_index=True)


def prefer(which: str) -> None:
    """on_change of the config uploader and the paste box: the one edited last is used."""
    st.session_state["pl_prefer"] = which


def pipeline_sidebar() -> tuple[sidebar.PipelineChoice, Any, Any, str, str | None, bool]:
    """(choice, config or None, pipeline, cache key, error, waiting) from the pipeline widgets.

    ``waiting``: nothing typed yet (an empty paste box, an empty spec): not an error. A
    pasted or uploaded config that is not usable gives the last valid pipeline of this
    session instead, its error kept in ``st.session_state["pipeline_stale"]`` (the pages
    show it stale). An invalid field edit does not: its box and *Reset edits* are at hand.
    """
    st.session_state["pipeline_stale"] = None
    sb = st.sidebar
    sb.subheader("2 · Pipeline", help="The augmentation under test.")
    sources = rules.source_labels(sidebar.PIPELINE_SOURCES, CODE_ALLOWED, "pipeline")
    source = sb.radio(
        "Source",
        list(sources),
        format_func=sources.get,
        key="pl_source",
    )
    choice = sidebar.PipelineChoice(source=source)
    if source == "preset":
        name = sb.selectbox("Preset", list(PRESETS), key="pl_preset")
        sb.caption(PRESETS[name].description)
        choice = sidebar.PipelineChoice(source=source, preset=name)
    elif source == "config":
        upload = sb.file_uploader(
            "Config file",
            type=["yaml", "yml", "json"],
            key="pl_upload",
            on_change=prefer,
            args=("upload",),
        )
        text = sb.text_area(
            "…or paste YAML / JSON",
            key="pl_text",
            height=140,
            placeholder="global_crops_scale: [0.4, 1.0]\nlocal_crops_number: 8",
            on_change=prefer,
            args=("text",),
        )
        used = sidebar.config_input(
            upload.name if upload is not None else None, text, st.session_state.get("pl_prefer")
        )
        if used.note:
            sb.caption(used.note)
        if used.source == "none":
            sb.caption(used.waiting)
            return choice, None, None, "", used.waiting, True
        name = "pasted config"
        if used.source == "upload":
            text, name = upload.getvalue().decode("utf-8", errors="replace"), upload.name
        choice = sidebar.PipelineChoice(source=source, config_text=text, config_name=name)
    elif not CODE_ALLOWED:
        sb.warning(security.code_off_message(source), icon=":material/lock:")
        return choice, None, None, "", rules.OWN_CODE_OFF, False
    else:
        spec = sb.text_input(
            "Spec",
            key="pl_spec",
            placeholder="my_augment.py:build_transform",
            help="A factory in a .py file or module; it returns the transform.",
        )
        kwargs = sb.text_area(
            "Factory arguments (JSON)", key="pl_kwargs", placeholder='{"img_size": 96}'
        )
        choice = sidebar.PipelineChoice(source=source, spec=spec, spec_kwargs=kwargs)
        if not spec.strip():
            sb.caption("Waiting for a spec.")
            return choice, None, None, "", rules.OWN_SPEC_WAITING, True
    try:
        config = None
        if source != "own":
            config = edited_config(choice)
        pipeline, key = ui.pipeline_from(config, choice)
    except DinodiagError as exc:
        sb.error(str(exc), icon=":material/error:")
        kept = st.session_state.get(LAST_GOOD_KEY)
        if not rules.keeps_last_good(exc, kept):
            return choice, None, None, "", str(exc), False
        st.session_state["pipeline_stale"] = str(exc)
        return (*kept, None, False)
    st.session_state[LAST_GOOD_KEY] = (choice, config, pipeline, key)
    return choice, config, pipeline, key, None, False


def edited_config(choice: sidebar.PipelineChoice) -> Any:
    """The base config with the edits made in the field widgets (errors propagate, after
    the edit controls are drawn: "Reset edits" stays within reach of an invalid value)."""
    base = rules.config_before_edits(choice)
    nonce = st.session_state.setdefault("edit_nonce", 0)
    prefix = rules.edit_prefix(base, nonce)
    initial = st.session_state.pop(links.PENDING_EDITS, None) or {}  # from a link, once
    with st.sidebar.expander("Edit any field", icon=":material/tune:"):
        values = field_widgets(base, prefix, initial)
    outcome = rules.apply_field_values(base, values)
    config = outcome.config
    st.session_state[EDITS_KEY] = outcome.kept_edits
    if outcome.edited_line is not None:
        st.sidebar.caption(outcome.edited_line)
        if st.sidebar.button("Reset edits", key="edit_reset", icon=":material/undo:"):
            st.session_state["edit_nonce"] = nonce + 1
            st.rerun()
    st.sidebar.download_button(
        "Download config (YAML)",
        dump_yaml(config) if config is not None else "",
        file_name=f"{(config or base).name}.yaml",
        mime="text/yaml",
        icon=":material/download:",
        key="edit_download",
        disabled=config is None,
        help="Fix the invalid value first." if config is None else None,
    )
    if outcome.error is not None:
        raise outcome.error
    return config


def reference_sidebar() -> tuple[str, int]:
    sb = st.sidebar
    sb.subheader("3 · Reference and seed")
    names = sidebar.reference_names()
    defaults(reference="dinov2", seed=0)
    reference = sb.selectbox(
        "Compare against",
        names,
        key="reference",
        help="The recipe the checks expect and the statistics outline.",
    )
    seed = sb.number_input(
        "Seed",
        min_value=0,
        step=1,
        key="seed",
        help="Same seed, same images and same crops.",
    )
    return reference, int(seed)


def exposure_banner() -> None:
    """A loud line on every page when the server listens beyond this machine."""
    address = st.get_option("server.address")
    warning = security.exposure_warning(address, st.get_option("server.port"), CODE_ALLOWED)
    if warning is not None and CODE_ALLOWED:
        st.error(warning, icon=":material/gpp_bad:")
    elif warning is not None:
        st.warning(warning, icon=":material/public:")


def read_link(page_path: str) -> None:
    """Once per browser session, before any widget: the URL's choices (the sidebar's and the
    opened page's own) become widget values (:func:`dinodiag.dashboard.links.from_query`);
    what it could not take is said once."""
    if st.session_state.get(LINKS_KEY):
        return
    st.session_state[LINKS_KEY] = True
    values, notes = links.from_query(st.query_params.to_dict(), CODE_ALLOWED, page_path)
    for key, value in values.items():
        st.session_state[key] = value
    if notes:
        st.session_state["links_notes"] = notes


def write_link(page_path: str) -> None:
    """The sidebar's current choices and the page's place into the URL (only what changed
    is sent; a page whose widgets change its place writes it again, ``ui.keep_place``)."""
    for note in st.session_state.pop("links_notes", []):
        st.sidebar.warning(f"Not taken from the link: {note}", icon=":material/link_off:")
    edits = st.session_state.get(EDITS_KEY)
    current = st.query_params.to_dict()
    query = rules.link_query(st.session_state, CODE_ALLOWED, edits, page_path, current)
    if query is not None:
        st.query_params.from_dict(query)


def keep_page_widgets() -> None:
    """Streamlit forgets a widget's value when a run does not draw it (another page, the
    pipeline source switched to a config): writing the values back each run keeps them, so
    Preset returns to the preset you had and Your run's box is filled when you come back."""
    for key in ui.KEPT_KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


page = navigation()
read_link(page.url_path)
keep_page_widgets()
exposure_banner()
dataset, dataset_key, dataset_error, dataset_slot, dataset_waiting = dataset_sidebar()
choice, config, pipeline, pipeline_key, pipeline_error, pipeline_waiting = pipeline_sidebar()
reference, seed = reference_sidebar()
st.session_state[ui.CONTEXT_KEY] = SidebarContext(
    dataset,
    dataset_key,
    dataset_error,
    choice,
    config,
    pipeline,
    pipeline_key,
    pipeline_error,
    reference,
    seed,
    dataset_waiting=dataset_waiting,
    pipeline_waiting=pipeline_waiting,
    pipeline_stale=st.session_state["pipeline_stale"],
)
write_link(page.url_path)  # before the page: a page may end its run with st.stop()
stale = st.session_state[ui.CONTEXT_KEY].stale_banner
if stale is not None:  # the error on top, the last valid results greyed below it
    with st.container(key="stale_banner"):
        st.error(stale, icon=":material/error:")
    st.html(STALE_CSS)
with ui.routed():
    page.run()
dataset_status(dataset_slot, dataset)  # with what the page's loads found (a page that stops
# early with st.stop() keeps the line drawn before it)
