// Convolution kernel bodies, written once against Vec<T> and compiled per ISA by generic.cc /
// x86_avx2.cc / x86_avx512.cc. The arithmetic of conv2d and conv_transpose2d is the GEMM
// microkernel's; what lives here is moving pixels into and out of its panels, and the
// depthwise kernel.
#include <algorithm>
#include <cstring>

#include "conv/conv.h"
#include "core/simd/vec.h"

namespace tensorops::conv::TENSOROPS_ISA_NS {
namespace {

using simd::mul_add;
using simd::Vec;

// out[c] = row[(ix0 + c * step) * col_stride] for 0 <= ix0 + c * step < w, else 0, c < length.
template <class T>
inline void copy_run(T* __restrict out, const T* __restrict row, int64_t ix0, int64_t step, int64_t col_stride,
                     int64_t length, int64_t w) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  if (step == 1 && col_stride == 1) {
    // Columns c in [lo, hi) are inside the row; one masked load per vector covers the
    // padding on either side without a branch per element.
    const int64_t lo = std::clamp<int64_t>(-ix0, 0, length), hi = std::clamp<int64_t>(w - ix0, lo, length);
    const T* src = row + ix0;
    int64_t c = 0;
    for (; c + W <= length; c += W) {
      if (c >= lo && c + W <= hi) V::load(src + c).store(out + c);
      else V::load_lanes(src + c, lo - c, hi - c).store(out + c);
    }
    if (c < length) V::load_lanes(src + c, lo - c, hi - c).store_partial(out + c, length - c);
    return;
  }
  for (int64_t c = 0; c < length; ++c) {
    const int64_t ix = ix0 + c * step;
    out[c] = ix >= 0 && ix < w ? row[ix * col_stride] : T(0);
  }
}

template <class T>
void pack_im2col(const Im2colView<T>& v, const PixelRun* runs, int64_t run_count, int64_t k0, int64_t kc,
                 int64_t nr, T* dst) {
  const int64_t taps = v.taps_y * v.taps_x;
  int64_t channel = k0 / taps, tap = k0 % taps;
  for (int64_t kk = 0; kk < kc; ++kk) {
    const T* plane = v.input + channel * v.channel_stride;
    const int64_t row_offset = v.row_offset[tap / v.taps_x], col_offset = v.col_offset[tap % v.taps_x];
    T* d = dst + kk * nr;
    for (int64_t r = 0; r < run_count; ++r) {
      const PixelRun& run = runs[r];
      T* out = d + run.dst;
      const int64_t iy = run.y * v.stride_y + row_offset;
      if (run.padding || iy < 0 || iy >= v.h) {
        std::fill(out, out + run.length, T(0));
        continue;
      }
      copy_run(out, plane + iy * v.row_stride, run.x * v.stride_x + col_offset, v.stride_x, v.col_stride,
               run.length, v.w);
    }
    if (++tap == taps) tap = 0, ++channel;
  }
}

template <class T>
void store_phase(const T* tile, int64_t ldt, int64_t rows, int64_t grid_h, int64_t grid_w, T* out,
                 int64_t plane_stride, int64_t row_step, int64_t col_step) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < grid_h; ++j) {
      const T* src = tile + r * ldt + j * grid_w;
      T* dst = out + r * plane_stride + j * row_step;
      for (int64_t i = 0; i < grid_w; ++i) dst[i * col_step] = src[i];
    }
  }
}

// ---- depthwise ------------------------------------------------------------------------------

