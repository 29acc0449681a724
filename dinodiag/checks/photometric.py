"""Checks on the photometric operations: how often each ran per view, and how strong it was.

``photometric_rates`` counts, per view kind (global view 1, global view 2, local views), how
often flip, colour jitter, grayscale, blur and solarize applied, against the expected
recipe, with a binomial tolerance from the sample count (:func:`dinodiag.stats.rates`): a
rate far outside it fails, one just outside it warns. ``photometric_params`` compares the
strengths (jitter ranges, blur sigma range, solarize threshold) and the normalisation with
the recipe's. Both read the records, so they judge built and brought pipelines alike; for
a brought pipeline an operation counts as applied when torchvision's transform ran, or when
a hand-written step returned a new image (its effect is recognised from the pixels).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.presets import PRESETS, REFERENCE_PRESETS
from dinodiag.checks.evidence import Evidence, make_result
from dinodiag.checks.report import CheckResult
from dinodiag.stats import expected_range, rates, recipe_for

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


def _threshold_255(value: float) -> float:
    """A solarize threshold in 0..255 units (a threshold <= 1 applies to [0, 1] tensors)."""
    return value * 255 if value <= 1.0 else value


def _threshold_ranges(
    exact: set[Any], measured: set[Any]
) -> tuple[list[tuple[float, float]], bool]:
    """Solarize thresholds as ``(low, high)`` ranges in 0..255 units, and whether the measured
    ones vary between draws: the ones torchvision was given (a single value each), then the
    tightest range consistent with every measured draw, or, when no single threshold fits
    them all (a threshold drawn at random), the span of the draws."""
    ranges = sorted({(_threshold_255(float(v)),) * 2 for v in exact if v is not None})
    draws = [v for v in measured if isinstance(v, tuple)]
    if not draws:
        return ranges, False
    low = max(float(v[0]) for v in draws)
    high = min(float(v[1]) for v in draws)
    if low <= high:
        return [*ranges, (low, high)], False
    span = (min(float(v[0]) for v in draws), max(float(v[1]) for v in draws))
    return [*ranges, span], True


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
                problem = _threshold_problem(settings, kind, want[0], measured)
                if problem and recipe.solarize_p > 0:
                    problems.append(f"{view}: {what} {problem}")
                continue
            if key == "sigma_range" and not seen:
                problem = _fitted_sigma_problem(settings.get((kind, "sigma"), set()), want)
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
    expected = f"{ev.expect_name}'s jitter (0.4, 0.4, 0.2, 0.1), blur sigma, threshold, mean / std"
    if not measured:
        return make_result(
            "photometric_params",
            title,
            "skip",
            "not measured",
            expected,
            "Skipped: no torchvision colour jitter, blur, solarize or Normalize was recorded "
            "(nor a solarize threshold or blur sigma measured from a hand-written step).",
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
        "Jitter, blur, solarize and normalisation settings match the recipe where recorded.",
    )


def _threshold_problem(
    settings: dict[tuple[str, str], set[Any]], kind: str, want: float, measured: dict[str, str]
) -> str | None:
    """What is wrong with the solarize thresholds of view ``kind`` (given or measured from
    the pixels), or None; records what was seen in ``measured``."""
    exact = settings.get((kind, "threshold"), set())
    ranges, varies = _threshold_ranges(exact, settings.get((kind, "threshold_range"), set()))
    if not ranges:
        return None
    shown = [f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}" for lo, hi in ranges]
    measured[f"{kind}.solarize_threshold"] = ", ".join(shown) + (
        " (varies between draws)" if varies else ""
    )
    if varies:
        lo, hi = ranges[-1]
        return (
            f"varies between draws, from about {lo:g} to {hi:g} (a threshold drawn at random); "
            f"the recipe fixes it at {want:g}"
        )
    off = [i for i, r in enumerate(ranges) if not r[0] - 0.5 <= want <= r[1] + 0.5]
    return f"{shown[off[0]]}, the recipe uses {want:g}" if off else None


# A fitted blur sigma is an estimate (within ~20% on a clean image): a hand-written blur is
# judged off only when more than this share of its fitted sigmas lie beyond the recipe's
# range widened by FITTED_SIGMA_SLACK each way.
FITTED_SIGMA_OUTSIDE = 0.25
FITTED_SIGMA_SLACK = 1.5


def _fitted_sigma_problem(fitted: set[Any], want: tuple[float, float]) -> str | None:
    values = sorted(float(v) for v in fitted)
    if len(values) < 4:
        return None  # too few fits to judge an estimate
    lo, hi = want[0] / FITTED_SIGMA_SLACK, want[1] * FITTED_SIGMA_SLACK
    outside = [v for v in values if not lo <= v <= hi]
    if len(outside) <= FITTED_SIGMA_OUTSIDE * len(values):
        return None
    return (
        f"fitted {values[0]:.2g}-{values[-1]:.2g}: {len(outside)} of {len(values)} distinct fitted "
        "values "
        f"lie outside {lo:.2g}-{hi:.2g} (the recipe's {_fmt(want)} with a margin for the fit)"
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
