// The kernel gradient of CLmser's strided convolution `Y = W x` (ops.bottom_up, Eq. 3-4) on
// XLA:CPU, as an XLA FFI handler:
//
//   dW[a, b, i, o] = sum_{n, h, w} x[n, s h + a - p, s w + b - p, i] g[n, h, w, o]
//
// x (N, H, W, C) and g (N, OH, OW, O) are NHWC, dW (k, k, C, O) is HWIO, all float32 and
// row-major; rows outside x are the zero padding. It is also the kernel gradient of the
// top-down `U = W^T y` (Eq. 5) with x and g swapped (ops.top_down).
//
// One pass over the output rows (n, h) in chunks that stay in cache. For each chunk, tap (a, b)
// and block of IB input by 16 NV output channels, the IB x 16 NV partial sums live in vector
// registers while the chunk's columns w stream by: per column one load of g[n, h, w, o0:] and
// IB broadcasts of x. XLA's thread pool takes equal shares of the rows, each into its own
// buffer; the buffers are added up at the end, in a fixed order (the same result every run).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kLanes = 16;  // floats per vector; O must be a multiple (checked in Python)
typedef float Vec __attribute__((vector_size(4 * kLanes)));
typedef float VecU __attribute__((vector_size(4 * kLanes), aligned(4)));  // unaligned access

struct Shape {
  int64_t n, h, w, c, oh, ow, o, k, s, p;
};

// dW[a, b, i0:i0+IB, o0:o0+16 NV] += the sum over rows [r0, r1) and columns [w0, w1).
template <int IB, int NV>
void Tile(const Shape& d, const float* x, const float* g, float* dw, int64_t r0, int64_t r1,
          int64_t a, int64_t b, int64_t i0, int64_t o0, int64_t w0, int64_t w1) {
  Vec sum[IB][NV];
  for (int i = 0; i < IB; ++i)
    for (int v = 0; v < NV; ++v) sum[i][v] = Vec{};
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / d.oh, ih = d.s * (r % d.oh) + a - d.p;
    if (ih < 0 || ih >= d.h) continue;  // a padding row
    const float* x_row = x + (n * d.h + ih) * d.w * d.c + i0;
    const float* g_row = g + r * d.ow * d.o + o0;
    for (int64_t w = w0; w < w1; ++w) {
      const float* xw = x_row + (d.s * w + b - d.p) * d.c;  // inside x: w in [w0, w1)
      Vec gw[NV];
      for (int v = 0; v < NV; ++v)
        gw[v] = *reinterpret_cast<const VecU*>(g_row + w * d.o + kLanes * v);
      // scalar * vector: broadcast straight from memory (a load), not `Vec{} + x`, which
      // keeps an add and a shuffle on the port of the second FMA unit (1.3x slower)
      for (int i = 0; i < IB; ++i)
        for (int v = 0; v < NV; ++v) sum[i][v] += xw[i] * gw[v];
    }
  }
  float* out = dw + ((a * d.k + b) * d.c + i0) * d.o + o0;
  for (int i = 0; i < IB; ++i)
    for (int v = 0; v < NV; ++v) {
      VecU* o = reinterpret_cast<VecU*>(out + i * d.o + kLanes * v);
      *o = *o + sum[i][v];
    }
}

using TileFn = void (*)(const Shape&, const float*, const float*, float*, int64_t, int64_t,
                        int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);

// All input channels for output channels [o0, o0 + 16 NV): blocks of IB_MAX (registers:
// IB_MAX NV sums + NV loads <= 32), then the remainder.
template <int NV, int IB_MAX>
void Columns(const Shape& d, const float* x, const float* g, float* dw, int64_t r0, int64_t r1,
             int64_t a, int64_t b, int64_t o0, int64_t w0, int64_t w1) {
  static const TileFn tiles[] = {Tile<1, NV>, Tile<2, NV>, Tile<3, NV>, Tile<4, NV>,
                                 Tile<5, NV>, Tile<6, NV>, Tile<7, NV>, Tile<8, NV>,
                                 Tile<9, NV>, Tile<10, NV>, Tile<11, NV>, Tile<12, NV>};
  static_assert(IB_MAX <= 12, "one tile per block height");
  for (int64_t i0 = 0; i0 < d.c; i0 += IB_MAX)
    tiles[std::min<int64_t>(IB_MAX, d.c - i0) - 1](d, x, g, dw, r0, r1, a, b, i0, o0, w0, w1);
}

