// Four convolutions of CLmser (ops.py) as native XLA:CPU kernels, XLA FFI handlers on float32
// NHWC signals and HWIO kernels, row-major; rows and columns outside a signal are its zero
// padding p.
//
// ClmserKernelGradient, the kernel gradient of the strided `Y = W x` (ops.bottom_up, Eq. 3-4):
//
//   dW[a, b, i, o] = sum_{n, h, w} x[n, s h + a - p, s w + b - p, i] g[n, h, w, o]
//
// x (N, H, W, C), g (N, OH, OW, O), dW (k, k, C, O). It is also the kernel gradient of the
// top-down `U = W^T y` (Eq. 5) with x and g swapped (ops.top_down). One pass over the output
// rows (n, h) in chunks that stay in cache. For each chunk, tap (a, b) and block of IB input by
// 16 NV output channels, the IB x 16 NV partial sums live in vector registers while the chunk's
// columns w stream by: per column one load of g[n, h, w, o0:] and IB broadcasts of x. Each
// share of the rows sums into its own buffer; the buffers are added up at the end, in a fixed
// order (the same result every run).
//
// ClmserNarrowBottomUp and ClmserNarrowTopDown, the first layer's two convolutions at stride 1
// between the image's few channels C (1-4) and O (a multiple of 16): `Y_1 = W_1 x` (Eq. 3-4)
// and the reconstruction `U_0 = W_1^T H_1` (Eq. 5), k = 2 p + 1:
//
//   Y[n, h, w, o] = sum_{a, b, c} x[n, h + a - p, w + b - p, c] W[a, b, c, o]
//   U[n, h, w, c] = sum_{a, b, o} y[n, h + p - a, w + p - b, o] W[a, b, c, o]
//
// x, U (N, H, W, C); Y, y (N, H, W, O); W (k, k, C, O). Bottom-up keeps 16 output channels of 8
// neighbouring pixels in vector registers and broadcasts x. Top-down sums over o in vector
// lanes: for a group of P = 16 / C neighbouring pixels the P x C partial sums live in vector
// registers while the taps go by (per tap and 16 channels, C kernel loads and P loads of y),
// and each is added across its lanes at the end, in a fixed order. Groups whose taps all lie
// inside the row take a path without bounds checks. Shares of the rows write disjoint outputs.
//
// ClmserTopDown, the top-down `U = W^T y` (Eq. 5) of a strided layer onto C channels (a
// multiple of 16), with the kernel passed transposed, wt (k, k, O, C):
//
//   U[n, j, l, i] = sum over the taps (a, b) with s t = j + p - a, s u = l + p - b of
//                   sum_o y[n, t, u, o] wt[a, b, o, i]
//
// y (N, OH, OW, O), U (N, H, W, C). The output pixels of one row and one column phase
// l mod s share their taps b and read consecutive columns u of y. For a group of P such pixels
// and 16 NV channels the P x NV sums live in vector registers while the taps and o go by (per
// tap and o, NV kernel loads and P broadcasts of y): no product with the zeros a transposed
// convolution inserts. Rows go in chunks whose rows of y stay in cache, each chunk one block of
// channels after the other. Shares of the rows write disjoint outputs.
//
// All four split the rows between the calling thread and XLA's intra-op pool (ForEachShare).
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

// Runs `work(i)` for every share i in [0, shares), on the calling thread and on tasks on XLA's
// pool, and returns when all are done. A task that starts after every share is taken returns
// at once, so the caller never waits on a task the pool has not started (no deadlock when the
// caller is itself one of the pool's threads), and such a task never touches `work`'s data.
template <typename Work>
void ForEachShare(ffi::ThreadPool& pool, int64_t shares, Work work) {
  struct State {
    std::atomic<int64_t> next{0}, done{0};
    std::mutex mu;
    std::condition_variable finished;
  };
  auto state = std::make_shared<State>();
  auto run = [state, shares, work] {
    for (int64_t i; (i = state->next.fetch_add(1)) < shares;) {
      work(i);
      if (state->done.fetch_add(1) + 1 == shares) {
        std::lock_guard<std::mutex> lock(state->mu);
        state->finished.notify_all();
      }
    }
  };
  for (int64_t t = 1; t < shares; ++t) pool.Schedule([run] { run(); });
  run();
  std::unique_lock<std::mutex> lock(state->mu);
  state->finished.wait(lock, [&] { return state->done.load() == shares; });
}

