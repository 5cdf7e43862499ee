"""The input pipeline: training batches as a pure function of `(seed, step)` whatever the
workers, processes and resumes; unreadable images skipped; a dying worker named; the
evaluation stream; prepared copies and the mask banks."""
import logging
import os
import signal
import subprocess
import sys

import numpy as np
import psutil
import pytest
from PIL import Image

import batches
import subprocesses
from benchmarks import image_folder
from clmser_jax import tasks
from clmser_jax.data import masks
from clmser_jax.config import task_config
from clmser_jax.data import listing, load_dataset, mask_banks, pipeline, records, sources
from clmser_jax.data import prepare
from clmser_jax.faults import InputError, WorkerError
from configs.default import get_config


def _folder(tmp_path, count=12, size=48, name="images"):
  folder = tmp_path / name
  image_folder.write_folder(str(folder), count, size)
  return folder


def _config(spec, size=32, batch_size=4, **fields):
  config = get_config()
  config.dataset, config.image_size, config.batch_size = spec, size, batch_size
  config.update(fields)
  return config


def _pipeline_batches(sampler, rows, first, last, workers, prefetch=2):
  return [b for b in pipeline.train_batches(sampler, rows, first, last, workers, prefetch)]


def _assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert sorted(x) == sorted(y)
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


@pytest.mark.slow
def test_zero_and_two_workers_give_identical_batches(tmp_path):
  """Workers change who makes a batch, never what is in it; each batch is the sampler's rows
  of its step (`host_batch`), so a resumed chain continues the uninterrupted one."""
  config = _config(f"folder:{_folder(tmp_path)}")
  config.task = task_config("inpaint", mask_bank_size=5)
  dataset = load_dataset(config)
  bank = masks.sample_masks("points", 3, 5, 32, 32, 0.25).astype(np.uint8)
  sampler = batches.sampler(config, dataset, bank)
  rows = slice(0, 4)
  in_process = _pipeline_batches(sampler, rows, 1, 6, workers=0)
  in_workers = _pipeline_batches(sampler, rows, 1, 6, workers=2)
  _assert_batches_equal(in_process, in_workers)
  _assert_batches_equal(in_process, [pipeline.host_batch(sampler, t, rows) for t in range(1, 7)])
  _assert_batches_equal(in_process[3:], _pipeline_batches(sampler, rows, 4, 6, workers=2))
  first = in_process[0]
  assert first["image"].dtype == np.uint8 and first["image"].shape == (4, 32, 32, 3)
  assert first["mask"].dtype == np.uint8 and first["mask"].shape == (4, 32, 32, 1)
  assert not np.array_equal(in_process[0]["image"], in_process[1]["image"])
  # Every mask is one of the bank's, every crop a crop of one of the training images.
  for mask in np.concatenate([b["mask"] for b in in_process]):
    assert any(np.array_equal(mask, m) for m in bank)


def test_a_process_builds_exactly_its_rows_of_the_batch(tmp_path):
  dataset = load_dataset(get_config())
  sampler = batches.sampler(get_config(), dataset)
  whole = pipeline.host_batch(sampler, 5, slice(0, 8))["image"]
  for rows in (slice(0, 4), slice(4, 8), slice(6, 8)):
    np.testing.assert_array_equal(pipeline.host_batch(sampler, 5, rows)["image"], whole[rows])
    (batch,) = _pipeline_batches(sampler, rows, 5, 5, workers=0)
    np.testing.assert_array_equal(batch["image"], whole[rows])


def test_crops_and_flips_by_hand():
  """A row is the crop at `int(u * (H - S + 1))` of the image the generator picks, mirrored
  when its third draw is below 1/2: recomputed here from the generator's draws."""
  image = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
  sampler = pipeline.Sampler(pipeline.Reader((image,)), 4, True, (7,))
  for step in range(1, 20):
    rng = np.random.default_rng([7, step, 0])
    assert rng.integers(1) == 0
    u_y, u_x, u_flip = rng.random(3)
    y, x = int(u_y * 7), int(u_x * 9)
    expected = image[y:y + 4, x:x + 4]
    expected = expected[:, ::-1] if u_flip < 0.5 else expected
    np.testing.assert_array_equal(sampler((step, 0))["image"], expected)


