"""Training configuration: four frozen dataclasses (model, optimisation, data, run) in one.

Every field carries a comment saying what it does and what to try. The augmentation itself is
not repeated here: ``data.pipeline`` names a pipeline preset or config file (see
:mod:`dinodiag.augment.presets`) and a few crop overrides adjust it; :func:`resolve_pipeline`
returns the :class:`~dinodiag.augment.config.PipelineConfig` a run really uses (it is written to
``config.json`` next to this config).

    cfg = get_train_preset("cpu-demo").config          # dinodiag.train.presets
    cfg = cfg.with_overrides({"optim.base_lr": 1e-3, "data.batch_size": 32})
    cfg.to_dict()                                       # plain data for config.json
    TrainConfig.from_dict(data)                         # and back (unknown keys refused)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dinodiag.augment.config import PipelineConfig
from dinodiag.errors import ConfigError
from dinodiag.probe.spec import is_pipeline_spec
from dinodiag.typed_config import build_config, did_you_mean

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
# Upper bound of model.num_prototypes: 8x the largest head of DINOv2 (131072, ViT-g). The
# prototype layer grows as head_bottleneck_dim x K, and every image's logits hold K values.
MAX_PROTOTYPES = 1 << 20


def _require(section: str, name: str, ok: bool, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{section}.{name} = {value!r} is invalid: allowed {allowed}.")


@dataclass(frozen=True)
class ModelConfig:
    """Backbone and projection heads."""

    arch: str = "vit_small"  # vit_tiny | small | base | large | giant2 | resnet18; tiny on a CPU
    patch_size: int = 16  # ViT patch side; 16 for 224 px, 4 for 32 px crops (crops must divide)
    embed_dim: int | None = None  # override the ViT width (e.g. 96 for a CPU demo); None = arch
    num_heads: int | None = None  # override the ViT heads (embed_dim must divide); None = arch
    depth: int | None = None  # ViT blocks (None = the arch's: 12, large 24, giant2 40); 2-4 on CPU
    drop_path_rate: float = 0.1  # stochastic depth; 0.1 for ViT-S, 0.3 large; 0 for tiny models
    drop_path_uniform: bool = True  # the same rate in every block (DINOv2); False: 0 -> rate ramp
    layerscale_init: float | None = None  # e.g. 1e-5 (DINOv2 large models); None disables
    num_register_tokens: int = 0  # extra learned tokens after CLS (DINOv2 "registers": 4)
    ffn_layer: str = "mlp"  # "mlp" (GELU) or "swiglu" (DINOv2 ViT-L/g; hidden 2/3 of 4 x dim)
    interpolate_offset: float = 0.1  # DINOv2's pos-embed interpolation offset (0 = by size)
    interpolate_antialias: bool = False  # antialiased pos-embed interpolation (DINOv2: off)
    num_prototypes: int = 65536  # K; 1024-8192 converge faster on small data (watch 'used')
    head_hidden_dim: int = 2048  # DINO head MLP width; 256-512 is enough for tiny models
    head_bottleneck_dim: int = 256  # width before the prototypes
    head_layers: int = 3  # MLP layers of the head
    # "dinov2": prototype norms g trainable (with weight decay), PyTorch's default init of the
    # directions; "dino_v1": g fixed to 1 (DINO's norm_last_layer), more stable in long runs
    head_style: str = "dinov2"
    ibot_separate_head: bool = False  # own head for iBOT patches (DINOv2 default: shared)
    ibot_num_prototypes: int | None = None  # K of the separate iBOT head; None = num_prototypes
    ibot_head_hidden_dim: int | None = None  # separate iBOT head MLP width; None = DINO head's
    ibot_head_bottleneck_dim: int | None = None  # its bottleneck; None = the DINO head's
    ibot_head_layers: int | None = None  # its MLP layers; None = the DINO head's

    def __post_init__(self) -> None:
        s = "model"
        _require(s, "arch", self.arch in ARCHS, self.arch, f"one of {', '.join(ARCHS)}")
        _require(s, "patch_size", self.patch_size >= 1, self.patch_size, "an integer >= 1")
        for name in ("embed_dim", "num_heads", "depth"):
            value = getattr(self, name)
            _require(s, name, value is None or value >= 1, value, "an integer >= 1 or null")
        if self.embed_dim is not None and self.embed_dim % (self.num_heads or 1):
            raise ConfigError(
                f"model.embed_dim = {self.embed_dim} is not divisible by model.num_heads = "
                f"{self.num_heads}: pick a width that is a multiple of the head count."
            )
        _require(s, "drop_path_rate", 0 <= self.drop_path_rate < 1, self.drop_path_rate, "[0, 1)")
        _require(s, "num_prototypes", self.num_prototypes >= 2, self.num_prototypes, ">= 2")
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
        for name in ("head_hidden_dim", "head_bottleneck_dim", "head_layers"):
            value = getattr(self, name)
            _require(s, name, value >= 1, value, "an integer >= 1")
        _require(
            s,
            "num_register_tokens",
            self.num_register_tokens >= 0,
            self.num_register_tokens,
            ">= 0",
        )
        if self.ffn_layer == "swiglufused":  # DINOv2's name for the same layer
            object.__setattr__(self, "ffn_layer", "swiglu")
        _require(s, "ffn_layer", self.ffn_layer in FFN_LAYERS, self.ffn_layer, "mlp | swiglu")
        offset = self.interpolate_offset
        _require(s, "interpolate_offset", 0 <= offset < 1, offset, "[0, 1) (DINOv2: 0.1)")
        _require(s, "head_style", self.head_style in HEAD_STYLES, self.head_style, "dinov2|dino_v1")
        for name in (
            "ibot_num_prototypes",
            "ibot_head_hidden_dim",
            "ibot_head_bottleneck_dim",
            "ibot_head_layers",
        ):
            value = getattr(self, name)
            _require(s, name, value is None or value >= 1, value, "an integer >= 1 or null")
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

    base_lr: float = 0.004  # lr at batch 1024; lower it if the loss goes NaN, raise if flat
    lr_scaling: str = "sqrt"  # "sqrt": base_lr * sqrt(global batch / 1024); "none": base_lr as is
    min_lr: float = 1e-6  # end of the cosine decay
    warmup_epochs: float = 10.0  # linear lr warm-up; ~5-10% of the run for short runs
    weight_decay_start: float = 0.04  # cosine schedule start (none on biases / norms / tokens)
    weight_decay_end: float = 0.4  # cosine schedule end
    momentum_start: float = 0.992  # teacher EMA momentum; 0.99 or lower for runs of < 1k steps
    momentum_end: float = 1.0  # teacher momentum at the end (cosine to it)
    teacher_temp_start: float = 0.04  # sharper teacher targets at the start
    teacher_temp_end: float = 0.07  # after the warm-up; lower it if the loss stays at ln K
    teacher_temp_warmup_epochs: float = 30.0  # linear warm-up of the teacher temperature
    student_temp: float = 0.1  # student softmax temperature (rarely changed)
    freeze_last_layer_epochs: float = 1.0  # prototypes at lr 0 this long; shorten for short runs
    layerwise_decay: float = 0.9  # lr x rate^(depth + 1 - layer): early blocks learn slower
    patch_embed_lr_mult: float = 0.2  # extra lr factor of the patch embedding (DINOv2: 0.2)
    clip_grad: float = 3.0  # gradient-norm clip per network (backbone, heads); 0 = off
    beta1: float = 0.9  # AdamW beta1
    beta2: float = 0.999  # AdamW beta2
    center_momentum: float = 0.9  # EMA of the teacher centre; higher = slower centering
    centering: str = "center"  # "center" or "sinkhorn" (try it when small batches collapse)
    dino_weight: float = 1.0  # weight of the DINO CLS loss
    # "dinov2": sum over crop pairs / ((G-1) G + max(G L, 1)), so with no local crops the loss
    # is 2/3 of the pair mean; "pair_mean": the mean over the pairs (DINO v1, lightly)
    dino_normalisation: str = "dinov2"
    ibot_weight: float = 1.0  # weight of the iBOT masked-patch loss (0 = off; ResNet has none)
    # "global_crops": per-crop mean over masked patches, summed, / all global crops (DINOv2);
    # "masked_crops": / the masked crops only (2x at mask probability 0.5)
    ibot_normalisation: str = "global_crops"
    koleo_weight: float = 0.1  # weight of KoLeo (0 = off); needs a batch of >= 2 per process
    koleo_across_processes: bool = False  # neighbours among all processes (DINOv2: local batch)
    mask_probability: float = 0.5  # fraction of global crops that get an iBOT mask (floored)
    mask_ratio: tuple[float, float] = (0.1, 0.5)  # masked fraction range, spread over the batch

    def __post_init__(self) -> None:
        s = "optim"
        _require(s, "base_lr", self.base_lr > 0, self.base_lr, "a number > 0")
        _require(s, "lr_scaling", self.lr_scaling in ("sqrt", "none"), self.lr_scaling, "sqrt|none")
        _require(
            s,
            "centering",
            self.centering in ("center", "sinkhorn"),
            self.centering,
            "center | sinkhorn",
        )
        for name in (
            "min_lr",
            "warmup_epochs",
            "weight_decay_start",
            "weight_decay_end",
            "teacher_temp_warmup_epochs",
            "freeze_last_layer_epochs",
            "clip_grad",
            "dino_weight",
            "ibot_weight",
            "koleo_weight",
        ):
            value = getattr(self, name)
            _require(s, name, value >= 0, value, "a number >= 0")
        _require(
            s,
            "dino_normalisation",
            self.dino_normalisation in DINO_NORMALISATIONS,
            self.dino_normalisation,
            " | ".join(DINO_NORMALISATIONS),
        )
        _require(
            s,
            "ibot_normalisation",
            self.ibot_normalisation in IBOT_NORMALISATIONS,
            self.ibot_normalisation,
            " | ".join(IBOT_NORMALISATIONS),
        )
        for name in ("layerwise_decay", "patch_embed_lr_mult"):
            value = getattr(self, name)
            _require(s, name, 0 < value <= 1, value, "a number in (0, 1]")
        for name in ("momentum_start", "momentum_end", "mask_probability", "beta1", "beta2"):
            value = getattr(self, name)
            _require(s, name, 0 <= value <= 1, value, "a number in [0, 1]")
        for name in ("teacher_temp_start", "teacher_temp_end", "student_temp"):
            value = getattr(self, name)
            _require(s, name, value > 0, value, "a temperature > 0")
        lo, hi = self.mask_ratio
        _require(s, "mask_ratio", 0 <= lo <= hi <= 1, self.mask_ratio, "0 <= min <= max <= 1")
        _require(
            s, "center_momentum", 0 <= self.center_momentum < 1, self.center_momentum, "[0, 1)"
        )


@dataclass(frozen=True)
class DataConfig:
    """Dataset, augmentation pipeline, loader and k-NN evaluation data."""

    data: str = "generated"  # dataset spec: a folder, sample, generated:..., cifar10:ROOT ...
    # the crops: a pipeline preset, a YAML / JSON / DINOv2 config file, or your own code as
    # path/to/file.py:factory or package.module:factory (dinodiag.train.pipelines)
    pipeline: str = "dinov2"
    pipeline_kwargs: str = ""  # JSON object of keyword arguments for a factory ("" = none)
    local_crops: int | None = (
        None  # override the pipeline's local crop count (0-10; fewer = faster)
    )
    global_crops_size: int | None = None  # override the global crop side (px)
    local_crops_size: int | None = None  # override the local crop side (px)
    # blur of a DINOv2 config file as the pipeline: released = as DINOv2's code runs it (0 / 0.9
    # / 0.5 on global 1 / global 2 / locals: its GaussianBlur passes 1 - p to RandomApply; the
    # released checkpoints were trained so), published = as its paper and config say (1.0 / 0.1
    # / 0.5). Presets and other files keep their own blur.
    dinov2_blur: str = "released"
    train_split: str = "train"  # split the model trains on
    eval_split: str = "val"  # held-out labelled split the k-NN classifies
    batch_size: int = 64  # images per process and step; DINO needs >= 64 for centering to work
    workers: int | None = None  # loader processes; None = auto (1 on a 2-core machine)
    # -- where the views are made (dinodiag.train.device_batches)
    # auto: on the training device when it is a GPU (workers only decode), else CPU workers
    # cut and colour; cpu: CPU workers; device: the training device, even a CPU; cuda / cuda:N
    augment_device: str = "auto"
    decode_cache_gb: float = 0.0  # keep decoded images in RAM up to this (device backend); 0 off
    knn_k: int = 20  # neighbours that vote (20 is the headline number of DINO)
    knn_temperature: float = 0.07  # vote weight exp(similarity / T)
    knn_train_max: int = 5000  # memory-bank images (a random subset of the train split)
    knn_test_max: int = 1000  # test images (a random subset of the eval split)

    def __post_init__(self) -> None:
        s = "data"
        _require(s, "data", bool(self.data.strip()), self.data, "a dataset spec")
        _require(s, "pipeline", bool(self.pipeline.strip()), self.pipeline, "a preset or file")
        for name in ("local_crops", "workers"):
            value = getattr(self, name)
            _require(s, name, value is None or value >= 0, value, "an integer >= 0 or null")
        for name in ("global_crops_size", "local_crops_size"):
            value = getattr(self, name)
            _require(s, name, value is None or value >= 1, value, "an integer >= 1 or null")
        for name in ("batch_size", "knn_k", "knn_train_max", "knn_test_max"):
            value = getattr(self, name)
            _require(s, name, value >= 1, value, "an integer >= 1")
        _require(s, "knn_temperature", self.knn_temperature > 0, self.knn_temperature, "> 0")
        where = self.augment_device.strip().lower()
        known = where in ("auto", "cpu", "device", "cuda") or (
            where.startswith("cuda:") and where[5:].isdigit()
        )
        _require(s, "augment_device", known, self.augment_device, AUGMENT_DEVICES_HELP)
        _require(s, "decode_cache_gb", self.decode_cache_gb >= 0, self.decode_cache_gb, ">= 0")
        blur = self.dinov2_blur
        _require(s, "dinov2_blur", blur in DINOV2_BLURS, blur, " or ".join(DINOV2_BLURS))


@dataclass(frozen=True)
class RunConfig:
    """Length of the run, logging, evaluation, device and seed."""

    epochs: float = 100.0  # passes over the train split (the schedules are laid out over them)
    epoch_length: int | None = None  # steps per schedule epoch; None = one pass over the data
    max_steps: int | None = None  # cap the run at this many steps (schedules then fit it)
    # True: the schedules span all the epochs and max_steps / max_seconds cut the run short (the
    # first steps of the full run; how a DINOv2 config is shortened); False: they fit max_steps
    keep_full_schedules: bool = False
    max_seconds: float | None = None  # stop cleanly (eval + checkpoint) before this many seconds
    fit_to_time: bool = False  # with max_seconds: shorten the schedules to the steps that fit
    eval_every: int = 500  # k-NN every N steps (also at step 0 and at the end); 0 = no k-NN
    log_every: int = 10  # a metrics row (losses + diagnostics) every N steps
    log_first_steps: int = 20  # ... and one after every step up to this one, so the curves of
    # a short run have points from its first seconds on
    checkpoint_every: int = 1000  # checkpoint every N steps (and at the end); 0 = by time only
    checkpoint_seconds: float = 60.0  # also after the first step, then every S s (0 = off): a
    # SIGKILL or the out-of-memory killer loses at most S seconds of training
    seed: int = 0  # seeds the model init, the data order and every augmentation
    device: str = "auto"  # auto (CUDA when available, else CPU), cpu, cuda or cuda:N
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU), bf16 or fp32
    compile: bool = False  # torch.compile the networks (faster on GPU after a slow first step)
    threads: int | None = None  # torch CPU threads; None = torch's default (all cores)

    def __post_init__(self) -> None:
        s = "run"
        _require(s, "epochs", self.epochs > 0, self.epochs, "a number > 0")
        _require(
            s,
            "max_steps",
            self.max_steps is None or self.max_steps >= 1,
            self.max_steps,
            "an integer >= 1 or null",
        )
        _require(
            s,
            "max_seconds",
            self.max_seconds is None or self.max_seconds > 0,
            self.max_seconds,
            "a number > 0 or null",
        )
        _require(
            s,
            "epoch_length",
            self.epoch_length is None or self.epoch_length >= 1,
            self.epoch_length,
            "an integer >= 1 or null",
        )
        for name in ("eval_every", "checkpoint_every", "seed"):
            value = getattr(self, name)
            _require(s, name, value >= 0, value, "an integer >= 0")
        _require(
            s, "checkpoint_seconds", self.checkpoint_seconds >= 0, self.checkpoint_seconds, ">= 0"
        )
        _require(s, "log_every", self.log_every >= 1, self.log_every, "an integer >= 1")
        _require(s, "log_first_steps", self.log_first_steps >= 0, self.log_first_steps, ">= 0")
        _require(s, "precision", self.precision in PRECISIONS, self.precision, "auto|bf16|fp32")
        device = self.device.strip().lower()
        ok = device in ("auto", "cpu", "cuda") or (
            device.startswith("cuda:") and device[5:].isdigit()
        )
        _require(s, "device", ok, self.device, DEVICES_HELP)
        _require(s, "threads", self.threads is None or self.threads >= 1, self.threads, ">= 1")


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


def resolve_pipeline(config: TrainConfig) -> PipelineConfig:
    """The augmentation a run uses: ``data.pipeline`` with the crop overrides and patch size.

    Raises :class:`ConfigError` when a ViT crop size is not a multiple of the patch size, or
    when ``data.pipeline`` is code (``file.py:factory``): a brought pipeline is measured on
    the data (:func:`dinodiag.train.pipelines.resolve_run_pipeline`).
    """
    from dinodiag.augment.presets import load_config

    if is_pipeline_spec(config.data.pipeline):
        raise ConfigError(
            f"data.pipeline = {config.data.pipeline!r} is your own code: its crops are measured "
            "on the training images (dinodiag.train.pipelines.resolve_run_pipeline), not read "
            "from a config."
        )
    pipeline = load_config(config.data.pipeline)
    if _pipeline_file(config.data.pipeline)[1]:
        pipeline = with_dinov2_blur(pipeline, config.data.dinov2_blur)
    file_patch = pipeline_file_patch_size(config.data.pipeline)
    vit = config.model.arch.startswith("vit")
    if vit and file_patch is not None and file_patch != config.model.patch_size:
        raise ConfigError(
            f"the pipeline file {config.data.pipeline} sets the patch size {file_patch} "
            f"(student.patch_size / patch_size) but model.patch_size is "
            f"{config.model.patch_size}: the ViT must cut the crops it was made for, so set "
            f"--patch-size {file_patch} (the train command does when --patch-size is not given) "
            "or change the file."
        )
    changes: dict[str, Any] = {"patch_size": config.model.patch_size}
    if config.data.local_crops is not None:
        changes["local_crops_number"] = config.data.local_crops
    if config.data.global_crops_size is not None:
        changes["global_crops_size"] = config.data.global_crops_size
    if config.data.local_crops_size is not None:
        changes["local_crops_size"] = config.data.local_crops_size
    pipeline = pipeline.replace(**changes)
    check_crops(pipeline, config.model)
    return pipeline


def pipeline_file_patch_size(spec: str) -> int | None:
    """The patch size a pipeline *file* sets: a DINOv2 config's ``student.patch_size`` (DINOv2's
    default 16 when the file leaves it out), a dinodiag file's ``patch_size`` key; None for a
    preset name or a file without one. The model must use it (:func:`resolve_pipeline`)."""
    from dinodiag.augment.dinov2_config import resolve_dinov2_config

    data, dinov2 = _pipeline_file(spec)
    if data is None:
        return None
    if dinov2:
        value = resolve_dinov2_config(data, source=spec).get("student.patch_size")
    else:
        value = data.get("patch_size")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _pipeline_file(spec: str) -> tuple[dict[str, Any] | None, bool]:
    """``(the mapping of a pipeline file, whether it is a DINOv2 training config)``;
    ``(None, False)`` for a preset name or anything that is not a file."""
    from dinodiag.augment.config import parse_config_text
    from dinodiag.augment.dinov2_config import is_dinov2_config
    from dinodiag.augment.presets import PRESETS

    path = Path(spec)
    if spec.strip().lower().replace("_", "-") in PRESETS or not path.is_file():
        return None, False
    data = parse_config_text(path.read_text(encoding="utf-8", errors="replace"), source=spec)
    return data, is_dinov2_config(data)


def with_dinov2_blur(pipeline: PipelineConfig, blur: str) -> PipelineConfig:
    """A DINOv2 config file's pipeline with the blur ``data.dinov2_blur`` names: "released"
    takes the per-view blur probabilities of the ``dinov2-released`` preset (what DINOv2's code
    runs), "published" keeps the recipe's; the name says which."""
    from dinodiag.augment.presets import get_preset

    if blur == "released":
        released = get_preset("dinov2-released").config
        pipeline = pipeline.replace(
            **{view: {"blur_p": getattr(released, view).blur_p} for view in VIEWS}
        )
    return pipeline.replace(name=f"{pipeline.name}, {blur} blur")


def check_crops(pipeline: PipelineConfig, model: ModelConfig) -> None:
    """Crop sizes must be multiples of the ViT patch size; 2+ views are needed for DINO."""
    if model.arch.startswith("vit"):
        p = model.patch_size
        for name in ("global_crops_size", "local_crops_size"):
            size = getattr(pipeline, name)
            if name == "local_crops_size" and pipeline.local_crops_number == 0:
                continue
            if size % p:
                raise ConfigError(
                    f"pipeline {name} = {size} px is not a multiple of the ViT patch size {p}: "
                    f"use {max(p, size // p * p)} or {size // p * p + p} px (--global-size / "
                    "--local-size), or change --patch-size."
                )
    if pipeline.global_crops_number + pipeline.local_crops_number < 2:
        raise ConfigError(
            "the pipeline makes a single view: DINO compares different views of an image, so "
            "use 2 global crops (the recipe) or add local crops."
        )
