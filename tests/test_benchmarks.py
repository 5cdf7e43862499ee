"""Smoke test of the benchmark suite (`benchmarks/run.py`): one tiny configuration runs and
yields a table row. The measurements themselves are not tests."""
import dataclasses

import jax
import pytest

pytest.importorskip("torch", reason="the benchmarks compare with PyTorch")

from benchmarks import measure, roofline, run, runners  # noqa: E402  (after the skip)
from clmser_jax.config import model_config, task_config  # noqa: E402
from clmser_jax.models import build_model  # noqa: E402

TINY = run.Plan(archs=("stl10",), train_batch={"stl10": 1}, large_batch=2, reflections=(1,),
                reflection_batch={"stl10": 1}, unrolled=(), repeats=1, peak_tflops=1.0,
                peak_gbps=1.0)


@pytest.mark.slow
def test_official_vs_torch_yields_a_row_per_measure(monkeypatch):
  monkeypatch.setattr(runners, "COMPILES", 1)
  dtype = "bfloat16"  # float32 runs the same code, without autocast
  rows, roof = run.official_vs_torch("stl10", TINY, dtype)
  for table in (rows, roof):
    assert [row.split(" | ")[1:3] for row in table] == [
        ["train", dtype], ["infer 1", dtype], ["infer large", dtype]]
  assert all("x** |" in row for row in rows)
  assert all(row.count("%") == 2 for row in roof)


@pytest.mark.slow
def test_precision_check_reports_bfloat16_close_to_float32(monkeypatch):
  config = model_config("clmser")
  config.depth, config.channels, config.strides, config.reflections = 2, (4, 8), (1, 2), 2
  model = build_model(config)
  variables = model.init(jax.random.key(0), run.images(1, 32))
  monkeypatch.setattr(run, "numerics_cases", lambda: [
      ("tiny", model, variables, task_config("reconstruct"))])
  rows = run.precision_check()
  assert len(rows) == 3
  for row in rows[2:]:
    cosine = float(row.split(" | ")[4])
    assert 0.99 < cosine <= 1.0


def test_command_line_selects_dtypes_and_peaks():
  plan = run.plan_from_args(run.parse_args(
      ["--quick", "--dtype", "float32", "bfloat16", "--large_batch", "256",
       "--peak_tflops", "1", "--peak_gbps", "2"]))
  assert (plan.dtypes, plan.large_batch, plan.peak_tflops, plan.peak_gbps) == (
      ("float32", "bfloat16"), 256, 1.0, 2.0)
  assert run.plan_from_args(run.parse_args([])) == run.FULL
  assert (run.FULL.peak_tflops, run.FULL.peak_gbps) == (None, None)  # measured by default
  assert run.parse_args(["--reuse_host_memory"]).reuse_host_memory
  assert not run.parse_args([]).reuse_host_memory


def test_roofline_peaks_are_measured_where_not_given(monkeypatch):
  monkeypatch.setattr(roofline, "measured_peaks", lambda dtype: roofline.Peaks(3.0, 4.0))
  plan = dataclasses.replace(TINY, peak_tflops=None, peak_gbps=None)
  assert run.roofline_peaks(plan, "float32") == roofline.Peaks(3.0, 4.0)
  assert "measured on this device" in run.peaks_line(plan, "float32")
  half = dataclasses.replace(plan, peak_tflops=1.0)
  assert run.roofline_peaks(half, "float32") == roofline.Peaks(1.0, 4.0)
  assert "(FLOP/s given; measured on this device" in run.peaks_line(half, "float32")
  assert "(FLOP/s and GB/s given)" in run.peaks_line(TINY, "float32")
  assert run.roofline_peaks(TINY, "float32") == roofline.Peaks(1.0, 1.0)


