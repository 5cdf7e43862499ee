"""Datasets: the embedded photographs, image folders and lists (listed, read lazily), the
digits, and how images are decoded."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import batches
from clmser_jax.data import listing, load_dataset, photos, sources
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


def test_eval_tiles_are_fixed_crops_of_held_out_images():
  config = get_config()
  dataset = load_dataset(config)
  _, test = photos.embedded_photos(config.image_size)
  images = batches.eval_images(config, dataset)
  assert images.shape == (config.num_eval_images, 64, 64, 3)
  np.testing.assert_array_equal(images[0] * 255, test[0][:64, :64])
  np.testing.assert_array_equal(images[1] * 255, test[0][:64, 64:128])


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


def _folder_config(spec, size=32, **fields):
  config = get_config()
  config.dataset, config.image_size = spec, size
  config.update(fields)
  return config


def test_folder_dataset(tmp_path):
  rng = np.random.default_rng(0)
  for i in range(11):
    _write(tmp_path / f"sub{i % 2}" / f"img{i:02d}.png", rng.integers(0, 255, (40, 50, 3),
                                                                      dtype=np.uint8))
  _write(tmp_path / "grey.jpg", rng.integers(0, 255, (30, 30), dtype=np.uint8))  # upscaled
  _write(tmp_path / "alpha.png", rng.integers(0, 255, (40, 40, 4), dtype=np.uint8))
  (tmp_path / "broken.png").write_bytes(b"not a png")
  (tmp_path / "notes.txt").write_text("ignored")
  dataset = load_dataset(_folder_config(f"folder:{tmp_path}"))
  # Listed, not read: 14 images (broken.png too, notes.txt not), every 10th held out.
  assert len(dataset.train) + len(dataset.eval) == 14 and len(dataset.eval) == 1
  names = [sources.name(dataset.train, i) for i in range(len(dataset.train))]
  assert names[:3] == [str(tmp_path / n) for n in ("alpha.png", "broken.png", "grey.jpg")]
  # Sorted: alpha, broken, grey, sub0/img00, 02, 04, 06, 08, 10, then the 10th: sub1/img01.
  assert sources.name(dataset.eval, 0) == str(tmp_path / "sub1" / "img01.png")
  readable = [i for i in range(len(dataset.train)) if i != 1]
  assert all(dataset.train[i].shape[2] == 3 and min(dataset.train[i].shape[:2]) >= 32
             for i in readable)
  with pytest.raises(Exception):
    dataset.train[1]  # broken.png fails when it is read; the pipeline skips it (test_pipeline)


def test_folder_listing_sorts_folder_by_folder(tmp_path):
  for name in ("a-c.png", "a/b.png", "B.jpg", "a/z/x.JPEG", "a.txt"):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(b"")
  found = listing.find_images(str(tmp_path))
  expected = sorted(p for p in tmp_path.rglob("*") if p.suffix.lower() in listing.IMAGE_SUFFIXES)
  assert list(found) == [str(p) for p in expected]  # pathlib's order: a/b before a-c


def test_folder_dataset_errors(tmp_path):
  with pytest.raises(InputError, match="does not exist"):
    load_dataset(_folder_config(f"folder:{tmp_path / 'missing'}"))
  with pytest.raises(InputError, match="holds no PNG or JPEG"):
    load_dataset(_folder_config(f"folder:{tmp_path}"))
  _write(tmp_path / "b.png", np.zeros((8, 8, 3), np.uint8))
  with pytest.raises(InputError, match="has 1 image; need at least 2"):
    load_dataset(_folder_config(f"folder:{tmp_path}"))


def test_image_lists_relative_to_the_list_or_to_data_root(tmp_path):
  rng = np.random.default_rng(1)
  for name in ("x/a.png", "x/b.png", "y/c.png"):
    _write(tmp_path / "images" / name, rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
  (tmp_path / "images" / "train.txt").write_text("x/b.png\n\ny/c.png 17\n")
  (tmp_path / "eval.txt").write_text("/x/a.png\n")
  config = _folder_config(f"list:{tmp_path / 'images' / 'train.txt'}", size=8,
                          eval_dataset=f"list:{tmp_path / 'eval.txt'}")
  config.data.root = config.data.eval_root = str(tmp_path / "images")
  dataset = load_dataset(config)
  assert [sources.name(dataset.train, i) for i in range(2)] == [
      str(tmp_path / "images" / "x" / "b.png"), str(tmp_path / "images" / "y" / "c.png")]
  assert len(dataset.eval) == 1  # with eval_dataset nothing is held out of the training list
  np.testing.assert_array_equal(dataset.eval[0], np.asarray(Image.open(
      tmp_path / "images" / "x" / "a.png")))
  config.data.eval_root = ""  # relative to the list's folder: /x/a.png is then absolute
  with pytest.raises(InputError, match=r"names 1 of 1 files that do not exist, e.g. '/x/a.png'"):
    load_dataset(config)


def test_image_list_errors(tmp_path):
  config = _folder_config(f"list:{tmp_path / 'none.txt'}")
  with pytest.raises(InputError, match="cannot be read: No such file"):
    load_dataset(config)
  (tmp_path / "empty.txt").write_text("\n  \n")
  with pytest.raises(InputError, match="names no images"):
    load_dataset(_folder_config(f"list:{tmp_path / 'empty.txt'}"))
  _write(tmp_path / "here.png", np.zeros((8, 8, 3), np.uint8))
  (tmp_path / "list.txt").write_text("here.png\n" + "".join(f"gone{i}.png\n" for i in range(5)))
  with pytest.raises(InputError, match=(r"names 5 of 6 files that do not exist, e\.g\. "
                                        rf"'{tmp_path}/gone0.png', '{tmp_path}/gone1.png', "
                                        rf"'{tmp_path}/gone2.png' \(paths are relative to")):
    load_dataset(_folder_config(f"list:{tmp_path / 'list.txt'}"))


def test_jpeg_draft_decodes_small_and_matches_a_full_decode(tmp_path):
  """`read_rgb(path, short_side)` asks libjpeg for a reduced scale that keeps the shorter side
  at least `short_side`; after the resize to it the image is the full decode's, up to the
  filters' difference."""
  from benchmarks.image_folder import photograph
  Image.fromarray(photograph(0, 512)[:, :384]).save(tmp_path / "a.jpg", quality=95)
  assert photos.read_rgb(tmp_path / "a.jpg", 96).shape == (128, 96, 3)  # 1/4 scale
  assert photos.read_rgb(tmp_path / "a.jpg", 100).shape == (256, 192, 3)  # 1/2: 1/4 too small
  fast = photos.load(tmp_path / "a.jpg", 64, 96)
  full = photos.prepare(photos.read_rgb(tmp_path / "a.jpg"), 64, 96)
  assert fast.shape == full.shape == (128, 96, 3)
  assert np.abs(fast.astype(int) - full).mean() < 2.0


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


