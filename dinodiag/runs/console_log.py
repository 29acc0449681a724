"""DINOv2's console log (``log.txt``) read as evidence: the meters it prints every 10
iterations, the config it echoes at start-up, and how each launch started and ended.

DINOv2 (``dinov2/logging``, REFERENCE.md "How DINOv2 logs a run") writes to
``train.output_dir/logs/log.txt`` (rank 0; ``log.txt.rank<r>`` for other ranks), each record
prefixed ``I20231201 12:00:00 1234 dinov2 helpers.py:103]``; a multi-line record (the config
echo) continues on lines without the prefix. The training lines read::

    Training  [ 1230/125000]  eta: 1 day, 2:03:04  lr: 0.0000 (0.0000)  ...
    total_loss: 13.4130 (13.4203)  koleo_loss: 0.0315 (inf)  time: 0.512345  data: 0.012345

Each meter is ``median (global average)`` over the launch: the median is what
``training_metrics.json`` keeps, so a transient ``inf`` / ``nan`` shows only in the average.
The other records read here: ``Starting training from iteration N`` (a launch starts),
``NaN detected`` (DINOv2's only stop on a bad loss), ``Training Total time: ...`` (the loop
ended: the planned iterations or the end of a finite dataset).

DINO v1's ``main_dino.py`` writes one JSON object per epoch to ``output_dir/log.txt``
instead; :func:`is_dino_v1_log` tells the two apart.

    log = read_console_log("/out/run/logs/log.txt")
    log.rows[["iteration", "total_loss", "total_loss_avg"]]
    log.config                 # the echoed config as a mapping, or None
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dinodiag.errors import DinodiagError, TrainingError
from dinodiag.runs.launches import launch_ids
from dinodiag.safe_yaml import load_config_text

LOG_NAMES = ("logs/log.txt", "log.txt")  # where DINOv2 writes it, where users copy it
PREFIX = re.compile(r"^[IWEDC]\d{8} \d{2}:\d{2}:\d{2}(?:\.\d+)? +\d+ +\S+ +\S+:\d+\] ?")
TRAINING = re.compile(r"(?P<header>\S[^\[]*?)\s*\[\s*(?P<i>\d+)\s*/\s*(?P<n>\d+)\]")
METER = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*):\s+(?P<median>[-+]?(?:[0-9.]+(?:e[-+]?\d+)?|nan|inf))"
    r"\s+\((?P<avg>[-+]?(?:[0-9.]+(?:e[-+]?\d+)?|nan|inf))\)",
    re.IGNORECASE,
)
SINGLE = re.compile(r"\b(?P<name>time|data):\s+(?P<value>[-+]?[0-9.]+(?:e[-+]?\d+)?)")
STARTING = re.compile(r"Starting training from iteration (\d+)")
TOTAL_TIME = re.compile(r"Total time: (\S.*?) \(([0-9.]+) s / it\)")
ECHO_KEYS = (  # keys a config echo is grepped for when it cannot be parsed whole
    "dino.head_n_prototypes",
    "dino.koleo_loss_weight",
    "train.OFFICIAL_EPOCH_LENGTH",
    "train.batch_size_per_gpu",
    "optim.epochs",
    "optim.warmup_epochs",
    "optim.base_lr",
    "optim.lr",
    "crops.local_crops_number",
    "crops.global_crops_size",
    "crops.local_crops_size",
    "student.patch_size",
)
MAX_LOG_BYTES = 512 * 1024 * 1024  # a console log larger than this is read from its tail


@dataclass
class ConsoleLog:
    """What a DINOv2 console log holds."""

    path: Path
    rows: pd.DataFrame  # iteration, planned, line, launch + each meter (median) + <meter>_avg
    launch_starts: list[tuple[int, int]] = field(default_factory=list)  # (line, iteration)
    nan_lines: list[int] = field(default_factory=list)  # "NaN detected"
    total_time_lines: list[int] = field(default_factory=list)  # "Training Total time: ..."
    config: dict[str, Any] | None = None  # the echoed config (a mapping of sections)
    config_keys: dict[str, Any] = field(default_factory=dict)  # "dino.head_n_prototypes" -> v
    lines: int = 0
    notes: list[str] = field(default_factory=list)


def find_console_log(run_dir: Path) -> Path | None:
    """``logs/log.txt`` (DINOv2's place), else ``log.txt`` (a copy next to the metrics)."""
    for name in LOG_NAMES:
        path = run_dir / name
        if path.is_file():
            return path
    return None


def is_dino_v1_log(path: Path) -> bool:
    """DINO v1's log.txt: JSON objects per epoch (``"epoch"``, ``"train_loss"``)."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            first = handle.readline(100_000).strip()
    except OSError:
        return False
    try:
        row = json.loads(first)
    except ValueError:
        return False
    return isinstance(row, dict) and "epoch" in row and any(k.startswith("train_") for k in row)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_console_log(path: str | Path) -> ConsoleLog:
    """Parse a DINOv2 console log (see the module). Unreadable files raise
    :class:`TrainingError` naming the file; lines that are not DINOv2 records are skipped (a
    console log holds tracebacks and warnings too)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            if size > MAX_LOG_BYTES:
                handle.seek(size - MAX_LOG_BYTES)
            data = handle.read()
    except OSError as exc:
        raise TrainingError(f"cannot read {path}: {exc.strerror or exc}.") from None
    text = data.decode("utf-8", errors="replace")
    log = ConsoleLog(path=path, rows=pd.DataFrame())
    if size > MAX_LOG_BYTES:
        log.notes.append(f"{path} is {size / 2**30:.1f} GiB: only its last 512 MiB were read.")
    rows: list[dict[str, Any]] = []
    echo: list[str] = []  # lines of the record being continued (a multi-line message)
    echoes: list[list[str]] = []
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # the line being written
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        prefixed = PREFIX.match(line)
        if not prefixed:
            if echo:
                echo.append(line)
            continue
        if echo:
            echoes.append(echo)
            echo = []
        message = line[prefixed.end() :]
        if message.rstrip().endswith(("Cfg:", ":")) or _looks_like_config(message):
            echo = [message]
            continue
        if match := STARTING.search(message):
            log.launch_starts.append((number, int(match[1])))
        elif "NaN detected" in message:
            log.nan_lines.append(number)
        elif TOTAL_TIME.search(message):
            log.total_time_lines.append(number)
        elif (training := TRAINING.match(message)) and "eta:" in message:
            row: dict[str, Any] = {
                "iteration": int(training["i"]),
                "planned": int(training["n"]),
                "line": number,
            }
            for meter in METER.finditer(message):
                row[meter["name"]] = _float(meter["median"])
                row[f"{meter['name']}_avg"] = _float(meter["avg"])
            for single in SINGLE.finditer(message):
                row["iter_time" if single["name"] == "time" else "data_time"] = _float(
                    single["value"]
                )
            rows.append(row)
    if echo:
        echoes.append(echo)
    log.lines = len(lines)
    log.rows = pd.DataFrame(rows)
    log.config, log.config_keys = _read_echo(echoes, text)
    return log


def _looks_like_config(message: str) -> bool:
    """The first line of an echoed config: ``MODEL:`` / ``compute_precision:`` (YAML, from
    ``write_config``) or ``{'MODEL': ...`` (``Cfg:`` with the dict on the same line)."""
    stripped = message.strip()
    return stripped in ("MODEL:", "compute_precision:", "dino:", "train:") or (
        stripped.startswith("{'") and "'dino'" in stripped
    )


def _read_echo(echoes: list[list[str]], text: str) -> tuple[dict[str, Any] | None, dict]:
    """The last echoed config that parses as a mapping with a ``dino`` or ``train`` section,
    and the :data:`ECHO_KEYS` it (or, failing that, the raw text) holds."""
    config: dict[str, Any] | None = None
    for block in reversed(echoes):
        head, body = block[0].strip(), "\n".join(block[1:])
        candidates = [body] if head.endswith(":") and head != "MODEL:" else []
        candidates += ["\n".join(block)]
        for candidate in candidates:
            parsed = _parse_mapping(candidate)
            if isinstance(parsed, dict) and ("dino" in parsed or "train" in parsed):
                config = parsed
                break
        if config is not None:
            break
    keys: dict[str, Any] = {}
    for dotted in ECHO_KEYS:
        section, _, key = dotted.partition(".")
        if config is not None and isinstance(config.get(section), dict):
            if key in config[section]:
                keys[dotted] = config[section][key]
                continue
        # a grepped echo ("head_n_prototypes: 131072"): the first value after the section
        match = re.search(
            rf"(?ms)^\s*'?{re.escape(section)}'?:.*?^\s*'?{re.escape(key)}'?:\s*([-+0-9.e]+)",
            text,
        ) or re.search(rf"(?m)^\s*'?{re.escape(key)}'?:\s*([-+0-9.e]+)\s*,?\s*$", text)
        if match:
            try:
                keys[dotted] = ast.literal_eval(match[1])
            except (ValueError, SyntaxError):
                continue
    return config, keys


def _parse_mapping(text: str) -> Any:
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.startswith("{"):
        try:
            return ast.literal_eval(stripped)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    try:
        return load_config_text(stripped, source="the config echo")
    except DinodiagError:
        return None


def join_console(raw: pd.DataFrame, console: ConsoleLog, notes: list[str]) -> pd.DataFrame:
    """Join the console log's rows (console line, planned iterations, running averages) onto
    training_metrics.json's, launch by launch from the last (a console log may begin later);
    with no metrics file, the console's rows are the log."""
    rows = console.rows.copy()
    if rows.empty:
        return raw
    start_rows = []
    for start_line, _ in console.launch_starts:
        after = np.flatnonzero(rows["line"].to_numpy() > start_line)
        if len(after):
            start_rows.append(int(after[0]))
    rows["launch"] = launch_ids(rows["iteration"].to_numpy(dtype=float), start_rows)
    if raw.empty:
        return rows
    extra = ["line", "planned", *[c for c in rows.columns if c.endswith("_avg")]]
    n_raw, n_console = int(raw["launch"].max()) + 1, int(rows["launch"].max()) + 1
    if n_raw != n_console:
        notes.append(
            f"training_metrics.json holds {n_raw} launch(es), {console.path.name} "
            f"{n_console}: paired from the last (one was truncated, rotated or copied in part)."
        )
    parts = []
    for index in range(n_raw):
        own = raw[raw["launch"] == index]
        other = index + n_console - n_raw
        if 0 <= other < n_console:
            side = rows[rows["launch"] == other][["iteration", *extra]]
            side = side.drop_duplicates("iteration", keep="last")
            own = own.merge(side, on="iteration", how="left")
        parts.append(own)
    return pd.concat(parts).reset_index(drop=True)
