"""The public API at the top of the package, and the example of `docs/python_api.md`."""
import pathlib
import re

import pytest

import clmser_jax as cl
from clmser_jax import inference, ops, train
from clmser_jax.models import CLmser

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "python_api.md"


def test_the_documented_example_runs():
  """The first Python block of the page, as written (its asserts check the optax step and the
  adjoint identity)."""
  block = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]
  assert len(block.splitlines()) <= 22
  exec(compile(block, str(DOC), "exec"), {})  # pylint: disable=exec-used


def test_names_resolve_to_the_package_objects():
  assert cl.CLmser is CLmser and cl.ops is ops
  assert cl.train_and_evaluate is train.train_and_evaluate
  assert cl.load_run is inference.load_run
  with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
    cl.no_such_name  # pylint: disable=pointless-statement
