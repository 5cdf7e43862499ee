"""The fidelity study: its cells, the ordering rule by hand, and a tiny study end to end."""
import pytest

import subprocesses
from clmser_jax import checkpoint, faults
from clmser_jax.config import ConfigError
from clmser_jax.experiments import fidelity
from configs import fidelity as fidelity_config


def _rows(a, b, level="base"):
  return ([dict(task="reconstruct", factor="f", level=level, variant="clmser", seed=s, psnr=v,
                ssim=0.0) for s, v in enumerate(a)]
          + [dict(task="reconstruct", factor="f", level=level, variant="clmser-w", seed=s,
                  psnr=v, ssim=0.0) for s, v in enumerate(b)])


def test_an_ordering_needs_a_difference_beyond_the_spread():
  """Means 31 and 28.5, sample deviations 1 and 0.5: 2.5 > 1.5 is an ordering; 31 against
  30.5 (deviations 1 and 1) is a tie."""
  c = fidelity.compare(_rows([30, 31, 32], [28, 28.5, 29]), "clmser", "clmser-w")
  assert (c["mean_a"], c["std_a"], c["mean_b"], c["std_b"]) == pytest.approx((31, 1, 28.5, 0.5))
  assert c["difference"] == pytest.approx(2.5) and c["verdict"] == "CLmser > CLmser-w"
  c = fidelity.compare(_rows([30, 31, 32], [29.5, 30.5, 31.5]), "clmser", "clmser-w")
  assert c["verdict"] == "tie"
  c = fidelity.compare(_rows([20, 20.1, 20.2], [25, 25.1, 25.2]), "clmser", "clmser-w")
  assert c["verdict"] == "CLmser-w > CLmser"
  c = fidelity.compare(_rows([8.69, 8.69], [8.68, 8.68]), "clmser", "clmser-w")
  assert c["verdict"] == "tie"  # no spread, but below the resolution


def test_cells_change_one_factor_from_the_base(tmp_path):
  study = fidelity_config.get_config("tiny")
  study.factors, study.tasks = "base, init,official", "inpaint"
  found = fidelity.cells(study, str(tmp_path))
  assert len(found) == (1 + 4 + 1) * 4 * 2  # levels x variants x seeds
  he = next(c for c in found if c.level == "he" and c.variant == "clmser-w")
  assert he.config.model.kernel_init == "he" and not he.config.model.dcw
  assert he.config.task.name == "inpaint" and he.config.task.mask == "points"
  official = next(c for c in found if c.factor == "official" and c.variant == "clmser")
  assert (official.config.model.norm, official.config.model.fusion) == ("batch", "post_mean")
  assert official.config.task.pixel_range == "symmetric"
  study.levels = "xavier,he"  # in the grid's order, the other factors' levels all
  assert [(c.factor, c.level) for c in fidelity.cells(study, str(tmp_path))][::8] == [
      ("base", "base"), ("init", "he"), ("init", "xavier"), ("official",
                                                                  "the authors' network")]
  base = next(c for c in found if c.factor == "base" and c.seed == 1)
  assert base.config.seed == 1 and base.config.model.kernel_init == "contractive"
  assert base.workdir == str(tmp_path / "inpaint" / "base" / "base" / "clmser" /
                                "seed1")


def test_every_cell_of_the_grid_has_a_folder_orbax_can_restore_from(tmp_path):
  folders = [c.workdir for c in fidelity.cells(fidelity_config.get_config(), str(tmp_path))]
  assert len(set(folders)) == len(folders)
  assert not [f for f in folders if set(f) & set(checkpoint.UNRESTORABLE)]


@pytest.mark.parametrize("field,value,pattern", [
    ("factors", "base,nope", r"config\.factors='base,nope'.*'init'"),
    ("tasks", "", r"config\.tasks=''.*'reconstruct', 'inpaint'"),
    ("pairs", "clmser:unet", r"config\.pairs='clmser:unet'.*A:B of \('clmser'"),
    ("pairs", "clmser", r"config\.pairs='clmser'"),
    ("seeds", (0, 1.5), r"config\.seeds=\(0, 1\.5\)"),
    ("levels", "he,nope", r"config\.levels='he,nope'.*levels of the factors chosen"),
])
def test_a_bad_study_is_one_line_before_any_run(tmp_path, field, value, pattern):
  study = fidelity_config.get_config("tiny")
  with study.unlocked():
    study[field] = value
  with pytest.raises(ConfigError, match=pattern):
    fidelity.cells(study, str(tmp_path))
  assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_tiny_study_writes_its_tables(tmp_path):
  study = fidelity_config.get_config("tiny")
  study.factors, study.tasks = "base,fusion", "reconstruct"
  markdown = fidelity.run_study(study, str(tmp_path))
  tables = markdown.split("**tied kernels**")
  assert sum(line.startswith("|") for line in tables[0].splitlines()) == 2 + 2  # + two levels
  assert "| fusion | post-activation mean |" in markdown
  for variant, measure in (("CLmser", "cosine"), ("CLmser-w", "norm_ratio"),
                           ("CLmser-n", "decoder_norm"), ("CAE", "cosine")):
    for when in ("start", "end"):
      assert f"| {variant} | {measure} | {when} |" in markdown
  for name in ("fidelity.md", "fidelity.csv", "fidelity_reconstruct.png", "tied_kernels.md"):
    assert (tmp_path / "results" / name).exists()


@pytest.mark.slow
def test_a_preempted_run_ends_the_study_and_the_rerun_finishes_it(tmp_path, monkeypatch):
  """A SIGTERM inside the first run saves it and ends the study there (no table built from an
  unfinished run, no next run started); the same call then resumes that run and finishes."""
  study = fidelity_config.get_config("tiny")
  study.factors, study.tasks, study.pairs = "base", "reconstruct", "clmser:cae"
  monkeypatch.setattr(faults.Preemption, "reached", lambda self, step: step == 1)
  with pytest.raises(faults.Preempted, match="saved the checkpoint at step 1;"):
    fidelity.run_study(study, str(tmp_path))
  runs = tmp_path / "reconstruct" / "base" / "base"
  assert subprocesses.committed_steps(runs / "clmser" / "seed0") == [1]
  assert not (runs / "clmser" / "seed1").exists() and not (tmp_path / "results").exists()
  monkeypatch.undo()
  markdown = fidelity.run_study(study, str(tmp_path))
  assert "| base | base |" in markdown
  assert subprocesses.committed_steps(runs / "clmser" / "seed0")[-1] == 2
