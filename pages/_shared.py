"""Streamlit glue shared by ``app.py`` and the pages: routing, the sidebar context, caches,
errors.

Not a page (``st.navigation`` lists the pages explicitly). Logic lives in ``dinodiag``
(``dashboard.context``, ``dashboard.sidebar``, ``stats``, ``checks``); this module only
routes, caches its results and shows its errors.
"""

from __future__ import annotations

import os
import runpy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from PIL import Image

import dinodiag
from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.records import MultiCropSample
from dinodiag.dashboard import links, security, sidebar
from dinodiag.dashboard.context import SidebarContext, own_pipeline_key, spec_stamp
from dinodiag.data import open_dataset
from dinodiag.probe.pipeline import load_pipeline_spec
from dinodiag.probe.spec import parse_kwargs
from dinodiag.stats import sample_views

CONTEXT_KEY = "dinodiag_context"  # session_state: the SidebarContext app.py resolved this run
REPORT_KEY = "dinodiag_last_report"  # session_state: the last validation CheckReport
# True while app.py runs the page (routed()), per script thread. Not session_state: when a page
# calls st.stop(), Streamlit refuses every st.* call while the stop unwinds, so a finally that
# resets a session_state flag never runs and the next run of a page would skip the router.
_ROUTING = threading.local()
APP_FILE = Path(__file__).resolve().parents[1] / "app.py"  # the router and shared sidebar
# Widget values kept while a run does not draw their widget (app.keep_page_widgets): the
# sidebar's per-source boxes and each page's place.
KEPT_KEYS = (
    "pl_preset",
    "pl_text",
    "pl_spec",
    "pl_kwargs",
    "ds_path",
    "yr_path",
    "insp_compare",
    "cmp_runs",
    "tr_tab",
)


@contextmanager
def routed() -> Iterator[None]:
    """``app.py`` runs the page inside this: the page then knows the sidebar was drawn."""
    _ROUTING.active = True
    try:
        yield
    finally:
        _ROUTING.active = False


def ensure_routed() -> None:
    """Make sure this run goes through ``app.py`` (the router that draws the sidebar).

    A ``pages/`` folder next to ``app.py`` starts Streamlit in its legacy multipage mode,
    which executes a requested page file on its own, without ``app.py``: on the first
    request of a server process (a fresh server opened at ``/inspector``) and on every
    ``AppTest`` run. Streamlit documents the way out: "If you call st.navigation in your
    app (in any session), Streamlit will switch to using the newer, Page-and-navigation
    multipage structure. In this case, the pages/ directory will be ignored across all
    sessions" (docs.streamlit.io/develop/concepts/multipage-apps/pages-directory). So a
    page that runs without the router runs ``app.py`` right here: its ``st.navigation``
    makes that switch, draws the sidebar and runs this same page inside, routed. Then
    this outer run stops. Nothing reruns, so the run keeps its widget events (a click is
    not lost), and later requests go through ``app.py`` directly.
    """
    if not getattr(_ROUTING, "active", False):
        runpy.run_path(str(APP_FILE))
        st.stop()


def context() -> SidebarContext:
    """The context ``app.py`` stored for this run (pages call this first)."""
    ensure_routed()
    return st.session_state[CONTEXT_KEY]


def keep_place(page: str) -> None:
    """After a page's widgets: its place (``links.PAGE_PARAMS[page]``) into the URL now, so a
    reload or a copied link comes back to it (``app.write_link`` wrote it before the page
    drew its widgets, one change behind)."""
    wanted = links.page_query(page, st.session_state)
    for name in links.PAGE_PARAMS[page]:
        if name in wanted and st.query_params.get(name) != wanted[name]:
            st.query_params[name] = wanted[name]
        elif name not in wanted and name in st.query_params:
            del st.query_params[name]


ICONS = {"info": ":material/arrow_back:", "warning": ":material/warning:"}


def require(
    title: str,
    caption: str = "",
    need_dataset: bool = True,
    need_pipeline: bool = True,
) -> SidebarContext:
    """The context, after the page's title and caption; when a needed part is not chosen yet
    or not usable, a pointer to the sidebar in place of the content, then ``st.stop()`` (the
    title stays, the sidebar's own message is not repeated)."""
    ctx = context()
    st.title(title)
    if caption:
        st.caption(caption)
    notices = ctx.notices(need_dataset, need_pipeline)
    for level, text in notices:
        getattr(st, level)(text, icon=ICONS[level])
    if notices:
        st.stop()
    return ctx


