// Convolution kernel bodies, written once against Vec<T> and compiled per ISA by generic.cc /
// x86_avx2.cc / x86_avx512.cc. The arithmetic of conv2d and conv_transpose2d is the GEMM
// microkernel's; what lives here is moving pixels into and out of its panels, and the
// depthwise kernel.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <optional>
#include <type_traits>

#include "conv/conv.h"
#include "core/simd/vec.h"
#include "core/streaming.h"

namespace tensorops::conv::TENSOROPS_ISA_NS {
namespace {

using simd::load_lanes;
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
      else load_lanes(src + c, lo - c, hi - c).store(out + c);
    }
    if (c < length) load_lanes(src + c, lo - c, hi - c).store_partial(out + c, length - c);
    return;
  }
  int64_t c = 0;
  if (step == 2 && col_stride == 1) {
    // Stride 2 (stems, downsampling layers): two vectors and an even-lane shuffle. A chunk
    // that reaches into the padding loads only its columns inside the row (through a small
    // buffer, as load_even reads memory): the runs at either end of a row would otherwise
    // be copied a scalar at a time (ResNet's 7x7 stem: a third of its packing).
    for (; c < length; c += W) {
      const int64_t ix = ix0 + 2 * c, count = std::min(W, length - c);
      V even;
      if (ix >= 0 && ix + 2 * W <= w) {
        even = V::load_even(row + ix);
      } else {
        alignas(64) T pair[2 * W];
        load_lanes(row + ix, -ix, w - ix).store(pair);
        load_lanes(row + ix + W, -ix - W, w - ix - W).store(pair + W);
        even = V::load_even(pair);
      }
      if (count == W) even.store(out + c);
      else even.store_partial(out + c, count);
    }
    return;
  }
  for (; c < length; ++c) {
    const int64_t ix = ix0 + c * step;
    out[c] = ix >= 0 && ix < w ? row[ix * col_stride] : T(0);
  }
}

// Runs of at most one vector, with unit column steps (the phases of a transposed convolution
// on small planes: DCGAN's 4 x 4 images give runs of 4 pixels): what a run reads for each tap,
// found once per panel instead of once per K row. Run r of tap t reads lanes [lo, hi) from
// the channel's plane at `source` (none: lo == hi) into `length` panel elements at dst.
struct ShortRunRead {
  int64_t source, dst, lo, hi, length;
};
constexpr int64_t kMaxShortRunReads = 256;

template <class T>
bool short_runs(const Im2colView<T>& v, const PixelRun* runs, int64_t run_count) {
  if (v.stride_x != 1 || v.col_stride != 1 || run_count * v.taps_y * v.taps_x > kMaxShortRunReads) return false;
  for (int64_t r = 0; r < run_count; ++r)
    if (runs[r].length > Vec<T>::width) return false;
  return true;
}

template <class T>
void pack_short_runs(const Im2colView<T>& v, const PixelRun* runs, int64_t run_count, int64_t k0, int64_t kc,
                     int64_t nr, T* dst) {
  const int64_t taps = v.taps_y * v.taps_x;
  ShortRunRead reads[kMaxShortRunReads];
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t r = 0; r < run_count; ++r) {
      const PixelRun& run = runs[r];
      ShortRunRead& e = reads[t * run_count + r];
      const int64_t iy = run.y * v.stride_y + v.row_offset[t / v.taps_x];
      const int64_t ix0 = run.x * v.stride_x + v.col_offset[t % v.taps_x];
      const bool inside = run.kind != PixelRun::padding && iy >= 0 && iy < v.h;
      e.source = inside ? run.image_offset + iy * v.row_stride + ix0 : 0;
      e.lo = inside ? -ix0 : 0;
      e.hi = inside ? std::min(v.w - ix0, run.length) : 0;
      e.dst = run.dst;
      e.length = run.length;
    }
  int64_t channel = k0 / taps, tap = k0 % taps;
  for (int64_t kk = 0; kk < kc; ++kk) {
    const T* plane = v.input + channel * v.channel_stride;
    T* d = dst + kk * nr;
    for (const ShortRunRead* e = reads + tap * run_count; e != reads + (tap + 1) * run_count; ++e)
      load_lanes(plane + e->source, e->lo, e->hi).store_partial(d + e->dst, e->length);
    if (++tap == taps) tap = 0, ++channel;
  }
}

template <class T>
void pack_im2col(const Im2colView<T>& v, const PixelRun* runs, int64_t run_count, int64_t k0, int64_t kc,
                 int64_t nr, T* dst) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  if (short_runs(v, runs, run_count)) return pack_short_runs(v, runs, run_count, k0, kc, nr, dst);
  const int64_t taps = v.taps_y * v.taps_x;
  const bool unit_step = v.stride_x == 1 && v.col_stride == 1;
  int64_t channel = k0 / taps, tap = k0 % taps;
  for (int64_t kk = 0; kk < kc; ++kk) {
    const T* plane = v.input + channel * v.channel_stride;
    const int64_t row_offset = v.row_offset[tap / v.taps_x], col_offset = v.col_offset[tap % v.taps_x];
    T* d = dst + kk * nr;
    for (int64_t r = 0; r < run_count; ++r) {
      const PixelRun& run = runs[r];
      T* out = d + run.dst;
      const int64_t iy = run.y * v.stride_y + row_offset;
      if (run.kind == PixelRun::padding || iy < 0 || iy >= v.h) {
        std::fill(out, out + run.length, T(0));
        continue;
      }
      const T* row = plane + run.image_offset + iy * v.row_stride;
      const int64_t ix0 = run.x * v.stride_x + col_offset;
      if (run.kind == PixelRun::inside && unit_step) {
        // The common case: a straight copy of whole vectors.
        const T* src = row + ix0;
        int64_t c = 0;
        for (; c + W <= run.length; c += W) V::load(src + c).store(out + c);
        if (c < run.length) V::load_partial(src + c, run.length - c).store_partial(out + c, run.length - c);
        continue;
      }
      copy_run(out, row, ix0, v.stride_x, v.col_stride, run.length, v.w);
    }
    if (++tap == taps) tap = 0, ++channel;
  }
}

template <class T>
void pad_band(const T* image, int64_t channel_stride, int64_t row_stride, int64_t col_stride, int64_t h, int64_t w,
              int64_t channels, int64_t first_row, int64_t row_step, int64_t rows, int64_t first_column,
              int64_t column_step, int64_t inside, int64_t wp, T* band, int64_t plane) {
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t r = 0; r < rows; ++r) {
      T* dst = band + c * plane + r * wp;
      const int64_t iy = first_row + r * row_step;
      if (iy < 0 || iy >= h || inside == 0) {
        std::fill(dst, dst + wp, T(0));
        continue;
      }
      copy_run(dst, image + c * channel_stride + iy * row_stride, first_column, column_step, col_stride, inside, w);
      std::fill(dst + inside, dst + wp, T(0));
    }
  }
}

// dst[0, n) = src[0, n) + b, streamed (past an unaligned head) when `stream`.
template <class T>
void add_to_row(const T* src, int64_t n, T b, T* dst, bool stream) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const V bv(b);
  int64_t x = 0;
  if (stream) {
    const int64_t head = elements_to_cache_line(dst, n);
    for (; x < head; ++x) dst[x] = src[x] + b;
    for (const int64_t lines_end = whole_cache_lines_end<T>(head, n); x < lines_end; x += W)
      store_stream(dst + x, V::load(src + x) + bv);
  }
  for (; x + W <= n; x += W) (V::load(src + x) + bv).store(dst + x);
  if (x < n) (V::load_partial(src + x, n - x) + bv).store_partial(dst + x, n - x);
}

template <class T>
void store_band(const T* tile, int64_t ldt, int64_t wp, int64_t channels, int64_t rows, int64_t ow, T* out,
                int64_t out_plane, const T* bias, int64_t bias_stride, bool stream) {
  for (int64_t c = 0; c < channels; ++c) {
    const T b = bias ? bias[c * bias_stride] : T(0);
    for (int64_t r = 0; r < rows; ++r) add_to_row(tile + c * ldt + r * wp, ow, b, out + c * out_plane + r * ow, stream);
  }
}

// Whether transpose_block_rows goes through registers (float32 on the x86 sets).
template <class T>
constexpr bool kRegisterTranspose = TENSOROPS_ISA_ID >= 1 && std::is_same_v<T, float>;
// ... and streams whole lines straight from the registers (AVX-512: a 16-float vector is a
// line; AVX2's halves would have to wait for each other).
template <class T>
constexpr bool kStreamedTranspose = TENSOROPS_ISA_ID == 2 && kRegisterTranspose<T>;

