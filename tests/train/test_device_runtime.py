"""The CUDA plumbing, tested where a CPU can test it: precision, TF32 / cuDNN flags, the NCCL
process group, fused AdamW, out-of-memory messages, pinned memory and non-blocking copies."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import dinodiag.augment.gpu.multicrop as multicrop
from dinodiag import rundir
from dinodiag.augment.gpu.multicrop import GPUMultiCrop
from dinodiag.augment.presets import get_preset
from dinodiag.data import open_dataset
from dinodiag.errors import TrainingError
from dinodiag.recipe.presets import get_train_preset
from dinodiag.train import engine, runtime
from dinodiag.train.device_batches import build_device_loader
from dinodiag.train.optim import build_adamw, fused_adamw_applies
from dinodiag.train.runtime import Runtime, autocast_dtype_for, out_of_memory_message
from tests.facts import assert_mentions

CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)


def quiet(line: str) -> None:
    pass


def tiny(**overrides):
    return get_train_preset("tiny-test").config.with_overrides(overrides)


# --------------------------------------------------------------------------- precision


def test_autocast_dtype_follows_precision_and_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert autocast_dtype_for("auto", GPU) is torch.bfloat16
    assert autocast_dtype_for("auto", CPU) is None  # fp32 on a CPU
    assert autocast_dtype_for("bf16", CPU) is torch.bfloat16  # asked for: autocast on the CPU
    assert autocast_dtype_for("fp32", GPU) is None


def test_bf16_on_a_gpu_without_it_is_refused_naming_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100-SXM2-16GB")
    assert autocast_dtype_for("auto", GPU) is None  # auto picks what the GPU has: fp32
    with pytest.raises(TrainingError) as info:  # bf16 asked for by name is refused
        autocast_dtype_for("bf16", GPU)
    assert_mentions(str(info.value), "bf16", "Tesla V100-SXM2-16GB", "--precision fp32")
    assert autocast_dtype_for("fp32", GPU) is None


def test_cuda_backends_get_tf32_and_the_cudnn_autotuner():
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
        runtime.configure_cuda_backends()
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert torch.backends.cudnn.benchmark
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved[0]
        torch.backends.cudnn.allow_tf32 = saved[1]
        torch.backends.cudnn.benchmark = saved[2]


def test_the_nccl_group_is_bound_to_this_processs_gpu(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set", device)))
    monkeypatch.setattr(
        runtime.dist, "init_process_group", lambda **kwargs: calls.append(("init", kwargs))
    )
    runtime._init_process_group("nccl", torch.device("cuda", 3))
    assert calls[0] == ("set", torch.device("cuda", 3))
    assert calls[1] == ("init", {"backend": "nccl", "device_id": torch.device("cuda", 3)})
    calls.clear()
    runtime._init_process_group("gloo", CPU)
    assert calls == [("init", {"backend": "gloo"})]


# --------------------------------------------------------------------------- fused AdamW


def test_fused_adamw_only_for_floating_point_cuda_parameters():
    cuda = SimpleNamespace(is_cuda=True, dtype=torch.float32)
    half = SimpleNamespace(is_cuda=True, dtype=torch.bfloat16)
    index = SimpleNamespace(is_cuda=True, dtype=torch.int64)
    cpu = SimpleNamespace(is_cuda=False, dtype=torch.float32)
    assert fused_adamw_applies([cuda, half])
    assert not fused_adamw_applies([cuda, cpu]) and not fused_adamw_applies([cuda, index])
    assert not fused_adamw_applies([])
    optimizer = build_adamw(nn.Linear(3, 2))  # on the CPU: torch's default kernel
    assert not optimizer.defaults["fused"]
    assert build_adamw(nn.Linear(3, 2), fused=False).defaults["fused"] is None


# --------------------------------------------------------------------------- out of memory


def _oom(*args, **kwargs):
    raise torch.cuda.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB"
    )


def test_out_of_memory_in_the_augmentation_says_so_and_what_to_change(tmp_path, monkeypatch):
    monkeypatch.setattr(multicrop, "crop_resize", _oom)
    run = tmp_path / "run"
    cfg = tiny(**{"data.augment_device": "device", "run.max_steps": 3})
    result = engine.run_training(cfg, run, progress=quiet)
    assert result.state == "failed" and not result.refused
    assert result.message.startswith("out of memory ")
    # where (the augmentation, not the step), when, the batch, and the way out
    assert_mentions(result.message, "on-device augmentation", "step 0", "batch of 4 images")
    assert "--augment-device cpu" in result.message
    assert "Tried to allocate 2.00 GiB" in result.message  # torch's own first line
    events = rundir.read_events(run)
    assert list(events[events["code"] == "out_of_memory"]["message"]) == [result.message]
    assert rundir.read_status(run)["state"] == "failed"


def test_out_of_memory_in_the_step_on_a_gpu_gives_the_memory_figures(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1 * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 77.5 * 2**30)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 78.0 * 2**30)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "NVIDIA H100 80GB HBM3")
    config = get_train_preset("gpu").config
    fp32 = Runtime(GPU, None, 1, 0, False)
    try:
        _oom()
    except torch.OutOfMemoryError as exc:
        message = out_of_memory_message(exc, 12, config, fp32)
        bf16 = out_of_memory_message(exc, 12, config, Runtime(GPU, torch.bfloat16, 1, 0, False))
    assert message.startswith("out of memory ")
    assert_mentions(message, "training step", "step 12", "batch of 128 images", "per process")
    # the GPU and its figures: this run's peak, what torch reserved, what is free of the total
    assert_mentions(
        message, "cuda:0", "NVIDIA H100 80GB HBM3", "77.5 GiB peak", "78.0 GiB reserved"
    )
    assert_mentions(message, "1.0 of 80.0 GiB free")
    assert message.index("--batch-size") < message.index("--precision bf16")  # the first remedy
    assert "--precision bf16" in message and "--precision bf16" not in bf16


# --------------------------------------------------------------------------- pinned, non-blocking


class _Recording(torch.Tensor):
    """A tensor that records the keyword arguments of its ``.to(device)`` calls."""

    calls: list[dict] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.to and any(isinstance(a, torch.device) for a in args):
            cls.calls.append(dict(kwargs or {}))
        return super().__torch_function__(func, types, args, kwargs)


def test_decoded_batches_are_copied_without_blocking():
    crop = GPUMultiCrop(get_preset("small-images").config, device="cpu")
    batch = torch.zeros((2, 3, 12, 12), dtype=torch.uint8)
    for images in (batch, list(batch)):  # a (padded) batch, a list of images
        _Recording.calls = []
        recorded = (
            images.as_subclass(_Recording)
            if isinstance(images, torch.Tensor)
            else [image.as_subclass(_Recording) for image in images]
        )
        crop.batch(recorded, seed=0)
        assert _Recording.calls and all(call.get("non_blocking") for call in _Recording.calls)


def test_the_decode_only_loader_pins_its_batches_for_a_gpu():
    dataset = open_dataset("generated:n=8,val_n=4,size=16,classes=2")
    config = tiny()
    pipeline = get_preset("small-images").config.replace(global_crops_size=16, patch_size=4)
    for pin in (True, False):
        loader, _, _ = build_device_loader(
            config, pipeline, dataset, mask=None, world_size=1, rank=0, pin_memory=pin
        )
        assert loader.pin_memory is pin
