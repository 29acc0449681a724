"""Training configuration: four frozen dataclasses (model, optimisation, data, run) in one.

Every field carries a comment saying what it does and what to try. The augmentation itself is
not repeated here: ``data.pipeline`` names a pipeline preset or config file (see
:mod:`dinodiag.augment.presets`) and a few crop overrides adjust it; :func:`resolve_pipeline`
returns the :class:`~dinodiag.augment.config.PipelineConfig` a run really uses (it is written to
``config.json`` next to this config).

    cfg = get_train_preset("cpu-demo").config          # dinodiag.recipe.presets
    cfg = cfg.with_overrides({"optim.base_lr": 1e-3, "data.batch_size": 32})
    cfg.to_dict()                                       # plain data for config.json
    TrainConfig.from_dict(data)                         # and back (unknown keys refused)
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from dinodiag.errors import ConfigError
from dinodiag.typed_config import (
    Bounds,
    build_config,
    did_you_mean,
    field_bounds,
    field_types,
)

ARCHS = ("vit_tiny", "vit_small", "vit_base", "vit_large", "vit_giant2", "resnet18")
FFN_LAYERS = ("mlp", "swiglu")  # DINOv2's "swiglufused" is read as "swiglu" (the same layer)
HEAD_STYLES = ("dinov2", "dino_v1")
DINO_NORMALISATIONS = ("dinov2", "pair_mean")
IBOT_NORMALISATIONS = ("global_crops", "masked_crops")
DEVICES_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"
DINOV2_BLURS = ("released", "published")  # DataConfig.dinov2_blur
VIEWS = ("global1", "global2", "local")  # the per-view augmentations of a PipelineConfig
AUGMENT_DEVICES_HELP = (
    "auto (the training device when it is a GPU, else cpu), cpu (DataLoader workers cut and "
    "colour), device (the training device, GPU or CPU), cuda or cuda:N"
)
PRECISIONS = ("auto", "bf16", "fp32")
CROP_KNOBS = {  # data field -> flag: crop overrides of a recipe, which your own code does not take
    "local_crops": "--local-crops",
    "global_crops_size": "--global-crops-size",
    "local_crops_size": "--local-crops-size",
}
# Upper bound of model.num_prototypes: 8x the largest head of DINOv2 (131072, ViT-g). The
# prototype layer grows as head_bottleneck_dim x K, and every image's logits hold K values.
MAX_PROTOTYPES = 1 << 20


def _require(section: str, name: str, ok: bool, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{section}.{name} = {value!r} is invalid: allowed {allowed}.")


def check_bounds(config: Any, section: str) -> None:
    """Raise :class:`ConfigError` for the first field of the section ``config`` outside its
    :class:`Bounds` (its type hint): ``optim.base_lr = 0 is invalid: allowed a number > 0.``"""
    types_ = field_types(type(config))
    for name, bounds in field_bounds(type(config)).items():
        value = getattr(config, name)
        if not bounds.allows(value):
            integer = int in (types_[name], *typing.get_args(types_[name]))
            raise ConfigError(
                f"{section}.{name} = {value!r} is invalid: allowed {bounds.describe(integer)}."
            )


# Bounds shorthands: the range of a knob is part of its type hint (typed_config.Bounds).
POSITIVE = Bounds(low=0, low_open=True)
NON_NEGATIVE = Bounds(low=0)
AT_LEAST_1 = Bounds(low=1)
AT_LEAST_1_OR_NONE = Bounds(low=1, none=True)
NON_NEGATIVE_OR_NONE = Bounds(low=0, none=True)
UNIT = Bounds(low=0, high=1)  # [0, 1]
UNIT_OPEN_TOP = Bounds(low=0, high=1, high_open=True)  # [0, 1)
FACTOR = Bounds(low=0, high=1, low_open=True)  # (0, 1]


@dataclass(frozen=True)
class ModelConfig:
    """Backbone and projection heads."""

    # vit_tiny | vit_small | vit_base | vit_large | vit_giant2 | resnet18 (no iBOT); tiny on a CPU
    arch: Annotated[str, Bounds(choices=ARCHS)] = "vit_small"
    # ViT patch side: 16 at 224 px, 4 at 32 px (the crop sides must be multiples of it)
    patch_size: Annotated[int, AT_LEAST_1] = 16
    # ViT width (96 on a CPU); none = the arch's
    embed_dim: Annotated[int | None, AT_LEAST_1_OR_NONE] = None
    # ViT heads (must divide the width); none = the arch's
    num_heads: Annotated[int | None, AT_LEAST_1_OR_NONE] = None
    # ViT blocks (none = the arch's: 12, large 24, giant2 40); 2-4 is enough for a CPU demo
    depth: Annotated[int | None, AT_LEAST_1_OR_NONE] = None
    # stochastic depth: DINOv2 0.3 (0.4 ViT-L), 0.1 for ViT-S, 0 for tiny models
    drop_path_rate: Annotated[float, UNIT_OPEN_TOP] = 0.1
    # true: the same stochastic depth in every block (DINOv2); false: a 0 -> rate ramp
    drop_path_uniform: bool = True
    # LayerScale init (DINOv2: 1e-5); none turns it off
    layerscale_init: Annotated[float | None, Bounds(low=0, low_open=True, none=True)] = None
    # register tokens after CLS (0; DINOv2 with registers: 4)
    num_register_tokens: Annotated[int, NON_NEGATIVE] = 0
    # mlp (GELU) or swiglu (DINOv2 ViT-L/g: hidden 2/3 of 4 x dim; swiglufused is the same)
    ffn_layer: Annotated[str, Bounds(choices=FFN_LAYERS)] = "mlp"
    # DINOv2's pos-embed interpolation offset (DINOv2: 0.1; 0 = by size)
    interpolate_offset: Annotated[float, UNIT_OPEN_TOP] = 0.1
    interpolate_antialias: bool = False  # antialiased pos-embed interpolation (DINOv2: off)
    # K: 65536 in DINOv2; 1024-8192 converge faster on small data (check 'prototypes used')
    num_prototypes: Annotated[int, Bounds(low=2)] = 65536
    # DINO head MLP width; 256-512 is enough for tiny models
    head_hidden_dim: Annotated[int, AT_LEAST_1] = 2048
    head_bottleneck_dim: Annotated[int, AT_LEAST_1] = 256  # width before the prototypes
    head_layers: Annotated[int, AT_LEAST_1] = 3  # MLP layers of the head
    # dinov2: prototype norms g trainable (with weight decay), PyTorch's default init of the
    # directions; dino_v1: g fixed to 1 (DINO's norm_last_layer), more stable in long runs
    head_style: Annotated[str, Bounds(choices=HEAD_STYLES)] = "dinov2"
    # true: iBOT gets its own head (DINOv2 ViT-L/g configs); false: it shares the DINO head
    ibot_separate_head: bool = False
    # K of the separate iBOT head; none = num_prototypes
    ibot_num_prototypes: Annotated[int | None, AT_LEAST_1_OR_NONE] = None
    # MLP width of the separate iBOT head; none = the DINO head's
    ibot_head_hidden_dim: Annotated[int | None, AT_LEAST_1_OR_NONE] = None
    # bottleneck of the separate iBOT head; none = the DINO head's
    ibot_head_bottleneck_dim: Annotated[int | None, AT_LEAST_1_OR_NONE] = None
    # MLP layers of the separate iBOT head; none = the DINO head's
    ibot_head_layers: Annotated[int | None, AT_LEAST_1_OR_NONE] = None

    def __post_init__(self) -> None:
        if self.ffn_layer == "swiglufused":  # DINOv2's name for the same layer
            object.__setattr__(self, "ffn_layer", "swiglu")
        check_bounds(self, "model")
        if self.embed_dim is not None and self.embed_dim % (self.num_heads or 1):
            raise ConfigError(
                f"model.embed_dim = {self.embed_dim} is not divisible by model.num_heads = "
                f"{self.num_heads}: pick a width that is a multiple of the head count."
            )
        if self.num_prototypes > MAX_PROTOTYPES:
            weights = self.head_bottleneck_dim * self.num_prototypes
            gib = weights * 4 * 5 / 2**30  # fp32 weights, gradient, 2 AdamW moments, teacher
            raise ConfigError(
                f"model.num_prototypes = {self.num_prototypes} is too large: allowed 2 to "
                f"{MAX_PROTOTYPES} (DINOv2 uses 65536, 131072 for ViT-g). The prototype layer "
                f"alone would hold {self.head_bottleneck_dim} x {self.num_prototypes} weights, "
                f"~{gib:,.0f} GiB with its gradient, AdamW's state and the teacher's copy. Try "
                "1024-8192 on small data."
            )
        if not self.ibot_separate_head:
            for name, dino_name in (
                ("ibot_num_prototypes", "num_prototypes"),
                ("ibot_head_hidden_dim", "head_hidden_dim"),
                ("ibot_head_bottleneck_dim", "head_bottleneck_dim"),
                ("ibot_head_layers", "head_layers"),
            ):
                value = getattr(self, name)
                if value is not None and value != getattr(self, dino_name):
                    raise ConfigError(
                        f"model.{name} = {value} differs from model.{dino_name} = "
                        f"{getattr(self, dino_name)} but the iBOT head is the DINO head "
                        "(model.ibot_separate_head = false): set ibot_separate_head to true, "
                        f"or drop {name}."
                    )

    def ibot_head_config(self) -> ModelConfig:
        """The head fields of the iBOT head: the ``ibot_*`` overrides over the DINO head's."""
        return dataclasses.replace(
            self,
            num_prototypes=self.ibot_num_prototypes or self.num_prototypes,
            head_hidden_dim=self.ibot_head_hidden_dim or self.head_hidden_dim,
            head_bottleneck_dim=self.ibot_head_bottleneck_dim or self.head_bottleneck_dim,
            head_layers=self.ibot_head_layers or self.head_layers,
        )


