"""FID (Sec. 5.3): the Inception port against a PyTorch reference of pytorch-fid's network,
the weights converter round trip, and FID of two image sets."""
import numpy as np
import pytest

from clmser_jax import fid
from clmser_jax.fid import convert, distance, weights

torch = pytest.importorskip("torch")
F = torch.nn.functional


def test_preprocess_matches_pytorch_bilinear_resize():
  rng = np.random.default_rng(4)
  for side in (40, 400):  # up- and down-sampling
    images = rng.uniform(size=(1, side, side + 3, 3)).astype(np.float32)
    ref = F.interpolate(torch.from_numpy(images).permute(0, 3, 1, 2), size=(299, 299),
                        mode="bilinear", align_corners=False)
    ref = 2 * ref.permute(0, 2, 3, 1).numpy() - 1
    np.testing.assert_allclose(np.asarray(fid.preprocess(images)), ref, atol=1e-5)


@pytest.fixture(scope="module")
def torch_net():
  from torch_fid_inception import randomised  # tests/ is on sys.path under pytest
  return randomised(0, torch.rand(2, 3, 299, 299) * 2 - 1)


@pytest.fixture(scope="module")
def converted(torch_net, tmp_path_factory):
  """`python -m clmser_jax.fid.convert` on a saved state_dict, loaded back."""
  folder = tmp_path_factory.mktemp("fid")
  state = dict(torch_net.state_dict())
  state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
  torch.save(state, folder / weights.PTH_NAME)
  convert.main(["--pth", str(folder / weights.PTH_NAME), "--out", str(folder / "w.npz")])
  return weights.load_variables(folder / "w.npz")


def torch_pool3(net, images):
  """pytorch-fid's pipeline on NHWC `[0, 1]` images: resize, rescale, network."""
  x = torch.from_numpy(np.ascontiguousarray(images, np.float32)).permute(0, 3, 1, 2)
  x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
  with torch.no_grad():
    return net(2 * x - 1).numpy()


IMAGES = np.random.default_rng(5).uniform(size=(3, 32, 32, 3)).astype(np.float32)


@pytest.mark.slow
def test_converted_flax_network_matches_pytorch_fid_network(torch_net, converted):
  expected = torch_pool3(torch_net, IMAGES)
  assert expected.std() > 1  # the random network's features are far from trivial
  got = fid.pool3_features(IMAGES, converted, batch_size=2)  # 2 batches, one padded
  assert got.shape == (3, fid.inception.FEATURES)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def sample_space_frechet(x1, x2):
  """Frechet distance of the Gaussians of feature sets `x1 (n1, D)`, `x2 (n2, D)` through
  the small `n1 x n2` matrix: the nonzero eigenvalues of `S_1 S_2` are those of
  `B B^T / ((n1 - 1)(n2 - 1))` with `B = X_1 X_2^T` (centred), so the trace term is the
  nuclear norm of `B`, scaled. Independent of the 2048x2048 route of `frechet_distance`."""
  c1, c2 = x1 - x1.mean(0), x2 - x2.mean(0)
  n1, n2 = len(x1) - 1, len(x2) - 1
  return (np.sum((x1.mean(0) - x2.mean(0)) ** 2) + np.sum(c1 ** 2) / n1 + np.sum(c2 ** 2) / n2
          - 2 * np.linalg.norm(c1 @ c2.T, "nuc") / np.sqrt(n1 * n2))


@pytest.mark.slow
@pytest.mark.slow  # one 2048x2048 Frechet distance: seconds of eigh/SVD on a small CPU
def test_fid_of_image_sets(torch_net, converted):
  other = np.flip(IMAGES, axis=1)
  expected = sample_space_frechet(*(torch_pool3(torch_net, x).astype(np.float64)
                                    for x in (IMAGES, other)))
  assert expected > 1
  np.testing.assert_allclose(fid.fid(IMAGES, other, converted, batch_size=2), expected,
                             rtol=1e-3)


def test_sample_space_frechet_agrees_with_frechet_distance():
  rng = np.random.default_rng(6)
  x1, x2 = rng.normal(size=(5, 40)), 2 + 3 * rng.normal(size=(4, 40))
  stats = [distance.gaussian_stats(x) for x in (x1, x2)]
  np.testing.assert_allclose(distance.frechet_distance(*stats[0], *stats[1]),
                             sample_space_frechet(x1, x2), rtol=1e-8)


@pytest.mark.slow
def test_images_outside_unit_range_are_rejected(converted):
  with pytest.raises(ValueError, match=r"\[0, 1\], got \[0.0, 255.0\]"):
    fid.pool3_features(255.0 * (IMAGES > 0.5), converted)


def test_missing_weights_file_says_how_to_make_it(tmp_path):
  with pytest.raises(FileNotFoundError, match="no Inception weights at .*w.npz") as error:
    weights.load_variables(tmp_path / "w.npz")
  assert weights.PTH_URL in str(error.value) and "clmser_jax.fid.convert" in str(error.value)


def test_converter_names_bad_keys_and_shapes(torch_net):
  state = torch_net.state_dict()
  flat = convert.convert_state_dict(state)
  assert flat["params/Mixed_6b/branch7x7_2/conv/kernel"].shape == (1, 7, 128, 128)  # OIHW->HWIO
  np.testing.assert_array_equal(flat["batch_stats/Mixed_7c/branch_pool/bn/var"],
                                state["Mixed_7c.branch_pool.bn.running_var"].numpy())
  with pytest.raises(ValueError, match="unexpected key 'AuxLogits.fc.weight'"):
    convert.convert_state_dict({"AuxLogits.fc.weight": np.zeros((1008, 768))})
  del flat["params/Mixed_5b/branch1x1/bn/scale"]
  flat["params/Conv2d_1a_3x3/conv/kernel"] = np.zeros((3, 3, 3, 16))
  with pytest.raises(ValueError, match=r"missing params/Mixed_5b/branch1x1/bn/scale.*"
                                       r"Conv2d_1a_3x3/conv/kernel: shape \(3, 3, 3, 16\)"):
    weights.check_variables(flat)
