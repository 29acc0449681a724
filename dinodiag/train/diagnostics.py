"""Collapse diagnostics computed from one training step, and alerts derived from them.

Signals (REFERENCE.md, "what users get stuck on"):

- uniform collapse: teacher entropy ~ ln K and KL(teacher || student) ~ 0 (loss flat at ln K);
- one-hot collapse: entropy of the batch-mean teacher distribution -> 0, a single prototype
  used, backbone features with std -> 0 and effective rank ~ 1;
- teacher identical to student: parameter distance 0 after the first step;
- NaN / Inf anywhere.

All functions take detached tensors and return Python floats (cheap: a few reductions and
one SVD of a (B, D) matrix). Natural logarithms throughout (ln K for K prototypes).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

#: Collapse alerts are not raised before this step: at initialisation the teacher is near
#: uniform and a random backbone maps every image to nearly the same feature, by design.
COLLAPSE_MIN_STEP = 50
#: Uniform collapse: teacher entropy above this fraction of ln K ...
UNIFORM_ENTROPY_FRACTION = 0.95
#: ... and KL(teacher || student) below this many nats.
UNIFORM_MAX_KL = 0.01
#: One-hot collapse: batch-mean teacher entropy below this fraction of ln K, or ...
ONEHOT_BATCH_ENTROPY_FRACTION = 0.02
#: ... effective rank of the features below this value (the number of prototypes used is
#: reported with them but never triggers alone: a uniform teacher has one argmax by ties).
ONEHOT_MAX_EFFECTIVE_RANK = 1.5


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each distribution along the last dim: (..., K) -> (...)."""
    p = probs.float()
    return -(p * torch.log(p.clamp_min(1e-30))).sum(dim=-1)


def teacher_entropy(teacher_probs: torch.Tensor) -> float:
    """Mean per-sample entropy of the teacher targets (n, K); ln K = uniform, 0 = one-hot."""
    return float(entropy(teacher_probs).mean())


def batch_mean_entropy(teacher_probs: torch.Tensor) -> float:
    """Entropy of the batch-mean teacher distribution (n, K); -> 0 when all samples agree."""
    return float(entropy(teacher_probs.float().mean(dim=0)))


def kl_teacher_student(
    teacher_probs: torch.Tensor, student_logits: torch.Tensor, student_temp: float = 0.1
) -> float:
    """Mean KL(teacher || student) over rows; rows of (n, K) teacher probabilities and student
    logits must be the pairs the loss compares (e.g. student global view v with teacher
    ``other_view``)."""
    p = teacher_probs.float()
    log_q = F.log_softmax(student_logits.float() / student_temp, dim=-1)
    kl = (p * (torch.log(p.clamp_min(1e-30)) - log_q)).sum(dim=-1)
    return float(kl.mean())


def prototypes_used(teacher_scores: torch.Tensor) -> int:
    """Number of distinct prototypes that are the argmax of some row of (n, K) probs/logits."""
    return int(teacher_scores.argmax(dim=-1).unique().numel())


def _normalised(features: torch.Tensor) -> torch.Tensor:
    return F.normalize(features.float(), dim=-1)


def feature_std(features: torch.Tensor) -> float:
    """Mean over dims of the per-dim std over the batch of L2-normalised features (n, D).

    About 1 / sqrt(D) for features spread over the sphere, -> 0 when they collapse to a point.
    """
    if features.shape[0] < 2:
        return float("nan")
    return float(_normalised(features).std(dim=0).mean())


def effective_rank(features: torch.Tensor) -> float:
    """RankMe (Garrido et al., 2023): exp(entropy of the normalised singular values) of the
    L2-normalised (n, D) features; between 1 (all samples the same direction) and min(n, D)."""
    s = torch.linalg.svdvals(_normalised(features))
    p = s / s.sum().clamp_min(1e-12)
    return float(torch.exp(entropy(p)))


def mean_pairwise_cosine(features: torch.Tensor) -> float:
    """Mean cosine similarity over distinct pairs of (n, D) features; -> 1 under collapse."""
    n = features.shape[0]
    if n < 2:
        return float("nan")
    x = _normalised(features)
    gram = x @ x.T
    return float((gram.sum() - gram.diagonal().sum()) / (n * (n - 1)))


def min_nn_distance(features: torch.Tensor) -> float:
    """Smallest nearest-neighbour distance among L2-normalised features (n, D); 0 = duplicates
    (KoLeo then hits its eps)."""
    if features.shape[0] < 2:
        return float("nan")
    x = _normalised(features)
    dist = torch.cdist(x, x)
    dist.fill_diagonal_(float("inf"))
    return float(dist.min())


def nonfinite_count(*tensors: torch.Tensor) -> int:
    """Number of NaN / Inf entries over the tensors."""
    return int(sum(int((~torch.isfinite(t)).sum()) for t in tensors))