@dataclass(frozen=True)
class OptimConfig:
    """Losses, optimiser and per-iteration schedules (DINOv2 recipe by default)."""

    # base lr at batch 1024, scaled by sqrt(batch / 1024): lower it on NaN, raise it if the loss
    # is flat
    base_lr: Annotated[float, POSITIVE] = 0.004
    # sqrt: base_lr x sqrt(global batch / 1024); none: base_lr is the peak lr as given
    lr_scaling: Annotated[str, Bounds(choices=("sqrt", "none"))] = "sqrt"
    min_lr: Annotated[float, NON_NEGATIVE] = 1e-6  # end of the cosine decay
    # linear lr warm-up; ~5-10% of a short run
    warmup_epochs: Annotated[float, NON_NEGATIVE] = 10.0
    # weight decay, cosine from this (none on biases / norms / LayerScale)
    weight_decay_start: Annotated[float, NON_NEGATIVE] = 0.04
    weight_decay_end: Annotated[float, NON_NEGATIVE] = 0.4  # ... to this
    # teacher EMA momentum at the start (cosine to momentum_end): 0.99 or lower for runs under
    # 1k steps
    momentum_start: Annotated[float, UNIT] = 0.992
    momentum_end: Annotated[float, UNIT] = 1.0  # teacher momentum at the end
    # teacher temperature at the start of its warm-up (DINOv2: 0.04)
    teacher_temp_start: Annotated[float, POSITIVE] = 0.04
    # teacher temperature after the warm-up (0.07); lower it if the loss stays at ln K
    teacher_temp_end: Annotated[float, POSITIVE] = 0.07
    # linear warm-up of the teacher temperature (30 epochs in DINOv2)
    teacher_temp_warmup_epochs: Annotated[float, NON_NEGATIVE] = 30.0
    student_temp: Annotated[float, POSITIVE] = 0.1  # student softmax temperature (rarely changed)
    # prototypes at lr 0 this long (1); shorten it for runs of a few epochs
    freeze_last_layer_epochs: Annotated[float, NON_NEGATIVE] = 1.0
    # lr x rate^(depth + 1 - layer) (0.9): early blocks learn slower; 1 turns it off
    layerwise_decay: Annotated[float, FACTOR] = 0.9
    # extra lr factor of the patch embedding (DINOv2: 0.2; 1 turns it off)
    patch_embed_lr_mult: Annotated[float, FACTOR] = 0.2
    # gradient-norm clip per network (backbone, heads) (3.0); 0 = off, not advised
    clip_grad: Annotated[float, NON_NEGATIVE] = 3.0
    beta1: Annotated[float, UNIT] = 0.9  # AdamW beta1
    beta2: Annotated[float, UNIT] = 0.999  # AdamW beta2
    # EMA of the teacher centre; higher = slower centering
    center_momentum: Annotated[float, UNIT_OPEN_TOP] = 0.9
    # center (EMA, DINOv2's default) or sinkhorn (try it when small batches collapse)
    centering: Annotated[str, Bounds(choices=("center", "sinkhorn"))] = "center"
    dino_weight: Annotated[float, NON_NEGATIVE] = 1.0  # weight of the DINO CLS loss
    # dinov2: sum over crop pairs / ((G-1) G + max(G L, 1)), so with no local crops the loss is
    # 2/3 of the pair mean; pair_mean: the mean over the pairs (DINO v1, lightly)
    dino_normalisation: Annotated[str, Bounds(choices=DINO_NORMALISATIONS)] = "dinov2"
    # weight of the iBOT masked-patch loss (1.0); 0 = off (ResNet has none)
    ibot_weight: Annotated[float, NON_NEGATIVE] = 1.0
    # global_crops: per-crop mean over masked patches, summed, / all global crops (DINOv2);
    # masked_crops: / the masked crops only (2x at mask probability 0.5)
    ibot_normalisation: Annotated[str, Bounds(choices=IBOT_NORMALISATIONS)] = "global_crops"
    # KoLeo weight (0.1); 0 turns it off; needs a batch of >= 2 per process
    koleo_weight: Annotated[float, NON_NEGATIVE] = 0.1
    # KoLeo neighbours among all processes (DINOv2: each process's batch)
    koleo_across_processes: bool = False
    # fraction of global crops that get an iBOT mask (0.5, floored)
    mask_probability: Annotated[float, UNIT] = 0.5
    # iBOT masked fraction range, spread evenly over the batch (0.1,0.5)
    mask_ratio: tuple[float, float] = (0.1, 0.5)

    def __post_init__(self) -> None:
        check_bounds(self, "optim")
        lo, hi = self.mask_ratio
        if not 0 <= lo <= hi <= 1:
            raise ConfigError(
                f"optim.mask_ratio = {self.mask_ratio!r} is invalid: allowed 0 <= min <= max <= 1."
            )


