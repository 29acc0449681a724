"""The operation recorder: scoped, thread-safe, and invisible to the user's random stream."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
import torch
import torchvision.transforms as T
from conftest import make_image
from own_pipelines import dino_v1_style, dinov2_style, v2_style
from PIL import Image
from torchvision.transforms import v2

from dinodiag.probe.recorder import record_operations


def _flat(output: Any) -> list[Any]:
    if isinstance(output, dict):
        return [v for value in output.values() for v in (value if isinstance(value, list) else [])]
    return list(output) if isinstance(output, (list, tuple)) else [output]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, Image.Image):
        return a.tobytes() == b.tobytes()
    return a == b


def _seeded_call(transform: Any, image: Image.Image) -> tuple[list[Any], float, float]:
    torch.manual_seed(11)
    random.seed(11)
    output = transform(image)
    return _flat(output), float(torch.rand(1)), random.random()


CONTAINERS_V1 = T.Compose(
    [
        T.RandomOrder([T.RandomHorizontalFlip(), T.RandomGrayscale(0.5), T.ColorJitter(0.3)]),
        T.RandomChoice([T.RandomCrop(20), T.CenterCrop(24), lambda x: x], p=[0.3, 0.3, 0.4]),
        T.RandomApply([T.RandomSolarize(100, p=0.5), lambda x: x.rotate(3)], p=0.5),
        T.ToTensor(),
    ]
)
CONTAINERS_V2 = v2.Compose(
    [
        v2.RandomOrder([v2.RandomHorizontalFlip(), v2.RandomGrayscale(0.5), v2.ColorJitter(0.3)]),
        v2.RandomChoice([v2.RandomCrop(20), v2.CenterCrop(24)]),
        v2.RandomApply([v2.RandomSolarize(100, p=0.5)], p=0.5),
        v2.PILToTensor(),
    ]
)


@pytest.mark.parametrize(
    "make",
    [dinov2_style, lambda: dinov2_style("inverted"), dino_v1_style, v2_style]
    + [lambda: CONTAINERS_V1, lambda: CONTAINERS_V2],
    ids=["dinov2", "inverted", "dino_v1", "v2", "containers_v1", "containers_v2"],
)
def test_a_recorded_call_returns_what_an_unrecorded_one_does(make) -> None:
    """Same views and the same generator states after: the recorder draws nothing itself."""
    transform = make()
    for seed in range(4):
        image = make_image(64 + seed, 48, seed=seed)
        plain = _seeded_call(transform, image)
        with record_operations() as recording:
            recorded = _seeded_call(transform, image)
        assert recording.events, "the call was recorded"
        assert len(plain[0]) == len(recorded[0])
        assert all(_same(a, b) for a, b in zip(plain[0], recorded[0], strict=True))
        assert plain[1:] == recorded[1:]


def test_recording_is_scoped_and_the_classes_are_restored(image: Image.Image) -> None:
    originals = (T.Compose.__call__, T.RandomApply.forward, v2.Transform.forward)
    crop = T.RandomResizedCrop(8)
    with record_operations() as recording:
        crop(image)
        assert T.Compose.__call__ is not originals[0]  # patched while recording
    crop(image)  # outside: not recorded
    assert [type(e.transform).__name__ for e in recording.events] == ["RandomResizedCrop"]
    assert (T.Compose.__call__, T.RandomApply.forward, v2.Transform.forward) == originals
    assert "get_params" in T.RandomResizedCrop.__dict__


def test_recordings_in_threads_see_only_their_own_calls() -> None:
    """Two threads record at once (the app serves sessions in threads): each sees its calls,
    and the classes are restored when the last one ends."""
    original = T.RandomHorizontalFlip.forward
    start = threading.Barrier(2)
    counts: dict[str, int] = {}

    def work(name: str, calls: int) -> None:
        flip = T.RandomHorizontalFlip(p=1.0)
        start.wait()
        with record_operations() as recording:
            for _ in range(calls):
                flip(Image.new("RGB", (4, 4)))
        counts[name] = len(recording.events)

    threads = [threading.Thread(target=work, args=(n, c)) for n, c in (("a", 30), ("b", 7))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts == {"a": 30, "b": 7}
    assert T.RandomHorizontalFlip.forward is original


def test_nested_containers_and_bare_get_params_calls_are_events(image: Image.Image) -> None:
    jitter = T.ColorJitter(0.4)

    def own_crop(img: Image.Image) -> Image.Image:  # a user's crop drawn with get_params
        top, left, h, w = T.RandomResizedCrop.get_params(img, (0.5, 1.0), (0.75, 1.33))
        return img.crop((left, top, left + w, top + h))

    pipeline = T.Compose([own_crop, T.RandomApply([jitter], p=1.0)])
    with record_operations() as recording:
        pipeline(image)
    roles = [(type(e.transform).__name__, e.role) for e in recording.events]
    assert ("Compose", "container") in roles and ("RandomApply", "container") in roles
    params = [e for e in recording.events if e.role == "params"]
    assert len(params) == 1 and params[0].transform is T.RandomResizedCrop
    jitter_event = next(e for e in recording.events if e.transform is jitter and e.role == "leaf")
    assert jitter_event.is_leaf and len(jitter_event.drawn) == 5  # (order, b, c, s, h)
    step = next(e for e in recording.events if e.transform is own_crop)
    # a step that only drew parameters is still a leaf, its draw beside it
    assert step.role == "step" and step.is_leaf and step.drawn_inside == params


def test_a_failing_transform_closes_its_event_and_restores_the_classes(image) -> None:
    def broken(img: Image.Image) -> Image.Image:
        raise ValueError("broken step")

    original = T.Compose.__call__
    with pytest.raises(ValueError, match="broken step"), record_operations() as recording:
        T.Compose([T.RandomHorizontalFlip(), broken])(image)
    assert T.Compose.__call__ is original
    # the Compose, the flip's step and the flip itself, the broken step
    assert [e.failed for e in recording.events] == [True, False, False, True]
