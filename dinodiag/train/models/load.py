"""``load_backbone(path)``: a trained backbone from any checkpoint a DINOv2 user holds.

Accepted (all read with ``torch.load(..., weights_only=True)``: tensors and plain data only):

- a DINOv2 output directory: its latest ``eval/training_<iter>/teacher_checkpoint.pth``;
- a DINOv2 teacher checkpoint: ``{"teacher": state_dict}`` with ``backbone.*`` keys (the
  ``dino_head.*`` / ``ibot_head.*`` keys are not needed for features);
- a DINOv2 training state ``model_<iter>.rank_<r>.pth`` when it holds full tensors
  (``{"model": {"teacher.backbone.*": ...}}``); FSDP's sharded files are refused with what to
  load instead;
- a public backbone file (``dinov2_vits14.pth``, ``dinov2_vitl14_reg4_pretrain.pth`` ...): a
  plain backbone state dict;
- a dinodiag run directory or its ``checkpoint.pt`` (the EMA teacher, rebuilt from the run's
  own config: ViT or ResNet-18).

The result is a module whose ``forward(x)`` maps images (B, 3, H, W), normalised with
``backbone.mean`` / ``backbone.std``, to the final-norm CLS features (B, D), as DINOv2's own
backbone ``forward`` does; ``backbone.model`` is dinodiag's network (``forward`` -> ``{"cls",
"patch"}``, attention maps).

    backbone = load_backbone("dinov2_vits14.pth")      # ViT-S/14, 37 x 37 positions
    features = backbone(images)                          # (B, 384)
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dinodiag.augment.config import config_from_dict, parse_config_text
from dinodiag.augment.dinov2_config import ResolvedDinov2Config, resolve_dinov2_config
from dinodiag.errors import DinodiagError, TrainingError
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.crops import resolve_pipeline
from dinodiag.rundir import CHECKPOINT_FILE, STATUS_FILE, read_config, read_json
from dinodiag.train.models.dinov2_keys import to_dinodiag_keys, under, vit_from_state
from dinodiag.train.models.network import build_backbone
from dinodiag.train.models.vit import VIT_WIDTHS, VisionTransformer

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # DINOv2 normalises every image so
IMAGENET_STD = (0.229, 0.224, 0.225)
DINOV2_CONFIG_FILE = "config.yaml"  # the resolved config DINOv2 writes to its output dir
TEACHER_FILE = "teacher_checkpoint.pth"  # under eval/training_<iter>/
EVAL_DIR = "eval"
_EVAL_NAME = re.compile(r"^training_(\d+)$")
_STATE_NAME = re.compile(r"^model_(\d+)\.rank_(\d+)\.pth$")
# The public *_reg backbones were released to interpolate their positions this way (hub code).
REGISTER_BACKBONE_INTERPOLATION = (0.0, True)


@dataclass(frozen=True)
class CheckpointFile:
    """One checkpoint of a run directory."""

    path: Path
    kind: str  # "teacher" (DINOv2 eval/), "training-state" (DINOv2 model_*.pth), "dinodiag"
    iteration: int | None  # from the file's name or contents; None when not known

    @property
    def label(self) -> str:
        """``teacher checkpoint at iteration 1249``, or the file's folder when unknown."""
        if self.iteration is not None:
            return f"{self.kind} checkpoint at iteration {self.iteration}"
        return f"{self.kind} checkpoint ({self.path.parent.name}/{self.path.name})"


def find_checkpoints(run_dir: str | Path) -> list[CheckpointFile]:
    """Every checkpoint of a DINOv2 or dinodiag run directory: DINOv2 teacher checkpoints by
    iteration (names other than ``training_<iter>`` last), then DINOv2 training states (rank
    0), then dinodiag's ``checkpoint.pt``."""
    run_dir = Path(run_dir)
    teachers = []
    for path in sorted((run_dir / EVAL_DIR).glob(f"*/{TEACHER_FILE}")):
        match = _EVAL_NAME.match(path.parent.name)
        teachers.append(CheckpointFile(path, "teacher", int(match[1]) if match else None))
    teachers.sort(key=lambda c: (c.iteration is None, c.iteration or 0, c.path.parent.name))
    states = []
    for path in run_dir.glob("model_*.rank_*.pth"):
        match = _STATE_NAME.match(path.name)
        if match and int(match[2]) == 0:
            states.append(CheckpointFile(path, "training-state", int(match[1])))
    states.sort(key=lambda c: c.iteration or 0)
    own = run_dir / CHECKPOINT_FILE
    if not own.is_file():
        return teachers + states
    status = read_json(run_dir / STATUS_FILE) or {}
    saved = status.get("checkpoint_step")  # the step the checkpoint holds
    step = saved if isinstance(saved, int) and not isinstance(saved, bool) else None
    return [*teachers, *states, CheckpointFile(own, "dinodiag", step)]