@torch.no_grad()
def compute_diagnostics(
    teacher_probs: torch.Tensor,
    student_logits: torch.Tensor,
    features: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    student_temp: float = 0.1,
) -> dict[str, float]:
    """All step diagnostics as a flat dict of floats (the keys logged in metrics rows).

    Args:
        teacher_probs: (n, K) teacher targets (after centering / Sinkhorn).
        student_logits: (n, K) student logits paired row-wise with ``teacher_probs``.
        features: (B, D) backbone CLS features (e.g. the teacher's, one global view).
        teacher_logits: (n, K) raw teacher logits (for the max |logit| and the argmax).
        student_temp: student temperature used by the loss.
    """
    scores = teacher_logits if teacher_logits is not None else teacher_probs
    diag: dict[str, float] = {
        "teacher_entropy": teacher_entropy(teacher_probs),
        "teacher_batch_entropy": batch_mean_entropy(teacher_probs),
        "kl_teacher_student": kl_teacher_student(teacher_probs, student_logits, student_temp),
        "prototypes_used": float(prototypes_used(scores)),
        "feature_std": feature_std(features),
        "effective_rank": effective_rank(features),
        "mean_pairwise_cosine": mean_pairwise_cosine(features),
        "min_nn_distance": min_nn_distance(features),
        "max_abs_logit": float(student_logits.detach().float().abs().max()),
        "nonfinite_count": float(nonfinite_count(student_logits, scores, features)),
        "n_samples": float(teacher_probs.shape[0]),
    }
    return diag


def _event(step: int, level: str, code: str, message: str) -> dict[str, Any]:
    return {"kind": "event", "step": step, "level": level, "code": code, "message": message}


def detect_alerts(
    diag: dict[str, Any],
    K: int,
    step: int,
    collapse_min_step: int = COLLAPSE_MIN_STEP,
) -> list[dict[str, Any]]:
    """Alerts (event rows for metrics.jsonl) from one step's diagnostics.

    Args:
        diag: values from :func:`compute_diagnostics`, plus optional ``"param_distance"``
            (teacher-student) and loss terms (any key; all numbers are checked for NaN/Inf).
        K: number of prototypes (uniform = ln K).
        step: the training step (written in the events).
        collapse_min_step: collapse alerts are suppressed before this step.

    Returns a list of ``{"kind": "event", "step", "level": "warning" | "error", "code",
    "message"}``; codes: ``nonfinite``, ``teacher_is_student``, ``uniform_collapse``,
    ``onehot_collapse``.
    """
    events: list[dict[str, Any]] = []
    ln_k = math.log(K)
    bad = sorted(
        key
        for key, value in diag.items()
        if isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not math.isfinite(value)
        and key not in ("feature_std", "mean_pairwise_cosine", "min_nn_distance")
    )
    if bad or diag.get("nonfinite_count", 0) > 0:
        what = ", ".join(bad) if bad else f"{int(diag['nonfinite_count'])} logits/features"
        events.append(
            _event(
                step,
                "error",
                "nonfinite",
                f"NaN/Inf at step {step} in {what}. Try: lower the lr (check the sqrt batch "
                "scaling), keep gradient clipping on (3.0), train in bf16 or fp32 instead of "
                "fp16, and make sure no KoLeo chunk has a batch of 1 (drop_last=True).",
            )
        )
    distance = diag.get("param_distance")
    if distance is not None and step > 0 and distance == 0:
        events.append(
            _event(
                step,
                "error",
                "teacher_is_student",
                f"teacher-student parameter distance is 0 at step {step}: the teacher is the "
                "student (same object or shared parameters) or the student is not updated. "
                "Build the teacher with copy.deepcopy(student), give the optimizer only the "
                "student's parameters, and check that the lr actually applied is > 0.",
            )
        )
    if step < collapse_min_step:
        return events
    ent = diag.get("teacher_entropy")
    kl = diag.get("kl_teacher_student")
    if (
        ent is not None
        and kl is not None
        and ent > UNIFORM_ENTROPY_FRACTION * ln_k
        and kl < UNIFORM_MAX_KL
    ):
        events.append(
            _event(
                step,
                "warning",
                "uniform_collapse",
                f"uniform collapse: teacher entropy {ent:.3f} ~ ln K = {ln_k:.3f} and "
                f"KL(teacher||student) {kl:.4f} ~ 0, so the loss stays at ln K. Try: lower the "
                "teacher temperature (0.04), check that centering is applied once per step "
                "(center momentum 0.9), use fewer prototypes (K), and check the lr applied.",
            )
        )
    batch_ent = diag.get("teacher_batch_entropy")
    used = diag.get("prototypes_used")
    rank = diag.get("effective_rank")
    reasons = []
    if batch_ent is not None and batch_ent < ONEHOT_BATCH_ENTROPY_FRACTION * ln_k:
        reasons.append(f"batch-mean teacher entropy {batch_ent:.3f} (ln K = {ln_k:.2f})")
    if rank is not None and rank < ONEHOT_MAX_EFFECTIVE_RANK:
        reasons.append(f"feature effective rank {rank:.2f}")
    # A single argmax alone is no proof (a uniform teacher ties everywhere): only reported
    # next to one of the signals above.
    if reasons and used is not None and used <= 1:
        reasons.append("a single prototype used")
    if reasons:
        events.append(
            _event(
                step,
                "warning",
                "onehot_collapse",
                f"one-hot collapse: {', '.join(reasons)}: every image maps to the same "
                "prototype. Try: raise the batch size (centering needs many samples), lower "
                "the lr, raise the teacher temperature warm-up, check the center is updated, "
                "try Sinkhorn-Knopp centering, and keep KoLeo on.",
            )
        )
    return events