@dataclass(frozen=True)
class DataConfig:
    """Dataset, augmentation pipeline, loader and k-NN evaluation data."""

    # dataset: a folder (class sub-folders give labels), sample, cifar10:ROOT, stl10:ROOT,
    # generated:n=2000,size=32,classes=10
    data: str = "generated"
    # augmentation preset (dinov2, dino, small-images ...), YAML / JSON / DINOv2 config file, or
    # your own code: path/to/file.py:factory or package.module:factory (its crops are measured;
    # the patch size adapts when --patch-size is not given)
    pipeline: str = "dinov2"
    # keyword arguments for a pipeline factory, as a JSON object: '{"img_size": 32}'
    pipeline_kwargs: str = ""
    # local crops per image (DINOv2: 8); fewer is faster, 0 removes multi-crop; none = the
    # pipeline's
    local_crops: Annotated[int | None, NON_NEGATIVE_OR_NONE] = None
    # global crop side in px (224; 32 for CIFAR); none = the pipeline's
    global_crops_size: Annotated[int | None, AT_LEAST_1_OR_NONE] = None
    # local crop side in px (96; 16 for CIFAR); none = the pipeline's
    local_crops_size: Annotated[int | None, AT_LEAST_1_OR_NONE] = None
    # with a DINOv2 config file as the pipeline: released blurs as DINOv2's code runs it (0 /
    # 0.9 / 0.5 on global 1 / global 2 / locals: its GaussianBlur passes 1 - p to RandomApply;
    # the released checkpoints were trained so), published as its paper and config say (1.0 /
    # 0.1 / 0.5). Presets and other files keep their own blur.
    dinov2_blur: Annotated[str, Bounds(choices=DINOV2_BLURS)] = "released"
    train_split: str = "train"  # split the model trains on
    eval_split: str = "val"  # held-out labelled split the k-NN classifies
    # images per process and step; below ~64 centering starves and k-NN can get worse
    batch_size: Annotated[int, AT_LEAST_1] = 64
    # data loader processes; none = auto (1 on a 2-core machine, more with more cores)
    workers: Annotated[int | None, NON_NEGATIVE_OR_NONE] = None
    # where the views are cut and coloured (dinodiag.train.device_batches): auto (the training
    # device when it is a GPU, workers only decode; else CPU workers), cpu (DataLoader workers),
    # device (the training device, even a CPU), cuda or cuda:N
    augment_device: str = "auto"
    # on-device augmentation: decode the images once and keep them in RAM up to this many GiB
    # (CIFAR-10 takes 0.15); 0 = off
    decode_cache_gb: Annotated[float, NON_NEGATIVE] = 0.0
    knn_k: Annotated[int, AT_LEAST_1] = 20  # k-NN neighbours that vote (20 is DINO's headline)
    knn_temperature: Annotated[float, POSITIVE] = 0.07  # k-NN vote weight exp(similarity / T)
    # k-NN memory-bank images (a random subset of the train split)
    knn_train_max: Annotated[int, AT_LEAST_1] = 5000
    # k-NN test images (a random subset of the eval split); 200 or more resolve a 10-point change
    knn_test_max: Annotated[int, AT_LEAST_1] = 1000

    def __post_init__(self) -> None:
        s = "data"
        _require(s, "data", bool(self.data.strip()), self.data, "a dataset spec")
        _require(s, "pipeline", bool(self.pipeline.strip()), self.pipeline, "a preset or file")
        check_bounds(self, s)
        where = self.augment_device.strip().lower()
        known = where in ("auto", "cpu", "device", "cuda") or (
            where.startswith("cuda:") and where[5:].isdigit()
        )
        _require(s, "augment_device", known, self.augment_device, AUGMENT_DEVICES_HELP)
        self._check_pipeline_fields()

    def _check_pipeline_fields(self) -> None:
        """Your own code makes its crops (no crop knob may change them); keyword arguments go
        to code only."""
        from dinodiag.probe.spec import is_pipeline_spec

        if not is_pipeline_spec(self.pipeline):
            if self.pipeline_kwargs.strip():
                raise ConfigError(
                    f"data.pipeline_kwargs is set but data.pipeline = {self.pipeline!r} is not "
                    "code (file.py:factory): the keyword arguments apply only to a factory."
                )
            return
        for knob, flag in CROP_KNOBS.items():
            if getattr(self, knob) is not None:
                raise ConfigError(
                    f"data.{knob} = {getattr(self, knob)} cannot change your own pipeline "
                    f"({flag}): its crops come from your code ({self.pipeline}); pass the "
                    "sizes to your factory with --pipeline-kwargs instead, or drop the flag."
                )