// Pixels [0, pixels) x channels [0, cw) of a pixel-major tile (pixel q's channels at
// tile + q * ldt), cw <= kTransposeBlock, to channel-major rows: dst[j * ld + q] =
// tile[q * ldt + j] + bias[j]. Blocks go through registers where the ISA has the transpose
// (kRegisterTranspose: 16 x 16 with AVX-512, 8 x 8 with AVX2), and with `stream` (AVX-512
// only, kStreamedTranspose) their whole aligned lines bypass the cache; elsewhere element by
// element. Element by element, AVX2's store had taken a tenth of the ResNet stem (3 input
// channels, so few multiply-adds per output).
template <class T>
void transpose_block_rows(const T* tile, int64_t ldt, int64_t pixels, int64_t cw, const T* bias, T* dst, int64_t ld,
                          bool stream) {
#if TENSOROPS_ISA_ID == 2
  if constexpr (kRegisterTranspose<T>) {
    for (int64_t q0 = 0; q0 < pixels; q0 += 16) {
      const int n = int(std::min<int64_t>(16, pixels - q0));
      __m512 col[16];
      simd::x86_avx512::transpose16(tile + q0 * ldt, ldt, n, int(cw), col);
      const __mmask16 lanes = static_cast<__mmask16>((1u << n) - 1u);
      for (int64_t j = 0; j < cw; ++j) {
        const __m512 v = _mm512_add_ps(col[j], _mm512_set1_ps(bias[j]));
        T* at = dst + j * ld + q0;
        if (stream && n == 16 && on_cache_line(at)) _mm512_stream_ps(at, v);
        else _mm512_mask_storeu_ps(at, lanes, v);
      }
    }
    return;
  }
#elif TENSOROPS_ISA_ID == 1
  if constexpr (kRegisterTranspose<T>) {
    // Never streamed (see store_band_transposed), so each 8 x 8 block is stored as soon as it
    // is transposed; the loops over its rows and columns are unrolled, since indexing the
    // block at run time made GCC keep it on the stack.
    using V = Vec<float>;
    for (int64_t q0 = 0; q0 < pixels; q0 += 8) {
      const int64_t n = std::min<int64_t>(8, pixels - q0);
      for (int64_t j0 = 0; j0 < cw; j0 += 8) {
        const int64_t cols = std::min<int64_t>(8, cw - j0);
        __m256 block[8];
        simd::x86_avx2::transpose8(tile + q0 * ldt + j0, ldt, int(n), int(cols), block);
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          if (j >= cols) break;
          const V v = V(block[j]) + V(bias[j0 + j]);
          if (n == 8) v.store(dst + (j0 + j) * ld + q0);
          else v.store_partial(dst + (j0 + j) * ld + q0, n);
        }
      }
    }
    return;
  }
#endif
  (void)stream;
  for (int64_t q0 = 0; q0 < pixels; ++q0)
    for (int64_t j = 0; j < cw; ++j) dst[j * ld + q0] = tile[q0 * ldt + j] + bias[j];
}

// A streamed store whose output rows all start on a line (every plane a whole number of
// lines apart) is transposed straight to the output where the ISA streams from the
// transpose; other streamed stores are transposed into `staging` and then streamed row by
// row.
template <class T>
void store_band_transposed(const T* tile, int64_t ldt, int64_t pixels, int64_t channels, T* out, int64_t out_plane,
                           const T* bias, int64_t bias_stride, bool stream, T* staging) {
  const bool direct = !stream || (kStreamedTranspose<T> && on_cache_line(out) &&
                                  out_plane * int64_t(sizeof(T)) % kCacheLineBytes == 0);
  for (int64_t c0 = 0; c0 < channels; c0 += kTransposeBlock) {
    const int64_t cw = std::min(kTransposeBlock, channels - c0);
    T b[kTransposeBlock];
    for (int64_t j = 0; j < cw; ++j) b[j] = bias ? bias[(c0 + j) * bias_stride] : T(0);
    if (direct) {
      transpose_block_rows(tile + c0, ldt, pixels, cw, b, out + c0 * out_plane, out_plane, stream);
      continue;
    }
    const T zero[kTransposeBlock] = {};
    transpose_block_rows(tile + c0, ldt, pixels, cw, zero, staging, pixels, false);
    for (int64_t j = 0; j < cw; ++j) add_to_row(staging + j * pixels, pixels, b[j], out + (c0 + j) * out_plane, true);
  }
}

// Output row dst[0, out_w) of channel c from its column-phase tile rows (column ox from
// tiles[ox % sw] + c * ldt[ox % sw] at ox / sw) plus b, with ordinary stores.
template <class T>
void interleave_row(const T* const* tiles, const int64_t* ldt, int64_t c, int64_t sw, int64_t out_w, T b, T* dst) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const V bv(b);
  const T* even = tiles[0] + c * ldt[0];
  int64_t ox = 0;
  if (sw == 1) {
    for (; ox + W <= out_w; ox += W) (V::load(even + ox) + bv).store(dst + ox);
  } else if (sw == 2 && out_w > 1) {
    // Columns alternate between the two phase tiles: interleave whole vectors.
    const T* odd = tiles[1] + c * ldt[1];
    int64_t i = 0;
    for (; ox + 2 * W <= out_w; i += W, ox += 2 * W) {
      V lo, hi;
      interleave(V::load(even + i), V::load(odd + i), &lo, &hi);
      (lo + bv).store(dst + ox);
      (hi + bv).store(dst + ox + W);
    }
    if (ox < out_w) {
      // The last rest < 2W columns: ceil(rest / 2) from the even tile, the others odd.
      const int64_t rest = out_w - ox;
      V lo, hi;
      interleave(V::load_partial(even + i, (rest + 1) / 2), V::load_partial(odd + i, rest / 2), &lo, &hi);
      (lo + bv).store_partial(dst + ox, std::min(rest, W));
      if (rest > W) (hi + bv).store_partial(dst + ox + W, rest - W);
      return;
    }
  }
  for (int64_t rx = ox % sw, i = ox / sw; ox < out_w; ++ox) {
    dst[ox] = tiles[rx][c * ldt[rx] + i] + b;
    if (++rx == sw) rx = 0, ++i;
  }
}

template <class T>
void store_rows(const T* const* sources, const int64_t* ldt, int64_t sw, int64_t channels, int64_t rows,
                int64_t out_w, T* out, int64_t plane_stride, const T* bias, int64_t bias_stride, bool stream,
                T* staging) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const int64_t phases = std::min(sw, out_w);
  const int64_t run = rows * out_w;
  for (int64_t c = 0; c < channels; ++c) {
    const T b = bias ? bias[c * bias_stride] : T(0);
    T* dst = out + c * plane_stride;
    // Streamed, the plane's rows are assembled in L1 first, so that every cache line of the
    // run but the first and last leaves whole, with one non-temporal store per vector.
    T* rows_to = stream ? staging : dst;
    for (int64_t i = 0; i < rows; ++i)
      interleave_row(sources + i * phases, ldt + i * phases, c, sw, out_w, b, rows_to + i * out_w);
    if (!stream) continue;
    int64_t x = 0;
    const int64_t head = elements_to_cache_line(dst, run);
    for (; x < head; ++x) dst[x] = staging[x];
    for (const int64_t lines_end = whole_cache_lines_end<T>(head, run); x < lines_end; x += W)
      store_stream(dst + x, V::load(staging + x));
    for (; x < run; ++x) dst[x] = staging[x];
  }
}

// ---- depthwise ------------------------------------------------------------------------------

// 3x3, stride 1, no dilation (most depthwise layers): the taps fit in registers, and the
// row and lane kernels have a kernel of their own for it.
template <class T>
bool plain_3x3(const DepthwisePlane<T>& p) {
  return p.kernel_h == 3 && p.kernel_w == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dilation_h == 1 &&
         p.dilation_w == 1;
}

// The column walk: 3x3 at stride 1 (most depthwise layers) and 3x3 and 5x5 at stride 2 in
// both directions (the downsampling layers of MobileNet and EfficientNet), no dilation, unit
// column stride, the input read in place. A column of NV vectors of outputs walks down the
// plane one output row at a time, and every input row is loaded once per column: output row
// t reads input rows S t - pad_h + d, d < K, and rows d >= S of its window are rows d - S of
// row t + 1's, so ceil(K / S) rows of accumulators are live. Each step adds the S input rows
// that complete row t to every live row they reach (the taps fold into the FMAs, from
// registers where they fit), stores row t and shifts the others up; a run of rows first takes
// in the K - S rows above its first. Only an input row outside the plane is tested at run
// time, and only a vector whose loads would leave the row (the row's ends) loads under masks.
//
// At stride 2, taps 2m and 2m + 1 of a vector read the even and the odd columns of one window
// of 2W input columns from 2 ox - pad_w + 2m: two loads and two shuffles straight from the
// input row serve both taps. The shuffles leave the lanes permuted (even_lanes_permuted), the
// same way for every tap, so the accumulators hold their outputs permuted and are put in
// order once, at the store: on AVX2 that halves the shuffles.
//
// The walk replaced bands of four output rows, whose unrolled body held every loaded vector of
// the band's (R - 1) S + K input rows at once: GCC hoisted the loads and spilled them (10
// stack moves a vector at stride 2) and tested every input row in every band. Zen 3, 144 x
// 56 x 56, one thread, instructions a vector of outputs and time ratios of back-to-back
// processes: 3x3 stride 1 36 -> 28, 0.84x; 3x3 stride 2 67 -> 44, 0.72x; 5x5 stride 2 0.84x.
template <int K, int S>
struct ColumnLoads {
  // Loads per input row and vector: one per tap at stride 1, a window of two per pair of taps
  // at stride 2.
  static constexpr int count = S == 1 ? K : 2 * ((K + 1) / 2);
  // The offset of load l from the vector's first input column.
  template <int64_t W>
  static constexpr int64_t offset(int l) {
    return S == 1 ? l : 2 * (l / 2) + (l % 2) * W;
  }
};

