"""Synthetic DINOv2 output directories for the tests and the screenshot script.

No DINOv2 weights or logs can be downloaded here, so they are written from what DINOv2's
trainer is documented to leave (REFERENCE.md): state dicts in DINOv2's key layout made from
dinodiag's own ViT (random weights, real shapes; blocks optionally chunked as ``blocks.C.N``
with DINOv2's global block index; the heads' weight norm as ``weight_g`` / ``weight_v``),
``training_metrics.json`` lines for a healthy run and for each failure the diagnosis names,
and a resolved ``config.yaml``.

The schedules of the fake logs are written here from DINOv2's formula
(``np.linspace`` warm-up, then ``final + (base - final) / 2 * (1 + cos(pi * i / n))``), apart
from :mod:`dinodiag.runs.dinov2_schedules`, so that the schedule check is tested against an
independent reading.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from dinodiag.augment.dinov2_config import DINOV2_DEFAULTS
from dinodiag.train.models.head import DINOHead
from dinodiag.train.models.vit import VisionTransformer

WORLD_SIZE = 8
BATCH = 64
EPOCH = 100  # OFFICIAL_EPOCH_LENGTH of the fake runs (short, so a log spans epochs)
EPOCHS = 10
K = 4096


def run_config(**sections: dict[str, Any]) -> dict[str, Any]:
    """A resolved DINOv2 config as its trainer writes it (optim.lr already scaled), with the
    fake runs' lengths; ``sections`` update single keys (``optim={"epochs": 3}``)."""
    config = copy.deepcopy(DINOV2_DEFAULTS)
    config["student"].update(arch="vit_small", patch_size=14, num_register_tokens=4)
    config["crops"].update(local_crops_size=98)
    config["dino"]["head_n_prototypes"] = K
    config["ibot"]["head_n_prototypes"] = K
    config["train"].update(batch_size_per_gpu=BATCH, OFFICIAL_EPOCH_LENGTH=EPOCH)
    config["optim"].update(epochs=EPOCHS, warmup_epochs=2)
    config["teacher"].update(warmup_teacher_temp_epochs=3)
    for name, values in sections.items():
        config[name].update(values)
    base = config["optim"]["base_lr"]
    config["optim"]["lr"] = base * math.sqrt(BATCH * WORLD_SIZE / 1024)
    config["MODEL"] = {"WEIGHTS": ""}
    config["compute_precision"] = {"grad_scaler": True}
    return config


def _cosine(base: float, final: float, total: int, warmup: int = 0, start: float = 0.0):
    rest = np.arange(total - warmup)
    tail = final + 0.5 * (base - final) * (1 + np.cos(np.pi * rest / max(len(rest), 1)))
    return np.concatenate([np.linspace(start, base, warmup), tail])


def schedules(config: dict[str, Any], iterations: np.ndarray) -> dict[str, np.ndarray]:
    """lr, wd, mom and last_layer_lr at each iteration, as DINOv2's trainer computes them."""
    optim, teacher = config["optim"], config["teacher"]
    ep = config["train"]["OFFICIAL_EPOCH_LENGTH"]
    total = optim["epochs"] * ep
    lr = _cosine(optim["lr"], optim["min_lr"], total, int(optim["warmup_epochs"] * ep))
    last = lr.copy()
    last[: int(optim["freeze_last_layer_epochs"] * ep)] = 0
    wd = _cosine(optim["weight_decay"], optim["weight_decay_end"], total)
    mom = _cosine(teacher["momentum_teacher"], teacher["final_momentum_teacher"], total)
    its = np.minimum(iterations, total - 1)
    return {"lr": lr[its], "wd": wd[its], "mom": mom[its], "last_layer_lr": last[its]}


