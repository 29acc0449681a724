"""Where and how a run executes: device, precision, processes, seeds, and stop requests.

One code path for every setting: CUDA when available (bf16 autocast, TF32 matmuls, fused AdamW,
pinned memory) else CPU (fp32); one process, or several under ``torchrun`` (DDP: NCCL on GPU,
gloo on CPU; the process group is created here from the environment torchrun sets).
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import torch
import torch.distributed as dist

from dinodiag.errors import TrainingError
from dinodiag.train import distributed
from dinodiag.train.config import RunConfig
from dinodiag.train.rundir import STOP_FILE, stop_requested


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


def setup_runtime(run: RunConfig) -> Runtime:
    """Initialise the process group (under torchrun), pick the device and precision, turn on
    TF32 on CUDA, set the CPU threads and seed this process (``seed + rank``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _pick_device(run.device, local_rank)
    owns = False
    if world > 1 and not distributed.is_distributed():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        owns = True
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if run.threads is not None:
        torch.set_num_threads(run.threads)
    precision = run.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TrainingError(
            f"--precision bf16 is not supported on {torch.cuda.get_device_name(device)}: use "
            "--precision fp32 (fp16 is not offered: DINO overflows in fp16)."
        )
    rank = distributed.rank()
    torch.manual_seed(run.seed + rank)
    return Runtime(
        device=device,
        autocast_dtype=torch.bfloat16 if precision == "bf16" else None,
        world_size=distributed.world_size(),
        rank=rank,
        owns_process_group=owns,
    )


def teardown_runtime(runtime: Runtime) -> None:
    if runtime.owns_process_group and distributed.is_distributed():
        dist.destroy_process_group()


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
