"""Tests import `configs` from the repository root, and find the native CPU kernels loaded
(`ops.prepare`) before anything is traced, as `train_and_evaluate` and the command lines do."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True, scope="session")
def prepared_kernels():
  from clmser_jax import ops  # pylint: disable=g-import-not-at-top  (after the path above)
  ops.prepare()
