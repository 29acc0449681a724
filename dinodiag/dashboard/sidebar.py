"""What the dashboard's sidebar decides, as plain data: dataset spec, pipeline, reference, seed.

The Streamlit app (``app.py``) lays out widgets and passes their values here;
this module turns them into a dataset spec, a validated :class:`PipelineConfig`
(a preset or a pasted / uploaded YAML or DINOv2 config, with field edits) or a
own pipeline, and one-line descriptions. It never imports Streamlit, so
the same logic is tested without a browser.

Example::

    spec = dataset_spec("generated", generated_images=64, generated_size=96)
    cfg = apply_edits(base_config(PipelineChoice("preset", preset="seed-broken")),
                      {"global_crops_scale": (0.4, 1.0)})
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import yaml

from dinodiag.augment.config import (
    PipelineConfig,
    config_from_dict,
    config_from_dinov2,
    is_dinov2_config,
    parse_config_text,
    to_dict,
)
from dinodiag.augment.presets import PRESETS, get_preset
from dinodiag.data.base import ImageDataset, LoadProblem
from dinodiag.data.loading import ImageLoadError, load_image_bytes, read_image_size_bytes
from dinodiag.errors import ConfigError, DataError

# ------------------------------------------------------------------------------ datasets

DATASET_SOURCES = {
    "sample": "Sample images (built in)",
    "generated": "Generated shapes (synthetic)",
    "folder": "Image folder on this machine",
    "cifar10": "CIFAR-10 (local root)",
    "cifar100": "CIFAR-100 (local root)",
    "stl10": "STL-10 (local root)",
    "upload": "Upload images",
}
PATH_SOURCES = ("folder", "cifar10", "cifar100", "stl10")  # the sources read from a path

# Uploads live in the server's memory, decoded (PIL keeps 4 bytes per RGB pixel), and the app
# keeps the last UPLOADS_KEPT upload sets for every session together: these bounds keep one
# request from taking gigabytes (a 252 KiB 9000 x 9000 PNG decodes to 309 MiB).
MAX_UPLOADED_IMAGES = 200  # files per upload; more belongs in a folder
MAX_UPLOAD_IMAGE_PIXELS = 16_000_000  # one uploaded image (a 12 Mpx phone photo fits): 64 MB
MAX_UPLOAD_TOTAL_PIXELS = 32_000_000  # all images of one upload together: 128 MB decoded
UPLOADS_KEPT = 4  # upload sets the app's cache holds (pages/_shared.cached_uploads)
UPLOAD_LIMITS = (
    f"At most {MAX_UPLOADED_IMAGES} files, {MAX_UPLOAD_IMAGE_PIXELS / 1e6:g} megapixels each "
    f"and {MAX_UPLOAD_TOTAL_PIXELS / 1e6:g} megapixels in all: uploads are kept in the "
    "server's memory. Larger sets: put them in a folder and choose *Image folder on this "
    "machine*."
)


def path_label(source: str) -> str | None:
    """The label of the path box a dataset source needs, None when it needs no path."""
    if source not in PATH_SOURCES:
        return None
    return "Folder path" if source == "folder" else "Dataset root"


def dataset_spec(
    source: str,
    path: str = "",
    generated_images: int = 200,
    generated_size: int = 96,
    seed: int = 0,
) -> str:
    """The ``dinodiag.data.open_dataset`` spec for a sidebar choice (not for uploads).

    Raises :class:`DataError` when a path is needed and missing.
    """
    if source == "sample":
        return "sample"
    if source == "generated":
        return (
            f"generated:n={int(generated_images)},size={int(generated_size)},classes=10,seed={seed}"
        )
    if source in PATH_SOURCES:
        path = path.strip()
        if not path:
            what = (
                "an image folder" if source == "folder" else f"the {DATASET_SOURCES[source]} root"
            )
            raise DataError(f"type the path of {what} in the sidebar (e.g. /data/images).")
        return f"{source}:{path}"
    raise DataError(f"unknown dataset source {source!r}: one of {', '.join(DATASET_SOURCES)}.")


def waiting_for_path(source: str) -> str:
    """What the sidebar asks for while a path source has no path yet (not an error)."""
    what = "an image folder" if source == "folder" else f"the {DATASET_SOURCES[source]} root"
    return f"type the path of {what} in the sidebar (e.g. /data/images)."


# The dataset loaders name the other sources as the CLI spells them; the sidebar's menu
# calls them otherwise.
_MENU_WORDS = {
    "'sample' / 'generated'": f"*{DATASET_SOURCES['sample']}* or *{DATASET_SOURCES['generated']}*",
    "'sample' for the bundled sample images": f"*{DATASET_SOURCES['sample']}*",
    "'generated' for a synthetic dataset": f"*{DATASET_SOURCES['generated']}*",
    "'sample'": f"*{DATASET_SOURCES['sample']}*",
    "'generated'": f"*{DATASET_SOURCES['generated']}*",
}


def menu_words(message: str) -> str:
    """A dataset error with the CLI's source names replaced by the sidebar menu's."""
    for cli, menu in _MENU_WORDS.items():
        message = message.replace(cli, menu)
    return message


def short_hash(text: str | bytes, length: int = 12) -> str:
    """A short stable hex digest (cache keys, widget keys)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha1(data).hexdigest()[:length]