@pytest.mark.slow
def test_unreadable_images_are_skipped_by_name_and_counted(tmp_path, caplog):
  folder = _folder(tmp_path, count=6)
  (folder / "000002.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
  (folder / "000003.jpg").write_bytes((folder / "000004.jpg").read_bytes()[:200])  # truncated
  config = _config(f"folder:{folder}", eval_dataset=f"folder:{folder}", batch_size=8)
  dataset = load_dataset(config)
  sampler = batches.sampler(config, dataset)
  with caplog.at_level(logging.WARNING):
    made = [pipeline.host_batch(sampler, t, slice(0, 8)) for t in range(1, 6)]
  skipped = sum(int(b["skipped"].sum()) for b in made)
  assert skipped > 0
  warned = [r.getMessage() for r in caplog.records if "skipping unreadable" in r.getMessage()]
  assert {w.split()[3].rstrip(":") for w in warned} == {str(folder / "000002.jpg"),
                                                        str(folder / "000003.jpg")}
  assert len(warned) == 2  # once per file and process, however often it is drawn
  # What a skip takes instead is the next readable image: the same in any worker.
  _assert_batches_equal(made, _pipeline_batches(sampler, slice(0, 8), 1, 5, workers=2))


@pytest.mark.slow
def test_a_damaged_dataset_stops_with_one_line_also_from_a_worker(tmp_path):
  folder = tmp_path / "junk"
  folder.mkdir()
  for i in range(pipeline.MAX_UNREADABLE_IN_A_ROW + 2):
    (folder / f"{i:03d}.png").write_bytes(b"junk")
  config = _config(f"folder:{folder}")
  sampler = batches.sampler(config, load_dataset(config))
  for workers in (0, 1):
    with pytest.raises(InputError, match=r"^65 images in a row cannot be read, from .*/0\d\d"
                                         r"\.png \(cannot identify image file"):
      _pipeline_batches(sampler, slice(0, 4), 1, 2, workers=workers)


class _DiesInWorkers:
  """A source whose image 0 kills the process reading it, unless it is the test's own."""

  def __init__(self, parent_pid):
    self.parent_pid = parent_pid

  def __len__(self):
    return 1

  def __getitem__(self, i):
    if os.getpid() != self.parent_pid:
      os.kill(os.getpid(), signal.SIGKILL)
    return np.zeros((8, 8, 3), np.uint8)


@pytest.mark.slow
def test_a_worker_that_dies_ends_the_run_with_one_line():
  sampler = pipeline.Sampler(pipeline.Reader(_DiesInWorkers(os.getpid())), 8, False, (0,))
  stream = iter(pipeline.train_batches(sampler, slice(0, 2), 1, 3, 1, 1))
  with pytest.raises(WorkerError, match=r"^a data worker process died \(Worker process was "
                                        r"terminated unexpectedly with exit code -9\)"):
    pipeline.next_batch(stream, 1)


def test_eval_stream_is_the_tiles_in_order_with_masks_by_position():
  config = get_config()
  config.num_eval_images, config.batch_size = 23, 5
  dataset = load_dataset(config)
  bank = np.arange(7, dtype=np.uint8)[:, None, None, None] * np.ones((1, 64, 64, 1), np.uint8)
  crops = pipeline.EvalCrops(dataset.eval, 64, False)
  made = list(pipeline.eval_batches(crops, bank, 5, 23))
  assert [len(b["image"]) for b in made] == [5, 5, 5, 5, 3]
  tiles = np.concatenate([dataset.eval[0][y:y + 64, x:x + 64][None]
                          for y in range(0, dataset.eval[0].shape[0] - 63, 64)
                          for x in range(0, dataset.eval[0].shape[1] - 63, 64)])
  assert len(tiles) >= 23  # all from the first held-out photograph
  np.testing.assert_array_equal(np.concatenate([b["image"] for b in made]), tiles[:23])
  np.testing.assert_array_equal(np.concatenate([b["mask"][:, 0, 0, 0] for b in made]),
                                np.arange(23) % 7)


def test_eval_stream_skips_unreadable_images(tmp_path, caplog):
  folder = _folder(tmp_path, count=3, size=32)
  (folder / "000001.jpg").write_bytes(b"junk")
  config = _config(f"folder:{folder}", eval_dataset=f"folder:{folder}", num_eval_images=10)
  dataset = load_dataset(config)
  with caplog.at_level(logging.WARNING):
    images = batches.eval_images(config, dataset)
  np.testing.assert_array_equal(images * 255, np.stack([dataset.eval[0], dataset.eval[2]]))
  assert any("000001.jpg" in r.getMessage() for r in caplog.records)


def test_loading_a_folder_opens_no_image(tmp_path, monkeypatch):
  folder = _folder(tmp_path, count=30, size=16)
  monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("an image was opened"))
  dataset = load_dataset(_config(f"folder:{folder}", size=16))
  assert (len(dataset.train), len(dataset.eval)) == (27, 3)


