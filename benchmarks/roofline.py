"""FLOPs and bytes per image of the CLmser family, counted from the architecture, for the
roofline of issue 7 (the achieved fraction of the FLOP and memory-bandwidth peaks).

**Passes.** One reflection of CLmser is `2 d` convolution passes: `W_i H_{i-1}` bottom-up
(Eq. 3-4) and `W_i^T H_i` top-down (Eq. 5) for each of the `d` layers. Two of them need not
recur: `Y_1 = W_1 x` is the same in every reflection (the input is clamped), and only the last
reflection's reconstruction `U_0 = W_1^T H_1` is used. The useful work at `r` reflections is
then `2 + 2 (d - 1) r` passes, and that is what `reflections.reflect` runs: `Y_1` before its
`lax.scan`, `U_0` after it. The U-Net adds one
stride-1 fusion convolution `2 c -> c` per decoder level.

**FLOPs.** `W x` with a `k x k x c_in x c_out` kernel costs `2 c_in c_out` per pair (output
pixel, kernel tap) whose tap reads a real input pixel: `2 k^2 c_in c_out H_out W_out` less the
taps on the zero padding, which is how XLA's cost analysis counts (`tests/test_roofline.py`).
`W^T y` multiplies the same pairs (it is the adjoint), so costs the same. A train step adds two
passes of the same cost per pass (input gradient and kernel gradient), less the input
gradient of every pass that reads the image (nothing needs it). Elementwise work (activations,
sums, BatchNorm, the loss, the optimizer) is left out: a few FLOPs per value against
`2 k^2 c_in` for a convolution.

**Bytes.** The traffic of a schedule that fuses the elementwise work into the convolutions:
each pass reads its input signal and writes its output signal once, in the compute dtype,
and reads its float32 kernel once per batch. In a train step each gradient pass reads and
writes as much again (input gradient: the output cotangent in, the input cotangent out;
kernel gradient: input and output cotangent in), and Adam reads parameters, gradients and
both moments and writes three of them back: `7 x 4` bytes per parameter per batch.

**Peaks.** Unless given, the roofline's peaks are measured on the device at hand
(`measured_peaks`): the FLOP/s of a large matrix product in the compute dtype and the bytes/s
of an elementwise pass that reads and writes a large array in place. They are what the device
delivers to XLA, not its datasheet's figures, so the fractions read the same on a laptop CPU
and a GPU.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from benchmarks import measure
from clmser_jax import ops
from clmser_jax.models.reflections import layer_sizes

ADAM_BYTES_PER_PARAM = 7 * 4
IMAGE_CHANNELS = 3  # RGB, the benchmarks' reconstruction task (no mask channel)
KERNEL_BYTES = 4  # parameters stay float32 (`CLmser.dtype` is the compute dtype only)
# `measured_peaks`' matrix product (n x n) and elementwise pass (MiB): large enough to be
# bound by arithmetic and by memory, on the CPU within a second, on accelerators beyond
# their launch overheads.
PEAK_SIZES = {"cpu": (2048, 256)}
ACCELERATOR_PEAK_SIZES = (8192, 1024)


@dataclasses.dataclass(frozen=True)
class Pass:
  """One convolution pass `W x` (or its adjoint `W^T y`): `x` of spatial `size_in` with
  `c_in` channels, `y = W x` of spatial `size_out` with `c_out` channels."""
  kernel_size: int
  c_in: int
  c_out: int
  stride: int
  size_in: tuple[int, int]
  size_out: tuple[int, int]
  reads_image: bool = False


def passes(model, size: tuple[int, int]) -> list[Pass]:
  """The convolution passes of one forward pass of `model` (a model config) on RGB images of
  spatial `size`."""
  k, channels = model.kernel_size, tuple(model.channels)
  sizes = layer_sizes(size, k, model.strides)
  layers = [Pass(k, ci, co, s, sizes[i], sizes[i + 1]) for i, (ci, co, s)
            in enumerate(zip((IMAGE_CHANNELS, *channels[:-1]), channels, model.strides))]
  fusions = [Pass(k, 2 * c, c, 1, sizes[i + 1], sizes[i + 1])
             for i, c in enumerate(channels[:-1])] if model.name == "unet" else []
  reflection = 2 * layers[1:] + fusions  # bottom-up and top-down of layers 2..d
  return [dataclasses.replace(layers[0], reads_image=True), layers[0],
          *reflection * model.reflections]


def _taps(n: int, out: int, k: int, stride: int) -> int:
  """(Output pixel, tap) pairs along one axis whose tap reads one of the `n` real pixels."""
  p = (k - 1) // 2
  return sum(0 <= stride * o + a - p < n for o in range(out) for a in range(k))


def pass_flops(p: Pass) -> int:
  """FLOPs of `W x` (or `W^T y`) on one image: 2 per multiply-add on real pixels."""
  (h, w), (ho, wo) = p.size_in, p.size_out
  k, s = p.kernel_size, p.stride
  return 2 * p.c_in * p.c_out * _taps(h, ho, k, s) * _taps(w, wo, k, s)


def _signal_elements(p: Pass) -> int:
  return p.c_in * p.size_in[0] * p.size_in[1] + p.c_out * p.size_out[0] * p.size_out[1]


def _kernel_elements(p: Pass) -> int:
  return p.kernel_size ** 2 * p.c_in * p.c_out


def _pass_count(p: Pass, train: bool) -> int:
  """How often a forward pass's cost recurs: once, or three times in a train step (less the
  input gradient of a pass that reads the image)."""
  return (2 if p.reads_image else 3) if train else 1


def flops_per_image(model, size, train: bool = False) -> int:
  """FLOPs of the convolutions of one image's forward pass (or train step)."""
  return sum(_pass_count(p, train) * pass_flops(p) for p in passes(model, size))


