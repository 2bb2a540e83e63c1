// Pooling kernel bodies, written once against Vec<T> and compiled per ISA by the tiny
// generic.cc / x86_avx2.cc / x86_avx512.cc files beside this one. pool.h explains the
// two-pass (vertical, then phase-split horizontal) shape of the value kernels.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/simd/vec.h"
#include "pool/pool.h"

#if TENSOROPS_ISA_ID >= 1
#include <immintrin.h>
#endif

namespace tensorops::pool::TENSOROPS_ISA_NS {
namespace {

using simd::Vec;

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// ---- stride-2 deinterleave: 2 * Vec<T>::width elements at src -> even and odd lanes -----
template <class T>
inline void deinterleave_block(const T* src, T* even, T* odd) {
#if TENSOROPS_ISA_ID == 2
  if constexpr (sizeof(T) == 4) {
    const __m512i even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 a = _mm512_loadu_ps(src), b = _mm512_loadu_ps(src + 16);
    _mm512_storeu_ps(even, _mm512_permutex2var_ps(a, even_idx, b));
    _mm512_storeu_ps(odd, _mm512_permutex2var_ps(a, odd_idx, b));
  } else {
    const __m512i even_idx = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    const __m512i odd_idx = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
    const __m512d a = _mm512_loadu_pd(src), b = _mm512_loadu_pd(src + 8);
    _mm512_storeu_pd(even, _mm512_permutex2var_pd(a, even_idx, b));
    _mm512_storeu_pd(odd, _mm512_permutex2var_pd(a, odd_idx, b));
  }
#elif TENSOROPS_ISA_ID == 1
  if constexpr (sizeof(T) == 4) {
    const __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 8);
    // shuffle_ps works within 128-bit halves; permute4x64 puts the halves in order.
    const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_storeu_ps(even, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))));
    _mm256_storeu_ps(odd, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0))));
  } else {
    const __m256d a = _mm256_loadu_pd(src), b = _mm256_loadu_pd(src + 4);
    _mm256_storeu_pd(even, _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0)));
    _mm256_storeu_pd(odd, _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0)));
  }
#else
  for (int64_t i = 0; i < Vec<T>::width; ++i) {
    even[i] = src[2 * i];
    odd[i] = src[2 * i + 1];
  }
#endif
}

// The padded row of a window, split by stride into phases (see pool.h). Phase r holds
// padded cells r, r + s, r + 2s, ... and starts at phases + r * phase_len.
struct PhaseLayout {
  int64_t padded_len;  // cells the windows of one output row span
  int64_t phase_len;   // ceil(padded_len / stride)
  int64_t phases;      // non-empty phases: min(stride, padded_len)
};

inline PhaseLayout phase_layout(int64_t out_w, int64_t kernel_w, int64_t stride_w, int64_t dilation_w) {
  PhaseLayout l;
  l.padded_len = (out_w - 1) * stride_w + (kernel_w - 1) * dilation_w + 1;
  l.phase_len = (l.padded_len + stride_w - 1) / stride_w;
  l.phases = std::min(stride_w, l.padded_len);
  return l;
}

template <class T>
void split_phases(const T* padded, const PhaseLayout& l, int64_t stride, T* phases) {
  if (stride == 2) {
    T* even = phases;
    T* odd = phases + l.phase_len;
    const int64_t block = 2 * Vec<T>::width;
    int64_t i = 0;
    for (; i + block <= l.padded_len; i += block) deinterleave_block(padded + i, even + i / 2, odd + i / 2);
    for (; i < l.padded_len; ++i) (i & 1 ? odd : even)[i / 2] = padded[i];
    return;
  }
  for (int64_t r = 0; r < l.phases; ++r) {
    T* dst = phases + r * l.phase_len;
    for (int64_t i = 0, cell = r; cell < l.padded_len; ++i, cell += stride) dst[i] = padded[cell];
  }
}