// As many shares as XLA's pool has threads, at most one per row.
int64_t Shares(ffi::ThreadPool& pool, int64_t rows) {
  return std::clamp<int64_t>(pool.num_threads(), 1, rows);
}

// `rows(d, in, w, out, r0, r1)` over shares of the rows [0, total) that write disjoint outputs.
template <typename Shape, typename RowsFn>
void ShareRows(ffi::ThreadPool& pool, const Shape& d, int64_t total, RowsFn rows,
               const float* in, const float* w, float* out) {
  const int64_t shares = Shares(pool, total);
  ForEachShare(pool, shares, [&d, rows, in, w, out, total, shares](int64_t i) {
    rows(d, in, w, out, total * i / shares, total * (i + 1) / shares);
  });
}

ffi::Error KernelGradient(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                          ffi::Buffer<ffi::F32> g, ffi::ResultBuffer<ffi::F32> dw,
                          int64_t stride, int64_t padding) {
  const auto xd = x.dimensions(), gd = g.dimensions(), wd = dw->dimensions();
  const Shape d{xd[0], xd[1], xd[2], xd[3], gd[1], gd[2], gd[3], wd[0], stride, padding};
  if (d.o % kLanes != 0 || wd[1] != d.k || wd[2] != d.c || wd[3] != d.o || gd[0] != d.n)
    return ffi::Error::InvalidArgument("kernel_gradient: shapes do not match");
  const int64_t rows = d.n * d.oh, shares = Shares(pool, rows), size = d.k * d.k * d.c * d.o;
  std::vector<std::vector<float>> partial(shares);
  const float* xs = x.typed_data();
  const float* gs = g.typed_data();
  ForEachShare(pool, shares, [&d, xs, gs, &partial, rows, shares, size](int64_t i) {
    partial[i].assign(size, 0.0f);
    Rows(d, xs, gs, partial[i].data(), rows * i / shares, rows * (i + 1) / shares);
  });
  float* out = dw->typed_data();
  std::memcpy(out, partial[0].data(), size * sizeof(float));
  for (int64_t t = 1; t < shares; ++t)
    for (int64_t j = 0; j < size; ++j) out[j] += partial[t][j];
  return ffi::Error::Success();
}

// ------------------------------------------------------------------------- narrow top-down

typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec4 __attribute__((vector_size(16)));

// The sum of v's lanes, halves first (the same order every time).
inline float LaneSum(Vec v) {
  Vec8 lo, hi;
  std::memcpy(&lo, &v, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
  const Vec8 s8 = lo + hi;
  Vec4 a, b;
  std::memcpy(&a, &s8, sizeof a);
  std::memcpy(&b, reinterpret_cast<const char*>(&s8) + sizeof a, sizeof b);
  const Vec4 s4 = a + b;
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

struct NarrowShape {
  int64_t n, h, w, o, c, k, p;
};

// U[n, h, w0 + j, :] for the pixels j < count (at most P) of row (n, h). `kEdge`: some of them
// have taps in the padding, or the group is short.
template <int C, int P, bool kEdge>
void PixelGroup(const NarrowShape& d, const float* y, const float* wk, float* u, int64_t n,
                int64_t h, int64_t w0, int64_t count) {
  Vec sum[P * C];
  for (int q = 0; q < P * C; ++q) sum[q] = Vec{};
  for (int64_t a = 0; a < d.k; ++a) {
    const int64_t ih = h + d.p - a;
    if (ih < 0 || ih >= d.h) continue;  // a padding row
    const float* y_row = y + (n * d.h + ih) * d.w * d.o;
    for (int64_t b = 0; b < d.k; ++b) {
      const float* tap = wk + (a * d.k + b) * C * d.o;
      for (int64_t v = 0; v < d.o; v += kLanes) {
        Vec wv[C];
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) wv[c] = *reinterpret_cast<const VecU*>(tap + c * d.o + v);
#pragma GCC unroll 16
        for (int j = 0; j < P; ++j) {  // unrolled: the sums stay in registers
          const int64_t iw = w0 + j + d.p - b;
          if (kEdge && (j >= count || iw < 0 || iw >= d.w)) continue;
          const Vec yv = *reinterpret_cast<const VecU*>(y_row + iw * d.o + v);
#pragma GCC unroll 4
          for (int c = 0; c < C; ++c) sum[j * C + c] += yv * wv[c];
        }
      }
    }
  }
  float* out = u + ((n * d.h + h) * d.w + w0) * C;
  for (int q = 0; q < (kEdge ? count : P) * C; ++q) out[q] = LaneSum(sum[q]);
}

// Rows [r0, r1) of the flattened (n, h), in groups of P pixels.
template <int C>
void NarrowRows(const NarrowShape& d, const float* y, const float* wk, float* u, int64_t r0,
                int64_t r1) {
  constexpr int P = kLanes / C;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / d.h, h = r % d.h;
    for (int64_t w0 = 0; w0 < d.w; w0 += P) {
      // every tap of every pixel inside the row: w0 + p - (k - 1) = w0 - p >= 0 and
      // w0 + P - 1 + p < W
      if (w0 >= d.p && w0 + P - 1 + d.p < d.w)
        PixelGroup<C, P, false>(d, y, wk, u, n, h, w0, P);
      else
        PixelGroup<C, P, true>(d, y, wk, u, n, h, w0, std::min<int64_t>(P, d.w - w0));
    }
  }
}