def upload_key(files: list[tuple[str, bytes]]) -> str:
    """A key identifying a set of uploaded files by name and content."""
    return short_hash(
        b"".join(name.encode() + hashlib.sha1(data).digest() for name, data in files), 16
    )


def dataset_split(spec: str) -> str:
    """The split the app browses: everything for folders, ``train`` for the others."""
    return "all" if spec == "sample" or spec.startswith("folder:") else "train"


def load_upload(data: bytes, name: str) -> Any:
    """One uploaded image as RGB, refused (header read only, nothing decoded) when it has
    more than :data:`MAX_UPLOAD_IMAGE_PIXELS`. Raises :class:`ImageLoadError`."""
    _check_upload_pixels(name, *read_image_size_bytes(data, name))
    return load_image_bytes(data, name)


def _check_upload_pixels(name: str, width: int, height: int) -> None:
    if width * height > MAX_UPLOAD_IMAGE_PIXELS:
        raise ImageLoadError(
            name,
            f"{width} x {height} = {width * height / 1e6:.1f} megapixels is more than the "
            f"{MAX_UPLOAD_IMAGE_PIXELS / 1e6:g} an uploaded image may have (it would take "
            f"{4 * width * height / 2**20:,.0f} MiB of the server's memory decoded): resize it, "
            "or put it in a folder and choose 'Image folder on this machine'",
        )


class UploadedImages(ImageDataset):
    """Images uploaded in the browser, decoded once and kept in memory (unlabelled).

    Bounded (:data:`UPLOAD_LIMITS`): every header is read before anything is decoded; an
    image over the per-image limit is a problem (left out), a set over the total is refused.
    """

    def __init__(self, files: list[tuple[str, bytes]]) -> None:
        super().__init__(f"{len(files)} uploaded image(s)", None, "all")
        if not files:
            raise DataError("no image uploaded yet: drop JPEG / PNG files on the uploader.")
        if len(files) > MAX_UPLOADED_IMAGES:
            raise DataError(
                f"{len(files)} files uploaded; at most {MAX_UPLOADED_IMAGES} are accepted. "
                "Put larger sets in a folder and choose 'Image folder'."
            )
        readable: list[tuple[str, bytes]] = []
        total = 0
        for name, data in files:  # headers only: refuse before decoding
            try:
                width, height = read_image_size_bytes(data, name)
                _check_upload_pixels(name, width, height)
            except ImageLoadError as error:
                self._record(LoadProblem(error.path, error.reason))
                continue
            readable.append((name, data))
            total += width * height
        if total > MAX_UPLOAD_TOTAL_PIXELS:
            raise DataError(
                f"the {len(readable)} uploaded images have {total / 1e6:.1f} megapixels together; "
                f"at most {MAX_UPLOAD_TOTAL_PIXELS / 1e6:g} are accepted (uploads are kept "
                "decoded in the server's memory): upload fewer or smaller images, or put them "
                "in a folder and choose 'Image folder on this machine'."
            )
        self._names: list[str] = []
        self._images = []
        for name, data in readable:
            try:
                self._images.append(load_image_bytes(data, name))
                self._names.append(name)
            except ImageLoadError as error:
                self._record(LoadProblem(error.path, error.reason))
        if not self._images:
            reasons = "; ".join(f"{p.path}: {p.reason}" for p in self.problems)
            raise DataError(f"none of the uploaded files is a usable image ({reasons}).")
        self.key = upload_key(files)  # identifies the upload (cache key)

    def __len__(self) -> int:
        return len(self._images)

    def _load(self, index: int) -> tuple[Any, int]:
        return self._images[index], -1

    def describe(self, index: int) -> str:
        return f"upload: {self._names[index]}"

    def label(self, index: int) -> int:
        return -1


