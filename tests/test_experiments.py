"""The experiment runner: the plan of runs, its tables, figures and FID column, restarts,
and the per-frame timer."""
import csv
import json
import pathlib
import shutil
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import batches
import subprocesses
from clmser_jax import faults, writers
from clmser_jax.experiments import results, sweep, timing
from clmser_jax.experiments import runner as experiments
from clmser_jax.analysis import plots
from clmser_jax.config import ConfigError
from clmser_jax.data import load_dataset
from clmser_jax.fid import weights
from tiny import get_config as tiny_config

STEPS = 2
VARIANTS = ("clmser", "cae")  # command-line order; figures use the paper's (CAE first)
TINY = ["--config=tests/tiny.py", f"--config.num_train_steps={STEPS}"]


def test_per_frame_time_includes_the_device_work():
  """A 20 ms host callback per batch of 2: at least 10 ms per frame, compile excluded."""
  def slow(variables, x):
    def sleep(x):
      time.sleep(0.02)
      return x
    return jax.pure_callback(sleep, jax.ShapeDtypeStruct(x.shape, x.dtype), x) * variables

  result = timing.per_frame_ms(slow, jnp.float32(2.0), np.zeros((6, 4), np.float32), 2,
                               repeats=2)
  assert result["ms_per_frame"] >= 10.0
  assert result["ms_per_frame_min"] <= result["ms_per_frame"] <= result["ms_per_frame_max"]


def test_plan_crosses_sweep_values_optimizers_and_variants():
  base = tiny_config()
  base.optimizer.learning_rate = 5e-4
  runs = sweep.plan(base, ("cae", "unet"), "/w", ("sgd", "adam", "amsgrad:0.02"),
                    "task.mask_ratio=0.1,0.25")
  assert [r.workdir for r in runs[:4]] == [
      "/w/task.mask_ratio=0.1/sgd/cae", "/w/task.mask_ratio=0.1/sgd/unet",
      "/w/task.mask_ratio=0.1/adam/cae", "/w/task.mask_ratio=0.1/adam/unet"]
  assert len(runs) == 2 * 3 * 2 and runs[-1].workdir == "/w/task.mask_ratio=0.25/amsgrad/unet"
  assert runs[-1].keys == {"task.mask_ratio": 0.25, "optimizer": "amsgrad"}
  assert runs[-1].group == ("task.mask_ratio=0.25", "amsgrad")
  assert [r.config.task.mask_ratio for r in runs[::6]] == [0.1, 0.25]
  rates = {r.config.optimizer.name: r.config.optimizer.learning_rate for r in runs}
  # SGD from Table 3; Adam is the config's own optimizer, so its rate stays; AMSGrad given.
  assert rates == {"sgd": 0.01, "adam": 5e-4, "amsgrad": 0.02}
  assert [r.config.model.name for r in runs[:2]] == ["clmser", "unet"]
  assert (base.task.mask_ratio, base.optimizer.name) == (0.25, "adam")  # base untouched


def test_plan_without_sweep_or_optimizers_keeps_one_folder_per_variant():
  runs = sweep.plan(tiny_config(), VARIANTS, "/w")
  assert [(r.workdir, r.keys, r.group) for r in runs] == [("/w/clmser", {}, ()),
                                                          ("/w/cae", {}, ())]
  swept = sweep.plan(tiny_config(), ("cae",), "/w", sweep="batch_size=4,16")
  assert [r.config.batch_size for r in swept] == [4, 16]  # ints, as the field


def test_plan_keeps_the_configs_model_fields_for_every_variant():
  """Only the name and the dualities change with the variant (Table 1): an init, a
  normalisation or more reflections set on the command line reach every run."""
  base = tiny_config()
  base.model.update(kernel_init="contractive", fusion="post_mean", output_activation="tanh")
  runs = sweep.plan(base, ("clmser", "clmser-w", "cae"), "/w")
  assert [(r.config.model.dcw, r.config.model.dpn) for r in runs] == [
      (True, True), (False, True), (False, False)]
  for run in runs:
    assert (run.config.model.kernel_init, run.config.model.fusion,
            run.config.model.output_activation) == ("contractive", "post_mean", "tanh")
  base = tiny_config()
  base.model.reflections = 2
  assert [r.config.model.reflections for r in sweep.plan(base, ("clmser",), "/w")] == [2]
  with pytest.raises(ConfigError, match="model.reflections"):  # CAE has no feedback
    sweep.plan(base, ("cae",), "/w")


