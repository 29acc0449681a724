"""Box geometry of crops in source pixels: intersection, area, IoU, coverage by a union.

A box is ``(left, top, width, height)`` (:data:`Box`), as :class:`~dinodiag.augment.records.
ViewRecord` records it.
"""

from __future__ import annotations

import itertools

Box = tuple[float, float, float, float]  # (left, top, width, height)


def intersection(a: Box, b: Box) -> Box | None:
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if right <= left or bottom <= top:
        return None
    return (left, top, right - left, bottom - top)


def area(box: Box | None) -> float:
    return 0.0 if box is None else box[2] * box[3]


def iou(a: Box, b: Box) -> float:
    inter = area(intersection(a, b))
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def coverage(box: Box, others: list[Box]) -> float:
    """Fraction of ``box`` inside the union of ``others`` (exact inclusion-exclusion up to 4)."""
    if not others or area(box) == 0:
        return 0.0
    if len(others) > 4:
        return max(area(intersection(box, o)) for o in others) / area(box)
    covered = 0.0
    for k in range(1, len(others) + 1):
        for combo in itertools.combinations(others, k):
            region: Box | None = box
            for other in combo:
                region = intersection(region, other) if region is not None else None
            covered += (-1) ** (k + 1) * area(region)
    return covered / area(box)