class LoadedBackbone(nn.Module):
    """A trained backbone ready for inference: ``forward(x)`` (B, 3, H, W) -> CLS (B, D).

    Attributes: ``model`` (dinodiag's ViT or ResNet, eval mode, no gradients), ``source``
    (the file read), ``kind`` and ``iteration`` (see :class:`CheckpointFile`), ``image_size``
    (the global crop side it trained at: the evaluation size), ``mean`` / ``std`` (input
    normalisation), ``description`` (the architecture in words) and ``notes`` (what was assumed).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        source: Path,
        kind: str,
        iteration: int | None,
        image_size: int,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        description: str = "",
        notes: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.source, self.kind, self.iteration = source, kind, iteration
        self.image_size, self.mean, self.std = image_size, tuple(mean), tuple(std)
        self.description = description
        self.notes = list(notes or [])
        self.eval()

    @property
    def embed_dim(self) -> int:
        return int(self.model.embed_dim)  # type: ignore[arg-type]

    @property
    def vit(self) -> VisionTransformer:
        """The ViT (attention maps, patch features); :class:`TrainingError` for a ResNet."""
        if not isinstance(self.model, VisionTransformer):
            raise TrainingError(
                f"{self.source} holds a {type(self.model).__name__}: attention maps and patch "
                "features need a ViT."
            )
        return self.model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) normalised images -> (B, D) CLS features after the final norm."""
        return self.model(x)["cls"]


@dataclass
class _Found:
    """A state dict read from a file: the backbone part and what the file said about it."""

    state: dict[str, torch.Tensor]
    kind: str
    iteration: int | None