@pytest.mark.parametrize("optimizers, spec, message", [
    ((), "no_such_field=1,2", "config.no_such_field does not exist"),
    ((), "batch_size=four", "'four' is not allowed for config.batch_size=8"),
    ((), "batch_size=", "FIELD=v1,v2"),
    ((), "batch_size=0", "config.batch_size=0 is not allowed"),  # from config.validate
    (("rmsprop",), None, "'rmsprop' is not allowed"),
    (("sgd", "sgd:0.1"), None, "each optimizer once"),
])
def test_plan_rejects_bad_flags_before_training(optimizers, spec, message):
  with pytest.raises(ConfigError, match=message):
    sweep.plan(tiny_config(), VARIANTS, "/w", optimizers, spec)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
  """Two tiny variants trained with SGD (not the config's Adam) for two steps."""
  workdir = tmp_path_factory.mktemp("experiment")
  markdown = experiments.run_experiment(tiny_config(steps=STEPS), VARIANTS, str(workdir),
                                        "t", optimizers=("sgd",))
  return workdir, markdown, sweep.plan(tiny_config(steps=STEPS), VARIANTS, str(workdir),
                                       ("sgd",))


@pytest.mark.slow
def test_tables_agree_with_each_runs_final_eval(experiment):
  workdir, markdown, runs = experiment
  with open(workdir / "results" / "t.csv") as f:
    rows = list(csv.DictReader(f))
  with open(workdir / "results.json") as f:
    by_folder = json.load(f)
  lines = (workdir / "results" / "t.md").read_text().splitlines()
  assert lines[0] == "| optimizer | model | L1 | MSE | PSNR | SSIM | ms/frame |"
  assert (workdir / "results" / "t.md").read_text() == markdown
  for run, row, line in zip(runs, rows, lines[2:]):
    final = experiments.final_eval(run.workdir)
    assert final["step"] == STEPS
    assert (row["optimizer"], row["model"], int(row["step"])) == ("sgd", run.variant, STEPS)
    for metric in ("l1", "mse", "psnr", "ssim"):
      assert float(row[metric]) == final[metric]  # the CSV keeps every digit
      assert by_folder[f"sgd/{run.variant}"][metric] == final[metric]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:2] == ["sgd", plots.LABELS[run.variant]]
    assert cells[2:6] == [f"{final[m]:.4g}" for m in ("l1", "mse", "psnr", "ssim")]
    assert cells[6] == f"{float(row['ms_per_frame']):.4g}"
  assert "fid" not in rows[0] and any(l.startswith("FID: not computed") for l in lines)