def test_paths_table_round_trips():
  names = ["a.png", "dir/été.jpg", "x" * 300 + ".png"]
  table = listing.Paths("/root", names)
  assert list(table) == [os.path.join("/root", n) for n in names]
  assert table[-1] == table[2] and len(table) == 3
  with pytest.raises(IndexError):
    table[3]


def _prepare(folder, out, workers=0, shard_size=5):
  return prepare.prepare(f"folder:{folder}", 32, str(out), workers, shard_size)


@pytest.mark.slow
def test_a_prepared_copy_trains_exactly_like_its_folder(tmp_path):
  folder = _folder(tmp_path, count=12, size=48)
  (folder / "000005.jpg").write_bytes(b"junk")
  manifest = _prepare(folder, tmp_path / "prepared", workers=2)
  assert manifest["images"] == 11 and [n for _, n in manifest["shards"]] == [5, 4, 2]
  assert manifest["skipped"][0].startswith(f"{folder / '000005.jpg'}: cannot identify")
  prepared = sources.Prepared(str(tmp_path / "prepared"), 32, 32)
  readable = [i for i in range(12) if i != 5]
  files = sources.ImageFiles(listing.find_images(str(folder)), 32, 32)
  for record, i in enumerate(readable):
    np.testing.assert_array_equal(prepared[record], files[i])
  # Training batches from the copy are those from the folder (minus the unreadable file).
  (folder / "000005.jpg").unlink()
  from_folder = _config(f"folder:{folder}", resize=32)
  from_copy = _config(f"records:{tmp_path / 'prepared'}", resize=32)
  for step in (1, 2, 3):
    np.testing.assert_array_equal(
        batches.train_batch(from_folder, load_dataset(from_folder), step)["image"],
        batches.train_batch(from_copy, load_dataset(from_copy), step)["image"])