// Where tap kw of output 0 sits: phase (kw*d) % s at offset (kw*d) / s, walked without
// a division per tap.
struct TapWalk {
  int64_t phase = 0, offset = 0, step_phase, step_offset, stride;
  TapWalk(int64_t dilation, int64_t stride) : step_phase(dilation % stride), step_offset(dilation / stride), stride(stride) {}
  void next() {
    phase += step_phase;
    offset += step_offset;
    if (phase >= stride) {
      phase -= stride;
      ++offset;
    }
  }
};

struct MaxOp {
  template <class V>
  static V apply(V a, V b) { return maximum(a, b); }  // NaN-propagating, as torch
};
struct SumOp {
  template <class V>
  static V apply(V a, V b) { return a + b; }
};

// dst[j] = op over `count` rows (first, first + step, ...) of row[j], j < n.
template <class Op, class T>
void reduce_rows(const T* first, int64_t step, int64_t count, int64_t n, T* dst) {
  using V = Vec<T>;
  constexpr int64_t kRowsPerPass = 4;  // rows kept in flight per pass over dst
  for (int64_t r0 = 0; r0 < count; r0 += kRowsPerPass) {
    const int64_t rows = std::min(kRowsPerPass, count - r0);
    const T* base = first + r0 * step;
    const bool fresh = r0 == 0;
    int64_t j = 0;
    for (; j + V::width <= n; j += V::width) {
      const T* p = base + j;
      V acc = fresh ? V::load(p) : Op::apply(V::load(dst + j), V::load(p));
      for (int64_t k = 1; k < rows; ++k) acc = Op::apply(acc, V::load(p + k * step));
      acc.store(dst + j);
    }
    if (j < n) {
      const int64_t m = n - j;
      const T* p = base + j;
      V acc = fresh ? V::load_partial(p, m) : Op::apply(V::load_partial(dst + j, m), V::load_partial(p, m));
      for (int64_t k = 1; k < rows; ++k) acc = Op::apply(acc, V::load_partial(p + k * step, m));
      acc.store_partial(dst + j, m);
    }
  }
}

// Valid kernel rows of output row oh: kh in [first, last) land inside [0, in_h).
struct RowSpan {
  int64_t first, last;
};
inline RowSpan valid_rows(int64_t start, int64_t kernel, int64_t dilation, int64_t in_h) {
  const int64_t first = start < 0 ? (-start + dilation - 1) / dilation : 0;
  const int64_t end_exclusive = in_h - start;  // kh * dilation < in_h - start
  const int64_t last = end_exclusive <= 0 ? 0 : std::min(kernel, (end_exclusive + dilation - 1) / dilation);
  return {first, std::max(first, last)};
}

// Fills the pad cells of a padded row: [0, pad) and [pad + cols, padded_len).
template <class T>
void fill_pads(T* padded, int64_t pad, int64_t cols, int64_t padded_len, T value) {
  std::fill(padded, padded + std::min(pad, padded_len), value);
  if (pad + cols < padded_len) std::fill(padded + pad + cols, padded + padded_len, value);
}

// out[ow] = op over kw of tap(kw, ow), for ow < out_w; taps read from the phases of a
// padded row (or the row itself for stride 1).
template <class Op, class T>
void horizontal(const T* phases, int64_t phase_len, const Window2d& g, T* out) {
  using V = Vec<T>;
  const int64_t out_w = g.out_w;
  int64_t ow = 0;
  for (; ow + V::width <= out_w; ow += V::width) {
    TapWalk tap(g.dilation_w, g.stride_w);
    V acc = V::load(phases + ow);
    for (int64_t kw = 1; kw < g.kernel_w; ++kw) {
      tap.next();
      acc = Op::apply(acc, V::load(phases + tap.phase * phase_len + tap.offset + ow));
    }
    acc.store(out + ow);
  }
  if (ow < out_w) {
    const int64_t m = out_w - ow;
    TapWalk tap(g.dilation_w, g.stride_w);
    V acc = V::load_partial(phases + ow, m);
    for (int64_t kw = 1; kw < g.kernel_w; ++kw) {
      tap.next();
      acc = Op::apply(acc, V::load_partial(phases + tap.phase * phase_len + tap.offset + ow, m));
    }
    acc.store_partial(out + ow, m);
  }
}