// ROWS output rows x NV vectors of one plane at a time, so that ROWS * NV independent
// accumulator chains hide the FMA latency (a 3x3 window is a chain of 9 dependent FMAs).
// Unit-stride rows read the input directly; a vector that straddles the padding loads only
// its in-bounds lanes.
template <class T, int ROWS, int NV>
inline void depthwise_block(const DepthwisePlane<T>& p, int64_t oy0, int64_t ox0) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  V acc[ROWS][NV];
  for (int r = 0; r < ROWS; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = V::zero();
  for (int64_t ky = 0; ky < p.kernel_h; ++ky) {
    for (int r = 0; r < ROWS; ++r) {
      const int64_t iy = (oy0 + r) * p.stride_h - p.pad_h + ky * p.dilation_h;
      if (iy < 0 || iy >= p.h) continue;
      const T* row = p.input + iy * p.row_stride;
      for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
        const V tap(p.taps[ky * p.kernel_w + kx]);
        const int64_t c0 = ox0 - p.pad_w + kx * p.dilation_w;
        for (int j = 0; j < NV; ++j) {
          const int64_t c = c0 + j * W;
          const int64_t lo = -c, hi = std::min(p.w - c, p.out_w - ox0 - j * W);
          const V x = lo <= 0 && hi >= W ? V::load(row + c) : V::load_lanes(row + c, lo, hi);
          acc[r][j] = mul_add(tap, x, acc[r][j]);
        }
      }
    }
  }
  for (int r = 0; r < ROWS; ++r) {
    T* out = p.out + (oy0 + r) * p.out_w + ox0;
    for (int j = 0; j < NV; ++j) {
      const int64_t left = p.out_w - ox0 - j * W;
      if (left >= W) acc[r][j].store(out + j * W);
      else if (left > 0) acc[r][j].store_partial(out + j * W, left);
    }
  }
}

// Any stride or column stride: each tap's input columns are gathered into a contiguous row
// first (zeros in the padding), then accumulated a vector at a time.
template <class T>
void depthwise_gathered(const DepthwisePlane<T>& p, int64_t row_begin, int64_t row_end, T* row_buffer) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  for (int64_t oy = row_begin; oy < row_end; ++oy) {
    T* out = p.out + oy * p.out_w;
    std::fill(out, out + p.out_w, T(0));
    for (int64_t ky = 0; ky < p.kernel_h; ++ky) {
      const int64_t iy = oy * p.stride_h - p.pad_h + ky * p.dilation_h;
      if (iy < 0 || iy >= p.h) continue;
      const T* row = p.input + iy * p.row_stride;
      for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
        copy_run(row_buffer, row, kx * p.dilation_w - p.pad_w, p.stride_w, p.col_stride, p.out_w, p.w);
        const V tap(p.taps[ky * p.kernel_w + kx]);
        int64_t x = 0;
        for (; x + W <= p.out_w; x += W) mul_add(tap, V::load(row_buffer + x), V::load(out + x)).store(out + x);
        if (x < p.out_w) {
          const int64_t left = p.out_w - x;
          mul_add(tap, V::load_partial(row_buffer + x, left), V::load_partial(out + x, left)).store_partial(out + x, left);
        }
      }
    }
  }
}

template <class T>
void depthwise(const DepthwisePlane<T>& p, int64_t row_begin, int64_t row_end, T* scratch) {
  constexpr int64_t W = Vec<T>::width;
  if (p.stride_w != 1 || p.col_stride != 1) {
    depthwise_gathered(p, row_begin, row_end, scratch);
    return;
  }
  if (p.out_w <= W) {
    // Narrow planes (7x7 late in a network): four rows at a time, one vector each.
    int64_t oy = row_begin;
    for (; oy + 4 <= row_end; oy += 4) depthwise_block<T, 4, 1>(p, oy, 0);
    for (; oy < row_end; ++oy) depthwise_block<T, 1, 1>(p, oy, 0);
    return;
  }
  for (int64_t oy = row_begin; oy < row_end; ++oy) {
    int64_t ox = 0;
    for (; ox + 3 * W < p.out_w; ox += 4 * W) depthwise_block<T, 1, 4>(p, oy, ox);
    for (; ox < p.out_w; ox += W) depthwise_block<T, 1, 1>(p, oy, ox);
  }
}

template <class T>
int64_t depthwise_scratch(const DepthwisePlane<T>& p) {
  return p.out_w + Vec<T>::width;
}

template <class T>
constexpr ConvKernelsFor<T> kernels_for() {
  return {pack_im2col<T>, store_phase<T>, depthwise<T>, depthwise_scratch<T>};
}

}  // namespace

const ConvKernels* kernel_table() {
  static const ConvKernels table{kernels_for<float>(), kernels_for<double>()};
  return &table;
}

}  // namespace tensorops::conv::TENSOROPS_ISA_NS