def read_state_file(path: Path, mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with errors that name the file;
    ``mmap`` maps the file instead of reading it (to look at one tensor's shape).

    A file that needs unpickling (Python objects beyond tensors and plain data: possibly code
    that runs on load) is refused as such: nothing in it runs, and the message does not pass on
    torch's advice to load it with ``weights_only=False``."""
    if not path.is_file():
        raise TrainingError(f"checkpoint {path} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:  # the weights-only unpickler refused the file
        detail = _unpickler_detail(str(exc))
        if _FOREIGN_OBJECT.search(detail):
            raise TrainingError(_not_plain_tensors(path, detail)) from None
        raise TrainingError(
            f"cannot read {path} (damaged or not a PyTorch checkpoint: {detail[:200]})."
        ) from None
    except Exception as exc:  # torch raises many types for damaged or foreign files
        text = str(exc)
        why = f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"
        raise TrainingError(f"cannot read {path} ({why}). Is it a PyTorch checkpoint?") from None


# torch's weights-only unpickler names a refused object with one of these; other refusals
# ("Unsupported operand 219", "String is too long") mean damaged bytes, not foreign objects.
_FOREIGN_OBJECT = re.compile(r"GLOBAL |allowlisted|unrecognized function|must be imported")
_FOREIGN_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_TORCH_WRAPPER = "Weights only load failed."  # torch's first words around the reason


def _unpickler_detail(torch_text: str) -> str:
    """The reason in torch's weights-only error, without the paragraphs around it (which
    advise loading the file with ``weights_only=False``)."""
    for line in torch_text.splitlines():
        line = line.strip().removeprefix(_TORCH_WRAPPER).strip()
        line = line.rpartition("WeightsUnpickler error:")[2].strip()
        advice = "weights_only" in line or line.startswith(("This file", "Check the doc"))
        if line and not advice:
            return line
    return "refused by torch's weights-only unpickler"


def _not_plain_tensors(path: Path, detail: str) -> str:
    """Why a checkpoint that needs unpickling is refused, and what to give instead."""
    found = _FOREIGN_GLOBAL.search(detail)
    what = f" ({found[1]})" if found else ""
    message = (
        f"{path} is not a plain tensor checkpoint: it holds Python objects{what} that only "
        "unpickling can rebuild, and unpickling can run any code, so dinodiag will not unpickle "
        "it (nothing in it was run)."
    )
    # FSDP's sharded training state: the teacher checkpoints hold the same weights
    sharded = _STATE_NAME.match(path.name) or "torch.distributed" in detail
    if sharded and path.name != TEACHER_FILE:
        return (
            f"{message} DINOv2's model_<iter>.rank_<r>.pth holds FSDP's sharded state: load the "
            f"teacher checkpoints under {EVAL_DIR}/training_<iter>/{TEACHER_FILE} instead."
        )
    return (
        f"{message} Give a checkpoint of tensors and plain data only, such as a state dict "
        "saved with torch.save(model.state_dict(), path)."
    )


def _iteration_from_name(path: Path) -> int | None:
    match = _EVAL_NAME.match(path.parent.name) or _STATE_NAME.match(path.name)
    return int(match[1]) if match else None


def _tensors_only(data: dict[str, Any]) -> bool:
    return bool(data) and all(isinstance(v, torch.Tensor) for v in data.values())


def _backbone_state(data: Any, path: Path, network: str) -> _Found:
    """The backbone of a DINOv2 teacher checkpoint, training state or plain backbone file."""
    iteration = _iteration_from_name(path)
    if isinstance(data, dict) and isinstance(data.get("teacher"), dict):
        state = under(to_dinodiag_keys(data["teacher"]), "backbone.")
        kind = "teacher"
    elif isinstance(data, dict) and isinstance(data.get("model"), dict):
        keys = to_dinodiag_keys(data["model"])
        state = under(keys, f"{network}.backbone.")
        kind = "training-state"
        if isinstance(data.get("iteration"), int):
            iteration = data["iteration"]
    elif isinstance(data, dict) and _tensors_only(data):
        keys = to_dinodiag_keys(data)
        backbone = under(keys, "backbone.")
        state, kind = (backbone or keys), "backbone"
    else:
        top = ", ".join(map(str, list(data)[:8])) if isinstance(data, dict) else type(data).__name__
        raise TrainingError(
            f"{path} is not a checkpoint dinodiag knows (top level: {top}). Give a DINOv2 "
            f"teacher checkpoint ({{'teacher': state_dict}}), a backbone state dict such as "
            "dinov2_vits14.pth, or a dinodiag run's checkpoint.pt."
        )
    if not state:
        raise TrainingError(
            f"{path} holds no backbone weights (no 'backbone.*' keys under '{network}'): "
            "give a teacher checkpoint or a backbone file."
        )
    return _Found(state, kind, iteration)


def find_dinov2_config(path: Path) -> Path | None:
    """``config.yaml`` of the DINOv2 run a checkpoint belongs to: next to it, or up to two
    folders up (``<out>/eval/training_<iter>/teacher_checkpoint.pth``)."""
    start = path if path.is_dir() else path.parent
    for folder in [start, *start.parents][:3]:
        candidate = folder / DINOV2_CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def read_dinov2_config(path: Path) -> ResolvedDinov2Config:
    """A DINOv2 ``config.yaml`` merged over DINOv2's defaults (errors name the file)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return resolve_dinov2_config(parse_config_text(text, source=str(path)), source=str(path))


def _heads_from_config(resolved: ResolvedDinov2Config | None, width: int) -> int | None:
    if resolved is None:
        return None
    arch = str(resolved.get("student.arch")).removesuffix("_memeff").removeprefix("vit_")
    dim_heads = VIT_WIDTHS.get(arch)
    return dim_heads[1] if dim_heads and dim_heads[0] == width else None


def _dinov2_backbone(
    found: _Found,
    path: Path,
    num_heads: int | None,
    interpolate_offset: float | None,
    interpolate_antialias: bool | None,
) -> LoadedBackbone:
    notes: list[str] = []
    config_path = find_dinov2_config(path)
    resolved = read_dinov2_config(config_path) if config_path else None
    width = found.state["cls_token"].shape[-1] if "cls_token" in found.state else 0
    heads, heads_from = num_heads, "given"
    if heads is None and (heads := _heads_from_config(resolved, width)) is not None:
        heads_from = f"student.arch of {config_path}"
    if resolved is not None:
        offset = float(resolved.get("student.interpolate_offset"))
        antialias = bool(resolved.get("student.interpolate_antialias"))
        size = int(resolved.get("crops.global_crops_size"))
        notes.append(f"position interpolation and evaluation size from {config_path}")
    else:
        registers = "register_tokens" in found.state
        offset, antialias = REGISTER_BACKBONE_INTERPOLATION if registers else (0.1, False)
        size = 224
        notes.append(
            f"no {DINOV2_CONFIG_FILE} next to the file: positions interpolated with offset "
            f"{offset:g}, antialias {antialias}, as DINOv2's published "
            f"{'register ' if registers else ''}backbones do; evaluated at 224 px"
        )
    if interpolate_offset is not None:
        offset = interpolate_offset
    if interpolate_antialias is not None:
        antialias = interpolate_antialias
    model, shape, more = vit_from_state(
        found.state,
        num_heads=heads,
        heads_from=heads_from,
        interpolate_offset=offset,
        interpolate_antialias=antialias,
    )
    return LoadedBackbone(
        model,
        source=path,
        kind=found.kind,
        iteration=found.iteration,
        image_size=size,
        description=shape.describe(),
        notes=notes + more,
    )


def _is_dinodiag_checkpoint(data: Any) -> bool:
    return isinstance(data, dict) and all(k in data for k in ("version", "step", "teacher"))


def _dinodiag_backbone(data: dict[str, Any], path: Path) -> LoadedBackbone:
    """The teacher backbone of a dinodiag ``checkpoint.pt``, built from the run's config."""
    saved = data.get("config") or read_config(path.parent) or {}
    config = TrainConfig.from_dict(
        {k: v for k, v in saved.items() if k in ("name", "model", "optim", "data", "run")}
    )
    pipeline_data = (read_config(path.parent) or {}).get("pipeline")
    pipeline = config_from_dict(pipeline_data) if pipeline_data else resolve_pipeline(config)
    model = build_backbone(config.model, pipeline.global_crops_size)
    state = under(data["teacher"], "backbone.")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise TrainingError(
            f"the teacher weights of {path} do not fit the model of its config "
            f"({str(exc).splitlines()[0][:200]})."
        ) from None
    arch = config.model.arch
    return LoadedBackbone(
        model,
        source=path,
        kind="dinodiag",
        iteration=int(data["step"]),
        image_size=pipeline.global_crops_size,
        mean=pipeline.mean,
        std=pipeline.std,
        description=f"dinodiag {arch} teacher ({config.name}), trained at "
        f"{pipeline.global_crops_size} px",
    )


def resolve_checkpoint(path: str | Path) -> Path:
    """The file a path names: itself, or the latest checkpoint of a run directory (a DINOv2
    teacher checkpoint first, else dinodiag's ``checkpoint.pt``, else a DINOv2 training state)."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise TrainingError(f"{path} does not exist: give a checkpoint file or a run directory.")
    found = find_checkpoints(path)
    for kind in ("teacher", "dinodiag", "training-state"):
        chosen = [c for c in found if c.kind == kind]
        if chosen:
            return chosen[-1].path
    raise TrainingError(
        f"{path} holds no checkpoint: a DINOv2 run writes {EVAL_DIR}/training_<iter>/"
        f"{TEACHER_FILE} every evaluation.eval_period_iterations, a dinodiag run writes "
        f"{CHECKPOINT_FILE}."
    )


def load_backbone(
    path: str | Path,
    *,
    num_heads: int | None = None,
    interpolate_offset: float | None = None,
    interpolate_antialias: bool | None = None,
    network: str = "teacher",
) -> LoadedBackbone:
    """The backbone stored at ``path`` (a file or a run directory, see the module docstring),
    on the CPU, in eval mode.

    Args:
        path: checkpoint file, DINOv2 output directory or dinodiag run directory.
        num_heads: attention heads of a DINOv2 ViT (default: the arch in the run's
            ``config.yaml``, else 64-wide heads as every DINOv2 ViT has).
        interpolate_offset, interpolate_antialias: DINOv2's positional-embedding resampling
            (default: the run's ``config.yaml``, else what the published backbones use).
        network: ``teacher`` or ``student`` (DINOv2 training states hold both).

    Raises :class:`TrainingError` naming the file and the keys for what cannot be mapped.
    """
    if network not in ("teacher", "student"):
        raise TrainingError(f"network must be 'teacher' or 'student', got {network!r}.")
    file = resolve_checkpoint(path)
    data = read_state_file(file)
    if _is_dinodiag_checkpoint(data):
        return _dinodiag_backbone(data, file)
    found = _backbone_state(data, file, network)
    try:
        return _dinov2_backbone(found, file, num_heads, interpolate_offset, interpolate_antialias)
    except DinodiagError as exc:
        message = str(exc)
        raise type(exc)(message if str(file) in message else f"{file}: {message}") from None
