"""Masks of Sec. 5.3: hole ratios, point-shaped scattering, determinism, mask folders."""
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from clmser_jax.data import masks


def hole_ratio(mask):
  return 1.0 - float(mask.mean())


@pytest.mark.parametrize("kind", sorted(masks.MASKS))
def test_format_known_is_one(kind):
  mask = masks.MASKS[kind](0, 40, 56, 0.3)
  assert mask.shape == (40, 56, 1) and mask.dtype == np.float32
  assert set(np.unique(mask)) == {0.0, 1.0}
  assert np.all(masks.MASKS[kind](0, 40, 56, 0.0) == 1.0)


@pytest.mark.parametrize("ratio", [0.02, 0.3, 0.6])
def test_point_mask_ratio_is_exact_over_seeds(ratio):
  for seed in range(20):
    mask = masks.point_mask(seed, 64, 48, ratio)
    assert np.sum(mask == 0) == round(ratio * 64 * 48)


@pytest.mark.parametrize("ratio", [0.05, 0.3, 0.7])
def test_rectangle_mask_is_one_box_of_the_ratio(ratio):
  h, w = 64, 80
  for seed in range(20):
    hole = masks.rectangle_mask(seed, h, w, ratio)[..., 0] == 0
    assert abs(hole.mean() - ratio) <= 1 / (2 * w)
    rows, cols = np.nonzero(hole)
    box = hole[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    assert box.all()  # one filled, axis-aligned rectangle


@pytest.mark.parametrize("ratio", [0.05, 0.3])
def test_stroke_mask_reaches_ratio_with_small_overshoot(ratio):
  ratios = [hole_ratio(masks.stroke_mask(seed, 128, 128, ratio)) for seed in range(20)]
  assert min(ratios) >= round(ratio * 128 * 128) / (128 * 128)
  assert max(ratios) <= ratio + 0.03
  assert np.std(ratios) > 0  # strokes of random sizes, not one fixed shape


def test_point_mask_is_scattered_small_irregular_specks():
  hole = masks.point_mask(3, 128, 128, 0.2)[..., 0] == 0
  labels, count = ndimage.label(hole)
  sizes = np.bincount(labels.ravel())[1:]
  assert count > 300  # many separate specks ...
  assert np.median(sizes) <= 8 and sizes.max() < 0.01 * hole.size  # ... each of them small
  assert len(np.unique(sizes)) > 10  # irregular: specks of many different sizes
  tiles = hole.reshape(4, 32, 4, 32).mean(axis=(1, 3))
  assert np.all((tiles > 0.05) & (tiles < 0.4))  # dense over the whole image


@pytest.mark.parametrize("kind", sorted(masks.MASKS))
def test_deterministic_given_seed(kind):
  fn = masks.MASKS[kind]
  np.testing.assert_array_equal(fn(5, 32, 32, 0.3), fn(5, 32, 32, 0.3))
  assert not np.array_equal(fn(5, 32, 32, 0.3), fn(6, 32, 32, 0.3))


def test_sample_masks_seeds_each_mask_by_its_index():
  batch = masks.sample_masks("points", 9, 3, 24, 24, 0.25)
  assert batch.shape == (3, 24, 24, 1)
  np.testing.assert_array_equal(batch[:2], masks.sample_masks("points", 9, 2, 24, 24, 0.25))
  np.testing.assert_array_equal(
      batch[2], masks.point_mask(np.random.SeedSequence([9, 2]), 24, 24, 0.25))
  assert not np.array_equal(batch[0], batch[1])


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
@pytest.mark.parametrize("kind", sorted(masks.MASKS))
def test_ratio_outside_unit_interval_is_rejected(kind, ratio):
  with pytest.raises(ValueError, match=r"\[0, 1\)"):
    masks.MASKS[kind](0, 16, 16, ratio)


def test_bad_kind_and_size_are_rejected():
  with pytest.raises(ValueError, match="unknown mask kind 'dots'"):
    masks.sample_masks("dots", 0, 1, 16, 16, 0.1)
  with pytest.raises(ValueError, match="positive"):
    masks.point_mask(0, 0, 16, 0.1)


def write_png(path, white):
  Image.fromarray(np.where(white, 255, 0).astype(np.uint8)).save(path)


@pytest.fixture
def mask_folder(tmp_path):
  rng = np.random.default_rng(0)
  whites = [rng.random((12, 10)) < 0.3 for _ in range(3)]
  for i, white in enumerate(whites):
    write_png(tmp_path / f"m{i}.png", white)
  (tmp_path / "notes.txt").write_text("not a mask")
  return tmp_path, whites


def test_folder_polarity_hole_means_white_is_hole(mask_folder):
  folder, whites = mask_folder
  loaded = np.stack(masks.MaskFolder(folder, "hole", (12, 10)))
  assert loaded.shape == (3, 12, 10, 1) and loaded.dtype == np.float32
  np.testing.assert_array_equal(loaded[..., 0], 1.0 - np.stack(whites))


def test_folder_polarity_known_means_white_is_known(mask_folder):
  folder, whites = mask_folder
  np.testing.assert_array_equal(np.stack(masks.MaskFolder(folder, "known", (12, 10)))[..., 0],
                                np.stack(whites))


def test_folder_resize_is_nearest_neighbour(tmp_path):
  white = np.zeros((4, 4), bool)
  white[:2, :2] = True
  write_png(tmp_path / "a.png", white)
  loaded = masks.MaskFolder(tmp_path, "known", size=(8, 8))[0][..., 0]
  np.testing.assert_array_equal(loaded, np.kron(white, np.ones((2, 2))))


def test_folder_errors(tmp_path):
  with pytest.raises(ValueError, match="no .png files"):
    masks.MaskFolder(tmp_path, "hole", (8, 8))
  with pytest.raises(FileNotFoundError, match="does not exist"):
    masks.MaskFolder(tmp_path / "missing", "hole", (8, 8))
  with pytest.raises(ValueError, match="polarity"):
    masks.MaskFolder(tmp_path, "white", (8, 8))