def metric_rows(kind: str = "healthy", config: dict[str, Any] | None = None) -> list[dict]:
    """``training_metrics.json`` rows every 10 iterations over 3 epochs.

    kinds: ``healthy`` (DINO loss falls from ln K to about half of it), ``uniform`` (stays at
    ln K, moving in the 3rd decimal), ``onehot`` (falls to 0.05 within the first epoch),
    ``flat`` (every term fixed: the same loss to 4 decimals), ``koleo`` (KoLeo grows to inf at
    a batch of 1), ``loader`` (data_time 80% of iter_time), ``lr_off`` (the logged lr twice the
    config's).
    """
    config = config or run_config()
    iterations = np.arange(0, 3 * EPOCH, 10)
    sched = schedules(config, iterations)
    ln_k = math.log(config["dino"]["head_n_prototypes"])
    rng = np.random.default_rng(0)
    rows = []
    for i, it in enumerate(iterations):
        fall = math.exp(-it / 60)
        dino = ln_k * (0.5 + 0.5 * fall)
        ibot = 0.9 * ln_k * (0.6 + 0.4 * fall)
        koleo = -0.02 - 0.01 * (1 - fall)
        batch, data_time, iter_time = BATCH, 0.02, 0.5
        if kind == "uniform":
            dino = ln_k + float(rng.uniform(-0.004, 0.004))
            ibot = ln_k + float(rng.uniform(-0.004, 0.004))
        elif kind == "onehot":
            dino = max(0.05, ln_k * math.exp(-it / 25))
        elif kind == "flat":
            dino, ibot, koleo = ln_k, ln_k, 0.0
        elif kind == "koleo":
            batch = 1
            koleo = float("inf") if it >= 150 else 0.1 * (-math.log(1e-8)) * min(1, it / 140)
        elif kind == "loader":
            data_time, iter_time = 0.8, 1.0
        lr = float(sched["lr"][i]) * (2 if kind == "lr_off" else 1)
        rows.append(
            {
                "iteration": int(it),
                "iter_time": iter_time + float(rng.uniform(0, 0.01)),
                "data_time": data_time,
                "lr": lr,
                "wd": float(sched["wd"][i]),
                "mom": float(sched["mom"][i]),
                "last_layer_lr": float(sched["last_layer_lr"][i]),
                "current_batch_size": float(batch),
                "total_loss": dino + ibot + koleo,
                "dino_local_crops_loss": dino * 0.8,
                "dino_global_crops_loss": dino * 0.2,
                "koleo_loss": koleo,
                "ibot_loss": ibot,
            }
        )
    return rows