// Shared by max (pad -inf) and sum (pad 0): for each output row, the vertical reduction
// into a padded row, the phase split, and the horizontal reduction into `row_out(oh)`.
template <class Op, class T, class Finish>
void separable_rows(const T* plane, int64_t row_stride, const Window2d& g, int64_t oh_begin, int64_t oh_end,
                    T* scratch, T pad_value, T* out, const Finish& finish) {
  const PhaseLayout l = phase_layout(g.out_w, g.kernel_w, g.stride_w, g.dilation_w);
  T* padded = scratch;
  T* phases = g.stride_w == 1 ? padded : padded + l.padded_len;
  const int64_t cols = std::max<int64_t>(0, std::min(g.in_w, l.padded_len - g.pad_w));
  fill_pads(padded, g.pad_w, cols, l.padded_len, pad_value);
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const int64_t start = oh * g.stride_h - g.pad_h;
    const RowSpan rows = valid_rows(start, g.kernel_h, g.dilation_h, g.in_h);
    T* center = padded + g.pad_w;
    if (rows.last > rows.first) {
      const T* first = plane + (start + rows.first * g.dilation_h) * row_stride;
      reduce_rows<Op>(first, g.dilation_h * row_stride, rows.last - rows.first, cols, center);
    } else {
      std::fill(center, center + cols, pad_value);
    }
    if (g.stride_w != 1) split_phases(padded, l, g.stride_w, phases);
    T* row_out = out + oh * g.out_w;
    horizontal<Op>(phases, l.phase_len, g, row_out);
    finish(oh, row_out);
  }
}

template <class T>
void max_values(const T* plane, int64_t row_stride, T* out, const Window2d& g, int64_t oh_begin, int64_t oh_end,
                T* scratch) {
  separable_rows<MaxOp>(plane, row_stride, g, oh_begin, oh_end, scratch, kNegInf<T>, out, [](int64_t, T*) {});
}

// The divisor of window (oh, ow) is row_factor(oh) * column_factor(ow), both clipped
// window extents (torch's pool_size or its count of in-bounds cells).
inline int64_t divisor_factor(int64_t start, int64_t kernel, int64_t pad, int64_t in, bool include_pad) {
  const int64_t end = std::min(start + kernel, in + pad);
  if (include_pad) return end - start;
  return std::min(end, in) - std::max<int64_t>(start, 0);
}

template <class T>
void avg(const T* plane, int64_t row_stride, T* out, const Window2d& g, const AvgDivisor& divisor, int64_t oh_begin,
         int64_t oh_end, T* scratch) {
  using V = Vec<T>;
  const PhaseLayout l = phase_layout(g.out_w, g.kernel_w, g.stride_w, g.dilation_w);
  T* column_factor = scratch + l.padded_len + (g.stride_w == 1 ? 0 : l.phases * l.phase_len);
  const bool fixed = divisor.divisor_override != 0;
  for (int64_t ow = 0; ow < g.out_w; ++ow)
    column_factor[ow] = fixed ? T(1)
                              : T(divisor_factor(ow * g.stride_w - g.pad_w, g.kernel_w, g.pad_w, g.in_w,
                                                 divisor.count_include_pad));
  separable_rows<SumOp>(plane, row_stride, g, oh_begin, oh_end, scratch, T(0), out, [&](int64_t oh, T* row) {
    const T row_factor = fixed ? T(divisor.divisor_override)
                               : T(divisor_factor(oh * g.stride_h - g.pad_h, g.kernel_h, g.pad_h, g.in_h,
                                                  divisor.count_include_pad));
    const V rf(row_factor);
    int64_t ow = 0;
    for (; ow + V::width <= g.out_w; ow += V::width)
      (V::load(row + ow) / (V::load(column_factor + ow) * rf)).store(row + ow);
    if (ow < g.out_w) {
      const int64_t m = g.out_w - ow;
      // Lanes past m divide 0 by 0; they are never stored.
      (V::load_partial(row + ow, m) / (V::load_partial(column_factor + ow, m) * rf)).store_partial(row + ow, m);
    }
  });
}