// The plane as the walk reads it, the fields of its address arithmetic set up once per plane.
template <class T, int K, int S>
struct ColumnPlane {
  using V = Vec<T>;
  static constexpr int64_t W = V::width;
  const T* input;
  T* out;
  V bias;
  int64_t row_stride, h, w, out_w, pad_h, pad_w;
  V taps[K * K];
  explicit ColumnPlane(const DepthwisePlane<T>& p)
      : input(p.input), out(p.out), bias(p.bias), row_stride(p.row_stride), h(p.h), w(p.w), out_w(p.out_w),
        pad_h(p.pad_h), pad_w(p.pad_w) {
    for (int k = 0; k < K * K; ++k) taps[k] = V(p.taps[k]);
  }
  // The input column of tap kx = 0 for output column ox.
  int64_t first_column(int64_t ox) const { return S * ox - pad_w; }
  // Whether every load of the vector of outputs from column ox (`width` lanes) stays inside the
  // row.
  bool loads_inside(int64_t ox, int64_t width = W) const {
    using L = ColumnLoads<K, S>;
    const int64_t c = first_column(ox);
    return c >= 0 && c + L::template offset<W>(L::count - 1) + width <= w;
  }
};

// For vector j of a column from ox0, the lanes of each load that lie inside the row: the same
// for every row of the plane. V: the column's vector type.
template <class T, int K, int S, class V = Vec<T>>
struct ColumnMasks {
  using L = ColumnLoads<K, S>;
  typename V::Mask lanes[L::count][2];
  ColumnMasks(const ColumnPlane<T, K, S>& p, int64_t ox0) {
    for (int l = 0; l < L::count; ++l)
      for (int j = 0; j < 2; ++j) {
        const int64_t c = p.first_column(ox0 + j * V::width) + L::template offset<V::width>(l);
        lanes[l][j] = V::lanes_between(-c, p.w - c);
      }
  }
};

// MASKED: bit j set where vector j loads under masks. V: Vec<T>, or at stride 1 on AVX-512
// the half-width simd::Half<T> for a last strip of at most half a vector.
template <class T, int K, int S, int NV, unsigned MASKED, class V = Vec<T>>
class DepthwiseColumn {
 public:
  using L = ColumnLoads<K, S>;
  static constexpr int kLive = (K + S - 1) / S;
  static constexpr int64_t W = V::width;

  DepthwiseColumn(const ColumnPlane<T, K, S>& p, const ColumnMasks<T, K, S, V>* masks, int64_t ox0)
      : p_(p), masks_(masks), ox0_(ox0), lanes_(std::min(NV * W, p.out_w - ox0)), column_(p.first_column(ox0)) {}

  void run(int64_t row_begin, int64_t row_end) {
#pragma GCC unroll 3
    for (int q = 0; q < kLive; ++q) start_row(q);
    const int64_t top = S * row_begin - p_.pad_h;
#pragma GCC unroll 4
    for (int d = 0; d < K - S; ++d) add_if_inside(d, top + d);
    for (int64_t t = row_begin; t < row_end; ++t) {
      const int64_t window = S * t - p_.pad_h;
#pragma GCC unroll 2
      for (int d = K - S; d < K; ++d) add_if_inside(d, window + d);
      store_row(t);
#pragma GCC unroll 3
      for (int q = 0; q + 1 < kLive; ++q)
#pragma GCC unroll 2
        for (int j = 0; j < NV; ++j) acc_[q][j] = acc_[q + 1][j];
      start_row(kLive - 1);
    }
  }

 private:
  // A tap or the bias (full vectors in the plane) in the column's vector type.
  [[gnu::always_inline]] static V narrow(Vec<T> x) {
    if constexpr (std::is_same_v<V, Vec<T>>) return x;
    else return V::lower(x);
  }

  [[gnu::always_inline]] void start_row(int q) {
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) acc_[q][j] = narrow(p_.bias);
  }

  [[gnu::always_inline]] void add_if_inside(int d, int64_t iy) {
    if (static_cast<uint64_t>(iy) < static_cast<uint64_t>(p_.h)) add_row(d, p_.input + (iy * p_.row_stride + column_));
  }

  [[gnu::always_inline]] V load(const T* row, int l, int j) const {
    const T* at = row + L::template offset<W>(l) + S * j * W;
    return (MASKED >> j) & 1u ? V::load_masked(at, masks_->lanes[l][j]) : V::load(at);
  }

  // Input row `row` as row d of the first live output row's window: row d - S q of live row q's.
  [[gnu::always_inline]] void add_row(int d, const T* row) {
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) {
      if constexpr (S == 1) {
#pragma GCC unroll 5
        for (int kx = 0; kx < K; ++kx) add_tap(d, kx, j, load(row, kx, j));
      } else {
#pragma GCC unroll 3
        for (int m = 0; 2 * m < K; ++m) {
          const V low = load(row, 2 * m, j), high = load(row, 2 * m + 1, j);
          add_tap(d, 2 * m, j, even_lanes_permuted(low, high));
          if (2 * m + 1 < K) add_tap(d, 2 * m + 1, j, odd_lanes_permuted(low, high));
        }
      }
    }
  }

  [[gnu::always_inline]] void add_tap(int d, int kx, int j, V x) {
#pragma GCC unroll 5
    for (int q = 0; q < kLive; ++q) {
      const int ky = d - S * q;
      if (ky >= 0 && ky < K) acc_[q][j] = mul_add(narrow(p_.taps[ky * K + kx]), x, acc_[q][j]);
    }
  }

  [[gnu::always_inline]] void store_row(int64_t t) {
    T* out = p_.out + (t * p_.out_w + ox0_);
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) {
      V v = acc_[0][j];
      if constexpr (S == 2) v = unpermute_lanes(v);
      if ((j + 1) * W <= lanes_) v.store(out + j * W);
      else if (j * W < lanes_) v.store_partial(out + j * W, lanes_ - j * W);
    }
  }

  const ColumnPlane<T, K, S>& p_;
  const ColumnMasks<T, K, S, V>* masks_;
  int64_t ox0_, lanes_, column_;
  V acc_[kLive][NV];
};

// A column's vector type, as a value (depthwise_columns picks it per strip).
template <class V>
struct ColumnVector {
  using type = V;
};

template <class T, int K, int S>
void depthwise_columns(const DepthwisePlane<T>& plane, int64_t row_begin, int64_t row_end) {
  constexpr int64_t W = Vec<T>::width;
  const ColumnPlane<T, K, S> p(plane);
  using Full = ColumnVector<Vec<T>>;
  const auto column = [&](auto nv, auto masked, int64_t ox, auto vector) {
    using V = typename decltype(vector)::type;
    constexpr int NV = decltype(nv)::value;
    constexpr unsigned MASKED = decltype(masked)::value;
    std::optional<ColumnMasks<T, K, S, V>> found;
    if constexpr (MASKED != 0) found.emplace(p, ox);
    DepthwiseColumn<T, K, S, NV, MASKED, V>(p, found ? &*found : nullptr, ox).run(row_begin, row_end);
  };
  using One = std::integral_constant<int, 1>;
  using Two = std::integral_constant<int, 2>;
  using Plain = std::integral_constant<unsigned, 0>;
  // A column one vector wide, under masks where its loads would leave the row.
  const auto one = [&](int64_t ox, auto vector) {
    if (p.loads_inside(ox, decltype(vector)::type::width)) column(One{}, Plain{}, ox, vector);
    else column(One{}, std::integral_constant<unsigned, 1>{}, ox, vector);
  };
  // Columns two vectors wide wherever two remain.
  for (int64_t ox = 0; ox < p.out_w;) {
#if TENSOROPS_ISA_ID == 2
    if constexpr (S == 1) {
      // A last strip of at most half a vector walks in 256-bit vectors, which Zen 4 carries
      // out at half the cost of 512-bit ones: 144 planes of 56 x 56 (three vectors and 8
      // lanes a row) took 0.94x the time, where the partial vector had cost a whole one
      // (24-wide planes 0.84x).
      using H = simd::x86_avx512::Half<T>;
      const int64_t left = p.out_w - ox;
      if (left <= H::width) {
        one(ox, ColumnVector<H>{});
        break;
      }
      if (left > W && left <= W + H::width) {  // one whole vector, then the half strip
        one(ox, Full{});
        ox += W;
        continue;
      }
    }
#endif
    if (p.out_w - ox > W) {
      const unsigned masked = (p.loads_inside(ox) ? 0u : 1u) | (p.loads_inside(ox + W) ? 0u : 2u);
      switch (masked) {
        case 0: column(Two{}, Plain{}, ox, Full{}); break;
        case 1: column(Two{}, std::integral_constant<unsigned, 1>{}, ox, Full{}); break;
        case 2: column(Two{}, std::integral_constant<unsigned, 2>{}, ox, Full{}); break;
        default: column(Two{}, std::integral_constant<unsigned, 3>{}, ox, Full{}); break;
      }
      ox += 2 * W;
    } else {
      one(ox, Full{});
      ox += W;
    }
  }
}