ffi::Error NarrowTopDown(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> y,
                         ffi::Buffer<ffi::F32> w, ffi::ResultBuffer<ffi::F32> u,
                         int64_t padding) {
  const auto yd = y.dimensions(), wd = w.dimensions(), ud = u->dimensions();
  const NarrowShape d{yd[0], yd[1], yd[2], yd[3], wd[2], wd[0], padding};
  using RowsFn = void (*)(const NarrowShape&, const float*, const float*, float*, int64_t,
                          int64_t);
  static const RowsFn rows_of[] = {NarrowRows<1>, NarrowRows<2>, NarrowRows<3>, NarrowRows<4>};
  if (d.o % kLanes != 0 || d.c < 1 || d.c > 4 || wd[1] != d.k || wd[3] != d.o ||
      d.k != 2 * d.p + 1 || ud[0] != d.n || ud[1] != d.h || ud[2] != d.w || ud[3] != d.c)
    return ffi::Error::InvalidArgument("narrow_top_down: shapes do not match");
  ShareRows(pool, d, d.n * d.h, rows_of[d.c - 1], y.typed_data(), w.typed_data(),
            u->typed_data());
  return ffi::Error::Success();
}

// -------------------------------------------------------------------------- narrow bottom-up

// Y[n, h, w0 + j, o0 : o0 + 16] for the pixels j < count (at most P) of row (n, h). `kEdge`:
// some of them have taps in the padding, or the group is short.
template <int P, bool kEdge>
void OutputGroup(const NarrowShape& d, const float* x, const float* wk, float* y, int64_t n,
                 int64_t h, int64_t w0, int64_t count, int64_t o0) {
  Vec sum[P];
  for (int j = 0; j < P; ++j) sum[j] = Vec{};
  for (int64_t a = 0; a < d.k; ++a) {
    const int64_t ih = h + a - d.p;
    if (ih < 0 || ih >= d.h) continue;  // a padding row
    const float* x_row = x + (n * d.h + ih) * d.w * d.c;
    for (int64_t b = 0; b < d.k; ++b)
      for (int64_t c = 0; c < d.c; ++c) {
        const Vec wv = *reinterpret_cast<const VecU*>(wk + ((a * d.k + b) * d.c + c) * d.o + o0);
#pragma GCC unroll 16
        for (int j = 0; j < P; ++j) {  // unrolled: the sums stay in registers
          const int64_t iw = w0 + j + b - d.p;
          if (kEdge && (j >= count || iw < 0 || iw >= d.w)) continue;
          sum[j] += x_row[iw * d.c + c] * wv;  // a broadcast load, as in Tile
        }
      }
  }
  float* out = y + ((n * d.h + h) * d.w + w0) * d.o + o0;
  for (int j = 0; j < (kEdge ? count : P); ++j)
    *reinterpret_cast<VecU*>(out + j * d.o) = sum[j];
}

