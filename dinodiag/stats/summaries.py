"""Per view group, the spread of each crop measure (scale, ratio, upsampling, global IoU,
local coverage) against the configured range: :func:`summarize`."""

from __future__ import annotations

import pandas as pd

from dinodiag.augment.config import PipelineConfig

MEASURES = ("scale", "ratio", "upsampling", "global_iou", "local_coverage")


def _configured(config: PipelineConfig | None, group: str, measure: str) -> str:
    if config is None:
        return ""
    if measure == "scale":
        lo, hi = config.global_crops_scale if group == "global" else config.local_crops_scale
        return f"{lo:g}-{hi:g}"
    if measure == "ratio":
        return f"{config.crop_ratio[0]:.3g}-{config.crop_ratio[1]:.3g}"
    return ""


def summarize(frame: pd.DataFrame, config: PipelineConfig | None = None) -> pd.DataFrame:
    """Per view group and measure: configured range, n, min / p05 / median / p95 / max."""
    rows = []
    for group in ("global", "local"):
        part = frame[frame["group"] == group] if len(frame) else frame
        for measure in MEASURES:
            values = (
                pd.to_numeric(part[measure], errors="coerce").dropna()
                if len(part)
                else pd.Series([])
            )
            if values.empty:
                continue
            rows.append(
                {
                    "group": group,
                    "measure": measure,
                    "configured": _configured(config, group, measure),
                    "n": int(values.size),
                    "min": float(values.min()),
                    "p05": float(values.quantile(0.05)),
                    "median": float(values.median()),
                    "p95": float(values.quantile(0.95)),
                    "max": float(values.max()),
                }
            )
    return pd.DataFrame(
        rows, columns=["group", "measure", "configured", "n", "min", "p05", "median", "p95", "max"]
    )
