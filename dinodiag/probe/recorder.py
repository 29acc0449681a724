"""Record what every torchvision ``RandomResizedCrop`` (transforms v1 and v2) sampled.

Within :func:`record_random_resized_crops`, each call of a ``RandomResizedCrop``
appends its crop box, source size, fallback and configured size / scale / ratio
to a list; outside the block the classes are untouched. :func:`view_records` turns
one call's list into :class:`~dinodiag.augment.records.ViewRecord` s matched to the
views. This is how dinodiag measures the crop statistics of a pipeline it did not build.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import torch

from dinodiag.augment.pipeline import fallback_crop_box
from dinodiag.augment.records import ViewRecord

_RECORDS: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "dinodiag_rrc_records", default=None
)
_CURRENT_V1: contextvars.ContextVar[Any] = contextvars.ContextVar("dinodiag_rrc_v1", default=None)


def _pair(size: Any) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    size = list(size)
    return (int(size[0]), int(size[0] if len(size) == 1 else size[1]))


def _log(
    transform: Any, version: str, width: int, height: int, top: int, left: int, h: int, w: int
) -> None:
    records = _RECORDS.get()
    if records is None:
        return
    ratio = tuple(float(r) for r in transform.ratio)
    records.append(
        {
            "recorded_by": f"RandomResizedCrop({version})",
            "source_size": (int(width), int(height)),
            "box": (float(left), float(top), float(w), float(h)),
            "fallback": (int(left), int(top), int(w), int(h))
            == fallback_crop_box(int(width), int(height), ratio),
            "configured_size": _pair(transform.size),
            "configured_scale": tuple(float(s) for s in transform.scale),
            "configured_ratio": ratio,
        }
    )


@contextlib.contextmanager
def record_random_resized_crops() -> Iterator[list[dict[str, Any]]]:
    """Within the block, every torchvision RandomResizedCrop call appends what it sampled.

    Patches the classes (v1 ``forward``/``get_params``, v2 ``make_params``) for the
    duration only; calls outside a recording block are unaffected.
    """
    import torchvision.transforms as T
    from torchvision.transforms import functional as F1

    patched: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, new: Any) -> None:
        patched.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, new)

    v1 = T.RandomResizedCrop
    orig_forward = v1.forward
    orig_get_params = v1.__dict__["get_params"].__func__

    def forward(self: Any, img: Any) -> Any:
        token = _CURRENT_V1.set(self)
        try:
            return orig_forward(self, img)
        finally:
            _CURRENT_V1.reset(token)

    def get_params(img: Any, scale: Any, ratio: Any) -> tuple[int, int, int, int]:
        top, left, h, w = orig_get_params(img, scale, ratio)
        owner = _CURRENT_V1.get()
        if owner is not None:
            _, height, width = F1.get_dimensions(img)
            _log(owner, "v1", width, height, top, left, h, w)
        return top, left, h, w

    patch(v1, "forward", forward)
    patch(v1, "get_params", staticmethod(get_params))
    try:
        from torchvision.transforms import v2
        from torchvision.transforms.v2._utils import query_size

        v2_cls = v2.RandomResizedCrop
        name = "make_params" if "make_params" in v2_cls.__dict__ else "_get_params"
        orig_make = v2_cls.__dict__[name]

        def make_params(self: Any, flat_inputs: list[Any]) -> dict[str, Any]:
            params = orig_make(self, flat_inputs)
            height, width = query_size(flat_inputs)
            _log(
                self,
                "v2",
                width,
                height,
                params["top"],
                params["left"],
                params["height"],
                params["width"],
            )
            return params

        patch(v2_cls, name, make_params)
    except (ImportError, KeyError):  # pragma: no cover - very old torchvision without v2
        pass

    records: list[dict[str, Any]] = []
    token = _RECORDS.set(records)
    try:
        yield records
    finally:
        _RECORDS.reset(token)
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)


def view_records(
    crops: list[dict[str, Any]],
    globals_: list[torch.Tensor],
    locals_: list[torch.Tensor],
    source_size: tuple[int, int],
) -> list[ViewRecord]:
    """The recorded crops of one call as :class:`ViewRecord` s, matched to the views.

    When there are as many crops as views, the n-th crop made the n-th view (globals
    first); otherwise a crop whose configured size is the first global view's size is a
    global one. ``globals_`` / ``locals_``: the call's views, ``(C, H, W)`` each;
    ``source_size``: ``(width, height)`` of the image the pipeline was called on.
    """
    width, height = source_size
    n_views = len(globals_) + len(locals_)
    global_size = tuple(globals_[0].shape[-2:]) if globals_ else None
    records: list[ViewRecord] = []
    counters = {"global": 0, "local": 0}
    for position, crop in enumerate(crops):
        if len(crops) == n_views:
            group = "global" if position < len(globals_) else "local"
        else:
            group = "global" if crop["configured_size"] == global_size else "local"
        views = globals_ if group == "global" else locals_
        index = counters[group]
        counters[group] += 1
        left, top, w, h = crop["box"]
        src_w, src_h = crop["source_size"]
        out_size = tuple(views[index].shape[-2:]) if index < len(views) else crop["configured_size"]
        records.append(
            ViewRecord(
                group=group,
                index=index,
                source_size=(src_w, src_h),
                out_size=(int(out_size[0]), int(out_size[1])),
                box=crop["box"],
                scale=(w * h) / (src_w * src_h),
                ratio=w / h,
                fallback=crop["fallback"],
                configured_size=crop["configured_size"],
                configured_scale=crop["configured_scale"],
                configured_ratio=crop["configured_ratio"],
                recorded_by=crop["recorded_by"],
            )
        )
        if (src_w, src_h) != (width, height):
            records[-1].recorded_by += " (on a resized input)"
    return records
