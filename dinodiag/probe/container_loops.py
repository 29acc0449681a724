"""The containers' loops re-run by dinodiag while recording (``Compose``, ``RandomApply``,
``RandomChoice``, ``RandomOrder``, v1 and v2), so that each step is an event of its own
(:func:`~dinodiag.probe.recording.run_step`): a hand-written step of a ``Compose`` (DINO v1's
``GaussianBlur`` class, a lambda) is recorded too.

Each loop draws exactly what torchvision's own method draws (the same ``torch.rand`` /
``random`` calls in the same order), so a recorded call returns the same views and leaves the
generators where an unrecorded call would (``tests/probe/test_recorder.py`` holds both equal).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

import torch

from dinodiag.probe.recording import Event, Recording, run_step


def _v1_compose(self: Any, recording: Recording, event: Event, img: Any) -> Any:
    for step in self.transforms:
        img = run_step(recording, step, img)
    return img


def _v1_random_apply(self: Any, recording: Recording, event: Event, img: Any) -> Any:
    skipped = bool(self.p < torch.rand(1))
    event.choice["applied"] = not skipped
    if skipped:
        return img
    for step in self.transforms:
        img = run_step(recording, step, img)
    return img


def _v1_random_order(self: Any, recording: Recording, event: Event, img: Any) -> Any:
    order = list(range(len(self.transforms)))
    random.shuffle(order)
    event.choice["order"] = order
    for i in order:
        img = run_step(recording, self.transforms[i], img)
    return img


def _v1_random_choice(self: Any, recording: Recording, event: Event, *args: Any) -> Any:
    step = random.choices(self.transforms, weights=self.p)[0]
    event.choice["picked"] = list(self.transforms).index(step)
    return run_step(recording, step, *args)


def _v2_chain(recording: Recording, steps: Any, inputs: tuple[Any, ...]) -> Any:
    needs_unpacking = len(inputs) > 1
    outputs: Any = None
    for step in steps:
        outputs = run_step(recording, step, *inputs)
        inputs = outputs if needs_unpacking else (outputs,)
    return outputs


def _v2_compose(self: Any, recording: Recording, event: Event, *inputs: Any) -> Any:
    return _v2_chain(recording, self.transforms, inputs)


def _v2_random_apply(self: Any, recording: Recording, event: Event, *inputs: Any) -> Any:
    skipped = bool(torch.rand(1) >= self.p)
    event.choice["applied"] = not skipped
    if skipped:
        return inputs if len(inputs) > 1 else inputs[0]
    return _v2_chain(recording, self.transforms, inputs)


def _v2_random_choice(self: Any, recording: Recording, event: Event, *inputs: Any) -> Any:
    idx = int(torch.multinomial(torch.tensor(self.p), 1))
    event.choice["picked"] = idx
    return run_step(recording, self.transforms[idx], *inputs)


def _v2_random_order(self: Any, recording: Recording, event: Event, *inputs: Any) -> Any:
    needs_unpacking = len(inputs) > 1
    order = torch.randperm(len(self.transforms))
    event.choice["order"] = [int(i) for i in order]
    outputs: Any = None
    for idx in order:
        outputs = run_step(recording, self.transforms[idx], *inputs)
        inputs = outputs if needs_unpacking else (outputs,)
    return outputs


@functools.lru_cache(maxsize=1)
def container_loops() -> tuple[tuple[type, str, Callable[..., Any], str], ...]:
    """``(container class, patched method, its loop, family)`` for torchvision v1 and v2."""
    import torchvision.transforms as v1

    table: list[tuple[type, str, Callable[..., Any], str]] = [
        (v1.Compose, "__call__", _v1_compose, "v1"),
        (v1.RandomApply, "forward", _v1_random_apply, "v1"),
        (v1.RandomOrder, "__call__", _v1_random_order, "v1"),
        (v1.RandomChoice, "__call__", _v1_random_choice, "v1"),
    ]
    try:
        from torchvision.transforms import v2
    except ImportError:  # pragma: no cover
        return tuple(table)
    table += [
        (v2.Compose, "forward", _v2_compose, "v2"),
        (v2.RandomApply, "forward", _v2_random_apply, "v2"),
        (v2.RandomChoice, "forward", _v2_random_choice, "v2"),
        (v2.RandomOrder, "forward", _v2_random_order, "v2"),
    ]
    return tuple(table)