@dataclass(frozen=True)
class RunConfig:
    """Length of the run, logging, evaluation, device and seed."""

    # passes over the train split; the schedules are laid out over them
    epochs: Annotated[float, POSITIVE] = 100.0
    # steps per schedule epoch; none = one pass over the data
    epoch_length: Annotated[int | None, AT_LEAST_1_OR_NONE] = None
    # cap on optimisation steps (the schedules fit the cap)
    max_steps: Annotated[int | None, AT_LEAST_1_OR_NONE] = None
    # true: the schedules span all the epochs and max_steps / max_seconds cut the run short (the
    # first steps of the full run; how a DINOv2 config is shortened); false: they fit max_steps
    keep_full_schedules: bool = False
    # stop cleanly (final k-NN + checkpoint) before this many seconds
    max_seconds: Annotated[float | None, Bounds(low=0, low_open=True, none=True)] = None
    # with max_seconds: shorten the schedules to the steps that fit
    fit_to_time: bool = False
    # k-NN every N steps, plus step 0 (random init) and the end; 0 turns k-NN off
    eval_every: Annotated[int, NON_NEGATIVE] = 500
    # a metrics row (losses + diagnostics) every N steps
    log_every: Annotated[int, AT_LEAST_1] = 10
    # ... and one after every step up to this one, so the curves of a short run have points
    # from its first seconds on
    log_first_steps: Annotated[int, NON_NEGATIVE] = 20
    # checkpoint every N steps (always at the end); 0 = by time only
    checkpoint_every: Annotated[int, NON_NEGATIVE] = 1000
    # also checkpoint after the first step, then every S seconds (60): a SIGKILL or the
    # out-of-memory killer loses at most S seconds of training; 0 = off
    checkpoint_seconds: Annotated[float, NON_NEGATIVE] = 60.0
    # seeds the model init, the data order and every augmentation
    seed: Annotated[int, NON_NEGATIVE] = 0
    device: str = "auto"  # auto (CUDA when available, else CPU), cpu, cuda or cuda:N
    # auto (bf16 autocast on a GPU that has it, else fp32), bf16 or fp32
    precision: Annotated[str, Bounds(choices=PRECISIONS)] = "auto"
    compile: bool = False  # torch.compile the networks (faster on GPU after a slow first step)
    # torch CPU threads; none = torch's default (all cores)
    threads: Annotated[int | None, AT_LEAST_1_OR_NONE] = None

    def __post_init__(self) -> None:
        check_bounds(self, "run")
        device = self.device.strip().lower()
        ok = device in ("auto", "cpu", "cuda") or (
            device.startswith("cuda:") and device[5:].isdigit()
        )
        _require("run", "device", ok, self.device, DEVICES_HELP)


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "optim": OptimConfig,
    "data": DataConfig,
    "run": RunConfig,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the run directory."""

    name: str = "custom"  # the preset it came from (a label in run lists)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        batch = self.data.batch_size
        if self.optim.koleo_weight > 0 and batch < 2:  # its nearest neighbour needs two
            raise ConfigError(
                f"data.batch_size = {batch}: KoLeo needs at least 2 images per step and process "
                "(at 1 it is infinite, then NaN): use a batch of 2 or more (DINO works best "
                "from 64), or set optim.koleo_weight = 0 (--koleo-weight 0)."
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists for tuples) that :meth:`from_dict` reads back."""
        out: dict[str, Any] = {"name": self.name}
        for section in SECTIONS:
            out[section] = {
                key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(getattr(self, section)).items()
            }
        return out

    @classmethod
    def from_dict(cls, data: Any) -> TrainConfig:
        """A validated config from plain data or command-line text; missing keys keep their
        defaults, unknown keys are refused with a "did you mean"."""
        return build_config(cls, _upgrade(data), what="a training config", from_text=True)

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, action: str = "resume") -> TrainConfig:
        """The config of a run directory's config.json (a run to resume, or a plan), read
        strictly: :class:`ConfigError` / RunDirError naming the file when it is missing,
        unreadable or invalid (never replaced by a preset's values, never rewritten).
        ``action`` says what the read is for, in the message ("resume", "start the planned
        run")."""
        from dinodiag.rundir import CONFIG_FILE
        from dinodiag.rundir.writer import load_run_config

        saved = load_run_config(run_dir, action)
        sections = ("name", *SECTIONS)
        try:
            return cls.from_dict({k: v for k, v in saved.items() if k in sections})
        except ConfigError as exc:
            raise ConfigError(
                f"cannot {action}: {Path(run_dir) / CONFIG_FILE} does not hold a valid training "
                f"config: {exc} dinodiag did not change it."
            ) from None

    def with_overrides(self, overrides: dict[str, Any]) -> TrainConfig:
        """A copy with ``{"section.field": value}`` changes applied (validated)."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            section, _, key = dotted.partition(".")
            if section == "name" and not key:
                data["name"] = value
                continue
            if section not in SECTIONS or not key:
                raise ConfigError(
                    f"override {dotted!r} must be section.field with section one of "
                    f"{', '.join(SECTIONS)} (e.g. "
                    f"optim.base_lr).{did_you_mean(section, list(SECTIONS))}"
                )
            data[section][key] = value  # an unknown field is named by from_dict
        return TrainConfig.from_dict(data)


def _upgrade(data: Any) -> Any:
    """Configs written before ``model.head_style`` had ``model.norm_last_layer`` (true: the
    prototype norms fixed, DINO v1's head; false: trainable, as DINOv2's)."""
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or "norm_last_layer" not in model:
        return data
    model = dict(model)
    fixed = model.pop("norm_last_layer")
    if "head_style" not in model:
        fixed_norms = fixed if isinstance(fixed, bool) else str(fixed).lower() in ("true", "1")
        model["head_style"] = "dino_v1" if fixed_norms else "dinov2"
    return {**data, "model": model}