// Max with indices, scanning each window in torch's row-major order (see pool.h). Per
// output row, the running state (value, winning kh, winning kw) of every output column
// lives in scratch while the valid kernel rows stream through.
template <class T>
void max_indices(const T* plane, int64_t row_stride, T* out, int64_t* indices, const Window2d& g, int64_t oh_begin,
                 int64_t oh_end, T* scratch) {
  using V = Vec<T>;
  const PhaseLayout l = phase_layout(g.out_w, g.kernel_w, g.stride_w, g.dilation_w);
  T* padded = scratch;
  T* phases = g.stride_w == 1 ? padded : padded + l.padded_len;
  T* best_kh = phases + (g.stride_w == 1 ? l.padded_len : l.phases * l.phase_len);
  T* best_kw = best_kh + g.out_w;
  T* first_kw = best_kw + g.out_w;
  const int64_t cols = std::max<int64_t>(0, std::min(g.in_w, l.padded_len - g.pad_w));
  fill_pads(padded, g.pad_w, cols, l.padded_len, kNegInf<T>);
  for (int64_t ow = 0; ow < g.out_w; ++ow) {
    const int64_t start = ow * g.stride_w - g.pad_w;
    first_kw[ow] = T(start < 0 ? (-start + g.dilation_w - 1) / g.dilation_w : 0);
  }
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const int64_t start = oh * g.stride_h - g.pad_h;
    const RowSpan rows = valid_rows(start, g.kernel_h, g.dilation_h, g.in_h);
    T* best = out + oh * g.out_w;
    std::fill(best, best + g.out_w, kNegInf<T>);
    std::fill(best_kh, best_kh + g.out_w, T(rows.first));
    std::copy(first_kw, first_kw + g.out_w, best_kw);
    for (int64_t kh = rows.first; kh < rows.last; ++kh) {
      std::copy(plane + (start + kh * g.dilation_h) * row_stride,
                plane + (start + kh * g.dilation_h) * row_stride + cols, padded + g.pad_w);
      if (g.stride_w != 1) split_phases(padded, l, g.stride_w, phases);
      const V kh_lane(static_cast<T>(kh));
      for (int64_t ow = 0; ow < g.out_w; ow += V::width) {
        const int64_t m = std::min(V::width, g.out_w - ow);
        V value = V::load_partial(best + ow, m), vkh = V::load_partial(best_kh + ow, m),
          vkw = V::load_partial(best_kw + ow, m);
        TapWalk tap(g.dilation_w, g.stride_w);
        for (int64_t kw = 0; kw < g.kernel_w; ++kw, tap.next()) {
          const V x = V::load_partial(phases + tap.phase * l.phase_len + tap.offset + ow, m);
          const auto take = gt(x, value) | is_nan(x);
          value = select(take, x, value);
          vkh = select(take, kh_lane, vkh);
          vkw = select(take, V(static_cast<T>(kw)), vkw);
        }
        value.store_partial(best + ow, m);
        vkh.store_partial(best_kh + ow, m);
        vkw.store_partial(best_kw + ow, m);
      }
    }
    int64_t* idx = indices + oh * g.out_w;
    for (int64_t ow = 0; ow < g.out_w; ++ow)
      idx[ow] = (start + static_cast<int64_t>(best_kh[ow]) * g.dilation_h) * g.in_w + ow * g.stride_w - g.pad_w +
                static_cast<int64_t>(best_kw[ow]) * g.dilation_w;
  }
}

