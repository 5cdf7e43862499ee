"""`benchmarks/accelerator_check.sh --smoke`: the GPU check's script, unchanged, on the CPU at
toy sizes, ends with every step passed and every output where the GPU run leaves it."""
import os
import subprocess
import sys

import pytest

import subprocesses

pytestmark = pytest.mark.slow


def test_the_smoke_run_writes_every_output(tmp_path):
  out = tmp_path / "out"
  env = dict(subprocesses.environment(), OUT=str(out), PYTHON=sys.executable)
  env.pop("PYTHONPATH")
  result = subprocess.run(["bash", "benchmarks/accelerator_check.sh", "--smoke"],
                          cwd=subprocesses.REPO, env=env, capture_output=True, text=True,
                          timeout=1500, check=False)
  assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
  steps = dict(line.split() for line in (out / "status.txt").read_text().splitlines())
  assert {k: v for k, v in steps.items() if k != "install"} == {
      "tests": "0", "benchmark": "0", "prepare": "0", "train": "0"}
  assert "jax devices" in (out / "versions.txt").read_text()
  assert (out / "env.txt").exists() and (out / "tests.xml").exists()
  report = (out / "benchmark.md").read_text()
  for section in ("## Official network: JAX vs the authors' PyTorch",
                  "## Numerics: bfloat16 compute vs float32", "against the roofline",
                  "cost of r reflections", "## Formulations of `ops` on cpu"):
    assert section in report
  summary = (out / "train_summary.txt").read_text()
  assert "images/s, input_wait_fraction" in summary and "the paper's schedule" in summary
  assert os.path.getsize(out / "metrics.jsonl") > 0