// Every other plane (any kernel, stride, dilation or column stride): the input rows that a
// band of output rows reads are copied first into zero-bordered rows, one per column phase of
// the stride (phase f holds padded columns f, f + sw, f + 2 sw, ...), so that tap (ky, kx) of
// every output in the band is a plain vector load at a fixed offset, with no masks and no
// tests in the tap loops; a row above or below the plane is a row of zeros. The row kernels
// this replaced took a masked load per tap wherever a tap reached the padding, which at rows
// of 28 is every vector (5x5 ran at 16 GFLOP/s), and gathered each tap's columns into a row
// and read and wrote the output once per tap where the stride was not 1.
constexpr int kPaddedBandRows = 4;

// The copied rows of a plane: `phases` phase rows of `pitch` elements per input row, enough
// for the output row rounded up to whole vectors plus the furthest tap's shift; phase f's
// columns [inside_first[f], inside_end[f]) lie inside the input row.
constexpr int64_t kPaddedMaxPhases = 16;
struct PaddedRowsShape {
  int64_t pitch, phases, span;  // span: rows between a band's first and last input row, plus one
  bool dense;                   // a band's rows fit its slots one to a row (slot = row % span)
  int64_t inside_first[kPaddedMaxPhases], inside_end[kPaddedMaxPhases];
  int64_t slot() const { return phases * pitch; }
};

// The columns [first, end) of phase f that lie inside the input row.
template <class T>
void phase_inside(const DepthwisePlane<T>& p, int64_t pitch, int64_t f, int64_t* first, int64_t* end) {
  const int64_t sw = p.stride_w;
  *first = std::min(pitch, p.pad_w > f ? (p.pad_w - f + sw - 1) / sw : 0);
  *end = std::clamp<int64_t>(p.w + p.pad_w - f > 0 ? (p.w + p.pad_w - f + sw - 1) / sw : 0, *first, pitch);
}

template <class T>
PaddedRowsShape padded_rows_shape(const DepthwisePlane<T>& p) {
  constexpr int64_t W = Vec<T>::width;
  const int64_t reach = (p.kernel_w - 1) * p.dilation_w / p.stride_w;
  PaddedRowsShape s;
  s.pitch = (p.out_w + W - 1) / W * W + (reach + W - 1) / W * W;
  s.phases = p.stride_w;
  s.span = (kPaddedBandRows - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1;
  s.dense = s.span <= kPaddedBandRows * p.kernel_h;
  for (int64_t f = 0; f < std::min(s.phases, kPaddedMaxPhases); ++f)
    phase_inside(p, s.pitch, f, &s.inside_first[f], &s.inside_end[f]);
  return s;
}

// Input row iy of the plane into its phase rows at dst: column j of phase f is padded column
// j * sw + f, input column j * sw + f - pad_w. Only the columns inside the row are written:
// the zeros around them are the same in every row and are written once per call
// (depthwise_prepare).
template <class T>
void copy_padded_row(const DepthwisePlane<T>& p, const PaddedRowsShape& s, int64_t iy, T* dst) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const T* row = p.input + iy * p.row_stride;
  const int64_t sw = p.stride_w;
  for (int64_t f = 0; f < s.phases; ++f) {
    T* d = dst + f * s.pitch;
    int64_t first, end;
    if (f < kPaddedMaxPhases) first = s.inside_first[f], end = s.inside_end[f];
    else phase_inside(p, s.pitch, f, &first, &end);
    if (first >= end) continue;
    const T* from = row + (first * sw + f - p.pad_w) * p.col_stride;
    if (sw == 1 && p.col_stride == 1) {
      std::copy(from, from + (end - first), d + first);
    } else if (sw == 2 && p.col_stride == 1) {
      // Every other column, a vector at a time; the last pairs, which may run past the row,
      // from loads of the row's remaining elements only.
      int64_t j = first;
      for (; j + W < end; j += W, from += 2 * W) V::load_even(from).store(d + j);
      if (j < end) {  // 1 to W outputs left
        const int64_t left = p.w - (j * 2 + f - p.pad_w);
        const V low = V::load_partial(from, left);
        const V high = left > W ? V::load_partial(from + W, left - W) : V::zero();
        even_lanes(low, high).store_partial(d + j, end - j);
      }
    } else {
      for (int64_t j = first; j < end; ++j) d[j] = row[(j * sw + f - p.pad_w) * p.col_stride];
    }
  }
}

// The accumulators of an R x NV block start from the bias; valid_rows rows of `lanes` outputs
// from column ox0 are stored.
template <class T, int R, int NV>
[[gnu::always_inline]] inline void padded_block_start(const DepthwisePlane<T>& p, Vec<T> (&acc)[R][NV]) {
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[r][j] = Vec<T>(p.bias);
}

template <class T, int R, int NV>
[[gnu::always_inline]] inline void padded_block_store(const DepthwisePlane<T>& p, const Vec<T> (&acc)[R][NV],
                                                      int64_t ox0, int64_t lanes, int64_t oy0, int64_t valid_rows) {
  constexpr int64_t W = Vec<T>::width;
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    if (r >= valid_rows) break;
    T* out = p.out + (oy0 + r) * p.out_w + ox0;
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      if ((j + 1) * W <= lanes) acc[r][j].store(out + j * W);
      else if (j * W < lanes) acc[r][j].store_partial(out + j * W, lanes - j * W);
    }
  }
}

// R output rows x NV vectors from column ox0: R * NV accumulator chains, every tap broadcast
// once for all of them. rows[r * KH + ky] is the copied input row that output row r reads for
// kernel row ky; tap kx reads it offsets[kx] elements in. `lanes` outputs of each row are kept.
template <class T, int R, int NV>
[[gnu::always_inline]] inline void depthwise_padded_block(const DepthwisePlane<T>& p, const T* const* rows,
                                                          const int64_t* offsets, int64_t ox0, int64_t lanes,
                                                          int64_t oy0, int64_t valid_rows) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  V acc[R][NV];
  padded_block_start<T, R, NV>(p, acc);
  const T* tap = p.taps;
  for (int64_t ky = 0; ky < p.kernel_h; ++ky) {
    const T* from[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) from[r] = rows[r * p.kernel_h + ky] + ox0;
    for (int64_t kx = 0; kx < p.kernel_w; ++kx, ++tap) {
      const V t(*tap);
      const int64_t offset = offsets[kx];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[r][j] = mul_add(t, V::load(from[r] + offset + j * W), acc[r][j]);
    }
  }
  padded_block_store<T, R, NV>(p, acc, ox0, lanes, oy0, valid_rows);
}

// The same without dilation along the rows, each loaded vector used by every output row
// whose window covers its input row: rows[i] is input row i of the band (output row r reads
// rows r * stride_h .. r * stride_h + KH - 1), so a 7x7 band of four rows loads 10 rows of
// vectors per tap column instead of 28, and the taps come as broadcasts from memory.
template <class T, int R, int NV>
[[gnu::always_inline]] inline void depthwise_padded_shared_rows(const DepthwisePlane<T>& p, const T* const* rows,
                                                                const int64_t* offsets, int64_t ox0, int64_t lanes,
                                                                int64_t oy0, int64_t valid_rows) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const int64_t kh = p.kernel_h, kw = p.kernel_w, sh = p.stride_h, band = (R - 1) * sh + kh;
  V acc[R][NV];
  padded_block_start<T, R, NV>(p, acc);
  for (int64_t i = 0; i < band; ++i) {
    const T* from = rows[i] + ox0;
    for (int64_t kx = 0; kx < kw; ++kx) {
      V x[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) x[j] = V::load(from + offsets[kx] + j * W);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const int64_t ky = i - r * sh;
        if (ky < 0 || ky >= kh) continue;
        const V t(p.taps[ky * kw + kx]);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[r][j] = mul_add(t, x[j], acc[r][j]);
      }
    }
  }
  padded_block_store<T, R, NV>(p, acc, ox0, lanes, oy0, valid_rows);
}

