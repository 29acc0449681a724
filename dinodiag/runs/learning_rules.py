"""Diagnosis rules on whether a dinodiag run learned: its k-NN change judged against the k-NN
noise (:mod:`dinodiag.train.eval.knn_noise`), and the prototypes its teacher still uses.

"Too short to judge" and "not learning" are different answers: a change within the noise on a
short run says nothing yet; the same after the run's collapse signals fire says it does not
learn.
"""

from __future__ import annotations

from dinodiag.runs.findings import Finding, iteration, rows_of
from dinodiag.runs.opened_run import OpenedRun
from dinodiag.runs.story import knn_gain as story_gain
from dinodiag.train.eval.knn_noise import knn_interval, min_test_images

PROTOTYPES_FLOOR = 2  # a teacher whose argmax lands on this few prototypes has collapsed
PROTOTYPES_DROP = 0.25  # ... or on fewer than this share of its early count


def knn_gain(run: OpenedRun) -> Finding | None:
    """The k-NN change from the first evaluation (step 0: random weights) to the last."""
    if run.kind != "dinodiag":
        return None
    gain = story_gain(run.metrics)  # the gain Yours vs reference reads, by the same rule
    if gain is None:
        return None
    change = gain.change
    interval = knn_interval(gain.end, gain.test_images)
    band = f" (95% interval {interval[0]:.1f}-{interval[1]:.1f}%)" if interval else ""
    evidence = (
        f"k-NN top-1 {gain.start:.1f}% at the first evaluation, {gain.end:.1f}% at step "
        f"{gain.steps}{band}: {change.describe()}; {gain.evaluations} evaluations."
    )
    if change.status == "up":
        return Finding("pass", "knn_gain", "k-NN accuracy rose beyond its noise", evidence)
    if change.status == "too_few":
        return Finding(
            "info",
            "knn_gain",
            "Too few test images to judge the k-NN change",
            evidence,
            f"Evaluate on at least {min_test_images()} held-out images (knn_test_max, and a "
            "dataset with that many in its val split).",
        )
    if change.status == "unknown":
        return Finding(
            "info",
            "knn_gain",
            "The k-NN change cannot be judged (test size not logged)",
            evidence,
        )
    collapsed = prototypes_used(run)
    if collapsed is not None and collapsed.level == "fail":
        return Finding(
            "fail",
            "knn_gain",
            "Not learning: the k-NN does not rise and the teacher collapses",
            f"{evidence} {collapsed.evidence}",
            collapsed.advice,
        )
    if change.status == "down":
        return Finding(
            "warn",
            "knn_gain",
            "k-NN accuracy fell beyond its noise",
            evidence,
            "A small batch starves the centering (dinov2 #173): watch the effective rank and "
            "the prototypes in use; raise the batch or lower the lr.",
        )
    return Finding(
        "info",
        "knn_gain",
        "Too short to judge: the k-NN change is within its noise",
        evidence,
        "Nothing says it does not learn yet: train longer (train --estimate says how long is "
        "enough) or evaluate on more test images to shrink the noise.",
    )


def prototypes_used(run: OpenedRun) -> Finding | None:
    """The number of prototypes the teacher's argmax lands on (dinodiag logs it per step)."""
    rows = rows_of(run, "prototypes_used").dropna()
    if len(rows) < 3:
        return None
    early = float(rows["value"].iloc[: max(1, len(rows) // 10)].max())
    late_rows = rows.iloc[-max(1, len(rows) // 10) :]
    late = float(late_rows["value"].median())
    evidence = (
        f"prototypes in use (teacher argmax over a batch) {early:.0f} early, {late:.0f} over "
        f"the last {len(late_rows)} logged steps (to {iteration(rows['step'].iloc[-1])})."
    )
    if late <= PROTOTYPES_FLOOR or (early >= 8 and late < PROTOTYPES_DROP * early):
        return Finding(
            "fail",
            "prototypes_used",
            f"The teacher's prototypes in use fell from {early:.0f} to {late:.0f}",
            evidence,
            "Every image lands on a few prototypes: a one-hot collapse in the making. Raise the "
            "batch (the centre is a batch mean), lower the lr, keep the teacher temperature "
            "warm-up, or try Sinkhorn-Knopp centering.",
        )
    return Finding("pass", "prototypes_used", "The teacher keeps using many prototypes", evidence)