def describe_dataset(dataset: Any) -> str:
    """One line: name, item count, labels, problems found so far."""
    name = getattr(dataset, "name", type(dataset).__name__)
    classes = getattr(dataset, "classes", None)
    labels = f"{len(classes)} classes" if classes else "unlabelled"
    problems = len(getattr(dataset, "problems", []) or [])
    tail = f", {problems} unusable file(s) skipped" if problems else ""
    return f"{name}: {len(dataset)} images, {labels}{tail}"


def problem_rows(dataset: Any) -> list[dict[str, str]]:
    """Every unusable file found so far, one row each: ``{"file": path, "reason": why}``."""
    return [{"file": p.path, "reason": p.reason} for p in getattr(dataset, "problems", []) or []]


# ------------------------------------------------------------------------------ pipelines

PIPELINE_SOURCES = {
    "preset": "Preset",
    "config": "YAML / JSON / DINOv2 config",
    "own": "My own code (file.py:factory)",
}


@dataclass(frozen=True)
class PipelineChoice:
    """The pipeline the sidebar describes (one of three sources)."""

    source: str = "preset"  # "preset" | "config" | "own"
    preset: str = "dinov2"  # preset name when source == "preset"
    config_text: str = ""  # pasted or uploaded YAML / JSON / DINOv2 training config
    config_name: str = "pasted config"  # file name of an upload, used in error messages
    spec: str = ""  # "path/to/file.py:factory" or "package.module:factory" (own code)
    spec_kwargs: str = ""  # JSON object of keyword arguments for the factory (own code)


@dataclass(frozen=True)
class ConfigInput:
    """Which of the config uploader and the paste box the sidebar reads, and why."""

    source: str  # "upload", "text" or "none" (nothing given yet)
    note: str = ""  # said under the boxes when both hold something
    waiting: str = (
        "paste a YAML / JSON config or upload a file in the sidebar (a DINOv2 training YAML works)."
    )


def config_input(upload_name: str | None, text: str, prefer: str | None) -> ConfigInput:
    """The config the sidebar reads when a file is uploaded and / or text is pasted: the one
    edited last (``prefer``: "upload" or "text", set by the widgets' on_change), and a note
    naming the one left out, so that neither is ignored silently."""
    pasted = bool(text.strip())
    if upload_name is None:
        return ConfigInput("text" if pasted else "none")
    if not pasted:
        return ConfigInput("upload")
    if prefer == "text":
        return ConfigInput(
            "text",
            f"Using the pasted text; the uploaded file {upload_name} is left out "
            "(upload it again, or remove the text, to use it).",
        )
    return ConfigInput(
        "upload",
        f"Using the uploaded file {upload_name}; the pasted text is left out (edit the text, "
        "or remove the file, to use the text).",
    )


