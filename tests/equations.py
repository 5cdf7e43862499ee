"""Eq. 3-5 written out as a plain loop, independent of `reflections.py` and `ops.py`: the
reference of the reflection scan (tests/test_reflections.py) and of its DSP label layer
(tests/test_dsp.py)."""
import jax
import jax.numpy as jnp
import numpy as np


def conv(x, w, s):
  p = (w.shape[0] - 1) // 2
  return jax.lax.conv_general_dilated(x, w, (s, s), ((p, p), (p, p)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def transpose(y, w, s, x_shape):
  """`W^T y` as the VJP of the conv: independent of `ops.top_down`."""
  return jax.vjp(lambda x: conv(x, w, s), jnp.zeros(x_shape, y.dtype))[1](y)[0]


def kernels(seed, channels, scale=0.3):
  """Random 3x3 kernels for an RGB input and layers of `channels`."""
  c_in = (3,) + tuple(channels[:-1])
  keys = jax.random.split(jax.random.key(seed), len(channels))
  return [scale * jax.random.normal(k, (3, 3, a, b)) for k, a, b in zip(keys, c_in, channels)]


def equations_loop(x, enc, dec, strides, f, dpn, r, label_layer=None):
  """Eq. 3-5 written out: neurons H[0..d], bottom-up Y[1..d], top-down U[0..d-1]; returns U[0].

  `label_layer = (Ve, Vd, onehot)` adds layer d+1 of DSP: logits Y[d+1] = flat(H[d]) Ve after
  every bottom-up pass; in every top-down pass z = onehot if this is the last top-down pass
  and onehot is not None, else softmax(Y[d+1]), then U[d] = Vd z and H[d] pairs like any
  neuron. Returns (U[0], Y[d+1]) then.
  """
  d = len(enc)
  H = [x] + [None] * d
  Y = [None] * (d + 2)
  U = [None] * (d + 1)

  def label_bottom_up():
    if label_layer is not None:
      Y[d + 1] = H[d].reshape(H[d].shape[0], -1) @ label_layer[0]

  for i in range(1, d + 1):  # Eq. 3: t = 0, U = 0, H_i = f(W_i H_{i-1})
    Y[i] = conv(H[i - 1], enc[i - 1], strides[i - 1])
    H[i] = f(Y[i])
  label_bottom_up()
  for t in range(1, 2 * r):
    if t % 2 == 1:  # Eq. 5, top-down: H_i = f(Y_i^{t-1} + U_i^t), U_i = W_{i+1}^T H_{i+1}
      if label_layer is not None:
        _, v_down, onehot = label_layer
        last = t == 2 * r - 1
        z = onehot if (last and onehot is not None) else jax.nn.softmax(Y[d + 1])
        U[d] = (z @ v_down.T).reshape(H[d].shape)
        H[d] = f(Y[d] + U[d]) if dpn else f(U[d])
      for i in range(d - 1, -1, -1):
        U[i] = transpose(H[i + 1], dec[i], strides[i], H[i].shape)
        if i > 0:
          H[i] = f(Y[i] + U[i]) if dpn else f(U[i])
    else:  # Eq. 4, bottom-up: H_i = f(Y_i^t + U_i^{t-1}), Y_i = W_i H_{i-1}
      for i in range(1, d + 1):
        Y[i] = conv(H[i - 1], enc[i - 1], strides[i - 1])
        H[i] = f(Y[i] + U[i]) if (dpn and U[i] is not None) else f(Y[i])
      label_bottom_up()
  return U[0] if label_layer is None else (U[0], Y[d + 1])


def assert_matches(got, want, rtol=1e-6):
  """`got` equals the loop's `want` up to float32 rounding: `|got - want| <= rtol |want|`
  (Frobenius norms). `ops.top_down` and the loop's autodiff transpose sum the same products in
  different orders, and rounding is relative to the terms' scale, not to each result: an
  element that cancels to near zero keeps its terms' absolute error, so the check is on the
  whole array. A wrong tap, pass or reflection is off by O(1)."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert np.linalg.norm(got - want) <= rtol * np.linalg.norm(want), (
      np.linalg.norm(got - want) / np.linalg.norm(want))
