"""Training page, "Yours vs reference" tab: the sidebar's pipeline and the reference recipe
trained with the same model, data, seed and steps, overlaid, with the verdict in words and
the noise band it uses (``dinodiag.runs.story``). The seed story is the same comparison with
the seed's broken pipeline as "yours"."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from dinodiag import runs
from dinodiag.augment.presets import get_preset
from dinodiag.dashboard import curve_charts, curves, knn_verdict, run_status, security
from dinodiag.dashboard.context import SidebarContext, spec_stamp
from dinodiag.dashboard.labels import status_badge
from dinodiag.dashboard.launch_form import plan_cache_key, trains_code
from dinodiag.dashboard.versus_view import versus_view
from dinodiag.errors import DinodiagError
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.plan import RunPlan
from dinodiag.recipe.presets import TRAIN_PRESETS
from dinodiag.runs import story
from dinodiag.runs.run_plan import LAUNCH_PRESETS, preset_plan
from pages import _training_charts as charts
from pages import _training_form as form
from pages._training_live import REFRESH_SECONDS

KNN = dataclasses.replace(
    curves.PANELS["knn"], title="k-NN top-1 on held-out images (%)", columns=("knn_top1",)
)
ENTROPY = dataclasses.replace(
    curves.PANELS["entropy"], title="Teacher entropy against ln K", columns=("teacher_entropy",)
)


def versus_tab(ctx: SidebarContext, all_runs: Sequence[runs.RunInfo]) -> None:
    st.markdown(
        "Does **your** pipeline let the model learn, compared with the reference? Two short "
        "runs with the same model, data, seed and steps: one trains the sidebar's pipeline, "
        "the other the reference recipe (the sidebar's *reference*) at the same crop sizes, "
        "so only the crops differ. One after the other, yours trains within the time budget "
        "and the reference then trains **exactly as many steps as yours reached**, however "
        "long that takes (its pipeline may cost more or less per step). Both at once, each "
        "stops at the budget and their steps may differ: the results say so when they do."
    )
    left, middle, right = st.columns([3, 2, 2])
    names = {p: f"{p}: {TRAIN_PRESETS[p].description}" for p in LAUNCH_PRESETS}
    preset = left.selectbox("Training preset", list(names), format_func=names.get, key="vs_preset")
    steps = middle.number_input(
        "Steps per run",
        1,
        100000,
        story.VERSUS_STEPS,
        step=50,
        key="vs_steps",
        help="k-NN at step 0 and five more times; yours stops at this step or at the time "
        "budget, whichever comes first, and the reference trains as many steps as yours.",
    )
    seconds = right.number_input(
        "Time budget per run (s)",
        0,
        86400,
        story.VERSUS_SECONDS,
        step=30,
        key="vs_seconds",
        help="Yours' budget, set-up and k-NN included (the reference then trains yours' "
        "steps); 0 = no limit.",
    )
    own = preset_plan(preset)
    data = form.data_choice(ctx, own.config.data.data, key="vs_data")
    pick = form.pipeline_choice(ctx, own.pipeline, key="vs_pipe")
    together = schedule_choice(all_runs, float(seconds))
    plans = None
    if pick.kind == "preset":
        st.info(
            "Yours is the preset's own pipeline here: choose the sidebar's to compare it.",
            icon=":material/info:",
        )
    else:
        try:
            base = pick.base(own.config.with_overrides({"data.data": data}))
            plans = versus_plans(base, pick.recipe, ctx.reference, int(steps), float(seconds))
        except DinodiagError as exc:
            st.error(f"**Cannot compare:** {exc}", icon=":material/error:")
            plans = None
    if plans is not None:
        cols = st.columns(2)
        for col, role in zip(cols, story.ROLES, strict=True):
            with col.container(border=True):
                st.markdown(f"**{story.ROLE_LABELS[role].capitalize()}**")
                st.caption(plans[role].summary())
        if st.button(
            "Train yours vs the reference",
            key="versus_start",
            type="primary",
            icon=":material/compare_arrows:",
        ):
            try:
                if pick.kind == "code":
                    security.refuse_code("own", None, security.browser_code_allowed(os.environ))
                story.start_versus(plans, together=together)
            except DinodiagError as exc:
                st.error(str(exc), icon=":material/error:")
                return
            st.rerun()
    seed_story(together)
    results(story.latest_story(all_runs))


@st.cache_resource(show_spinner="Measuring your pipeline on the training images…", max_entries=8)
def _code_versus(
    key: str, stamp: float, _base: TrainConfig, reference: str, steps: int, seconds: float
) -> dict[str, RunPlan]:
    return story.versus_plans(_base, get_preset(reference).config, steps, seconds or None)


def versus_plans(
    base: TrainConfig, recipe: object, reference: str, steps: int, seconds: float
) -> dict[str, RunPlan]:
    """:func:`story.versus_plans` against the reference preset; cached when it trains your
    code (it imports and measures the code), per config and file version."""
    if trains_code(base, recipe):  # type: ignore[arg-type]
        stamp = spec_stamp(base.data.pipeline)
        return _code_versus(plan_cache_key(base, {}), stamp, base, reference, steps, seconds)
    return story.versus_plans(
        base,
        get_preset(reference).config,
        steps,
        seconds or None,
        recipe=recipe,  # type: ignore[arg-type]
    )


def schedule_choice(all_runs: Sequence[runs.RunInfo], seconds: float = 0.0) -> bool:
    """The queue / together radio (with its warnings); True = both runs at once."""
    mode = st.radio(
        "Schedule",
        ["queue", "together"],
        key="vs_mode",
        horizontal=True,
        format_func={
            "queue": "one after the other (best on a CPU)",
            "together": "both at once",
        }.get,
    )
    if mode == "together":
        st.warning(
            "Both runs at once share the cores: each gets half of them and runs about half as "
            "fast, so a time budget buys each of them half the steps"
            + (
                ", and each stops at the budget: the cheaper pipeline trains more steps, so "
                "more than the crops differ. One after the other gives both the same steps."
                if seconds
                else "."
            ),
            icon=":material/warning:",
        )
    active = [r for r in all_runs if r.active]
    if active:  # shown after a start too, when the active runs are the ones just started
        names = ", ".join(f"`{r.run_id}`" for r in active[:4]) + (" …" if len(active) > 4 else "")
        st.warning(
            f"Active now: {names}. A comparison started now shares the machine with "
            f"{'it' if len(active) == 1 else 'them'}.",
            icon=":material/warning:",
        )
    return mode == "together"


def seed_story(together: bool) -> None:
    """The seed story: the seed's broken pipeline as "yours", its fixed one as the reference."""
    with st.expander("The seed story: the seed's broken pipeline against its fix"):
        st.markdown(
            "The seed's researcher trained for 30+ epochs and the k-NN accuracy stayed under "
            "5%. Here the same mistake takes minutes to see: the seed's recipes at 96 px, "
            "scaled to the cpu-demo's 32 px crops, counts and scales kept (broken: 2 views, "
            "global scale 0.2–1, no local crops; fixed: 2 + 8 local crops, 0.4–1 / 0.05–0.4, "
            "locals as large as globals, as in the seed). The fixed run computes 10 views per "
            "image instead of 2: it takes about twice as long."
        )
        steps = st.number_input(
            "Steps per seed-story run",
            10,
            5000,
            story.STORY_STEPS,
            step=50,
            key="story_steps",
            help="k-NN is measured at step 0 and five more times.",
        )
        if st.button("Run the seed story", key="story_start", icon=":material/science:"):
            try:
                story.start_story(int(steps), together=together)
            except DinodiagError as exc:
                st.error(str(exc), icon=":material/error:")
                return
            st.rerun()