// Adaptive windows: [floor(i * in / out), ceil((i + 1) * in / out)).
inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

template <class T>
void adaptive_max(const T* plane, int64_t row_stride, T* out, int64_t* indices, const Window2d& g, int64_t oh_begin,
                  int64_t oh_end) {
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const int64_t h0 = adaptive_start(oh, g.in_h, g.out_h), h1 = adaptive_end(oh, g.in_h, g.out_h);
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const int64_t w0 = adaptive_start(ow, g.in_w, g.out_w), w1 = adaptive_end(ow, g.in_w, g.out_w);
      T best = kNegInf<T>;
      int64_t where = h0 * g.in_w + w0;
      for (int64_t h = h0; h < h1; ++h) {
        const T* row = plane + h * row_stride;
        for (int64_t w = w0; w < w1; ++w) {
          const T x = row[w];
          if (x > best || std::isnan(x)) {
            best = x;
            where = h * g.in_w + w;
          }
        }
      }
      out[oh * g.out_w + ow] = best;
      if (indices) indices[oh * g.out_w + ow] = where;
    }
  }
}

template <class T>
void adaptive_avg(const T* plane, int64_t row_stride, T* out, const Window2d& g, int64_t oh_begin, int64_t oh_end,
                  T* scratch) {
  T* column_sums = scratch;
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const int64_t h0 = adaptive_start(oh, g.in_h, g.out_h), h1 = adaptive_end(oh, g.in_h, g.out_h);
    reduce_rows<SumOp>(plane + h0 * row_stride, row_stride, h1 - h0, g.in_w, column_sums);
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const int64_t w0 = adaptive_start(ow, g.in_w, g.out_w), w1 = adaptive_end(ow, g.in_w, g.out_w);
      T sum = 0;
      for (int64_t w = w0; w < w1; ++w) sum += column_sums[w];
      out[oh * g.out_w + ow] = sum / T((h1 - h0) * (w1 - w0));
    }
  }
}

// Adds n contiguous elements into acc (four accumulators in flight on long runs).
template <class T>
Vec<T> accumulate_run(const T* p, int64_t n, Vec<T> acc) {
  using V = Vec<T>;
  int64_t i = 0;
  if (n >= 4 * V::width) {
    V a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
    for (; i + 4 * V::width <= n; i += 4 * V::width) {
      acc = acc + V::load(p + i);
      a1 = a1 + V::load(p + i + V::width);
      a2 = a2 + V::load(p + i + 2 * V::width);
      a3 = a3 + V::load(p + i + 3 * V::width);
    }
    acc = (acc + a1) + (a2 + a3);
  }
  for (; i + V::width <= n; i += V::width) acc = acc + V::load(p + i);
  if (i < n) acc = acc + V::load_partial(p + i, n - i);
  return acc;
}

template <class T>
void global_avg(const T* first_plane, int64_t plane_stride, int64_t row_stride, int64_t h, int64_t w, int64_t count,
                T* out) {
  using V = Vec<T>;
  const T size = T(h * w);
  for (int64_t p = 0; p < count; ++p) {
    const T* plane = first_plane + p * plane_stride;
    V acc = V::zero();
    if (row_stride == w) {
      acc = accumulate_run(plane, h * w, acc);
    } else {
      for (int64_t r = 0; r < h; ++r) acc = accumulate_run(plane + r * row_stride, w, acc);
    }
    out[p] = reduce_add(acc) / size;  // an empty plane gives 0/0 = NaN, as torch's mean
  }
}

template <class T>
constexpr PoolKernelsFor<T> kernels_for() {
  return {max_values<T>, max_indices<T>, avg<T>, adaptive_max<T>, adaptive_avg<T>, global_avg<T>};
}

}  // namespace

const PoolKernels* kernel_table() {
  static const PoolKernels table{kernels_for<float>(), kernels_for<double>()};
  return &table;
}

}  // namespace tensorops::pool::TENSOROPS_ISA_NS
