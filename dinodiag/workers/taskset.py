"""What travels to a worker process and what runs there.

The pipeline travels pickled, as what rebuilds it (:func:`ship`): a pipeline loaded from a spec
carries ``rebuild`` (the spec and its keyword arguments: each worker imports the user's code
again, closures and all); a built pipeline pickles as its config. In the worker, :class:`TaskSet`
(the tasks as a torch dataset) rebuilds it once and runs one task per item under the watchdog,
answering :class:`Done` or :class:`Failed`.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import get_worker_info

from dinodiag.workers.task import Task, Work
from dinodiag.workers.timeout import Overdue, watchdog


def ship(pipeline: Any, dataset: Any) -> tuple[bytes | None, str]:
    """``(pickled (builder, dataset), "")`` or ``(None, why not)``.

    The builder is the pipeline's own ``rebuild`` (set on the instance by the spec loader:
    a wrapper's delegated attribute does not count, the wrapper would be lost) or the
    pipeline itself.
    """
    rebuild = vars(pipeline).get("rebuild") if hasattr(pipeline, "__dict__") else None
    builder = ("rebuild", rebuild) if callable(rebuild) else ("object", pipeline)
    try:
        return pickle.dumps((builder, dataset), protocol=pickle.HIGHEST_PROTOCOL), ""
    except Exception as exc:  # pickling raises many types (PicklingError, TypeError, ...)
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"


@dataclass
class Done:
    result: Any
    problems: list[Any]  # unusable files the worker's dataset found (dinodiag.data.LoadProblem)


@dataclass
class Failed:
    error: BaseException | None  # the exception itself when it pickles
    text: str  # its traceback, when it does not
    overdue: bool = False


class TaskSet(TorchDataset):  # type: ignore[type-arg]
    """The tasks as a torch dataset: item ``i`` runs task ``i`` in a worker process."""

    def __init__(
        self,
        shipped: bytes,
        tasks: Sequence[Task],
        work: Work,
        seconds: float | None,
        running: Any,
    ) -> None:
        self.shipped, self.tasks, self.work, self.seconds = shipped, list(tasks), work, seconds
        self.running = running  # shared: the item each worker is on (-1: none), by worker id
        self.cwd, self.sys_path = os.getcwd(), list(sys.path)  # a relative spec resolves here
        self._opened: tuple[Any, Any] | None = None
        self._problems_sent = 0

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_opened": None}

    def __len__(self) -> int:
        return len(self.tasks)

    def _open(self) -> tuple[Any, Any]:
        if self._opened is None:
            os.chdir(self.cwd)
            sys.path[:] = self.sys_path
            (how, builder), dataset = pickle.loads(self.shipped)
            self._opened = (builder() if how == "rebuild" else builder), dataset
        return self._opened

    def __getitem__(self, i: int) -> Done | Failed:
        task = self.tasks[i]
        worker = get_worker_info()
        if worker is not None:
            self.running[worker.id] = i  # what the parent names if this process dies
        try:
            pipeline, dataset = self._open()
            image, _ = dataset[task.image_index]
            with watchdog(self.seconds):
                result = self.work(pipeline, image, task)
        except Overdue:
            return Failed(None, "", overdue=True)
        except (Exception, SystemExit) as exc:
            return _failure(exc)
        finally:
            if worker is not None:
                self.running[worker.id] = -1
        problems = list(getattr(dataset, "problems", None) or [])
        new, self._problems_sent = problems[self._problems_sent :], len(problems)
        return Done(result, new)


def _failure(exc: BaseException) -> Failed:
    text = "".join(traceback.format_exception(exc))
    try:
        pickle.dumps(exc)
    except Exception:
        return Failed(None, text)
    return Failed(exc, text)