// Rows [r0, r1) of the flattened (n, h), in groups of P pixels, 16 output channels at a time.
void NarrowBottomUpRows(const NarrowShape& d, const float* x, const float* wk, float* y,
                        int64_t r0, int64_t r1) {
  constexpr int P = 8;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / d.h, h = r % d.h;
    for (int64_t w0 = 0; w0 < d.w; w0 += P)
      for (int64_t o0 = 0; o0 < d.o; o0 += kLanes) {
        if (w0 >= d.p && w0 + P - 1 + d.p < d.w)  // every tap inside the row, as in NarrowRows
          OutputGroup<P, false>(d, x, wk, y, n, h, w0, P, o0);
        else
          OutputGroup<P, true>(d, x, wk, y, n, h, w0, std::min<int64_t>(P, d.w - w0), o0);
      }
  }
}

ffi::Error NarrowBottomUp(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                          ffi::Buffer<ffi::F32> w, ffi::ResultBuffer<ffi::F32> y,
                          int64_t padding) {
  const auto xd = x.dimensions(), wd = w.dimensions(), yd = y->dimensions();
  const NarrowShape d{xd[0], xd[1], xd[2], wd[3], xd[3], wd[0], padding};
  if (d.o % kLanes != 0 || wd[1] != d.k || wd[2] != d.c || d.k != 2 * d.p + 1 ||
      yd[0] != d.n || yd[1] != d.h || yd[2] != d.w || yd[3] != d.o)
    return ffi::Error::InvalidArgument("narrow_bottom_up: shapes do not match");
  ShareRows(pool, d, d.n * d.h, NarrowBottomUpRows, x.typed_data(), w.typed_data(),
            y->typed_data());
  return ffi::Error::Success();
}

// ------------------------------------------------------------------------------ top-down

struct TopDownShape {
  int64_t n, h, w, c, oh, ow, o, k, s, p;  // U (n, h, w, c), y (n, oh, ow, o), W k x k
};

// U[n, j, l, i0 : i0 + 16 NV] for the pixels l = rx + s (m0 + q), q < count (at most P), of
// output row (n, j) and column phase rx: the pixels whose taps b are the same. `kEdge`: some
// of them read columns of y outside it, or the group is short.
template <int P, int NV, bool kEdge>
void TopDownGroup(const TopDownShape& d, const float* y, const float* wt, float* u, int64_t n,
                  int64_t j, int64_t rx, int64_t m0, int64_t count, int64_t i0) {
  Vec sum[P][NV];
  for (int q = 0; q < P; ++q)
    for (int v = 0; v < NV; ++v) sum[q][v] = Vec{};
  for (int64_t a = 0; a < d.k; ++a) {
    const int64_t row = j + d.p - a;  // = s t
    if (row < 0 || row % d.s != 0 || row / d.s >= d.oh) continue;
    const float* y_row = y + (n * d.oh + row / d.s) * d.ow * d.o;
    for (int64_t b = 0; b < d.k; ++b) {
      const int64_t col = rx + d.p - b;  // = s (u - m), u the column of y
      if (FloorDiv(col, d.s) * d.s != col) continue;
      const int64_t e = FloorDiv(col, d.s);
      const float* tap = wt + (a * d.k + b) * d.o * d.c + i0;
      for (int64_t oc = 0; oc < d.o; ++oc) {
        Vec wv[NV];
        for (int v = 0; v < NV; ++v)
          wv[v] = *reinterpret_cast<const VecU*>(tap + oc * d.c + kLanes * v);
#pragma GCC unroll 12
        for (int q = 0; q < P; ++q) {  // unrolled: the sums stay in registers
          const int64_t iu = m0 + q + e;
          if (kEdge && (q >= count || iu < 0 || iu >= d.ow)) continue;
          const float yv = y_row[iu * d.o + oc];  // a broadcast load, as in Tile
          for (int v = 0; v < NV; ++v) sum[q][v] += yv * wv[v];
        }
      }
    }
  }
  float* out = u + ((n * d.h + j) * d.w + rx + d.s * m0) * d.c + i0;
  for (int q = 0; q < (kEdge ? count : P); ++q)
    for (int v = 0; v < NV; ++v)
      *reinterpret_cast<VecU*>(out + d.s * q * d.c + kLanes * v) = sum[q][v];
}