#if TENSOROPS_ISA_ID == 2
// The shared-rows block for a 5x5 or 7x7 filter at stride 1 without dilation (ConvNeXt's
// and EfficientNet's depthwise layers), AVX-512: each input row's vectors are loaded once,
// aligned, and the K shifted windows are built from adjacent pairs with a lane shift
// (Vec::window, one valignd), where depthwise_padded_shared_rows loads every window
// unaligned: a 64-byte load at a column offset splits across two cache lines and takes two
// load slots, which held the 7x7 block to about one multiply-add per cycle. Everything is
// known at compile time (which input rows meet which output rows at which tap), so the
// unrolled loops carry no tests. 96 x 56 x 56 7x7, 1 thread: 400 -> 350 us; 240 x 28 x 28
// 5x5: 205 -> 165 us. (On AVX2 a window takes two shuffles and the 7x7 block ran 10-20%
// slower than with unaligned loads; a band of 8 rows instead of 4 gained nothing.)
template <class T, int K, int NV, int KX = 0>
[[gnu::always_inline]] inline void windows_tap_columns(const Vec<T>* loaded, const T* taps, int i,
                                                       Vec<T> (&acc)[kPaddedBandRows][NV]) {
  using V = Vec<T>;
  constexpr int W = int(V::width);
  if constexpr (KX < K) {
    V x[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      if constexpr (KX % W == 0) x[j] = loaded[j + KX / W];
      else x[j] = V::template window<KX % W>(loaded[j + KX / W], loaded[j + KX / W + 1]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < kPaddedBandRows; ++r) {
      const int ky = i - r;
      if (ky < 0 || ky >= K) continue;
      const V t(taps[ky * K + KX]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[r][j] = mul_add(t, x[j], acc[r][j]);
    }
    windows_tap_columns<T, K, NV, KX + 1>(loaded, taps, i, acc);
  }
}

template <class T, int K, int NV>
[[gnu::always_inline]] inline void depthwise_windows_block(const DepthwisePlane<T>& p, const T* const* rows,
                                                           int64_t ox0, int64_t lanes, int64_t oy0,
                                                           int64_t valid_rows) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  constexpr int R = kPaddedBandRows, kLoaded = NV + int((K - 1 + W - 1) / W);
  V acc[R][NV];
  padded_block_start<T, R, NV>(p, acc);
#pragma GCC unroll 16
  for (int i = 0; i < R + K - 1; ++i) {
    const T* from = rows[i] + ox0;
    V loaded[kLoaded];
#pragma GCC unroll 8
    for (int q = 0; q < kLoaded; ++q) loaded[q] = V::load(from + q * W);
    windows_tap_columns<T, K, NV>(loaded, p.taps, i, acc);
  }
  padded_block_store<T, R, NV>(p, acc, ox0, lanes, oy0, valid_rows);
}

#endif

// Output rows [row_begin, row_end) of a plane, kPaddedBandRows at a time. scratch: the
// layout of depthwise_scratch after the flat path's masks (padded_rows_scratch).
template <class T>
void depthwise_padded(const DepthwisePlane<T>& plane, int64_t row_begin, int64_t row_end, T* scratch) {
  constexpr int64_t W = Vec<T>::width, R = kPaddedBandRows;
  const DepthwisePlane<T> p = plane;
  const PaddedRowsShape s = padded_rows_shape(p);
  const int64_t kh = p.kernel_h, slots = R * kh;
  const T* zeros = scratch;  // one slot of zeros (depthwise_prepare)
  T* slot_data = scratch + s.slot();
  const T** rows = reinterpret_cast<const T**>(slot_data + slots * s.slot());
  int64_t* offsets = reinterpret_cast<int64_t*>(rows + slots);
  int64_t* copied = offsets + p.kernel_w;  // per slot: the input row it holds, or -1
  for (int64_t kx = 0; kx < p.kernel_w; ++kx)
    offsets[kx] = (kx * p.dilation_w) % p.stride_w * s.pitch + kx * p.dilation_w / p.stride_w;
  std::fill(copied, copied + slots, int64_t(-1));
  // Rows shared between output rows (no dilation along them, every row of the band in a slot
  // of its own): rows[i] is the band's input row i; otherwise rows[r * KH + ky].
  const bool shared = p.dilation_h == 1 && s.dense;
#if TENSOROPS_ISA_ID == 2
  // The kernel size of depthwise_windows_block where it applies, else 0.
  const int64_t windows = shared && p.stride_h == 1 && p.stride_w == 1 && p.dilation_w == 1 &&
                                  p.kernel_h == p.kernel_w && (p.kernel_h == 5 || p.kernel_h == 7)
                              ? p.kernel_h
                              : 0;
#endif
  for (int64_t oy0 = row_begin; oy0 < row_end; oy0 += R) {
    const int64_t valid = std::min<int64_t>(R, row_end - oy0);
    const auto row_at = [&](int64_t iy, int64_t slot) -> const T* {
      if (iy < 0 || iy >= p.h) return zeros;
      T* data = slot_data + slot * s.slot();
      if (copied[slot] != iy) copy_padded_row(p, s, iy, data), copied[slot] = iy;
      return data;
    };
    if (shared) {
      // Rows past the band's valid output rows are read but their sums are not stored. The
      // slot of row iy is iy % span, counted up from the band's first row.
      const int64_t iy0 = oy0 * p.stride_h - p.pad_h;
      for (int64_t i = 0, slot = iy0 >= 0 ? iy0 % s.span : 0; i < s.span; ++i) {
        const int64_t iy = iy0 + i;
        rows[i] = row_at(iy, slot);
        if (iy >= 0 && ++slot == s.span) slot = 0;
      }
    } else {
      for (int64_t r = 0; r < R; ++r)
        for (int64_t ky = 0; ky < kh; ++ky) {
          const int64_t iy = (oy0 + r) * p.stride_h - p.pad_h + ky * p.dilation_h;
          // In a dense band every input row has a slot of its own, the same from band to band
          // (a row the last band copied is not copied again); otherwise one per (r, ky).
          rows[r * kh + ky] = r >= valid ? zeros : row_at(iy, s.dense ? (iy >= 0 ? iy % s.span : 0) : r * kh + ky);
        }
    }
    // Blocks of two vectors, the last of one where a vector's worth of outputs is left.
    for (int64_t ox = 0; ox < p.out_w;) {
      const int64_t left = p.out_w - ox;
      const auto block = [&](auto vectors) {
        constexpr int NV = decltype(vectors)::value;
        const int64_t lanes = std::min(left, NV * W);
#if TENSOROPS_ISA_ID == 2
        if (windows == 7) return depthwise_windows_block<T, 7, NV>(p, rows, ox, lanes, oy0, valid);
        if (windows == 5) return depthwise_windows_block<T, 5, NV>(p, rows, ox, lanes, oy0, valid);
#endif
        if (shared) depthwise_padded_shared_rows<T, R, NV>(p, rows, offsets, ox, lanes, oy0, valid);
        else depthwise_padded_block<T, R, NV>(p, rows, offsets, ox, lanes, oy0, valid);
      };
      if (left > W) block(std::integral_constant<int, 2>{}), ox += 2 * W;
      else block(std::integral_constant<int, 1>{}), ox += W;
    }
  }
}

// Elements of the padded path's scratch: a slot of zeros, R * KH slots of copied rows, then
// the row pointers, the tap offsets and the slots' row numbers.
template <class T>
int64_t padded_rows_scratch(const DepthwisePlane<T>& p) {
  const PaddedRowsShape s = padded_rows_shape(p);
  const int64_t slots = kPaddedBandRows * p.kernel_h;
  const int64_t words = slots + p.kernel_w + slots;  // pointers, offsets, row numbers (8 bytes each)
  return (slots + 1) * s.slot() + (words * 8 + int64_t(sizeof(T)) - 1) / int64_t(sizeof(T));
}

// Small planes whose output has the input's shape (stride 1, "same" padding, contiguous
// rows): the plane is one flat run of OH*OW outputs and tap (ky, kx) reads the input at the
// same flat index plus (ky*dh - ph)*w + kx*dw - pw, so a 7x7 plane is four vectors rather
// than seven 7-lane rows. Lanes whose tap falls in the padding are masked off; the masks
// depend only on the geometry and are built once per call (depthwise_prepare).
constexpr int64_t kFlatMaxVectors = 8;
constexpr int64_t kFlatMaxTaps = 49;

template <class T>
int64_t flat_vectors(const DepthwisePlane<T>& p) {
  constexpr int64_t W = Vec<T>::width;
  const bool flat = p.stride_h == 1 && p.stride_w == 1 && p.col_stride == 1 && p.row_stride == p.w &&
                    p.out_h == p.h && p.out_w == p.w && p.kernel_h * p.kernel_w <= kFlatMaxTaps &&
                    p.out_h * p.out_w <= kFlatMaxVectors * W;
  return flat ? (p.out_h * p.out_w + W - 1) / W : 0;
}

// P planes at once (P * NVEC accumulator chains): the tap masks are loaded once for all of
// them, and a 7x7 plane's nine chains of four vectors alone leave the FMA latency exposed
// (960 7x7 planes: 28 -> 25 us of kernel time with four planes a call).
template <class T, int NVEC, int P>
void depthwise_flat(const DepthwisePlane<T>* planes, const typename Vec<T>::Mask* __restrict masks) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const DepthwisePlane<T>& g = planes[0];  // the geometry, shared by all P
  V acc[P][NVEC];
  const T* rows[P];
#pragma GCC unroll 4
  for (int q = 0; q < P; ++q) {
#pragma GCC unroll 8
    for (int v = 0; v < NVEC; ++v) acc[q][v] = V(planes[q].bias);
  }
  const typename V::Mask* m = masks;
  for (int64_t ky = 0, tap = 0; ky < g.kernel_h; ++ky) {
    const int64_t row_offset = (ky * g.dilation_h - g.pad_h) * g.w - g.pad_w;
#pragma GCC unroll 4
    for (int q = 0; q < P; ++q) rows[q] = planes[q].input + row_offset;
    for (int64_t kx = 0; kx < g.kernel_w; ++kx, ++tap, m += NVEC) {
      typename V::Mask lanes[NVEC];
#pragma GCC unroll 8
      for (int v = 0; v < NVEC; ++v) lanes[v] = m[v];
#pragma GCC unroll 4
      for (int q = 0; q < P; ++q) {
        const V t(planes[q].taps[tap]);
        const T* x = rows[q] + kx * g.dilation_w;
#pragma GCC unroll 8
        for (int v = 0; v < NVEC; ++v) acc[q][v] = mul_add(t, V::load_masked(x + v * W, lanes[v]), acc[q][v]);
      }
    }
  }
  const int64_t n = g.out_h * g.out_w;
#pragma GCC unroll 4
  for (int q = 0; q < P; ++q) {
#pragma GCC unroll 8
    for (int v = 0; v < NVEC; ++v) {
      if ((v + 1) * W <= n) acc[q][v].store(planes[q].out + v * W);
      else acc[q][v].store_partial(planes[q].out + v * W, n - v * W);
    }
  }
}