@pytest.mark.slow
def test_samples_grid_has_a_titled_tile_per_image_and_column(experiment):
  workdir, _, runs = experiment
  grid = np.asarray(Image.open(workdir / "results" / "samples_sgd.png"))
  config = runs[0].config
  originals = batches.eval_images(config, load_dataset(config))[:8]  # the default 8 rows
  side = originals.shape[1] * -(-results.MIN_TILE // originals.shape[1])
  columns = len(VARIANTS) + 1  # each variant, then the original (the input, unmasked)
  assert grid.shape == (writers.TITLE_HEIGHT + 8 * side, columns * side, 3)
  expected = np.uint8(results.enlarge(originals, side // originals.shape[1]) * 255 + 0.5)
  last = grid[writers.TITLE_HEIGHT:, -side:].reshape(8, side, side, 3)
  np.testing.assert_array_equal(last, expected)
  assert (grid[:writers.TITLE_HEIGHT] < 128).any()  # titles drawn in black on white


def test_loss_figure_has_one_curve_per_variant(experiment):
  workdir, _, runs = experiment
  figures = experiments.loss_curves(runs)
  assert list(figures) == ["loss_sgd.png"]  # one per optimizer
  assert (workdir / "results" / "loss_sgd.png").is_file()
  opt, model, curves = figures["loss_sgd.png"]
  assert opt == "sgd" and set(curves) == set(VARIANTS)
  for run in runs:
    lines = subprocesses.train_lines(run.workdir)  # logged every step
    assert curves[run.variant] == [{"step": l["step"], "loss": l["loss"]} for l in lines]
    assert [p["step"] for p in curves[run.variant]] == list(range(1, STEPS + 1))
  axes = results.loss_figure(curves, opt, model.activation, model.depth).axes[0]
  drawn = {l.get_label(): l for l in axes.get_lines() if not l.get_label().startswith("_")}
  assert set(drawn) == {plots.LABELS[v] for v in VARIANTS}
  for variant, points in curves.items():
    losses = [p["loss"] for p in points]
    np.testing.assert_allclose(drawn[plots.LABELS[variant]].get_ydata(),
                               plots.moving_average(losses, 10))  # logged every step
  plots.plt.close("all")


def test_loss_curves_are_smoothed_over_steps_not_points():
  """Points logged every 50 steps are already 50-step means: drawn as they are."""
  every_50 = {"clmser": [{"step": s, "loss": 1.0 / s} for s in range(50, 1001, 50)]}
  assert results.smoothing_window(every_50) == 1
  every_2 = {"clmser": [{"step": s, "loss": 1.0} for s in range(2, 41, 2)]}
  assert results.smoothing_window(every_2) == 5
  axes = results.loss_figure(every_50, "sgd", "relu", 5).axes[0]
  np.testing.assert_allclose(axes.get_lines()[1].get_ydata(), [1.0 / s for s in
                                                               range(50, 1001, 50)])
  plots.plt.close("all")


@pytest.mark.slow
def test_rerun_from_the_command_line_trains_nothing(experiment):
  workdir, _, runs = experiment
  before = [pathlib.Path(r.workdir, "metrics.jsonl").read_text() for r in runs]
  table = (workdir / "results" / "t.csv").read_text()
  done = subprocesses.run([sys.executable, "-m", "clmser_jax.experiments", *TINY,
                           f"--variants={','.join(VARIANTS)}", "--optimizers=sgd",
                           f"--workdir={workdir}", "--table=again"])
  assert done.returncode == 0, done.stderr[-2000:]
  assert [pathlib.Path(r.workdir, "metrics.jsonl").read_text() for r in runs] == before
  rows = [r.split(",")[:7] for r in table.splitlines()]  # up to SSIM: from metrics.jsonl
  assert [r.split(",")[:7] for r in (workdir / "results" / "again.csv").read_text()
          .splitlines()] == rows
  assert "| sgd | CLmser |" in done.stdout


@pytest.mark.slow
def test_command_line_config_error_is_one_line(tmp_path):
  done = subprocesses.run([sys.executable, "-m", "clmser_jax.experiments", *TINY,
                           "--sweep=no_such_field=1", f"--workdir={tmp_path}"])
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1] == (
      "clmser_jax.experiments: config error: --sweep: config.no_such_field does not exist in "
      "this config; "
      "sweep an existing field")


def random_inception(path):
  """A randomly initialised FID Inception (He-normal kernels, identity BatchNorm) saved as
  the local weights file: pool3 features of O(1), no compile needed to make it."""
  rng = np.random.default_rng(0)
  flat = {}
  for key, shape in weights.expected_shapes().items():
    if key.endswith("kernel"):
      flat[key] = rng.normal(size=shape) * np.sqrt(2 / np.prod(shape[:-1]))
    else:  # BatchNorm: scale and var 1, bias and mean 0
      flat[key] = np.full(shape, float(key.endswith(("scale", "var"))))
  weights.save_variables(path, flat)
  return path


@pytest.mark.slow
@pytest.mark.slow  # Inception on CPU and two 2048x2048 Frechet distances
def test_fid_column(experiment, tmp_path):
  """The FID column with a random Inception: > 0 for a model's predictions, ~0 for the
  evaluation images against themselves."""
  workdir, _, runs = experiment
  shutil.copytree(runs[1].workdir, tmp_path / "sgd" / "cae")  # finished: trains nothing
  npz = random_inception(tmp_path / "inception.npz")
  markdown = experiments.run_experiment(tiny_config(steps=STEPS), ("cae",), str(tmp_path),
                                        "fid", optimizers=("sgd",), fid_weights=str(npz))
  assert markdown.splitlines()[0] == "| optimizer | model | L1 | MSE | PSNR | SSIM | FID | " \
                                     "ms/frame |"
  with open(tmp_path / "results" / "fid.csv") as f:
    score = float(next(csv.DictReader(f))["fid"])
  assert score > 0
  scorer = experiments.FIDScorer(experiments.load_inception(str(npz)))
  images = batches.eval_images(runs[1].config, load_dataset(runs[1].config))
  same = scorer.score(scorer.features(images, 8), images, 8)
  assert abs(same) < 1e-6 * score


def test_missing_fid_weights_stop_before_training(tmp_path):
  with pytest.raises(faults.InputError, match="no Inception weights at"):
    experiments.run_experiment(tiny_config(), ("cae",), str(tmp_path), "t",
                               fid_weights=str(tmp_path / "missing.npz"))
  assert not (tmp_path / "cae").exists()


@pytest.mark.slow
def test_dsp_table_has_accuracy_and_no_image_metrics_for_the_cnn(tmp_path):
  """Table 7: the CLmser row has accuracy and MSE, the CNN row accuracy only ('-')."""
  from configs import mnist_dsp
  markdown = experiments.run_experiment(mnist_dsp.get_config("clmser,tiny"), ("clmser", "cnn"),
                                        str(tmp_path), "t7")
  lines = markdown.splitlines()
  assert lines[0] == "| model | accuracy | L1 | MSE | PSNR | SSIM | ms/frame |"
  for variant, line in zip(("clmser", "cnn"), lines[2:4]):
    final = experiments.final_eval(str(tmp_path / variant))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:2] == [plots.LABELS[variant], f"{final['accuracy']:.4g}"]
    expected = [f"{final[m]:.4g}" if variant == "clmser" else "-"
                for m in ("l1", "mse", "psnr", "ssim")]
    assert cells[2:6] == expected
  grid = np.asarray(Image.open(tmp_path / "results" / "samples.png"))
  assert grid.shape[1] == 2 * 64  # CLmser and the original: the CNN has no image column
