"""Inference on your own images: `inference.py`, `image_files.py` and the `inpaint` /
`reconstruct` command lines, on a tiny official-network inpainting run (total stride 4)."""
import json
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

import subprocesses
import tiny
from clmser_jax import inference, train
from clmser_jax.data import masks
from clmser_jax.inference import cli as inference_cli
from clmser_jax.inference import files as image_files
from clmser_jax.faults import InputError
from clmser_jax.models import build_model


def _config():
  config = tiny.get_config("official", steps=2)  # BatchNorm, [-1, 1] pixels, inpainting
  config.model.strides = (2, 2)
  return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """`(workdir, final state)` of the inpainting run, and a copy relabelled 'reconstruct'."""
  root = tmp_path_factory.mktemp("runs")
  state = train.train_and_evaluate(_config(), str(root / "inpaint"))
  shutil.copytree(root / "inpaint", root / "reconstruct")
  config_file = root / "reconstruct" / "config.json"
  config = json.loads(config_file.read_text())
  config["task"]["name"] = "reconstruct"
  config_file.write_text(json.dumps(config))
  return root, state


def _photo(height, width, seed=0):
  """A smooth random photo in 1..255 (no zero pixel, so a masked zero is a hole)."""
  rng = np.random.default_rng(seed)
  coarse = rng.integers(1, 256, (height // 4 + 2, width // 4 + 2, 3), dtype=np.uint8)
  return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR)).clip(1)


def _save(path, pixels):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(pixels).save(path)
  return path


def _read(path):
  return np.asarray(Image.open(path).convert("RGB"))


def _files(folder):
  return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _values(workdir, image, out, **overrides):
  values = dict(workdir=str(workdir), image=str(image), out=str(out), config=None, mask=None,
                mask_polarity=None, mask_ratio=None, mask_kind=None, seed=0,
                save_masked=False)
  return values | overrides


def test_pad_to_multiple_reflects_at_bottom_and_right():
  row = np.array([[0, 1, 2]], np.float32)[..., None]
  padded = inference.pad_to_multiple(row, 4)[..., 0]
  np.testing.assert_array_equal(padded, [[0, 1, 2, 1], [0, 1, 2, 1], [0, 1, 2, 1],
                                         [0, 1, 2, 1]])


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(37, 53), (16, 16), (1, 7)])
def test_outputs_have_the_input_size(trained, shape):
  root, _ = trained
  image = _photo(*shape) / 255.0
  mask = masks.point_mask(0, *shape, 0.3)
  inpaint = inference.image_predictor(inference.load_run(str(root / "inpaint")), "inpaint")
  reconstruct = inference.image_predictor(inference.load_run(str(root / "reconstruct")),
                                          "reconstruct")
  assert inpaint(image, mask).shape == (*shape, 3)
  assert reconstruct(image).shape == (*shape, 3)


@pytest.mark.slow
def test_odd_size_is_the_reflect_padded_prediction_cropped(trained):
  root, _ = trained
  image, mask = _photo(37, 53) / 255.0, masks.point_mask(1, 37, 53, 0.3)
  predict = inference.image_predictor(inference.load_run(str(root / "inpaint")), "inpaint")
  pad = lambda a: np.pad(a, ((0, 3), (0, 3), (0, 0)), mode="reflect")  # to 40x56
  np.testing.assert_array_equal(predict(image, mask), predict(pad(image), pad(mask))[:37, :53])


@pytest.mark.slow
def test_prediction_at_a_stride_multiple_is_the_models(trained):
  """The restored run against the trained state applied directly, composite by hand."""
  root, state = trained
  image = (_photo(16, 16) / 255.0).astype(np.float32)
  mask = masks.point_mask(2, 16, 16, 0.3)
  output = build_model(_config().model).apply(
      {"params": state.params, "batch_stats": state.batch_stats},
      (image * 2 - 1)[None] * mask[None])[0]
  expected = mask * image + (1 - mask) * (output + 1) / 2
  predict = inference.image_predictor(inference.load_run(str(root / "inpaint")), "inpaint")
  np.testing.assert_allclose(predict(image, mask), expected, atol=1e-6)