// Planes per call of depthwise_flat: enough chains to cover the FMA latency, few enough to
// stay in registers with the masks.
template <int NVEC>
constexpr int kFlatPlanes = NVEC <= 4 ? 4 : 2;

template <class T, int NVEC>
void depthwise_flat_dispatch(const DepthwisePlane<T>* planes, int64_t count, const typename Vec<T>::Mask* masks,
                             int64_t vectors) {
  if constexpr (NVEC <= kFlatMaxVectors) {
    if (vectors != NVEC) {
      depthwise_flat_dispatch<T, NVEC + 1>(planes, count, masks, vectors);
      return;
    }
    constexpr int P = kFlatPlanes<NVEC>;
    int64_t i = 0;
    for (; i + P <= count; i += P) depthwise_flat<T, NVEC, P>(planes + i, masks);
    for (; i < count; ++i) depthwise_flat<T, NVEC, 1>(planes + i, masks);
  }
}

// The flat path's masks, rounded up to whole lines, then the padded path's rows.
template <class T>
int64_t flat_mask_elements() {
  using Mask = typename Vec<T>::Mask;
  const int64_t bytes = (kFlatMaxVectors * kFlatMaxTaps * int64_t(sizeof(Mask)) + 63) / 64 * 64;
  return bytes / int64_t(sizeof(T));
}

// Whether depthwise() takes the padded path for planes of this geometry: the other kernels
// never read its rows, so neither their scratch nor their zeros are made for them.
template <class T>
bool uses_padded_rows(const DepthwisePlane<T>& p) {
  return depthwise_column_stride(p) == 0;
}

template <class T>
int64_t depthwise_scratch(const DepthwisePlane<T>& p) {
  return flat_mask_elements<T>() + (uses_padded_rows(p) ? padded_rows_scratch(p) : 0);
}

// Lane l of vector v reads tap (ky, kx) of flat output q = v*W + l: valid when q is in the
// plane and the tap's input row and column are.
template <class T>
void depthwise_prepare(const DepthwisePlane<T>& p, T* scratch) {
  using V = Vec<T>;
  using Mask = typename V::Mask;
  constexpr int64_t W = V::width;
  // The padded path's rows: zeros, which copy_padded_row leaves in place around each row.
  if (uses_padded_rows(p)) {
    T* rows = scratch + flat_mask_elements<T>();
    std::fill(rows, rows + (kPaddedBandRows * p.kernel_h + 1) * padded_rows_shape(p).slot(), T(0));
  }
  const int64_t vectors = flat_vectors(p);
  if (!vectors) return;
  Mask* masks = reinterpret_cast<Mask*>(scratch);
  // Each output's row and column, found once rather than by a division per tap and lane
  // (the masks are rebuilt on every call: at 3x3 they took 2 of the 44 us of 960 7x7
  // planes).
  int64_t row[kFlatMaxVectors * W], col[kFlatMaxVectors * W];
  for (int64_t q = 0, oy = 0, ox = 0; q < vectors * W; ++q) {
    row[q] = q < p.out_h * p.out_w ? oy : -p.h - p.kernel_h * p.dilation_h;  // past the plane: never valid
    col[q] = ox;
    if (++ox == p.out_w) ox = 0, ++oy;
  }
  alignas(64) T valid[W];
  for (int64_t ky = 0, t = 0; ky < p.kernel_h; ++ky)
    for (int64_t kx = 0; kx < p.kernel_w; ++kx, ++t)
      for (int64_t v = 0; v < vectors; ++v) {
        for (int64_t l = 0; l < W; ++l) {
          const int64_t iy = row[v * W + l] - p.pad_h + ky * p.dilation_h;
          const int64_t ix = col[v * W + l] - p.pad_w + kx * p.dilation_w;
          valid[l] = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w ? T(1) : T(0);
        }
        masks[t * vectors + v] = ne(V::load(valid), V::zero());
      }
}

template <class T>
void depthwise(const DepthwisePlane<T>* planes, int64_t count, int64_t row_begin, int64_t row_end, T* scratch) {
  const int64_t vectors = flat_vectors(planes[0]);
  if (vectors && row_begin == 0 && row_end == planes[0].out_h) {
    depthwise_flat_dispatch<T, 1>(planes, count, reinterpret_cast<const typename Vec<T>::Mask*>(scratch), vectors);
    return;
  }
  for (int64_t i = 0; i < count; ++i) {
    const DepthwisePlane<T>& p = planes[i];
    if (uses_padded_rows(p)) depthwise_padded(p, row_begin, row_end, scratch + flat_mask_elements<T>());
    else if (depthwise_column_stride(p) == 1) depthwise_columns<T, 3, 1>(p, row_begin, row_end);
    else if (p.kernel_h == 3) depthwise_columns<T, 3, 2>(p, row_begin, row_end);
    else depthwise_columns<T, 5, 2>(p, row_begin, row_end);
  }
}

// ---- depthwise with one channel per lane (AVX-512 and AVX2 float) --------------------------
//
// A 7x7 plane is too small to vectorise along its rows (seven lanes of sixteen) or even
// flat (49 = 3 x 16 + 1, every tap a masked load crossing lines). With L channels in the
// lanes instead (16 with AVX-512, 8 with AVX2), every tap of every output is one aligned
// load and one FMA; the planes are transposed into a zero-bordered tile of the padded input
// ([row][column][channel]) and the results back, L pixels at a time with the ISA's L x L
// register transpose.
//
// Larger planes gain too where the filter is wide. Along a row, input column c of the tile
// is read by the outputs c - KW + 1 .. c, so a run of N outputs loads N + KW - 1 vectors
// per kernel row for N * KW multiply-adds and needs no shuffle, where the row kernels above
// build each tap's window with a lane shift that takes an FMA port's slot. The outputs go to
// a staging band of a few rows and back to the planes as each row completes (in whole
// transposes), so staging stays in L1 however large the plane and the stores drain while
// the next row computes; the tile spans the whole padded plane, and a call fills only the
// rows its outputs read (a thread may take a plane's rows in parts).
#if TENSOROPS_ISA_ID >= 1
using LaneVec = Vec<float>;
constexpr int kLanes = int(LaneVec::width);
// Vector registers: what the kernels' accumulators, taps and inputs share.
constexpr int kLaneRegisters = kLanes == 16 ? 32 : 16;

// Calls run(std::integral_constant<int, N>{}, ox0) for the n <= MAX given, N = n known at
// compile time so that the run's accumulators stay in registers.
template <int N, class Run>
[[gnu::always_inline]] inline void run_of_length(int64_t n, int64_t ox0, Run& run) {
  if constexpr (N > 1) {
    if (n < N) return run_of_length<N - 1>(n, ox0, run);
  }
  run(std::integral_constant<int, N>{}, ox0);
}

// A row of `width` outputs in runs of at most MAX, as even as they can be: 28 outputs as
// 10 + 9 + 9 rather than 12 + 12 + 4, whose last run has too few chains to cover the FMA
// latency.
template <int MAX, class Run>
[[gnu::always_inline]] inline void in_runs(int64_t width, Run&& run) {
  const int64_t runs = (width + MAX - 1) / MAX;
  for (int64_t r = 0, ox = 0; r < runs; ++r) {
    const int64_t n = width / runs + (r < width % runs ? 1 : 0);
    run_of_length<MAX>(n, ox, run);
    ox += n;
  }
}