def test_measured_peaks_count_product_flops_and_pass_bytes(monkeypatch):
  # With every call timed at 0.25 s: a 64 x 64 product is 2 * 64^3 FLOPs, and the in-place
  # pass over 1 MiB reads and writes 2 MiB.
  calls = []

  def fixed_seconds(fn):
    calls.append(fn)
    return fn(), 0.25

  monkeypatch.setattr(measure, "seconds", fixed_seconds)
  peaks = roofline.time_peaks("float32", n=64, mib=1, repeats=3)
  assert peaks.tflops == pytest.approx(2 * 64**3 / 0.25 / 1e12)
  assert peaks.gbps == pytest.approx(2 * 2**20 / 0.25 / 1e9)
  assert len(calls) == 6


@pytest.mark.slow
def test_reflection_scaling_yields_a_row_per_loop(monkeypatch):
  monkeypatch.setattr(runners, "COMPILES", 1)
  monkeypatch.setitem(run.SIZES, "stl10", 32)
  plan = dataclasses.replace(TINY, reflections=(1, 2), unrolled=(2,), remat=(2,))
  rows = run.reflection_scaling("stl10", plan)
  cells = [row.split(" | ") for row in rows]
  assert [(c[2], c[3]) for c in cells] == [("1", "scan"), ("2", "scan"), ("2", "unrolled"),
                                           ("2", "remat")]
  # "scan / this": only the other loops are set against the scan at the same r.
  assert [c[6] for c in cells[:2]] == ["-", "-"]
  assert all(float(c[6]) > 0 for c in cells[2:])


def _assert_a_row_per_unit(rows):
  """`run.side_by_side`'s rows: one per unit of `run._units`, in order, each with a speed-up."""
  cells = [row.split(" | ") for row in rows]
  assert [(c[1], c[2], c[3]) for c in cells] == [
      ("official", "train", "1"), ("official", "infer", "1"), ("official", "infer", "2"),
      ("paper r=1", "train", "1"), ("paper r=1", "infer", "1")]
  assert all(c[6].startswith("**") and c[6].endswith("x**") for c in cells)


@pytest.mark.slow
def test_compiler_options_yield_a_row_per_unit(monkeypatch):
  monkeypatch.setattr(runners, "COMPILES", 1)
  monkeypatch.setitem(run.SIZES, "stl10", 32)
  _assert_a_row_per_unit(run.compiler_options("stl10", TINY))


@pytest.mark.slow
def test_native_kernel_rows_compare_every_unit(monkeypatch):
  """Every unit, each built once with XLA's operations and once with the native kernels (the
  jaxprs differ: the first has no native call)."""
  from clmser_jax.cpu.native import library
  monkeypatch.setattr(runners, "COMPILES", 1)
  monkeypatch.setitem(run.SIZES, "stl10", 32)
  native_at_trace = []
  for name in ("jax_train", "jax_infer"):
    real = getattr(runners, name)
    monkeypatch.setattr(runners, name, lambda *a, real=real, **k: (
        native_at_trace.append(library._enabled[0]), real(*a, **k))[1])
  _assert_a_row_per_unit(run.native_kernels("stl10", TINY))
  assert native_at_trace == [False, True] * 5


def test_host_memory_table_takes_medians_over_processes():
  from benchmarks import host_memory
  units = [f"{f} {u} {b}" for u, b in host_memory.UNITS for f in ("jax", "torch")]
  # Seconds per process: off, JAX 2/4/6 and PyTorch twice that; on, both halved.
  off = [{k: (1 + k.startswith("torch")) * s for k in units} for s in (1.0, 2.0, 3.0)]
  on = [{k: v / 2 for k, v in r.items()} for r in off]
  rows = host_memory.table({False: off, True: on})
  assert len(rows) == 2 + 3 * len(host_memory.UNITS)
  assert rows[2] == "| train | 8 | jax | 2000.0 ms | 1000.0 ms | 2.00x |"
  assert rows[-1] == "| infer | 32 | JAX speed-up over PyTorch | 2.00x | 2.00x | |"
