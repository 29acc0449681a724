"""Where and how a run executes: device, precision, processes, seeds, and stop requests.

One code path for every setting: CUDA when available (bf16 autocast, TF32 matmuls, fused AdamW,
pinned memory) else CPU (fp32); one process, or several under ``torchrun`` (DDP: NCCL on GPU,
gloo on CPU; the process group is created here from the environment torchrun sets).
"""

from __future__ import annotations

import inspect
import os
import signal
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import torch
import torch.distributed as dist

from dinodiag.errors import TrainingError
from dinodiag.recipe.config import RunConfig, TrainConfig
from dinodiag.rundir import STOP_FILE, stop_requested
from dinodiag.train import distributed


@dataclass
class Runtime:
    device: torch.device  # where the networks run
    autocast_dtype: torch.dtype | None  # torch.bfloat16 under autocast, None = plain fp32
    world_size: int  # processes (1 without torchrun)
    rank: int  # this process (0 writes the run directory)
    owns_process_group: bool  # True when setup_runtime created it (and teardown destroys it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        """e.g. ``cuda:0 (NVIDIA H100, bf16) x 2 processes`` or ``cpu (2 threads, fp32)``."""
        if self.device.type == "cuda":
            what = f"{self.device} ({torch.cuda.get_device_name(self.device)}, "
        else:
            what = f"cpu ({torch.get_num_threads()} threads, "
        what += "bf16)" if self.autocast_dtype is not None else "fp32)"
        return what + (f" x {self.world_size} processes" if self.world_size > 1 else "")


def _pick_device(requested: str, local_rank: int) -> torch.device:
    requested = requested.strip().lower()
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrainingError(
                f"--device {requested} was asked for but CUDA is not available (no GPU or a "
                "CPU-only torch build): use --device cpu or --device auto."
            )
        if requested == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(requested)