def write_metrics(path: Path, rows: list[dict]) -> Path:
    """One JSON object per line, as DINOv2's MetricLogger writes them (NaN / Infinity allowed)."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def dinov2_layout(model: VisionTransformer, chunks: int = 0) -> dict[str, torch.Tensor]:
    """The model's backbone state dict with DINOv2's keys: ``blocks.N`` as is, or with
    ``chunks`` > 0 nested as ``blocks.C.N`` (chunk C holds blocks C*size ... under their global
    index N, as DINOv2's BlockChunk with its identity placeholders)."""
    state = model.state_dict()
    if not chunks:
        return dict(state)
    size = math.ceil(len(model.blocks) / chunks)
    out = {}
    for key, value in state.items():
        if key.startswith("blocks."):
            _, index, rest = key.split(".", 2)
            out[f"blocks.{int(index) // size}.{index}.{rest}"] = value
        else:
            out[key] = value
    return out


def head_layout(head: DINOHead) -> dict[str, torch.Tensor]:
    """A DINO head's state dict with torch.nn.utils.weight_norm's names (DINOv2's head)."""
    names = {
        "last_layer.parametrizations.weight.original0": "last_layer.weight_g",
        "last_layer.parametrizations.weight.original1": "last_layer.weight_v",
    }
    return {names.get(k, k): v for k, v in head.state_dict().items()}


def vit_small(
    patch: int = 14,
    grid: int = 37,
    depth: int = 12,
    registers: int = 4,
    ffn: str = "mlp",
    seed: int = 0,
) -> VisionTransformer:
    """ViT-S (384 wide, 6 heads) with LayerScale: the public dinov2_vits14(_reg4) layout with
    the defaults (37 x 37 positions = 518 px), a training teacher with ``grid`` = 224 / patch.
    Random weights, LayerScale spread so that every block changes the features."""
    torch.manual_seed(seed)
    model = VisionTransformer(
        img_size=grid * patch,
        patch_size=patch,
        embed_dim=384,
        depth=depth,
        num_heads=6,
        layerscale_init=1e-5,
        num_register_tokens=registers,
        ffn_layer=ffn,
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("gamma"):
                param.uniform_(0.05, 0.2)  # a 1e-5 LayerScale would hide wrong block weights
    return model.eval()


def write_teacher(path: Path, model: VisionTransformer, chunks: int = 0, k: int = K) -> Path:
    """``{"teacher": {backbone.*, dino_head.*}}`` as DINOv2's do_test saves it."""
    torch.manual_seed(1)
    head = DINOHead(model.embed_dim, out_dim=k, hidden_dim=64, bottleneck_dim=32)
    state = {f"backbone.{k}": v for k, v in dinov2_layout(model, chunks).items()}
    state.update({f"dino_head.{k}": v for k, v in head_layout(head).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"teacher": state}, path)
    return path


def write_run(
    root: Path,
    kind: str = "healthy",
    *,
    iterations: tuple[int, ...] = (99, 199),
    depth: int = 2,
    patch: int = 14,
    config: dict[str, Any] | None = None,
) -> Path:
    """A DINOv2 output directory: config.yaml, training_metrics.json of ``kind`` and one
    teacher checkpoint per iteration (a ``depth``-block ViT-S with 4 registers, positions for
    224 px, blocks in 2 chunks). ``patch`` 16 pairs with DINOv2's default 96 px locals, 14 with
    the 98 px locals of its patch-14 configs."""
    config = config or run_config(
        student={"patch_size": patch}, crops={"local_crops_size": 98 if patch == 14 else 96}
    )
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    write_metrics(root / "training_metrics.json", metric_rows(kind, config))
    size = config["crops"]["global_crops_size"]
    for n, it in enumerate(iterations):
        model = vit_small(patch, size // patch, depth, seed=n)
        write_teacher(root / "eval" / f"training_{it}" / "teacher_checkpoint.pth", model, 2)
    return root


# ----------------------------------------------------------------------------- console log
PREFIX = "I20241105 10:{minute:02d}:{second:02d} 4242 dinov2 {where}] "
METERS = (
    "lr",
    "wd",
    "mom",
    "last_layer_lr",
    "current_batch_size",
    "total_loss",
    "dino_local_crops_loss",
    "dino_global_crops_loss",
    "koleo_loss",
    "ibot_loss",
)


def _prefix(n: int, where: str = "helpers.py:103") -> str:
    return PREFIX.format(minute=(n // 60) % 60, second=n % 60, where=where)


def console_line(row: dict, planned: int, n: int = 0, averages: dict | None = None) -> str:
    """One ``Training  [ i/n]  eta: ...  lr: median (global average) ...`` line as DINOv2's
    MetricLogger prints it (meters ``{median:.4f} ({global_avg:.4f})``, time / data
    ``{avg:.6f}``), averages defaulting to the medians."""
    averages = averages or {}
    width = len(str(planned))
    parts = [f"Training  [{row['iteration']:{width}d}/{planned}]", "eta: 1 day, 2:03:04"]
    for name in METERS:
        if name in row:
            avg = averages.get(name, row[name])
            parts.append(f"{name}: {row[name]:.4f} ({avg:.4f})")
    parts += [f"time: {row.get('iter_time', 0.5):.6f}", f"data: {row.get('data_time', 0.02):.6f}"]
    parts.append("max mem: 12345")
    return _prefix(n) + "  ".join(parts)


def config_echo(config: dict, n: int = 0) -> list[str]:
    """The config as write_config logs it: a multi-line record, YAML, prefix on line 1 only."""
    text = yaml.safe_dump(config, sort_keys=True).rstrip("\n").split("\n")
    return [_prefix(n, "config.py:59") + text[0], *text[1:]]


def write_console(
    path: Path,
    launches: list[dict],
    config: dict | None = None,
) -> Path:
    """A DINOv2 ``log.txt``: per launch (``{"rows": [...], "planned": n, "end": "nan" |
    "total_time" | None, "averages": {row index: {meter: value}}}``) the config echo (when
    given), "Starting training from iteration", its training lines, and how it ended."""
    lines: list[str] = []
    for launch in launches:
        rows = launch["rows"]
        if config is not None:
            lines += config_echo(config)
        first = rows[0]["iteration"] if rows else 0
        lines.append(_prefix(1, "train.py:229") + f"Starting training from iteration {first}")
        for i, row in enumerate(rows):
            lines.append(console_line(row, launch["planned"], i, launch.get("averages", {}).get(i)))
        if launch.get("end") == "nan":
            lines.append(_prefix(2, "train.py:262") + "NaN detected")
            lines += ["Traceback (most recent call last):", "AssertionError"]
        elif launch.get("end") == "total_time":
            lines.append(_prefix(3) + "Training Total time: 0:12:34 (0.512345 s / it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
