"""The devices a run can use: detection, the form's choices, GPU checks and warnings."""

from __future__ import annotations

import pytest

from dinodiag.errors import ConfigError
from dinodiag.recipe.plan import check_device
from dinodiag.recipe.presets import get_train_preset
from dinodiag.runs import devices
from dinodiag.runs.devices import (
    DeviceOption,
    detect_devices,
    device_choices,
    device_summary,
    gpu_warning,
)
from tests.facts import assert_mentions


def test_detected_devices_end_with_the_cpu_and_its_cores():
    found = detect_devices()
    assert found[-1].value == "cpu" and "core" in found[-1].label and not found[-1].is_gpu
    assert all(d.value.startswith("cuda:") and d.is_gpu for d in found[:-1])
    gpus = [d.label for d in found[:-1]]
    assert device_summary() == (", ".join(gpus) if gpus else f"no CUDA GPU: {found[-1].label}")
    choices = device_choices()
    assert list(choices) == ["auto", *(d.value for d in found)]
    assert choices["cpu"] == found[-1].label


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with one GPU and a CPU, whatever this one has."""
    fake = (
        DeviceOption("cuda:0", "GPU 0: test (8.0 GiB)", True),
        DeviceOption("cpu", "CPU", False),
    )
    monkeypatch.setattr(devices, "detect_devices", lambda: fake)


def test_check_device_names_a_missing_gpu(one_gpu: None):
    config = get_train_preset("tiny-test").config
    for fine in ("cpu", "auto", "cuda", "cuda:0", " CUDA:0 "):
        check_device(config.with_overrides({"run.device": fine}), gpus=1)
    with pytest.raises(ConfigError) as info:
        check_device(config.with_overrides({"run.device": "cuda:1"}), gpus=1)
    # the device asked for, how many GPUs there are, and what to choose instead
    assert_mentions(str(info.value), "'cuda:1'", "not available", "1 GPU(s)", "cpu or auto")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        check_device(config.with_overrides({"run.device": "cuda"}), gpus=0)
    assert device_summary() == "GPU 0: test (8.0 GiB)"


def test_gpu_presets_warn_only_without_a_gpu(one_gpu: None):
    assert gpu_warning("gpu") is None and gpu_warning("small-images") is None  # one is detected
    for preset in ("gpu", "small-images"):
        text = gpu_warning(preset, gpu=False)
        assert text is not None
        assert_mentions(text, f"The {preset} preset", "GPU", "cpu-demo")  # and the one for CPUs
    assert (
        gpu_warning("cpu-demo", gpu=False) is None and gpu_warning("tiny-test", gpu=False) is None
    )
