"""The devices a run can train on: the GPUs torch sees and the CPU, and what they can run.

detect_devices()        # (DeviceOption("cuda:0", "GPU 0: NVIDIA H100 ... (79.2 GiB)", True),
                        #  DeviceOption("cpu", "CPU (2 cores)", False))
gpu_warning("gpu")      # a sentence when the preset is sized for a GPU and none is here
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

# Training presets sized for a GPU: on a CPU they take hours (cpu-demo is made for CPUs).
GPU_PRESETS = ("gpu", "small-images")


@dataclass(frozen=True)
class DeviceOption:
    """A device the launch form offers, with what was detected."""

    value: str  # what --device gets: cpu, cuda:0 ...
    label: str  # "GPU 0: NVIDIA H100 80GB HBM3 (79.2 GiB)" / "CPU (2 cores)"
    is_gpu: bool


@lru_cache(maxsize=1)
def detect_devices() -> tuple[DeviceOption, ...]:
    """The GPUs torch sees (name and memory) and the CPU (core count); the best first."""
    import torch  # imported here: the dashboard's other pages start without it

    cores = os.cpu_count() or 1
    cpu = DeviceOption("cpu", f"CPU ({cores} core{'s' if cores != 1 else ''})", False)
    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            memory = props.total_memory / 2**30
            label = f"GPU {index}: {props.name} ({memory:.1f} GiB)"
            gpus.append(DeviceOption(f"cuda:{index}", label, True))
    return (*gpus, cpu)


def has_gpu() -> bool:
    return any(d.is_gpu for d in detect_devices())


def device_summary() -> str:
    """One line: what training would run on."""
    devices = detect_devices()
    gpus = [d.label for d in devices if d.is_gpu]
    return ", ".join(gpus) if gpus else f"no CUDA GPU: {devices[-1].label}"


def device_choices() -> dict[str, str]:
    """``{--device value: label}`` for the form: ``auto`` first, then each detected device."""
    return {
        "auto": "auto (the GPU when there is one)",
        **{d.value: d.label for d in detect_devices()},
    }


def gpu_warning(preset: str, gpu: bool | None = None) -> str | None:
    """Why ``preset`` is a bad idea here (sized for a GPU, none detected), or None.

    ``gpu`` says whether a GPU is available (default: detect).
    """
    if preset not in GPU_PRESETS or (has_gpu() if gpu is None else gpu):
        return None
    return (
        f"The {preset} preset is sized for a GPU and no GPU was detected: on a CPU it takes "
        "hours. cpu-demo is made for CPUs."
    )
