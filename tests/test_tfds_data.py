"""tensorflow-datasets sources: STL10-n, decoding, labels, laziness, no TensorFlow, and the
error when a dataset is not prepared. Nothing here downloads (see `tfds_fake`)."""
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow_datasets as tfds

import batches
import tfds_fake
from clmser_jax import train
from clmser_jax.config import validate
from clmser_jax.data import load_dataset, splits
from clmser_jax.faults import InputError
from configs import stl10
from configs.default import get_config
from subprocesses import REPO


def _config(name, size, num_eval, **fields):
  config = get_config()
  config.dataset, config.image_size, config.num_eval_images = f"tfds:{name}", size, num_eval
  config.update(fields)
  validate(config)
  return config


def test_hold_out_and_first_per_class_by_hand():
  labels = np.array([0, 0, 1, 0, 1, 1, 0])
  # class 0 at 0, 1, 3, 6 and class 1 at 2, 4, 5: every 2nd of each class is held out
  train_index, test_index = splits.hold_out_per_class(labels, every=2)
  np.testing.assert_array_equal(train_index, [0, 2, 3, 5])
  np.testing.assert_array_equal(test_index, [1, 4, 6])
  np.testing.assert_array_equal(splits.first_per_class(labels, 2), [0, 1, 2, 4])
  with pytest.raises(InputError, match="per_class=4: class 1 has only 3"):
    splits.first_per_class(labels, 4)


def test_stl10_split_is_four_to_one_per_class_and_n_picks_n():
  labels = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 500))
  train_index, test_index = splits.hold_out_per_class(labels)
  np.testing.assert_array_equal(np.bincount(labels[train_index]), [400] * 10)
  np.testing.assert_array_equal(np.bincount(labels[test_index]), [100] * 10)
  assert not np.intersect1d(train_index, test_index).size
  assert len(train_index) + len(test_index) == 5000
  for n in (400, 100, 10):
    picked = train_index[splits.first_per_class(labels[train_index], n)]
    np.testing.assert_array_equal(np.bincount(labels[picked]), [n] * 10)
    for c in range(10):  # the first n of class c that are not held out, in index order
      members = np.flatnonzero(labels == c)
      kept = np.delete(members, np.arange(4, 500, 5))
      np.testing.assert_array_equal(picked[labels[picked] == c], kept[:n])


def test_stl10_n_trains_on_n_per_class_and_evaluates_on_the_held_out_fifth():
  config = _config("stl10", 96, 1000, per_class=100)
  with tfds_fake.mock_indexed({"train": 5000}) as decoded:
    dataset = load_dataset(config)
    assert not decoded  # labels are read, images only when the pipeline asks for them
    train_ids = np.array([tfds_fake.index_of(image) for image in dataset.train])
    eval_images = batches.eval_images(config, dataset)
  # Example i is of class i % 10 and the (i // 10)-th of its class: ranks 4, 9, ... are held
  # out; STL10-100 keeps the first 100 of the other ranks, 0..124.
  rank = np.arange(5000) // 10
  expected_train = np.flatnonzero((rank < 125) & (rank % 5 != 4))
  np.testing.assert_array_equal(np.sort(train_ids), expected_train)
  np.testing.assert_array_equal(dataset.train_labels, train_ids % 10)
  eval_ids = [tfds_fake.index_of(image * 255) for image in eval_images]
  np.testing.assert_array_equal(eval_ids, np.flatnonzero(rank % 5 == 4))
  np.testing.assert_array_equal(dataset.eval_labels, np.array(eval_ids) % 10)
  assert dataset.num_classes == 10 and dataset.flip
  assert eval_images.shape == (1000, 96, 96, 3)
  assert eval_images.dtype == np.float32


@pytest.mark.parametrize("name,shape,flip", [("mnist", (28, 28, 1), False),
                                             ("fashion_mnist", (28, 28, 1), False),
                                             ("cifar10", (32, 32, 3), True)])
def test_labelled_images_are_rgb_at_image_size(name, shape, flip):
  config = _config(name, 32, 8)
  with tfds_fake.mock_indexed({"train": 30, "test": 20}):
    dataset = load_dataset(config)
    assert len(dataset.train) == 30 and dataset.flip == flip
    for i in (0, 7, 29):  # grey is repeated into RGB; MNIST's 28x28 is upscaled to 32x32
      pixel = [i, i, i] if shape[2] == 1 else [i, 0, i]  # `indexed_image` of i < 256
      np.testing.assert_array_equal(dataset.train[i], np.broadcast_to(pixel, (32, 32, 3)))
    eval_images = batches.eval_images(config, dataset)
  np.testing.assert_array_equal(dataset.train_labels, np.arange(30) % 10)
  np.testing.assert_array_equal(dataset.eval_labels, np.arange(8) % 10)
  np.testing.assert_array_equal(eval_images[:, 0, 0, 0] * 255, np.arange(8))
  assert eval_images.shape == (8, 32, 32, 3) and dataset.num_classes == 10