def autocast_dtype_for(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``run.precision`` on ``device``: ``torch.bfloat16`` for bf16
    (``auto``: on a CUDA GPU that has it), None for plain fp32 (``auto`` on a CPU, where bf16
    matmuls are slow, and on a pre-Ampere GPU). Raises :class:`TrainingError` for a bf16 asked
    for on a GPU without it."""
    if precision == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        precision = "bf16" if cuda_bf16 else "fp32"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TrainingError(
            f"--precision bf16 is not supported on {torch.cuda.get_device_name(device)}: use "
            "--precision fp32 (fp16 is not offered: DINO overflows in fp16)."
        )
    return torch.bfloat16 if precision == "bf16" else None


def configure_cuda_backends() -> None:
    """TF32 for fp32 matmuls and convolutions (what autocast leaves in fp32: the losses, the
    optimizer, the EMA; ~8x faster matmuls on Ampere+ at 10 mantissa bits), and cuDNN's
    autotuner: the step's shapes are fixed (global and local crops), so the fastest patch
    embedding / ResNet convolution is picked once. Process-wide settings, for CUDA runs."""
    torch.backends.cuda.matmul.allow_tf32 = True  # == torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True


#: ``init_process_group(device_id=...)`` exists (torch >= 2.3).
_BINDS_DEVICE = "device_id" in inspect.signature(dist.init_process_group).parameters


def _init_process_group(backend: str, device: torch.device) -> None:
    """``init_process_group`` from torchrun's environment; NCCL bound to this process's GPU
    (``device_id``, torch >= 2.3: collectives and barriers then never guess the device)."""
    kwargs: dict[str, object] = {}
    if device.type == "cuda":
        torch.cuda.set_device(device)
        if _BINDS_DEVICE:
            kwargs["device_id"] = device
    dist.init_process_group(backend=backend, **kwargs)


def setup_runtime(run: RunConfig) -> Runtime:
    """Initialise the process group (under torchrun), pick the device and precision, turn on
    TF32 on CUDA, set the CPU threads and seed this process (``seed + rank``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _pick_device(run.device, local_rank)
    owns = False
    if world > 1 and not distributed.is_distributed():
        _init_process_group("nccl" if device.type == "cuda" else "gloo", device)
        owns = True
    if device.type == "cuda":
        configure_cuda_backends()
    if run.threads is not None:
        torch.set_num_threads(run.threads)
    dtype = autocast_dtype_for(run.precision, device)
    rank = distributed.rank()
    torch.manual_seed(run.seed + rank)
    return Runtime(
        device=device,
        autocast_dtype=dtype,
        world_size=distributed.world_size(),
        rank=rank,
        owns_process_group=owns,
    )


def teardown_runtime(runtime: Runtime) -> None:
    if runtime.owns_process_group and distributed.is_distributed():
        dist.destroy_process_group()


#: Where an out-of-memory error came from, by the file that raised it (first match from the
#: innermost frame), and what to try there.
_OOM_PLACES = (
    (
        "augment/gpu",
        "the on-device augmentation",
        "make the views on CPU workers (--augment-device cpu), lower --batch-size, or use "
        "smaller source images (each batch is padded to its largest image)",
    ),
    (
        "train/eval",
        "the k-NN evaluation",
        "use fewer k-NN images (--set data.knn_train_max=2000) or --eval-every 0",
    ),
    (
        "train/checkpoint",
        "writing the checkpoint",
        "free GPU memory held by other processes (nvidia-smi), then --resume",
    ),
)


def _oom_place(exc: BaseException) -> tuple[str, str]:
    """(what ran, what to try) for an out-of-memory error, from its traceback."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    for frame in reversed(frames):
        path = frame.filename.replace("\\", "/")
        for part, what, advice in _OOM_PLACES:
            if f"dinodiag/{part}" in path:
                return what, advice
    return "the training step", ""


def out_of_memory_message(
    exc: BaseException, step: int, config: TrainConfig, runtime: Runtime | None
) -> str:
    """What ran out of memory, where, how full the device was, and what to change."""
    what, advice = _oom_place(exc)
    data = config.data
    message = (
        f"out of memory in {what} at step {step} with a batch of {data.batch_size} images per "
        "process"
    )
    device = runtime.device if runtime is not None else None
    if device is not None and device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        message += (
            f" on {device} ({torch.cuda.get_device_name(device)}: "
            f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB peak allocated by this "
            f"run, {torch.cuda.memory_reserved(device) / 2**30:.1f} GiB reserved, "
            f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB free now)"
        )
    steps = [advice] if advice else []
    steps.append(
        "lower --batch-size (halve it), use fewer --local-crops, a smaller --arch or fewer "
        "--num-prototypes (each crop's logits hold K values)"
    )
    on_gpu = device is not None and device.type == "cuda"
    if on_gpu and runtime is not None and runtime.autocast_dtype is None:
        steps.append("use bf16 (--precision bf16)")
    message += ": " + "; or ".join(steps) + "."
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return message + (f" ({first})" if first else "")


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocator peak on GPU, max resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    except (ImportError, OSError):  # pragma: no cover - not on Linux
        return float("nan")


class StopControl:
    """Stop requests: a ``STOP`` file in the run directory, SIGTERM or SIGINT (a second Ctrl-C
    interrupts at once), and the time limit. :meth:`check` agrees across processes."""

    def __init__(self, run_dir: Path, runtime: Runtime) -> None:
        self.run_dir = run_dir
        self.runtime = runtime
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def local_reason(self) -> str | None:
        if self.signal_name is not None:
            return f"{self.signal_name} received"
        if self.runtime.is_main and stop_requested(self.run_dir):
            return f"{STOP_FILE} file found in the run directory"
        return None

    def check(self, time_up: bool) -> str | None:
        """``"stop"`` (a request on any process), ``"time"`` (rank 0's clock says the time
        limit is reached) or None; the same answer on every process."""
        code = 2 if self.local_reason() is not None else (1 if time_up else 0)
        if self.runtime.world_size > 1:
            flag = torch.tensor([code], device=self.runtime.device)
            code = int(distributed.all_reduce_max(flag).item())
        return {0: None, 1: "time", 2: "stop"}[code]

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous = {}