def unclosed_bracket(text: str) -> str | None:
    """Where a YAML / JSON text leaves a ``[`` or ``{`` open, said as a person reads it, or
    None when that is not its error.

    The parser reports such a text where it gave up (``line 5, column 19``: the next key),
    a line below the mistake; the bracket's own line is where the ``]`` is missing. Parse
    events only: nothing is constructed (no alias is expanded).
    """
    try:
        for _ in yaml.parse(text):
            pass
    except yaml.MarkedYAMLError as exc:
        opened, gave_up = exc.context_mark, exc.problem_mark
        if not (exc.context or "").startswith("while parsing a flow") or opened is None:
            return None
        line = text.splitlines()[opened.line] if opened.line < len(text.splitlines()) else ""
        bracket = line[opened.column] if opened.column < len(line) else "["
        closing = {"[": "]", "{": "}"}.get(bracket, "]")
        later = (
            f" (the parser noticed it at line {gave_up.line + 1}, column {gave_up.column + 1})"
            if gave_up is not None and gave_up.line != opened.line
            else ""
        )
        return (
            f"line {opened.line + 1}: the `{bracket}` opened at column {opened.column + 1} is "
            f"never closed{later}; add its `{closing}` after its last value."
        )
    except yaml.YAMLError:
        return None
    return None


def config_text_data(text: str, name: str) -> dict[str, Any]:
    """:func:`parse_config_text`, with an unclosed bracket named at the line it was opened
    (:func:`unclosed_bracket`). Raises :class:`ConfigError`."""
    try:
        return parse_config_text(text, source=name)
    except ConfigError as exc:
        where = unclosed_bracket(text) if "not valid YAML" in str(exc) else None
        if where is None:
            raise
        raise ConfigError(f"{name}: not valid YAML/JSON at {where}") from None


def base_config(choice: PipelineChoice) -> PipelineConfig:
    """The config before edits: a preset, or parsed text. Raises :class:`ConfigError`."""
    if choice.source == "preset":
        return get_preset(choice.preset).config
    if choice.source == "config":
        if not choice.config_text.strip():
            raise ConfigError(
                "paste a YAML / JSON config or upload a file (a DINOv2 training YAML works)."
            )
        data = config_text_data(choice.config_text, choice.config_name)
        if is_dinov2_config(data):
            return config_from_dinov2(data, source=choice.config_name)
        try:
            cfg = config_from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{choice.config_name}: {exc}") from None
        return cfg if "name" in data else cfg.replace(name=choice.config_name.rsplit(".", 1)[0])
    raise ConfigError(f"pipeline source {choice.source!r} has no config (your own pipeline).")


def config_key(cfg: PipelineConfig) -> str:
    """A stable text key of a config (for caches)."""
    return json.dumps(to_dict(cfg), sort_keys=True)


def describe_config(cfg: PipelineConfig) -> str:
    """``dinov2: 2 x 224 px globals (0.32-1) + 8 x 96 px locals (0.05-0.32), patch 16``."""
    g_lo, g_hi = cfg.global_crops_scale
    line = (
        f"{cfg.name}: {cfg.global_crops_number} × {cfg.global_crops_size} px globals "
        f"({g_lo:g}–{g_hi:g})"
    )
    if cfg.local_crops_number:
        l_lo, l_hi = cfg.local_crops_scale
        line += (
            f" + {cfg.local_crops_number} × {cfg.local_crops_size} px locals ({l_lo:g}–{l_hi:g})"
        )
    else:
        line += ", no local crops"
    return line + f", patch {cfg.patch_size}"


def reference_names() -> list[str]:
    """Presets that can serve as the reference (the seed's examples of mistakes excluded)."""
    return [name for name, preset in PRESETS.items() if preset.reference]


class LRUStore:
    """A small thread-safe least-recently-used map (the app keeps sampled frames in one).

    Used instead of ``st.cache_data`` where the computation reports progress to the
    page: Streamlit cannot replay a cached function that updated a progress bar
    created outside it.
    """

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity  # entries kept; the least recently used goes first
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any | None:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