@pytest.mark.slow
def test_prepare_resumes_after_a_kill_its_workers_end_and_another_dataset_is_refused(tmp_path):
  count = 400  # enough that the kill lands while the copy is under way
  folder = _folder(tmp_path, count=count, size=64)
  _prepare(folder, tmp_path / "whole", shard_size=4)
  out = tmp_path / "killed"
  command = [sys.executable, "-m", "clmser_jax.data.prepare", f"--dataset=folder:{folder}",
             "--image_size=32", f"--out={out}", "--shard_size=4", "--workers=1"]
  process = subprocess.Popen(command, cwd=subprocesses.REPO, env=subprocesses.environment(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    subprocesses.wait_for(lambda: (out / records.shard_name(2)).exists()
                          or process.poll() is not None)
    workers = psutil.Process(process.pid).children()
    process.send_signal(signal.SIGKILL)
  finally:
    subprocesses.finish(process)
  assert workers  # the data worker (and its resource tracker): they end with their parent
  subprocesses.wait_for(lambda: not any(map(subprocesses.running, workers)), timeout=30)
  assert not (out / records.MANIFEST).exists()  # an unfinished copy is not a dataset
  with pytest.raises(InputError, match="is not a prepared dataset"):
    records.Records(str(out))
  result = subprocesses.run(command)
  assert result.returncode == 0, result.stderr[-2000:]
  whole, resumed = records.Records(str(tmp_path / "whole")), records.Records(str(out))
  assert len(whole) == len(resumed) == count
  for i in range(count):
    np.testing.assert_array_equal(whole[i], resumed[i])
  result = subprocesses.run([*command[:3], f"--dataset=folder:{tmp_path}", *command[4:]])
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(
      f"clmser_jax.data.prepare: input error: --out {str(out)!r} holds a prepared copy of")


def test_a_damaged_prepared_copy_is_one_line(tmp_path):
  _prepare(_folder(tmp_path, count=6, size=32), tmp_path / "p")
  (tmp_path / "p" / records.MANIFEST).write_text('{"format": ')
  with pytest.raises(InputError, match=r"manifest.json' cannot be read .*prepare the dataset"):
    load_dataset(_config(f"records:{tmp_path / 'p'}"))
  _prepare(_folder(tmp_path, count=6, size=32), tmp_path / "q")
  (tmp_path / "q" / records.shard_name(1)).unlink()
  with pytest.raises(InputError, match=r"lacks 1 of its shards, e.g. 'images-00001"):
    load_dataset(_config(f"records:{tmp_path / 'q'}"))


def test_record_encoding_round_trips():
  image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
  record = records.encode(image)
  assert len(record) == 8 + image.size
  np.testing.assert_array_equal(records.decode(record), image)


@pytest.mark.slow
def test_mask_bank_is_made_once_and_kept(tmp_path, monkeypatch):
  task = task_config("inpaint", mask_ratio=0.2)
  made = mask_banks.bank(task, 24, 3, 6, 0, str(tmp_path))
  np.testing.assert_array_equal(made, masks.sample_masks("points", 3, 6, 24, 24, 0.2))
  assert made.dtype == np.uint8
  monkeypatch.setattr(mask_banks, "generate", lambda *a: pytest.fail("made twice"))
  np.testing.assert_array_equal(mask_banks.bank(task, 24, 3, 6, 0, str(tmp_path)), made)
  (cached,) = (tmp_path / "masks").iterdir()
  cached.write_bytes(cached.read_bytes()[:100])  # a damaged cache is made again
  monkeypatch.undo()
  np.testing.assert_array_equal(mask_banks.bank(task, 24, 3, 6, 2, str(tmp_path)), made)
  assert mask_banks.bank(task_config("reconstruct"), 24, 3, 6, 0, str(tmp_path)) is None


def test_a_mask_folder_is_read_lazily(tmp_path, monkeypatch):
  for i in range(3):
    Image.fromarray(np.full((4, 4), 255 * (i % 2), np.uint8)).save(tmp_path / f"{i}.png")
  task = task_config("inpaint", mask=f"folder:{tmp_path}", mask_polarity="hole")
  read = []
  monkeypatch.setattr(masks, "read_mask", lambda path, *a: read.append(path) or path)
  bank = mask_banks.bank(task, 8, 0, 512, 0, str(tmp_path))
  assert len(bank) == 3 and not read
  assert bank[1] == str(tmp_path / "1.png") and len(read) == 1


def test_unit_batch_scales_uint8_only():
  raw = {"image": np.array([[0, 255]], np.uint8), "mask": np.array([[1, 0]], np.uint8)}
  unit = tasks.unit_batch(raw)
  np.testing.assert_array_equal(unit["image"], np.float32([[0, 1]]))
  assert unit["image"].dtype == unit["mask"].dtype == np.float32
  floats = {"image": np.float32([[0.5]])}
  assert tasks.unit_batch(floats)["image"] is floats["image"]