def show_error(error: BaseException) -> None:
    """A user error (bad input, the user's own pipeline failing) as a message, never a traceback."""
    st.error(str(error), icon=":material/error:")


# ------------------------------------------------------------------------------ resources


def sidebar_dataset(spec: str) -> Any:
    """The dataset of a sidebar spec; dataset roots only when code from the browser is allowed
    (checked here, before the cache, whatever built the spec). Raises DinodiagError."""
    security.refuse_code(None, spec, security.browser_code_allowed(os.environ))
    return cached_dataset(spec)


@st.cache_resource(show_spinner="Opening the dataset…", max_entries=8)
def cached_dataset(spec: str) -> Any:
    return open_dataset(spec, split=sidebar.dataset_split(spec))


@st.cache_resource(show_spinner="Reading the uploaded images…", max_entries=sidebar.UPLOADS_KEPT)
def cached_uploads(key: str, _files: list[tuple[str, bytes]]) -> sidebar.UploadedImages:
    return sidebar.UploadedImages(_files)


@st.cache_resource(show_spinner="Importing your pipeline…", max_entries=8)
def cached_own_pipeline(spec: str, kwargs_json: str, stamp: float) -> Any:
    return load_pipeline_spec(spec, kwargs_json)


def pipeline_from(
    ctx_config: PipelineConfig | None, choice: sidebar.PipelineChoice
) -> tuple[Any, str]:
    """(pipeline, cache key) for a config or a bring-your-own choice. Raises DinodiagError."""
    if ctx_config is not None:
        return dinodiag.build_pipeline(ctx_config), sidebar.config_key(ctx_config)
    security.refuse_code(choice.source, None, security.browser_code_allowed(os.environ))
    kwargs = parse_kwargs(choice.spec_kwargs, choice.spec)
    stamp = spec_stamp(choice.spec)
    pipeline = cached_own_pipeline(choice.spec.strip(), choice.spec_kwargs, stamp)
    return pipeline, own_pipeline_key(choice.spec, kwargs, stamp)


# ------------------------------------------------------------------------------ computations


@st.cache_data(show_spinner=False, max_entries=16)  # a dinov2 sample holds ~2 MB of views
def draw_views(
    pipeline_key: str, dataset_key: str, index: int, seed: int, _pipeline: Any, _dataset: Any
) -> tuple[Image.Image, MultiCropSample, str]:
    """(source image, sample, where the image comes from) for one image and seed."""
    image, _ = _dataset[index]
    return image, _pipeline(image, seed=seed), _dataset.describe(index)


@st.cache_resource
def frame_store() -> sidebar.LRUStore:
    """Sampled frames shared by all sessions (not st.cache_data: sampling shows a progress bar)."""
    return sidebar.LRUStore(capacity=16)


def sampled_frame(
    pipeline_key: str,
    dataset_key: str,
    n_samples: int,
    seed: int,
    pipeline: Any,
    dataset: Any,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """``dinodiag.stats.sample_views`` on the context's data, cached by keys."""
    key = (pipeline_key, dataset_key, n_samples, seed)
    frame = frame_store().get(key)
    if frame is None:
        frame = sample_views(pipeline, dataset, n_samples, seed=seed, progress=progress)
        frame_store().put(key, frame)
    return frame


@st.cache_data(show_spinner=False, max_entries=16)
def image_sizes(dataset_key: str, _dataset: Any, limit: int = 500) -> list[tuple[int, int]]:
    return list(_dataset.image_sizes(limit=limit))


def follow_job(
    read: Callable[[], Any],
    progress_text: Callable[[Any], str],
    answer: Callable[[Any], dict[str, Any]],
    keep: Callable[[dict[str, Any]], None],
    discard: Callable[[], None],
) -> None:
    """Follow a job running in its own process (dinodiag.runs.jobs) from a fragment that reruns
    every second: ``read()`` its status; while it runs, a progress bar with ``progress_text``;
    once it ended, ``keep(answer(status))`` in the session, ``discard()`` its folder, rerun."""

    @st.fragment(run_every=1.0)
    def view() -> None:
        status = read()
        if status.state == "running":
            st.progress(status.fraction, text=progress_text(status))
            return
        keep(answer(status))
        discard()
        st.rerun()

    view()
