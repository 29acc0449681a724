"""A diagnosis in words from a run's log: what the curves say went wrong, with the evidence
(iterations, values) and what to try.

Each rule reads the train rows of an :class:`~dinodiag.runs.opened_run.OpenedRun` (dinodiag's
column names, so DINOv2 and dinodiag runs are judged alike) and returns one
:class:`Finding`. The signals come from the issues users of DINO / DINOv2 got stuck on
(REFERENCE.md):

- ``uniform_collapse``: the DINO loss sits at ln K, the entropy of a uniform teacher over the
  K prototypes (dino #246, dinov2 #407);
- ``onehot_collapse``: the DINO loss falls towards 0 (every image on one prototype), often
  within the first epoch (dinov2 #272);
- ``flat_loss``: the loss unchanged to 4 decimals for many logging periods: nothing learns,
  the lr actually applied or the batch is the suspect (dinov2 #298, #143);
- ``koleo``: the KoLeo term infinite, NaN or near its floor (-ln 1e-8 per crop chunk: duplicate
  features, a batch of 1; dinov2 #314, #492);
- ``nonfinite_loss``: a NaN / inf loss (DINOv2 stops there);
- ``schedules``: logged lr / wd / momentum / last-layer lr against DINOv2's schedules
  recomputed from ``config.yaml``, ``teacher_temp``: the teacher temperature schedule of the
  config (DINOv2 does not log it), ``loader_bound``: ``data_time`` a large part of
  ``iter_time`` (these three in :mod:`dinodiag.runs.config_rules`).

    for finding in diagnose(open_run("/out/dinov2_run")):
        print(finding.level, finding.title, finding.evidence, finding.advice)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from dinodiag.runs.config_rules import loader_bound, schedules, teacher_temp
from dinodiag.runs.findings import (
    LEVELS,
    Finding,
    iteration,
    logged_warmup,
    rows_of,
    span,
)
from dinodiag.runs.launch_rules import early_stop, launches, nonfinite_average
from dinodiag.runs.learning_rules import knn_gain, prototypes_used
from dinodiag.runs.opened_run import OpenedRun

UNIFORM_FRACTION = 0.98  # the DINO loss within 2% of ln K counts as "at ln K"
ONEHOT_FRACTION = 0.1  # the DINO loss below 10% of ln K (1.1 nats at K = 65536) is one-hot
FLAT_ROWS = 5  # this many logging periods with the same loss to 4 decimals = nothing learns
KOLEO_FLOOR = -math.log(1e-8)  # KoLeo of one chunk when two features coincide (18.4)
KOLEO_ALARM = -math.log(1e-4)  # nearest-neighbour distance below 1e-4: features collapse


# ----------------------------------------------------------------------------- the rules
def nonfinite_loss(run: OpenedRun) -> Finding | None:
    bad = []
    for column in ("loss", "dino_loss", "ibot_loss", "koleo_loss"):
        rows = rows_of(run, column)
        broken = rows[~np.isfinite(rows["value"].astype(float))]
        if len(broken):
            bad.append((int(broken["step"].iloc[0]), column, broken["value"].iloc[0]))
    if not bad:
        return None
    step, column, value = min(bad)
    others = ", ".join(sorted({c for _, c, _ in bad} - {column}))
    return Finding(
        "fail",
        "nonfinite_loss",
        f"The loss is not finite from {iteration(step)}",
        f"{column} = {value} at {iteration(step)}" + (f"; also {others}" if others else "") + ".",
        "DINOv2 stops at a NaN loss. A KoLeo term gone first means a batch too small or "
        "duplicate images; otherwise lower the lr (optim.base_lr) or leave fp16 "
        "(compute_precision) for bf16 / fp32, and keep gradient clipping (optim.clip_grad 3.0).",
    )


def _dino_rows(run: OpenedRun, least: int) -> tuple[pd.DataFrame, int, float] | None:
    """(DINO loss rows, K, ln K), or None with fewer than ``least`` rows or no K."""
    rows = rows_of(run, "dino_loss").dropna()
    k = run.num_prototypes
    if len(rows) < least or not k or k < 2:
        return None
    return rows, k, math.log(k)


def _terms_text(run: OpenedRun, late: pd.DataFrame) -> str:
    """How DINOv2 wrote the level: its two terms and the pair count that makes their sum ln K
    at a uniform teacher (from the config's local_crops_number when known)."""
    local, glob = rows_of(run, "dino_local_crops_loss"), rows_of(run, "dino_global_crops_loss")
    if run.kind != "dinov2" or local.empty or glob.empty:
        return ""
    steps = late["step"]
    local_v = float(local[local["step"].isin(steps)]["value"].median())
    glob_v = float(glob[glob["step"].isin(steps)]["value"].median())
    pairs = ""
    if run.dinov2_config is not None:
        n = int(float(run.dinov2_config.get("crops.local_crops_number")))
        pairs = (
            f" (DINOv2 divides both by the {2 * n + 2} crop pairs of 2 globals and {n} locals, "
            "so their sum is ln K at a uniform teacher)"
        )
    return f" dino_local_crops_loss {local_v:.4f} + dino_global_crops_loss {glob_v:.4f}{pairs}."


def _other_level(level: float, ln_k: float, k: int, k_source: str) -> str | None:
    """What a DINO loss level above ln K can mean, or None when it is not above it."""
    ratio = level / ln_k
    if ratio <= 1 + (1 - UNIFORM_FRACTION):
        return None
    multiple = round(ratio)
    if multiple >= 2 and abs(ratio - multiple) <= (1 - UNIFORM_FRACTION) * multiple:
        return (
            f"the DINO loss sits at {multiple} x ln K ({level:.4f}): that cannot be a DINOv2 "
            f"log with K = {k} ({k_source}), whose DINO terms sum to ln K at a uniform teacher; "
            "the loss is normalised otherwise (a fork summing over crop pairs?) or K differs"
        )
    power = math.log2(math.exp(level)) if level < 700 else math.inf
    if math.isfinite(power) and abs(power - round(power)) < 0.03 and round(power) >= 1:
        other = 2 ** round(power)
        return (
            f"the DINO loss sits at {level:.4f} = ln {other}, not ln {k} = {ln_k:.4f}: K is "
            f"probably {other}, not {k} ({k_source}); give --num-prototypes {other}"
        )
    return (
        f"the DINO loss sits above ln K ({level:.4f} > {ln_k:.4f}): the student disagrees "
        "with a near-uniform teacher, or K is larger than assumed"
    )


def uniform_collapse(run: OpenedRun) -> Finding | None:
    if (found := _dino_rows(run, 3)) is None:
        return None
    rows, k, ln_k = found
    late = rows.iloc[-max(3, len(rows) // 4) :]
    level = float(late["value"].median())
    first, last = rows.iloc[0], rows.iloc[-1]
    k_source = run.sources.get("num_prototypes", "")
    evidence = (
        f"DINO loss {first['value']:.4f} at {iteration(first['step'])}, {last['value']:.4f} "
        f"at {iteration(last['step'])}; median {level:.4f} over {span(late)}; "
        f"ln K = ln {k} = {ln_k:.4f}" + (f" (K from {k_source})" if k_source else "") + "."
    ) + _terms_text(run, late)
    other = _other_level(level, ln_k, k, k_source or "assumed")
    if other is not None:
        return Finding(
            "warn",
            "uniform_collapse",
            "The DINO loss is not at a level a DINOv2 run of this K can have",
            f"{evidence} {other[0].upper()}{other[1:]}.",
            "Check K (dino.head_n_prototypes in config.yaml or the log's config echo) and the "
            "loss code; a loss that stays at one level while the lr is applied is a collapse "
            "whatever the level.",
        )
    if level < UNIFORM_FRACTION * ln_k:
        return Finding("pass", "uniform_collapse", "The DINO loss left ln K", evidence)
    warmup = logged_warmup(run)
    at_level = rows[rows["value"] >= UNIFORM_FRACTION * ln_k]
    since = at_level[at_level["step"] >= warmup.end]
    if warmup.state == "rising" or int(last["step"]) < warmup.end:
        return Finding(
            "info",
            "uniform_collapse",
            "The DINO loss is still at ln K, within the lr warm-up",
            f"{evidence} Warm-up: {warmup.evidence}.",
            "Too early to call: judge it after the warm-up. If it stays, see the uniform-collapse "
            "advice (teacher temperature, centering, lr).",
        )
    stay = (
        f" It has stayed there for {int(last['step']) - int(since['step'].iloc[0])} iterations "
        f"past the warm-up ({len(since)} log rows)."
        if len(since)
        else ""
    )
    return Finding(
        "fail",
        "uniform_collapse",
        "Uniform collapse: the DINO loss sits at ln K",
        f"{evidence} Warm-up: {warmup.evidence}.{stay}",
        "The teacher gives every prototype the same probability, so the student learns "
        "nothing. Check that the teacher is an EMA of the student and not the same module "
        "(dinov2 #407), lower the teacher temperature (teacher.teacher_temp <= 0.07, warm-up "
        "from 0.04), check the lr actually applied, and on small data use fewer prototypes "
        "(dino.head_n_prototypes 1024-8192).",
    )


def onehot_collapse(run: OpenedRun) -> Finding | None:
    if (found := _dino_rows(run, 2)) is None:
        return None
    rows, _, ln_k = found
    limit = ONEHOT_FRACTION * ln_k
    low = rows[rows["value"] < limit]
    if low.empty:
        lowest = rows.loc[rows["value"].idxmin()]
        return Finding(
            "pass",
            "onehot_collapse",
            "The DINO loss stays away from 0",
            f"lowest DINO loss {lowest['value']:.4f} at {iteration(lowest['step'])}; a one-hot "
            f"teacher drives it below {limit:.3f} (10% of ln K).",
        )
    at = low.iloc[0]
    start = rows.iloc[0]
    ep = run.epoch_length
    when = ""
    if ep:
        when = " within the first epoch" if at["step"] <= ep else f" in epoch {at['step'] / ep:.1f}"
    return Finding(
        "fail",
        "onehot_collapse",
        f"One-hot collapse: the DINO loss fell towards 0{when}",
        f"DINO loss {start['value']:.4f} at {iteration(start['step'])}, {at['value']:.4f} at "
        f"{iteration(at['step'])} (below {limit:.3f} = 10% of ln K); lowest "
        f"{rows['value'].min():.4f}" + (f"; an epoch is {ep} iterations." if ep else "."),
        "Every image lands on the same prototype: the centering does not hold the teacher "
        "back. Keep the batch >= 64 per process (the centre is a batch mean), the teacher "
        "temperature low during warm-up (teacher.warmup_teacher_temp 0.04), the teacher "
        "momentum at 0.992-0.996; Sinkhorn-Knopp centering (train.centering: sinkhorn_knopp) "
        "resists this collapse. Watch the effective rank of the checkpoint's features.",
    )


def _longest_equal_stretch(values: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest run of equal consecutive values ((0, 0) when empty)."""
    best_start, best_length, run_start = 0, 0, 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[run_start]:
            if i - run_start > best_length:
                best_start, best_length = run_start, i - run_start
            run_start = i
    return best_start, best_length


def flat_loss(run: OpenedRun) -> Finding | None:
    rows = rows_of(run, "loss").dropna()
    rows = rows[np.isfinite(rows["value"].astype(float))]
    if len(rows) < FLAT_ROWS:
        return None
    rounded = np.round(rows["value"].to_numpy(dtype=float), 4)
    start, length = _longest_equal_stretch(rounded)
    if length < FLAT_ROWS:
        return Finding(
            "pass",
            "flat_loss",
            "The loss moves",
            f"no {FLAT_ROWS} consecutive logging periods share a loss to 4 decimals "
            f"(longest: {length}).",
        )
    stretch = rows.iloc[start : start + length]
    lr = rows_of(run, "lr")
    lr = lr[lr["step"].between(stretch["step"].iloc[0], stretch["step"].iloc[-1])]["value"]
    batch = rows_of(run, "batch_size")["value"].dropna()
    facts = [f"total loss {rounded[start]:.4f} in {length} logging periods over {span(stretch)}"]
    if len(lr):
        facts.append(f"lr applied {float(lr.min()):.3g}-{float(lr.max()):.3g}")
    if len(batch):
        facts.append(f"batch {int(batch.iloc[-1])} per process")
    to_end = start + length == len(rows)
    return Finding(
        "fail" if to_end else "warn",
        "flat_loss",
        "The loss is unchanged to 4 decimals" + ("" if to_end else " for a stretch"),
        "; ".join(facts) + ".",
        "Nothing is learning. Check the lr actually applied (an lr of 0, or optim.lr far "
        "below base_lr x sqrt(batch x GPUs / 1024)), that the optimiser steps every parameter "
        "(nothing frozen by mistake), and the batch: at 32 images or fewer per step DINOv2's "
        "statistics starve (dinov2 #298); raise it to >= 64 per process.",
    )


def koleo(run: OpenedRun) -> Finding | None:
    rows = rows_of(run, "koleo_loss").dropna(subset=["step"])
    if rows.empty:
        return None
    per_chunk = _koleo_per_chunk(run)
    values = rows["value"].astype(float)
    broken = rows[~np.isfinite(values)]
    scaled = values / per_chunk
    high = rows[np.isfinite(values) & (scaled >= KOLEO_ALARM)]
    batch = rows_of(run, "batch_size")["value"].dropna()
    batch_text = f"; batch {int(batch.min())} per process" if len(batch) else ""
    advice = (
        "KoLeo is -log of each feature's distance to its nearest neighbour in the batch: at a "
        "batch of 1 it is undefined, with duplicate images or collapsed features it hits its "
        "floor. Use >= 2 images per process (>= 64 for DINOv2's statistics), drop duplicates, "
        "or lower dino.koleo_loss_weight (0 turns it off)."
    )
    if len(broken):
        at = broken.iloc[0]
        return Finding(
            "fail",
            "koleo",
            "The KoLeo term is not finite",
            f"koleo_loss = {at['value']} at {iteration(at['step'])}{batch_text}.",
            advice,
        )
    if len(high):
        at = high.iloc[0]
        return Finding(
            "fail",
            "koleo",
            "The KoLeo term explodes",
            f"koleo_loss {at['value']:.4g} at {iteration(at['step'])} "
            f"(= {at['value'] / per_chunk:.1f} per crop chunk: nearest-neighbour distance "
            "below 1e-4; the floor is "
            f"{KOLEO_FLOOR:.1f}); first {values.iloc[0]:.4g}{batch_text}.",
            advice,
        )
    return Finding(
        "pass",
        "koleo",
        "The KoLeo term stays bounded",
        f"koleo_loss {values.min():.4g} to {values.max():.4g} over {span(rows)}{batch_text}.",
    )


def _koleo_per_chunk(run: OpenedRun) -> float:
    """What to divide the logged KoLeo by to get the per-chunk value: DINOv2 logs the weight x
    the mean over the global-crop chunks, dinodiag the unweighted sum over them."""
    if run.kind == "dinov2":
        weight = 0.1
        if run.dinov2_config is not None:
            weight = float(run.dinov2_config.get("dino.koleo_loss_weight"))
        return weight if weight > 0 else 1.0
    return float(run.pipeline.global_crops_number) if run.pipeline else 2.0


RULES: tuple[Callable[[OpenedRun], Finding | None], ...] = (
    launches,
    early_stop,
    nonfinite_loss,
    nonfinite_average,
    uniform_collapse,
    onehot_collapse,
    flat_loss,
    koleo,
    schedules,
    teacher_temp,
    loader_bound,
    knn_gain,
    prototypes_used,
)


def diagnose(run: OpenedRun) -> list[Finding]:
    """Every rule's finding, worst first (fail, warn, info, pass); rules without the columns
    they need say nothing, and an empty log gives one ``info`` finding saying so."""
    if run.train_rows.empty:
        return [
            Finding(
                "info",
                "no_log",
                "No training log to diagnose",
                f"{run.path} has no logged iterations.",
                "Point at the train.output_dir of a run that has logged (training_metrics.json).",
            )
        ]
    findings = [f for rule in RULES if (f := rule(run)) is not None]
    return sorted(findings, key=lambda f: LEVELS.index(f.level))
