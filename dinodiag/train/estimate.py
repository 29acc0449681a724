"""How long a run will take: the measured costs of its parts (:class:`TimeEstimate`) and
what fits in its budget (:func:`fit_steps`). ``run.max_seconds`` counts from the start of the
process, imports and set-up included, as the engine counts it.

The measuring is :func:`dinodiag.train.warmup.estimate_training` (``train --estimate``); this
module holds no training code, so the dashboard can read an estimate without loading the loop.

    steps, evaluations, total = fit_steps(7.0, 0.9, 0.55, 2.0, 100, 930, 300.0)
    TimeEstimate(...).sentence()   # "Measured here: set-up 7.0 s (imports, data, ...) ..."
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

CHECKPOINT_S = 1.0  # the final checkpoint and status, and the engine's margin at a time limit


@dataclass(frozen=True)
class TimeEstimate:
    """Measured costs of a run's parts, and what fits in its budget."""

    setup_s: float  # process start to the first step: imports, data, networks, step-0 k-NN
    first_step_s: float  # the first step (allocations, the first batch)
    step_s: float  # one later step (median of the measured ones)
    eval_s: float  # one later k-NN evaluation (0 without k-NN)
    eval_every: int  # k-NN every N steps (0 = off)
    planned_steps: int  # steps the run plans without a time limit
    budget_s: float | None  # run.max_seconds
    steps: int  # steps expected: the planned ones, or fewer when the budget ends the run
    evaluations: int  # k-NN evaluations expected, step 0 included
    total_s: float  # expected wall time of the whole process
    knn_test: int | None = None  # held-out k-NN images (its noise: knn_horizon.judge_plan)

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def sentence(self) -> str:
        """What a person reads before launching (Markdown-free, one paragraph)."""
        knn = (
            f", one k-NN evaluation {self.eval_s:.1f} s (every {self.eval_every} steps)"
            if self.eval_every
            else " (k-NN off)"
        )
        text = (
            f"Measured here: set-up {self.setup_s:.1f} s (imports, data, networks and the step-0 "
            f"k-NN), first step {self.first_step_s:.2f} s, then {self.step_s:.2f} s a step{knn}. "
        )
        if self.budget_s is not None and self.steps < self.planned_steps:
            text += (
                f"In the {self.budget_s:g} s budget: about {self.steps} of the "
                f"{self.planned_steps} planned steps and {self.evaluations} k-NN evaluations "
                f"(~{self.total_s:.0f} s)."
            )
        else:
            text += (
                f"All {self.planned_steps} steps and {self.evaluations} k-NN evaluations: "
                f"about {self.total_s:.0f} s."
            )
        if self.steps <= 1:
            text += " Too short to learn anything: raise the budget or lighten the run."
        return text


def evaluations_for(steps: int, eval_every: int) -> int:
    """k-NN evaluations of a run of ``steps``: step 0, every ``eval_every``, and the end."""
    if not eval_every:
        return 0
    return 1 + steps // eval_every + (1 if steps % eval_every else 0)


def fit_steps(
    setup_s: float,
    first_step_s: float,
    step_s: float,
    eval_s: float,
    eval_every: int,
    planned_steps: int,
    budget_s: float | None,
) -> tuple[int, int, float]:
    """``(steps, evaluations, total seconds)``: the most steps (up to the planned ones) whose
    steps, evaluations and final checkpoint end within ``budget_s`` (all of them if None).
    ``setup_s`` includes the step-0 evaluation."""

    def total(steps: int) -> float:
        later = max(0, evaluations_for(steps, eval_every) - 1)
        work = first_step_s + (steps - 1) * step_s if steps else 0.0
        return setup_s + work + later * eval_s + CHECKPOINT_S

    if budget_s is None or total(planned_steps) <= budget_s:
        steps = planned_steps
    else:
        low, high = 0, planned_steps  # total(low) fits (or low is 0), total(high) does not
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if total(middle) <= budget_s else (low, middle)
        steps = low
    return steps, evaluations_for(steps, eval_every), total(steps)
