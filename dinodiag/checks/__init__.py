"""Pipeline checks: one call tells what is wrong with a multi-crop pipeline.

Modules: ``runner`` (:func:`run_checks`, the list of checks), ``evidence`` (what the checks
look at, gathered once), one module per family (``tensors``: the output tensors; ``crops``:
the sampled crops), ``reference`` (which reference a config matches) and ``report``
(results, the report and its table / JSON / Markdown forms).
"""

from dinodiag.checks.report import CheckReport, CheckResult
from dinodiag.checks.runner import CHECK_IDS, run_checks

__all__ = ["CHECK_IDS", "CheckReport", "CheckResult", "run_checks"]