def bytes_per_image(model, size, batch: int, dtype_bytes: int, train: bool = False,
                    num_params: int = 0) -> float:
  """Memory traffic per image of a forward pass (or of a train step updating `num_params`
  parameters with Adam) at `batch` images; see the module docstring."""
  total = ADAM_BYTES_PER_PARAM * num_params / batch if train else 0.0
  for p in passes(model, size):
    total += _pass_count(p, train) * (dtype_bytes * _signal_elements(p)
                                      + KERNEL_BYTES * _kernel_elements(p) / batch)
  return total


@dataclasses.dataclass(frozen=True)
class Peaks:
  """A roofline's ceilings: FLOP/s in TFLOP/s and memory bandwidth in GB/s."""
  tflops: float
  gbps: float


def peak_sizes() -> tuple[int, int]:
  """`(n, mib)` of `measured_peaks` on JAX's default backend."""
  return PEAK_SIZES.get(jax.default_backend(), ACCELERATOR_PEAK_SIZES)


@functools.cache
def measured_peaks(dtype: str, repeats: int = 5) -> Peaks:
  """This device's achievable peaks in `dtype`, sized by `peak_sizes`."""
  return time_peaks(dtype, *peak_sizes(), repeats)


def time_peaks(dtype: str, n: int, mib: int, repeats: int) -> Peaks:
  """An `n x n` matrix product (`2 n^3` FLOPs) and an in-place elementwise pass over `mib` MiB
  (read once, written once: twice its bytes), each the fastest of `repeats` calls after a
  warm-up, compiled as the steps are (with `ops.compiler_options()`)."""
  def fastest(fn):
    fn()  # warm-up: compiles
    return min(measure.seconds(fn)[1] for _ in range(repeats))

  a = jnp.ones((n, n), dtype)
  product = jax.jit(jnp.matmul, compiler_options=ops.compiler_options())
  product_s = fastest(lambda: jax.block_until_ready(product(a, a)))
  x = [jnp.ones(mib * 2**20 // jnp.dtype(dtype).itemsize, dtype)]
  scale = jax.jit(lambda v: v * 0.5, donate_argnums=0, compiler_options=ops.compiler_options())

  def one_pass():
    x[0] = jax.block_until_ready(scale(x[0]))

  pass_s = fastest(one_pass)
  return Peaks(2 * n**3 / product_s / 1e12, 2 * x[0].nbytes / pass_s / 1e9)
