"""The run-directory tests share the training tests' read-only folders (``tests/train/faults``)."""

from tests.train.conftest import read_only

__all__ = ["read_only"]