def test_inpainting_keeps_known_pixels_exactly(trained, tmp_path):
  root, _ = trained
  photo = _photo(37, 53)
  source = _save(tmp_path / "photo.png", photo)
  inference_cli.run("inpaint", _values(root / "inpaint", source, tmp_path / "out.png",
                                       mask_ratio=0.3, save_masked=True))
  out, masked = _read(tmp_path / "out.png"), _read(tmp_path / "out_masked.png")
  holes = np.all(masked == 0, axis=-1)  # the photo has no zero pixel
  assert holes.sum() == round(0.3 * 37 * 53)  # point masks have exactly that many holes
  np.testing.assert_array_equal(out[~holes], photo[~holes])
  np.testing.assert_array_equal(masked[~holes], photo[~holes])
  assert np.mean(np.any(out[holes] != photo[holes], axis=-1)) > 0.5


def test_mask_polarity_flips_the_holes(trained, tmp_path):
  root, _ = trained
  photo = _photo(20, 24)
  source = _save(tmp_path / "photo.png", photo)
  white = np.zeros((20, 24), bool)
  white[4:12, 6:18] = True
  mask_file = _save(tmp_path / "mask.png", np.where(white, 255, 0).astype(np.uint8))
  for polarity, known in (("known", white), ("hole", ~white)):
    out = tmp_path / f"{polarity}.png"
    inference_cli.run("inpaint", _values(root / "inpaint", source, out, mask=str(mask_file),
                                         mask_polarity=polarity))
    changed = np.any(_read(out) != photo, axis=-1)
    assert not changed[known].any()
    assert changed[~known].mean() > 0.5


def test_a_mask_of_the_same_aspect_is_resized_nearest(tmp_path):
  blocks = np.random.default_rng(0).integers(0, 2, (10, 15)).astype(bool)
  big = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)  # 20x30, 2x2 blocks
  path = _save(tmp_path / "mask.png", np.where(big, 255, 0).astype(np.uint8))
  mask = image_files.read_mask(path, "hole", (10, 15))
  np.testing.assert_array_equal(mask[..., 0], (~blocks).astype(np.float32))
  with pytest.raises(InputError, match="aspect ratio"):
    image_files.read_mask(path, "hole", (10, 20))


@pytest.mark.slow
def test_folder_in_folder_out(trained, tmp_path):
  root, _ = trained
  names = {"a.png": (16, 16), "sub/b.jpg": (21, 18), "sub/deeper/c.png": (9, 33)}
  for name, shape in names.items():
    _save(tmp_path / "in" / name, _photo(*shape))
  inference_cli.run("inpaint", _values(root / "inpaint", tmp_path / "in", tmp_path / "out",
                                       mask_ratio=0.2))
  assert _files(tmp_path / "out") == sorted(names)
  for name, shape in names.items():
    assert _read(tmp_path / "out" / name).shape == (*shape, 3)
  for _ in range(2):  # an output folder inside the input folder is not read back
    inference_cli.run("inpaint", _values(root / "inpaint", tmp_path / "in",
                                         tmp_path / "in" / "out", mask_ratio=0.2))
  assert _files(tmp_path / "in" / "out") == sorted(names)


def test_a_reconstruction_run_can_inpaint_with_a_warning(trained, tmp_path, caplog):
  root, _ = trained
  image, mask = _photo(12, 20) / 255.0, masks.point_mask(3, 12, 20, 0.3)
  predict = inference.image_predictor(inference.load_run(str(root / "reconstruct")),
                                      "inpaint")
  assert "trained for reconstruction" in caplog.text
  np.testing.assert_array_equal(predict(image, mask)[mask[..., 0] == 1],
                                image.astype(np.float32)[mask[..., 0] == 1])


