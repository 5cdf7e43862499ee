"""Embedded photographs, folder datasets and the step-keyed batch sampler."""
import struct
import zlib

import jax
import numpy as np
import pytest
from PIL import Image

from clmser_jax.data import load_dataset, photos
from clmser_jax.faults import InputError
from configs.default import get_config


def test_embedded_photos_are_real_colour_images():
  train, test = photos.embedded_photos(64)
  assert len(train) == len(photos.EMBEDDED_TRAIN) and len(test) == len(photos.EMBEDDED_TEST)
  for image in train + test:
    assert image.dtype == np.uint8 and image.shape[2] == 3
    assert min(image.shape[:2]) >= 64
    assert image.std() > 12  # a photograph, not a flat field
    # colour, not grey stored as RGB
    assert np.abs(image[..., 0].astype(int) - image[..., 1]).mean() > 1


def test_train_and_eval_images_are_disjoint():
  train, test = photos.embedded_photos(64)
  for t in test:
    assert not any(t.shape == im.shape and np.array_equal(t, im) for im in train)


def test_train_batch_is_a_function_of_the_key():
  dataset = load_dataset(get_config())
  key = jax.random.key(3)
  a = dataset.train_batch(key, 8)["image"]
  np.testing.assert_array_equal(a, dataset.train_batch(key, 8)["image"])
  assert not np.array_equal(a, dataset.train_batch(jax.random.fold_in(key, 1), 8)["image"])
  assert a.shape == (8, 64, 64, 3) and a.dtype == np.float32
  assert 0.0 <= a.min() and a.max() <= 1.0


def test_eval_tiles_are_fixed_crops_of_held_out_images():
  config = get_config()
  dataset = load_dataset(config)
  _, test = photos.embedded_photos(config.image_size)
  assert dataset.eval_images.shape == (config.num_eval_images, 64, 64, 3)
  np.testing.assert_array_equal(dataset.eval_images[0] * 255, test[0][:64, :64])
  np.testing.assert_array_equal(dataset.eval_images[1] * 255, test[0][:64, 64:128])


def test_resize_shorter_side():
  config = get_config()
  config.resize = 96
  dataset = load_dataset(config)
  assert all(min(im.shape[:2]) == 96 for im in dataset.train)
  chelsea = dataset.train[1]  # 300x451 -> 96x144
  assert chelsea.shape == (96, 144, 3)


def _write(path, array, mode=None):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array, mode).save(path)


def test_folder_dataset(tmp_path):
  rng = np.random.default_rng(0)
  for i in range(11):
    _write(tmp_path / f"sub{i % 2}" / f"img{i:02d}.png", rng.integers(0, 255, (40, 50, 3),
                                                                      dtype=np.uint8))
  _write(tmp_path / "grey.jpg", rng.integers(0, 255, (30, 30), dtype=np.uint8))  # upscaled
  _write(tmp_path / "alpha.png", rng.integers(0, 255, (40, 40, 4), dtype=np.uint8))
  (tmp_path / "broken.png").write_bytes(b"not a png")
  (tmp_path / "notes.txt").write_text("ignored")
  train, test = photos.folder_photos(str(tmp_path), size=32)
  assert len(train) + len(test) == 13  # broken.png skipped, notes.txt ignored
  assert len(test) == 1  # every 10th file, sorted
  assert all(im.shape[2] == 3 and min(im.shape[:2]) >= 32 for im in train + test)
  again = photos.folder_photos(str(tmp_path), size=32)
  np.testing.assert_array_equal(test[0], again[1][0])


def test_folder_dataset_errors(tmp_path):
  with pytest.raises(InputError, match="does not exist"):
    photos.folder_photos(str(tmp_path / "missing"), 32)
  with pytest.raises(InputError, match="holds no PNG or JPEG"):
    photos.folder_photos(str(tmp_path), 32)
  (tmp_path / "a.png").write_bytes(b"junk")
  _write(tmp_path / "b.png", np.zeros((8, 8, 3), np.uint8))
  with pytest.raises(InputError, match="1 readable image"):
    photos.folder_photos(str(tmp_path), 32)


def _write_png16(path, rgb):
  """A 16-bit RGB PNG (colour type 2, bit depth 16), which Pillow cannot write."""
  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))
  h, w, _ = rgb.shape
  rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb)
  path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2,
                                                                     0, 0, 0))
                   + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_sixteen_bit_pngs_are_scaled_not_clipped(tmp_path):
  grey = np.array([[0, 1000], [40000, 65535]], np.uint16)
  Image.fromarray(grey).save(tmp_path / "grey16.png")
  image = photos.read_rgb(tmp_path / "grey16.png")
  assert image.shape == (2, 2, 3)
  # 16-bit v becomes 8-bit round(v / 257): 1000 -> 4, 40000 -> 156 (not clipped to 255).
  np.testing.assert_array_equal(image[..., 1], [[0, 4], [156, 255]])
  colour = np.array([[[65535, 32768, 257], [0, 12345, 50000]]], np.uint16)
  _write_png16(tmp_path / "rgb16.png", colour)
  np.testing.assert_allclose(photos.read_rgb(tmp_path / "rgb16.png") / 255, colour / 65535,
                             atol=1 / 255)


def test_digits_are_labelled_upscaled_and_split_four_to_one():
  config = get_config()
  config.dataset, config.image_size, config.num_eval_images = "digits", 16, 1000
  dataset = load_dataset(config)
  assert len(dataset.train) + len(dataset.eval_images) == 1797
  assert len(dataset.eval_images) == 1797 // 5  # every 5th digit held out
  assert dataset.num_classes == 10 and not dataset.flip
  assert dataset.eval_images.shape == (len(dataset.eval_labels), 16, 16, 3)
  # The image is sklearn's digit: its 8x8 block means follow the 0..16 pixel values.
  from sklearn.datasets import load_digits
  bunch = load_digits()
  first_test = 4  # the 5th digit
  assert dataset.eval_labels[0] == bunch.target[first_test]
  blocks = dataset.eval_images[0, :, :, 0].reshape(8, 2, 8, 2).mean((1, 3))
  assert np.corrcoef(blocks.ravel(), bunch.images[first_test].ravel())[0, 1] > 0.95
  batch = dataset.train_batch(jax.random.key(0), 64)
  assert batch["label"].dtype == np.int32 and batch["label"].shape == (64,)
  # Labels travel with their images: the same index gives the same (image, label) pair.
  train_index = {bytes(im.tobytes()): int(l) for im, l in zip(dataset.train,
                                                               dataset.train_labels)}
  for image, label in zip(batch["image"], batch["label"]):
    assert train_index[bytes(np.round(image * 255).astype(np.uint8).tobytes())] == label