@pytest.mark.parametrize("name", ["places365_small", "celeb_a_hq/256"])
def test_unlabelled_photographs(name):
  config = _config(name, 64, 3)
  with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
    dataset = load_dataset(config)
    assert len(dataset.train) == 5 and dataset.train[4].shape == (256, 256, 3)
    eval_images = batches.eval_images(config, dataset)
  assert dataset.train_labels is None and dataset.flip
  assert eval_images.shape == (3, 64, 64, 3)


def test_train_batch_is_a_function_of_the_step():
  config = _config("stl10", 32, 4, per_class=20)
  config.batch_size = 16
  with tfds_fake.mock_indexed({"train": 500}):
    dataset = load_dataset(config)
    a, b = (batches.train_batch(config, dataset, 5) for _ in range(2))
    other = batches.train_batch(config, dataset, 6)
  for field in ("image", "label"):
    np.testing.assert_array_equal(a[field], b[field])
  assert not np.array_equal(a["image"], other["image"])
  assert a["image"].shape == (16, 32, 32, 3)
  # Labels travel with their images (a crop of image i is still filled with i).
  np.testing.assert_array_equal(
      [tfds_fake.index_of(image * 255) % 10 for image in a["image"]], a["label"])


def test_a_prepared_array_record_dataset_is_read_from_data_dir(tmp_path):
  tfds_fake.write_prepared("mnist", tmp_path, {"train": 12, "test": 5})
  config = _config("mnist", 32, 4, data_dir=str(tmp_path), per_class=1)
  dataset = load_dataset(config)
  assert [image[5, 5, 1] for image in dataset.train] == list(range(10))  # grey, indexed
  np.testing.assert_array_equal(dataset.train_labels, np.arange(10))
  np.testing.assert_array_equal(dataset.eval_labels, np.arange(4))
  np.testing.assert_array_equal(batches.eval_images(config, dataset)[:, 5, 5, 2] * 255,
                                np.arange(4))


@pytest.mark.slow
def test_loading_never_imports_tensorflow(tmp_path):
  """Even with TensorFlow importable (a stand-in package here), reading does not import it."""
  (tmp_path / "tensorflow").mkdir()
  (tmp_path / "tensorflow" / "__init__.py").write_text('"""Stand-in TensorFlow."""\n')
  script = textwrap.dedent(f"""
      import importlib.util, sys
      sys.path[:0] = [{str(tmp_path)!r}, {str(REPO / 'tests')!r}]
      assert importlib.util.find_spec("tensorflow") is not None
      import batches, tfds_fake
      from clmser_jax.data import load_dataset
      from configs.default import get_config
      config = get_config()
      config.dataset, config.image_size, config.num_eval_images = "tfds:mnist", 32, 4
      config.data_dir = tfds_fake.write_prepared("mnist", {str(tmp_path)!r}, {{"train": 12,
                                                 "test": 5}}).parents[1].as_posix()
      batches.train_batch(config, load_dataset(config), 1)
      config.dataset, config.data_dir = "tfds:stl10", ""
      with tfds_fake.mock_indexed({{"train": 100}}):
        batches.train_batch(config, load_dataset(config), 1)
      print("tensorflow" in sys.modules)
      """)
  result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip() == "False"


def test_not_prepared_names_the_directory_and_how_to_build(tmp_path, monkeypatch):
  connections = []
  monkeypatch.setattr(socket.socket, "connect", lambda self, address: connections.append(
      address))
  with pytest.raises(InputError) as error:
    load_dataset(_config("stl10", 96, 4, data_dir=str(tmp_path)))
  message = str(error.value)
  assert "\n" not in message and "'stl10' is not prepared in " + str(tmp_path) in message
  assert f"tfds build stl10 --data_dir={tmp_path} --file_format=array_record" in message
  with pytest.raises(InputError, match=r"manual download into .*downloads/manual.*"
                                       r"tfds build celeb_a_hq/256 .*folder:"):
    load_dataset(_config("celeb_a_hq/256", 64, 4, data_dir=str(tmp_path)))
  assert not connections and not list(tmp_path.iterdir())  # nothing fetched or written
  tfds_fake.write_prepared("mnist", tmp_path, {"train": 3}, file_format="tfrecord")
  with pytest.raises(InputError, match=r"stored as tfrecord, .* rebuild it as ArrayRecord"):
    load_dataset(_config("mnist", 32, 4, data_dir=str(tmp_path)))


@pytest.mark.slow
def test_stl10_config_trains_end_to_end_on_mock_data(tmp_path):
  config = stl10.get_config("clmser,10,adam")
  config.image_size, config.batch_size, config.num_eval_images = 32, 4, 4
  config.num_train_steps = config.eval_every_steps = config.checkpoint_every_steps = 2
  config.model.depth, config.model.channels, config.model.strides = 2, (4, 8), (1, 2)
  config.data.workers = 0  # the mock lives in this process only
  with tfds_fake.mock_indexed({"train": 500}):
    state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 2
  assert (tmp_path / "images" / "eval_0000002.png").exists()
