"""Smoke test of the benchmark suite (`benchmarks/run.py`): one tiny configuration runs and
yields a table row. The measurements themselves are not tests."""
import pytest

pytest.importorskip("torch", reason="the benchmarks compare with PyTorch")

from benchmarks import run  # noqa: E402  (after the skip)

TINY = run.Plan(archs=("stl10",), train_batch={"stl10": 1}, large_batch=2, reflections=(1,),
                reflection_batch={"stl10": 1}, unrolled=(), repeats=1)


def test_official_vs_torch_yields_a_row_per_measure():
  rows = run.official_vs_torch("stl10", TINY)
  assert [row.split(" | ")[1] for row in rows] == ["train", "infer 1", "infer large"]
  assert all("x** |" in row for row in rows)