// N outputs of row oy from output column ox0, any stride and dilation: N chains of KH*KW
// FMAs, one load each. UNIT: column stride 1, known at compile time (else the N column
// offsets outgrow the registers). staging_row: the staged output row.
template <int N, bool UNIT>
[[gnu::always_inline]] inline void depthwise_lanes_row(const DepthwisePlane<float>& g, const float* tile,
                                                       int64_t tile_w, const float* taps, LaneVec bias, int64_t oy,
                                                       int64_t ox0, float* staging_row) {
  const int64_t step = UNIT ? kLanes : g.stride_w * kLanes;
  LaneVec acc[N];
  for (int i = 0; i < N; ++i) acc[i] = bias;
  for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
    const float* row = tile + ((oy * g.stride_h + ky * g.dilation_h) * tile_w + ox0 * (step / kLanes)) * kLanes;
    for (int64_t kx = 0; kx < g.kernel_w; ++kx, taps += kLanes) {
      const LaneVec t = LaneVec::load(taps);
      const float* x = row + kx * g.dilation_w * kLanes;
      for (int i = 0; i < N; ++i) acc[i] = mul_add(LaneVec::load(x + i * step), t, acc[i]);
    }
  }
  for (int i = 0; i < N; ++i) acc[i].store(staging_row + (ox0 + i) * kLanes);
}

// Calls f(std::integral_constant<int, K>{}) for a filter extent k (odd, 5 to the widest the
// lane kernels take: lanes_wide_filter, lanes_tall_filter), K known at compile time; no
// code is made for extents past the ISA's widest.
template <class F>
[[gnu::always_inline]] inline void with_filter_extent(int64_t k, F&& f) {
  const auto call = [&](auto extent) {
    if constexpr (decltype(extent)::value <= lanes_widest_filter(kLanes)) f(extent);
  };
  switch (k) {
    case 5: call(std::integral_constant<int, 5>{}); break;
    case 7: call(std::integral_constant<int, 7>{}); break;
    case 9: call(std::integral_constant<int, 9>{}); break;
    case 11: call(std::integral_constant<int, 11>{}); break;
    default: call(std::integral_constant<int, 13>{}); break;
  }
}

// Runs of the wide kernel below: as long as the registers left by the KW taps and the
// loaded column allow, and no longer than 12.
template <int KW>
constexpr int kWideRun = std::min(12, kLaneRegisters - KW - 1);

// The same at unit column stride and dilation with KW known: the kernel row's KW taps in
// registers, each input column loaded once for the outputs whose windows cover it. One
// thread, transposes included, against the plane-at-a-time windows kernel (AVX-512): 96 x
// 56 x 56 7x7 350 -> 300 us, 192 x 28 x 28 7x7 204 -> 135, 240 x 28 x 28 5x5 174 -> 122;
// on the small planes that took the row kernel above, 384 x 14 x 14 7x7 89 -> 79. The sums
// run in the same order, kernel row by kernel row. Every loop must unroll whole (the
// pragmas cover KW = 13 and N + KW - 1 = 24): one left rolled indexes the accumulators at
// run time, which puts them in memory (11- and 13-wide filters ran 5x slower so).
template <int KW, int N>
[[gnu::always_inline]] inline void depthwise_lanes_wide(const DepthwisePlane<float>& g, const float* tile,
                                                        int64_t tile_w, const float* taps, LaneVec bias, int64_t oy,
                                                        int64_t ox0, float* staging_row) {
  LaneVec acc[N];
#pragma GCC unroll 16
  for (int i = 0; i < N; ++i) acc[i] = bias;
  for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
    const float* row = tile + ((oy * g.stride_h + ky * g.dilation_h) * tile_w + ox0) * kLanes;
    LaneVec t[KW];
#pragma GCC unroll 16
    for (int kx = 0; kx < KW; ++kx) t[kx] = LaneVec::load(taps + (ky * KW + kx) * kLanes);
#pragma GCC unroll 32
    for (int c = 0; c < N + KW - 1; ++c) {
      const LaneVec x = LaneVec::load(row + c * kLanes);
#pragma GCC unroll 16
      for (int kx = 0; kx < KW; ++kx)
        if (c - kx >= 0 && c - kx < N) acc[c - kx] = mul_add(x, t[kx], acc[c - kx]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < N; ++i) acc[i].store(staging_row + (ox0 + i) * kLanes);
}

// R outputs down column ox from row oy for a filter one tap wide, KH known: the same reuse
// down the column, each loaded vector serving the outputs whose windows cover its row.
// staging_row: the staged row oy.
template <int KH, int R>
[[gnu::always_inline]] inline void depthwise_lanes_tall(const DepthwisePlane<float>& g, const float* tile,
                                                        int64_t tile_w, const float* taps, LaneVec bias, int64_t oy,
                                                        int64_t ox, float* staging_row) {
  LaneVec acc[R], t[KH];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r] = bias;
#pragma GCC unroll 16
  for (int ky = 0; ky < KH; ++ky) t[ky] = LaneVec::load(taps + ky * kLanes);
  const float* column = tile + (oy * tile_w + ox * g.stride_w) * kLanes;
#pragma GCC unroll 32
  for (int i = 0; i < R + KH - 1; ++i) {
    const LaneVec x = LaneVec::load(column + i * tile_w * kLanes);
#pragma GCC unroll 16
    for (int ky = 0; ky < KH; ++ky)
      if (i - ky >= 0 && i - ky < R) acc[i - ky] = mul_add(x, t[ky], acc[i - ky]);
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r].store(staging_row + (r * g.out_w + ox) * kLanes);
}

// 3x3, stride 1, no dilation (MobileNet's depthwise layers): R output rows of N outputs
// from (oy, ox0), the nine taps in registers. The general row above runs its tap loops at
// run time over one output row's chains; with the taps' loops unrolled and two rows' chains
// in flight, the arithmetic of 960 x 7x7 (the kernel with its transposes left out) took
// 8 us instead of 10-12 with AVX-512. One row at a time, or three or four, was slower or no
// faster. AVX2's sixteen registers cannot hold the taps beside 16 chains, and the compiler
// takes them from memory instead; that ran as fast as rows of six or seven with the taps in
// registers, and faster than one row (960 x 7x7: 39.6 against 42-44 us).
template <int R, int N>
[[gnu::always_inline]] inline void depthwise_lanes_3x3(const float* tile, int64_t tile_w, const LaneVec (&taps)[9],
                                                       LaneVec bias, int64_t oy, int64_t ox0, int64_t out_w,
                                                       float* staging_row) {
  LaneVec acc[R][N];
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) acc[r][i] = bias;
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
    for (int ky = 0; ky < 3; ++ky) {
      const float* row = tile + ((oy + r + ky) * tile_w + ox0) * kLanes;
#pragma GCC unroll 3
      for (int kx = 0; kx < 3; ++kx)
#pragma GCC unroll 8
        for (int i = 0; i < N; ++i)
          acc[r][i] = mul_add(LaneVec::load(row + (i + kx) * kLanes), taps[ky * 3 + kx], acc[r][i]);
    }
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) acc[r][i].store(staging_row + (r * out_w + ox0 + i) * kLanes);
}