def test_train_images_keeps_the_first_n_and_the_same_test_set():
  """STL10-n for any dataset: the first n training images (with their labels), every test
  image; more than the dataset has is one clear error."""
  config = get_config()
  full = load_dataset(config)
  config.data.train_images = 2
  fewer = load_dataset(config)
  assert len(fewer.train) == 2
  for i in range(2):
    np.testing.assert_array_equal(fewer.train[i], full.train[i])
  assert len(fewer.eval) == len(full.eval)
  np.testing.assert_array_equal(fewer.eval[-1], full.eval[-1])
  config.dataset, config.image_size, config.data.train_images = "digits", 16, 3
  digits = load_dataset(config)
  config.data.train_images = 0
  all_digits = load_dataset(config)
  np.testing.assert_array_equal(digits.train_labels, all_digits.train_labels[:3])
  np.testing.assert_array_equal(digits.train[2], all_digits.train[2])
  config.dataset, config.image_size, config.data.train_images = "embedded", 64, len(full.train) + 1
  with pytest.raises(InputError, match=rf"train_images={len(full.train) + 1}, but the dataset "
                     rf"has {len(full.train)} training images"):
    load_dataset(config)


def test_digits_are_labelled_upscaled_and_split_four_to_one():
  config = get_config()
  config.dataset, config.image_size, config.num_eval_images = "digits", 16, 1000
  dataset = load_dataset(config)
  assert len(dataset.train) + len(dataset.eval) == 1797
  assert len(dataset.eval) == 1797 // 5  # every 5th digit held out
  assert dataset.num_classes == 10 and not dataset.flip
  eval_images = batches.eval_images(config, dataset)
  assert eval_images.shape == (len(dataset.eval_labels), 16, 16, 3)
  # The image is sklearn's digit: its 8x8 block means follow the 0..16 pixel values.
  from sklearn.datasets import load_digits
  bunch = load_digits()
  first_test = 4  # the 5th digit
  assert dataset.eval_labels[0] == bunch.target[first_test]
  blocks = eval_images[0, :, :, 0].reshape(8, 2, 8, 2).mean((1, 3))
  assert np.corrcoef(blocks.ravel(), bunch.images[first_test].ravel())[0, 1] > 0.95
  config.batch_size = 64
  batch = batches.train_batch(config, dataset, 1)
  assert batch["label"].dtype == np.int32 and batch["label"].shape == (64,)
  # Labels travel with their images: the same index gives the same (image, label) pair.
  train_index = {bytes(im.tobytes()): int(l) for im, l in zip(dataset.train,
                                                               dataset.train_labels)}
  for image, label in zip(batch["image"], batch["label"]):
    assert train_index[bytes(np.round(image * 255).astype(np.uint8).tobytes())] == label