def results(members: dict[str, runs.RunInfo]) -> None:
    """The latest comparison: each run's state, the overlaid curves, the verdict."""
    if not members:
        return
    active = any(r.active for r in members.values())

    @st.fragment(run_every=REFRESH_SECONDS if active else None)
    def view() -> None:
        now = {role: runs.read_run(i.path) for role, i in members.items() if i.path.exists()}
        if any(r.active for r in now.values()) != active:
            st.rerun()
        labels = story.story_labels(now)
        st.subheader(f"Latest comparison: {next(iter(now.values())).story if now else ''}")
        messages = run_status.story_rows(now, labels)
        for role, info in now.items():
            total = f"/{info.total_steps}" if info.total_steps else ""
            st.markdown(
                f"{status_badge(info.state)} **{labels[role]}** · `{info.run_id}` · "
                f"step {info.step}{total} · {messages[role]}"
            )
        unequal = run_status.steps_note(now, labels)
        if unequal:
            st.warning(unequal, icon=":material/balance:")
        shown = versus_view(now, labels, active)
        if shown.verdict is not None:
            getattr(st, shown.verdict[0])(shown.verdict[1])
        # each run in its own colour, the one the Live and Compare tabs give it (by run id)
        every = charts.colours([])
        colors = {labels[r]: every[i.run_id] for r, i in now.items() if i.run_id in every}
        left, right = st.columns(2)
        for column, panel in ((left, KNN), (right, ENTROPY)):
            with column:
                chart(shown.frames, panel, colors, shown.prototypes, shown.no_knn, shown.band)

    view()


def chart(
    frames: dict,
    panel: curves.Panel,
    colors: dict[str, str],
    ln_k: dict,
    no_knn: str | None = None,
    band: pd.DataFrame | None = None,
) -> None:
    """One overlaid panel (``dinodiag.dashboard.curves``) with its dashed reference lines;
    ``no_knn``: why an ended run has no k-NN point (``run_status.knn_absence``). On the k-NN
    panel the grey zones are the noise the verdict uses: the change from step 0 a gain must
    make, and ``band`` (:func:`story.verdict_band`), where yours' last point means "about as
    much as the reference"."""
    long = curves.long_frame(frames, panel, x="step", smoothing=0.6 if panel.kind == "train" else 0)
    st.markdown(f"**{panel.title}**")
    if long.empty:
        empty = no_knn or "No k-NN evaluation yet."
        st.caption(empty if panel.kind == "eval" else "No points yet.")
        return
    rules = curves.reference_lines(panel, frames, ln_k)
    zone = None
    if panel.kind == "eval":
        zones = [knn_verdict.baseline_zone(frames), band]
        parts = [z for z in zones if z is not None and not z.empty]
        zone = pd.concat(parts, ignore_index=True) if parts else None
    st.altair_chart(
        curve_charts.curve_chart(long, x="step", rules=rules, colors=colors, zone=zone),
        width="stretch",
    )
    notes = [panel.help, charts.KNN_NOTE if panel.kind == "eval" else ""]
    if panel.kind == "eval" and band is not None and not band.empty:
        notes.append(
            f"Grey band from {band['low'].iloc[0]:.1f} to {band['high'].iloc[0]:.1f}%: "
            f"{band['label'].iloc[0]}; the verdict reads yours' last point against it."
        )
    st.caption(" ".join(n for n in notes if n).strip())
