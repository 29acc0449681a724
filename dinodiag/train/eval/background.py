"""The step-0 k-NN evaluation of a run in a background thread, overlapping the run's set-up.

baseline = BackgroundEvaluation(evaluator, teacher_backbone)
baseline.start()          # the main thread goes on building the optimizer
result = baseline.take()  # before the first step: joins, re-raises its error
"""

from __future__ import annotations

import sys
import threading

import torch

from dinodiag.train.eval.evaluator import KnnEvaluator


class BackgroundEvaluation(threading.Thread):
    """The step-0 k-NN (random weights) in a thread, while the main thread builds the losses
    and the optimizer (importing ``torch._dynamo`` alone takes 2 s) and the loader's workers
    prepare the first batches: the forward passes release the GIL. Nothing changes the
    teacher until the first step, which waits for it (``dinodiag.train.engine``)."""

    # The thread needs the GIL back after each of its ~1000 small ops while the main thread
    # runs Python (imports): at the default 5 ms switch interval that wait alone doubles the
    # evaluation, at 0.5 ms it is a tenth of it.
    SWITCH_INTERVAL = 0.0005

    def __init__(self, evaluator: KnnEvaluator, backbone: torch.nn.Module) -> None:
        super().__init__(name="dinodiag-step0-knn", daemon=True)
        self.evaluator, self.backbone = evaluator, backbone
        self.result: dict[str, float] | None = None
        self.error: BaseException | None = None
        self.interval = sys.getswitchinterval()

    def start(self) -> None:
        sys.setswitchinterval(min(self.interval, self.SWITCH_INTERVAL))
        super().start()

    def run(self) -> None:
        try:
            self.result = self.evaluator.evaluate(self.backbone)
        except BaseException as exc:  # re-raised in the main thread by take()
            self.error = exc

    def finish(self) -> None:
        """Wait for the evaluation to end and put the GIL switch interval back."""
        self.join()
        sys.setswitchinterval(self.interval)

    def take(self) -> dict[str, float]:
        """The evaluation's result (after :meth:`finish`); its error re-raised here."""
        self.finish()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result
