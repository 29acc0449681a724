"""Checks on the photometric operations: how often each ran per view, and how strong it was.

``photometric_rates`` counts, per view kind (global view 1, global view 2, local views), how
often flip, colour jitter, grayscale, blur and solarize applied, against the expected
recipe, with a binomial tolerance from the sample count (:func:`dinodiag.stats.rates`): a
rate far outside it fails, one just outside it warns. ``photometric_params`` compares the
strengths (jitter ranges, blur sigma range, solarize threshold; a hand-written step's as
measured from its effect, :mod:`dinodiag.checks.hand_written`), the normalisation and the
interpolation each crop / resize step used (:mod:`dinodiag.checks.resampling`) with the
recipe's. Both read the records, so they judge built and own pipelines alike; for
your own pipeline an operation counts as applied when torchvision's transform ran, or when
a hand-written step returned a new image (its effect is recognised from the pixels).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.presets import PRESETS, REFERENCE_PRESETS
from dinodiag.checks.evidence import Evidence, make_result
from dinodiag.checks.hand_written import (
    fitted_sigma_problem,
    jitter_estimate_findings,
    threshold_problem,
)
from dinodiag.checks.report import CheckResult
from dinodiag.checks.resampling import interpolation_findings
from dinodiag.stats.binomial_rates import rates
from dinodiag.stats.frames import recipe_for
from dinodiag.stats.strength_ranges import expected_range

VIEW_NAMES = {"global1": "global view 1", "global2": "global view 2", "local": "local views"}
VERBS = {
    "flip": ("flipped", "flips"),
    "jitter": ("colour-jittered", "colour-jitters"),
    "grayscale": ("greyed", "greys"),
    "blur": ("blurred", "blurs"),
    "solarize": ("solarized", "solarizes"),
}
PHOTOMETRIC_OPS = tuple(VERBS)
INVERTED_BLUR_HINT = (
    "A blur class that passes 1 - p to RandomApply does exactly this (DINOv2's and DINOv3's "
    "own GaussianBlur; dinov2 PR #411, dinov3 issue #286): keep the probability as it is"
)


def rate_table(ev: Evidence, expect: PipelineConfig | None = None) -> pd.DataFrame:
    """:func:`dinodiag.stats.rates` of the photometric operations of every sample."""
    frame = ev.frame
    if frame.empty or "kind" not in frame:
        return pd.DataFrame()
    table = rates(frame, ev.config, ev.expect if expect is None else expect)
    return table[table.operation.isin(PHOTOMETRIC_OPS)].reset_index(drop=True)


def matching_recipes(ev: Evidence) -> list[str]:
    """Reference presets whose photometric rates every measured rate agrees with."""
    found = []
    for name in REFERENCE_PRESETS:
        table = rate_table(ev, PRESETS[name].config)
        if not table.empty and (table.verdict == "ok").all():
            found.append(name)
    return found


def _how_often(p: float) -> str:
    if p >= 1.0:
        return "always"
    if p <= 0.0:
        return "never"
    return f"{p:.0%} of the time"


def _sentence(row: Any) -> str:
    """``global view 1: blurred in 0 of 64 samples, the recipe blurs it always``."""
    done, does = VERBS[row.operation]
    unit, pronoun = ("views", "them") if row.kind == "local" else ("samples", "it")
    if row.expected <= 0:
        recipe = f"the recipe never {does} {pronoun}"
    else:
        recipe = f"the recipe {does} {pronoun} {_how_often(row.expected)}"
    return f"{VIEW_NAMES[row.kind]}: {done} in {row.applied} of {row.n} {unit}, {recipe}"


def check_photometric_rates(ev: Evidence) -> CheckResult:
    title = "photometric rates per view"
    table = rate_table(ev)
    expected = f"{ev.expect_name}'s probabilities per view, within a binomial interval of the count"
    if table.empty:
        return make_result(
            "photometric_rates",
            title,
            "skip",
            "not measured",
            expected,
            "Skipped: no operation of the views was recorded.",
        )
    measured: dict[str, Any] = {
        f"{r.kind}.{r.operation}": f"{r.applied}/{r.n}" for r in table.itertuples()
    }
    matches = matching_recipes(ev)
    measured["matches"] = matches
    untold = ev.frame.get("unknown_steps")
    unknown = (
        int(pd.to_numeric(untold, errors="coerce").fillna(0).sum()) if untold is not None else 0
    )
    caveat = (
        f" {unknown} step(s) changed images in ways dinodiag could not tell: operations they "
        "did are not counted."
        if unknown
        else ""
    )
    far = table[table.verdict == "far"]
    off = table[table.verdict == "off"]
    if far.empty and off.empty:
        return make_result(
            "photometric_rates",
            title,
            "pass",
            measured,
            expected,
            f"Every operation applies as often as {ev.expect_name}'s recipe says, per view."
            + caveat,
        )
    lines = [_sentence(r) for r in (far if not far.empty else off).itertuples()]
    hint = ""
    blur_off = set(far[far.operation == "blur"].kind) | set(off[off.operation == "blur"].kind)
    if blur_off and "dinov2-released" in matches:
        hint = f" {INVERTED_BLUR_HINT}; these rates are DINOv2's released code's (dinov2-released)."
    elif "blur" in set(far.operation) and ev.expect_name.startswith("dinov2"):
        released = rate_table(ev, PRESETS["dinov2-released"].config)
        blur = released[released.operation == "blur"]
        if not blur.empty and (blur.verdict == "ok").all():
            hint = f" {INVERTED_BLUR_HINT}."
    never = [r for r in far.itertuples() if r.applied == 0 and r.expected > 0]
    if never and not hint:
        ops = sorted({r.operation for r in never})
        hint = (
            f" Nothing in the pipeline applies {', '.join(ops)} to "
            f"{', '.join(sorted({VIEW_NAMES[r.kind] for r in never}))}: add the step, or check "
            "the probability passed to it."
        )
    status = "fail" if not far.empty else "warn"
    return make_result(
        "photometric_rates",
        title,
        status,
        measured,
        expected,
        "; ".join(lines) + "." + hint + caveat,
    )


# (setting key, recipe field, what it is): the strengths photometric_params compares.
PARAMS = (
    ("brightness_range", "brightness", "brightness"),
    ("contrast_range", "contrast", "contrast"),
    ("saturation_range", "saturation", "saturation"),
    ("hue_range", "hue", "hue"),
    ("sigma_range", "blur_sigma", "blur sigma"),
    ("threshold", "solarize_threshold", "solarize threshold"),
)


def _close(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return len(a) == len(b) and all(
        abs(x - y) <= 1e-3 * max(1.0, abs(y)) for x, y in zip(a, b, strict=True)
    )


def _config_settings(config: PipelineConfig) -> dict[tuple[str, str], set[Any]]:
    """The settings a built pipeline's config gives each view kind (as the records'd be)."""
    out: dict[tuple[str, str], set[Any]] = {}
    for kind in VIEW_NAMES:
        recipe = recipe_for(config, kind)
        for key, column, _ in PARAMS:
            value = expected_range(recipe, column)
            out[(kind, key)] = {value[0] if key == "threshold" else tuple(value)}
        out[(kind, "mean")] = {tuple(config.mean)}
        out[(kind, "std")] = {tuple(config.std)}
    return out


def check_photometric_params(ev: Evidence) -> CheckResult:
    title = "photometric strengths"
    settings = _config_settings(ev.config) if ev.config is not None else ev.settings
    problems: list[str] = []
    measured: dict[str, str] = {}
    for kind, view in VIEW_NAMES.items():
        recipe = recipe_for(ev.expect, kind)
        for key, column, what in PARAMS:
            seen = settings.get((kind, key), set())
            want = expected_range(recipe, column)
            if key in ("threshold", "sigma_range") and not seen:
                pass  # hand-written steps: their measured values are judged below
            elif not seen:
                continue
            if key == "threshold":
                problem = threshold_problem(settings, kind, want[0], measured)
                if problem and recipe.solarize_p > 0:
                    problems.append(f"{view}: {what} {problem}")
                continue
            if key == "sigma_range" and not seen:
                problem = fitted_sigma_problem(settings.get((kind, "sigma"), set()), want)
                if problem and recipe.blur_p > 0:
                    problems.append(f"{view}: {what} {problem}")
                if settings.get((kind, "sigma")):
                    fitted = sorted(settings[(kind, "sigma")])
                    measured[f"{kind}.{column}"] = f"fitted {fitted[0]:.2g}-{fitted[-1]:.2g}"
                continue
            values = sorted(seen)
            measured[f"{kind}.{column}"] = " / ".join(_fmt(v) for v in values)
            if any(not _close(tuple(v), tuple(want)) for v in values) and _matters(recipe, key):
                problems.append(
                    f"{view}: {what} {_fmt(values[0])}, the recipe draws in {_fmt(want)}"
                )
        for key in ("mean", "std"):
            seen = settings.get((kind, key), set())
            want = tuple(getattr(ev.expect, key))
            if seen:
                measured[f"{kind}.{key}"] = " / ".join(_fmt(v) for v in sorted(seen))
            if any(not _close(tuple(v), want) for v in seen):
                problems.append(
                    f"{view}: Normalize {key} {_fmt(sorted(seen)[0])}, expected {_fmt(want)}"
                )
        if ev.config is None and "brightness_estimate" in ev.frame:
            part = ev.frame[ev.frame["kind"] == kind]
            estimates, found = jitter_estimate_findings(part, recipe)
            measured.update({f"{kind}.{key}": text for key, text in estimates.items()})
            problems += [f"{view}: {problem}" for problem in found]
    resampled, resampling_problems = interpolation_findings(ev, VIEW_NAMES)
    measured.update(resampled)
    problems += resampling_problems
    expected = (
        f"{ev.expect_name}'s jitter (0.4, 0.4, 0.2, 0.1), blur sigma, threshold, mean / std, "
        f"{ev.expect.interpolation} resizing"
    )
    if not measured:
        return make_result(
            "photometric_params",
            title,
            "skip",
            "not measured",
            expected,
            "Skipped: no torchvision colour jitter, blur, solarize, Normalize or resizing step was "
            "recorded (nor a solarize threshold, blur sigma or jitter factor measured from a "
            "hand-written step).",
        )
    if problems:
        return make_result(
            "photometric_params",
            title,
            "warn",
            measured,
            expected,
            "; ".join(problems[:6])
            + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
            + ". Strengths that differ from the recipe change what the model learns to ignore.",
        )
    return make_result(
        "photometric_params",
        title,
        "pass",
        measured,
        expected,
        "Jitter, blur, solarize, normalisation and interpolation settings match the recipe "
        "where recorded.",
    )


def _matters(recipe: Any, key: str) -> bool:
    """A setting only matters when its operation can apply under the recipe."""
    if key == "sigma_range":
        return recipe.blur_p > 0
    return recipe.jitter_p > 0


def _fmt(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(f"{v:.3g}" for v in value) + ")"
    return f"{value:.3g}"