// Integer division rounding down / up, also for negative `a` (C++ `/` rounds toward zero).
int64_t FloorDiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && a < 0); }
int64_t CeilDiv(int64_t a, int64_t b) { return -FloorDiv(-a, b); }

// Rows [r0, r1) of the flattened (n, h) into dw.
void Rows(const Shape& d, const float* x, const float* g, float* dw, int64_t r0, int64_t r1) {
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 16) / (d.ow * d.o));  // 256 KiB of g
  for (int64_t c0 = r0; c0 < r1; c0 += chunk) {
    const int64_t c1 = std::min(r1, c0 + chunk);
    for (int64_t a = 0; a < d.k; ++a)
      for (int64_t b = 0; b < d.k; ++b) {
        // the columns w whose input column s w + b - p lies inside x: 0 <= s w + b - p < W
        const int64_t w0 = std::max<int64_t>(0, CeilDiv(d.p - b, d.s));
        const int64_t w1 = std::min<int64_t>(d.ow, FloorDiv(d.w - 1 - b + d.p, d.s) + 1);
        if (w0 >= w1) continue;
        int64_t o0 = 0;
        for (; o0 + 4 * kLanes <= d.o; o0 += 4 * kLanes)
          Columns<4, 6>(d, x, g, dw, c0, c1, a, b, o0, w0, w1);
        for (; o0 + 2 * kLanes <= d.o; o0 += 2 * kLanes)
          Columns<2, 12>(d, x, g, dw, c0, c1, a, b, o0, w0, w1);
        for (; o0 < d.o; o0 += kLanes) Columns<1, 12>(d, x, g, dw, c0, c1, a, b, o0, w0, w1);
      }
  }
}

// Shares of the rows, taken by the calling thread and by tasks on XLA's pool. A task that
// starts after every share is taken returns at once, so the caller never waits on a task the
// pool has not started (no deadlock when the caller is itself one of the pool's threads).
struct Job {
  Shape d;
  const float* x;
  const float* g;
  int64_t shares;
  std::vector<std::vector<float>> partial;
  std::atomic<int64_t> next{0}, done{0};
  std::mutex mu;
  std::condition_variable finished;

  void Work() {
    for (int64_t i; (i = next.fetch_add(1)) < shares;) {
      const int64_t rows = d.n * d.oh;
      partial[i].assign(d.k * d.k * d.c * d.o, 0.0f);
      Rows(d, x, g, partial[i].data(), rows * i / shares, rows * (i + 1) / shares);
      if (done.fetch_add(1) + 1 == shares) {
        std::lock_guard<std::mutex> lock(mu);
        finished.notify_all();
      }
    }
  }
};

ffi::Error KernelGradient(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                          ffi::Buffer<ffi::F32> g, ffi::ResultBuffer<ffi::F32> dw,
                          int64_t stride, int64_t padding) {
  const auto xd = x.dimensions(), gd = g.dimensions(), wd = dw->dimensions();
  const Shape d{xd[0], xd[1], xd[2], xd[3], gd[1], gd[2], gd[3], wd[0], stride, padding};
  if (d.o % kLanes != 0 || wd[1] != d.k || wd[2] != d.c || wd[3] != d.o || gd[0] != d.n)
    return ffi::Error::InvalidArgument("kernel_gradient: shapes do not match");
  auto job = std::make_shared<Job>();
  job->d = d;
  job->x = x.typed_data();
  job->g = g.typed_data();
  job->shares = std::clamp<int64_t>(pool.num_threads(), 1, d.n * d.oh);
  job->partial.resize(job->shares);
  for (int64_t t = 1; t < job->shares; ++t) pool.Schedule([job] { job->Work(); });
  job->Work();
  {
    std::unique_lock<std::mutex> lock(job->mu);
    job->finished.wait(lock, [&] { return job->done.load() == job->shares; });
  }
  const int64_t size = d.k * d.k * d.c * d.o;
  float* out = dw->typed_data();
  std::memcpy(out, job->partial[0].data(), size * sizeof(float));
  for (int64_t t = 1; t < job->shares; ++t)
    for (int64_t j = 0; j < size; ++j) out[j] += job->partial[t][j];
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClmserKernelGradient, KernelGradient,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("stride")
                                  .Attr<int64_t>("padding"));