// Channels [i0, i0 + 16 NV) of output rows [r0, r1) of the flattened (n, j), P pixels at a time.
template <int P, int NV>
void TopDownBlock(const TopDownShape& d, const float* y, const float* wt, float* u, int64_t r0,
                  int64_t r1, int64_t i0) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / d.h, j = r % d.h;
    for (int64_t rx = 0; rx < d.s && rx < d.w; ++rx) {
      const int64_t pixels = CeilDiv(d.w - rx, d.s);  // l = rx + s m < W
      // columns of y read by pixel m: m + e for the taps' e in [lo, hi]
      const int64_t lo = FloorDiv(rx + d.p - (d.k - 1), d.s), hi = FloorDiv(rx + d.p, d.s);
      for (int64_t m0 = 0; m0 < pixels; m0 += P) {
        if (m0 + lo >= 0 && m0 + P - 1 + hi < d.ow && m0 + P <= pixels)
          TopDownGroup<P, NV, false>(d, y, wt, u, n, j, rx, m0, P, i0);
        else
          TopDownGroup<P, NV, true>(d, y, wt, u, n, j, rx, m0,
                                    std::min<int64_t>(P, pixels - m0), i0);
      }
    }
  }
}

// Rows [r0, r1) of the flattened (n, j) into u, in chunks whose rows of y stay in cache; per
// chunk, one block of channels after the other, so that block's taps stay in cache too.
void TopDownRows(const TopDownShape& d, const float* y, const float* wt, float* u, int64_t r0,
                 int64_t r1) {
  const int64_t chunk = std::max<int64_t>(1, d.s * (int64_t{1} << 16) / (d.ow * d.o));
  for (int64_t c0 = r0; c0 < r1; c0 += chunk) {
    const int64_t c1 = std::min(r1, c0 + chunk);
    int64_t i0 = 0;
    for (; i0 + 4 * kLanes <= d.c; i0 += 4 * kLanes) TopDownBlock<6, 4>(d, y, wt, u, c0, c1, i0);
    for (; i0 + 2 * kLanes <= d.c; i0 += 2 * kLanes) TopDownBlock<10, 2>(d, y, wt, u, c0, c1, i0);
    for (; i0 < d.c; i0 += kLanes) TopDownBlock<8, 1>(d, y, wt, u, c0, c1, i0);
  }
}

ffi::Error TopDown(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> y, ffi::Buffer<ffi::F32> wt,
                   ffi::ResultBuffer<ffi::F32> u, int64_t stride, int64_t padding) {
  const auto yd = y.dimensions(), wd = wt.dimensions(), ud = u->dimensions();
  const TopDownShape d{ud[0], ud[1], ud[2], ud[3], yd[1], yd[2], yd[3], wd[0], stride, padding};
  if (d.c % kLanes != 0 || wd[1] != d.k || wd[2] != d.o || wd[3] != d.c || yd[0] != d.n ||
      d.s < 1)
    return ffi::Error::InvalidArgument("top_down: shapes do not match");
  ShareRows(pool, d, d.n * d.h, TopDownRows, y.typed_data(), wt.typed_data(), u->typed_data());
  return ffi::Error::Success();
}

// What every handler binds: XLA's thread pool, two float32 arrays in and one out.
auto TwoArraysToOne() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Ret<ffi::Buffer<ffi::F32>>();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClmserKernelGradient, KernelGradient,
                              TwoArraysToOne().Attr<int64_t>("stride").Attr<int64_t>("padding"));
XLA_FFI_DEFINE_HANDLER_SYMBOL(ClmserNarrowBottomUp, NarrowBottomUp,
                              TwoArraysToOne().Attr<int64_t>("padding"));
XLA_FFI_DEFINE_HANDLER_SYMBOL(ClmserNarrowTopDown, NarrowTopDown,
                              TwoArraysToOne().Attr<int64_t>("padding"));
XLA_FFI_DEFINE_HANDLER_SYMBOL(ClmserTopDown, TopDown,
                              TwoArraysToOne().Attr<int64_t>("stride").Attr<int64_t>("padding"));
