"""The one-line progress report printed while a run trains (rank 0)."""

from __future__ import annotations

from typing import Any

from dinodiag.printable import duration


def format_progress(
    name: str,
    step: int,
    total: int,
    epoch: float,
    values: dict[str, Any],
    knn: dict[str, float | None],
    elapsed: float,
    eta: float | None,
) -> str:
    """``[cpu-demo] step 120/900 (13%) ep 3.20 | loss 6.123 (dino 5.10 ibot 4.20 koleo -1.30)
    | lr 1.2e-03 | 85 img/s | k-NN 24.5% (start 13.0%) | 1m02s, ETA 3m12s``"""
    pct = 100.0 * step / max(1, total)
    terms = " ".join(
        f"{key.removesuffix('_loss')} {values[key]:.3f}"
        for key in ("dino_loss", "ibot_loss", "koleo_loss")
        if key in values
    )
    parts = [
        f"[{name}] step {step}/{total} ({pct:.0f}%) ep {epoch:.2f}",
        f"loss {values.get('loss', float('nan')):.3f} ({terms})",
        f"lr {values.get('lr', float('nan')):.1e}",
        f"{values.get('img_per_s', 0.0):.0f} img/s",
    ]
    if knn.get("knn_top1") is not None:
        start = knn.get("knn_top1_start")
        since = f" (start {start:.1f}%)" if start is not None else ""
        parts.append(f"k-NN {knn['knn_top1']:.1f}%{since}")
    parts.append(f"{duration(elapsed, compact=True)}, ETA {duration(eta, compact=True)}")
    return " | ".join(parts)