// The tile's extent: the padded rows and columns some output reads.
inline std::array<int64_t, 2> lanes_tile(const DepthwisePlane<float>& g) {
  return {(g.out_h - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1,
          (g.out_w - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1};
}

// Output rows per staging band: at least 128 outputs (and 12 rows for a tall filter, whose
// runs go down the band), and a whole number of transposes where the row width allows, so
// that only a plane's last band ends on a partial one.
inline int64_t lanes_band_rows(const DepthwisePlane<float>& g) {
  int64_t rows = kLanes / std::gcd<int64_t>(g.out_w, kLanes);
  while (rows * g.out_w < 128 || (lanes_tall_filter(g, kLanes) && rows < 12)) rows *= 2;
  return std::min(rows, g.out_h);
}

// Scratch: the tile, the staging band ([pixel][channel]), and each input pixel's place in
// the tile (in floats; -1 for pixels no output reads), as int32 after them.
int64_t depthwise_lanes_scratch(const DepthwisePlane<float>& g) {
  const auto [tile_h, tile_w] = lanes_tile(g);
  return (tile_h * tile_w + lanes_band_rows(g) * g.out_w) * kLanes + g.h * g.w + 16;  // + 16: room to align to 64 bytes
}

float* lanes_scratch_aligned(float* scratch) {
  return scratch + (64 - reinterpret_cast<uintptr_t>(scratch) % 64) % 64 / sizeof(float);
}

int32_t* lanes_pixel_places(const DepthwisePlane<float>& g, float* scratch) {
  const auto [tile_h, tile_w] = lanes_tile(g);
  return reinterpret_cast<int32_t*>(lanes_scratch_aligned(scratch) +
                                    (tile_h * tile_w + lanes_band_rows(g) * g.out_w) * kLanes);
}

// The tile's padding, zeroed here once per call and thread, is never written over: calls
// write only input pixels.
void depthwise_lanes_prepare(const DepthwisePlane<float>& g, float* scratch) {
  const auto [tile_h, tile_w] = lanes_tile(g);
  float* tile = lanes_scratch_aligned(scratch);
  const int64_t top = std::min(g.pad_h, tile_h), bottom = std::clamp(g.pad_h + g.h, top, tile_h);
  const int64_t left = std::min(g.pad_w, tile_w), right = std::clamp(g.pad_w + g.w, left, tile_w);
  std::fill(tile, tile + top * tile_w * kLanes, 0.0f);
  std::fill(tile + bottom * tile_w * kLanes, tile + tile_h * tile_w * kLanes, 0.0f);
  for (int64_t ty = top; ty < bottom; ++ty) {
    float* row = tile + ty * tile_w * kLanes;
    std::fill(row, row + left * kLanes, 0.0f);
    std::fill(row + right * kLanes, row + tile_w * kLanes, 0.0f);
  }
  int32_t* places = lanes_pixel_places(g, scratch);
  for (int64_t iy = 0; iy < g.h; ++iy)
    for (int64_t ix = 0; ix < g.w; ++ix) {
      const int64_t ty = iy + g.pad_h, tx = ix + g.pad_w;
      places[iy * g.w + ix] = ty < tile_h && tx < tile_w ? static_cast<int32_t>((ty * tile_w + tx) * kLanes) : -1;
    }
}

// Input pixels [p0, p1) of `channels` (<= L) planes, `channel_stride` apart, to their tile
// places, L pixels of every channel at a time.
[[gnu::always_inline]] inline void lanes_transpose_in(const float* input, int64_t channel_stride, int channels,
                                                      const int32_t* places, int64_t p0, int64_t p1, float* tile) {
  LaneVec col[kLanes];
  for (; p0 < p1; p0 += kLanes) {
    const int cols = static_cast<int>(std::min<int64_t>(kLanes, p1 - p0));
    simd::transpose_columns(input + p0, channel_stride, channels, cols, col);
    for (int j = 0; j < cols; ++j)
      if (places[p0 + j] >= 0) col[j].store(tile + places[p0 + j]);
  }
}

// Staged outputs [q0, q1) ([pixel][channel] from `staging`) back to `channels` planes of
// `plane` outputs each, L pixels at a time.
[[gnu::always_inline]] inline void lanes_transpose_out(const float* staging, int channels, int64_t q0, int64_t q1,
                                                       int64_t plane, float* out) {
  LaneVec col[kLanes];
  for (; q0 < q1; q0 += kLanes, staging += kLanes * kLanes) {
    const int count = static_cast<int>(std::min<int64_t>(kLanes, q1 - q0));
    simd::transpose_columns(staging, kLanes, count, kLanes, col);
    if (count == kLanes && channels == kLanes) {
      for (int c = 0; c < kLanes; ++c) col[c].store(out + c * plane + q0);
    } else {
      for (int c = 0; c < channels; ++c) col[c].store_partial(out + c * plane + q0, count);
    }
  }
}

// Output rows [row_begin, row_end) of `channels` (<= L) planes of g's geometry,
// `channel_stride` apart in the input and out_h * out_w apart in the output; taps:
// [KH * KW][L] for these channels, bias: [L]. The input planes are contiguous (row stride
// w, column stride 1).
void depthwise_lanes(const DepthwisePlane<float>& g, const float* input, int64_t channel_stride, int64_t channels,
                     const float* taps, const float* bias, float* out, int64_t row_begin, int64_t row_end,
                     float* scratch) {
  const auto [tile_h, tile_w] = lanes_tile(g);
  float* tile = lanes_scratch_aligned(scratch);
  float* staging = tile + tile_h * tile_w * kLanes;
  const int rows = static_cast<int>(channels);
  // In: the input rows these outputs read.
  const int64_t first_row = std::max<int64_t>(0, row_begin * g.stride_h - g.pad_h);
  const int64_t end_row = std::min(g.h, (row_end - 1) * g.stride_h - g.pad_h + (g.kernel_h - 1) * g.dilation_h + 1);
  lanes_transpose_in(input, channel_stride, rows, lanes_pixel_places(g, scratch), first_row * g.w, end_row * g.w,
                     tile);
  const LaneVec b = LaneVec::load(bias);
  const bool wide = lanes_wide_filter(g, kLanes), tall = lanes_tall_filter(g, kLanes);
  LaneVec tap_vectors[9];
  if (plain_3x3(g))
    for (int t = 0; t < 9; ++t) tap_vectors[t] = LaneVec::load(taps + t * kLanes);
  const int64_t band = lanes_band_rows(g);
  for (int64_t oy0 = row_begin; oy0 < row_end; oy0 += band) {
    const int64_t oy1 = std::min(row_end, oy0 + band);
    const auto staged = [&](int64_t oy) { return staging + (oy - oy0) * g.out_w * kLanes; };
    // Rows [oy0, done) are staged: out with their whole transposes (all of them at the band's
    // end), so that the stores, which miss the cache, drain while the next rows compute.
    int64_t flushed = oy0 * g.out_w;
    const auto flush = [&](int64_t done) {
      const int64_t end = done == oy1 ? oy1 * g.out_w : flushed + (done * g.out_w - flushed) / kLanes * kLanes;
      lanes_transpose_out(staging + (flushed - oy0 * g.out_w) * kLanes, rows, flushed, end, g.out_h * g.out_w, out);
      flushed = end;
    };
    if (plain_3x3(g)) {
      int64_t oy = oy0;
      for (; oy + 2 <= oy1; oy += 2) {
        in_runs<8>(g.out_w, [&](auto n, int64_t ox) {
          depthwise_lanes_3x3<2, decltype(n)::value>(tile, tile_w, tap_vectors, b, oy, ox, g.out_w, staged(oy));
        });
        flush(oy + 2);
      }
      if (oy < oy1)
        in_runs<8>(g.out_w, [&](auto n, int64_t ox) {
          depthwise_lanes_3x3<1, decltype(n)::value>(tile, tile_w, tap_vectors, b, oy, ox, g.out_w, staged(oy));
        });
    } else if (wide) {
      for (int64_t oy = oy0; oy < oy1; ++oy) {
        with_filter_extent(g.kernel_w, [&](auto width) {
          constexpr int KW = decltype(width)::value;
          in_runs<kWideRun<KW>>(g.out_w, [&](auto n, int64_t ox) {
            depthwise_lanes_wide<KW, decltype(n)::value>(g, tile, tile_w, taps, b, oy, ox, staged(oy));
          });
        });
        flush(oy + 1);
      }
    } else if (tall) {
      with_filter_extent(g.kernel_h, [&](auto height) {
        constexpr int KH = decltype(height)::value;
        in_runs<kWideRun<KH>>(oy1 - oy0, [&](auto n, int64_t r0) {
          for (int64_t ox = 0; ox < g.out_w; ++ox)
            depthwise_lanes_tall<KH, decltype(n)::value>(g, tile, tile_w, taps, b, oy0 + r0, ox, staged(oy0 + r0));
          flush(oy0 + r0 + decltype(n)::value);
        });
      });
    } else {
      for (int64_t oy = oy0; oy < oy1; ++oy) {
        in_runs<8>(g.out_w, [&](auto n, int64_t ox) {
          constexpr int N = decltype(n)::value;
          if (g.stride_w == 1) depthwise_lanes_row<N, true>(g, tile, tile_w, taps, b, oy, ox, staged(oy));
          else depthwise_lanes_row<N, false>(g, tile, tile_w, taps, b, oy, ox, staged(oy));
        });
        flush(oy + 1);
      }
    }
    flush(oy1);
  }
}
#endif

template <class T>
constexpr ConvKernelsFor<T> kernels_for() {
  // The lane kernel is filled in below where it exists.
  ConvKernelsFor<T> k{pack_im2col<T>,       store_rows<T>,        pad_band<T>, store_band<T>,
                      store_band_transposed<T>, depthwise_prepare<T>, depthwise<T>, depthwise_scratch<T>,
                      0,                    nullptr,              nullptr,     nullptr};
#if TENSOROPS_ISA_ID >= 1
  if constexpr (std::is_same_v<T, float>) {
    k.depthwise_lanes = kLanes;
    k.depthwise_channels_prepare = depthwise_lanes_prepare;
    k.depthwise_channels = depthwise_lanes;
    k.depthwise_channels_scratch = depthwise_lanes_scratch;
  }
#endif
  return k;
}

}  // namespace

const ConvKernels* kernel_table() {
  static const ConvKernels table{kernels_for<float>(), kernels_for<double>()};
  return &table;
}

}  // namespace tensorops::conv::TENSOROPS_ISA_NS