def test_a_converted_checkpoint_loads_with_its_config(trained, tmp_path):
  root, _ = trained
  shutil.copytree(root / "inpaint" / "checkpoints", tmp_path / "checkpoints")
  with pytest.raises(InputError, match="no config.json"):
    inference.load_run(str(tmp_path))
  run = inference.load_run(str(tmp_path), _config())
  assert run.step == 2 and isinstance(run.state, train.BatchNormTrainState)


def test_errors(trained, tmp_path):
  root, _ = trained
  run = lambda task, **kw: inference_cli.run(task, _values(**kw))
  photo = _save(tmp_path / "photo.png", _photo(8, 8))
  ok = dict(workdir=root / "inpaint", image=photo, out=tmp_path / "o.png")
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "config.json").write_text((root / "inpaint" / "config.json").read_text())
  (tmp_path / "broken.png").write_bytes(b"not a png")
  (tmp_path / "a_file").write_text("")
  _save(tmp_path / "tall.png", np.zeros((16, 8), np.uint8))
  cases = [
      ("does not exist", "inpaint", dict(ok, workdir=tmp_path / "missing")),
      ("no config.json", "inpaint", dict(ok, workdir=tmp_path)),
      ("no checkpoints folder", "inpaint", dict(ok, workdir=tmp_path / "empty")),
      ("cannot read the image", "inpaint", dict(ok, image=tmp_path / "broken.png")),
      ("does not exist", "inpaint", dict(ok, image=tmp_path / "missing.png")),
      ("aspect ratio", "inpaint", dict(ok, mask=str(tmp_path / "tall.png"))),
      ("cannot create the output folder", "inpaint",
       dict(ok, out=tmp_path / "a_file" / "o.png")),
      ("names an image file", "inpaint", dict(ok, image=tmp_path / "empty")),
      ("would overwrite", "inpaint", dict(ok, out=photo)),
      ("not both", "inpaint", dict(ok, mask=str(tmp_path / "tall.png"), mask_ratio=0.2)),
      ("hole fraction", "inpaint", dict(ok, mask_ratio=1.5)),
      ("trained for inpainting", "reconstruct", ok),
  ]
  for match, task, kwargs in cases:
    with pytest.raises(InputError, match=match):
      run(task, **kwargs)


@pytest.mark.slow
def test_command_line(trained, tmp_path):
  root, _ = trained
  source = _save(tmp_path / "photo.jpg", _photo(19, 23))
  done = subprocesses.run([sys.executable, "-m", "clmser_jax.inpaint",
                           f"--workdir={root / 'inpaint'}", f"--image={source}",
                           f"--out={tmp_path / 'out.png'}", "--mask-ratio=0.2", "--seed=3"])
  assert done.returncode == 0, done.stderr
  assert _read(tmp_path / "out.png").shape == (19, 23, 3)
  failed = subprocesses.run([sys.executable, "-m", "clmser_jax.reconstruct",
                             f"--workdir={root / 'inpaint'}", f"--image={source}",
                             f"--out={tmp_path / 'rec.png'}"])
  assert failed.returncode == 1
  assert failed.stderr.strip().splitlines()[-1].startswith(
      "clmser_jax.reconstruct: input error: this run was trained for inpainting")


def test_a_folder_skips_unreadable_images_then_reports_them(trained, tmp_path):
  root, _ = trained
  _save(tmp_path / "in" / "good.png", _photo(8, 12))
  (tmp_path / "in" / "broken.jpg").write_bytes(b"not a jpeg")
  with pytest.raises(InputError, match=r"1 of 2 images could not be read .*broken\.jpg"):
    inference_cli.run("reconstruct", _values(root / "reconstruct", tmp_path / "in",
                                             tmp_path / "out"))
  assert _files(tmp_path / "out") == ["good.png"]
