// Pooling kernel bodies, written once against Vec<T> and compiled per ISA by the tiny
// generic.cc / x86_avx2.cc / x86_avx512.cc files beside this one. pool.h explains the
// two-pass (vertical, then phase-split horizontal) shape of the value kernels.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/simd/vec.h"
#include "pool/pool.h"

namespace tensorops::pool::TENSOROPS_ISA_NS {
namespace {

using simd::Vec;

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// A max reduction keeps the plain (fast) x86 max on its dependency chain and ORs NaN
// masks beside it; finalize() turns lanes that met a NaN into NaN, as torch propagates it.
template <class T>
struct MaxOp {
  using V = Vec<T>;
  struct State {
    V value;
    typename V::Mask nan;
  };
  static State start(V x) { return {x, is_nan(x)}; }
  static void add(State& s, V x) {
    s.value = max(x, s.value);
    s.nan = s.nan | is_nan(x);
  }
  static V finalize(const State& s) { return select(s.nan, V(std::numeric_limits<T>::quiet_NaN()), s.value); }
};
template <class T>
struct SumOp {
  using V = Vec<T>;
  using State = V;
  static State start(V x) { return x; }
  static void add(State& s, V x) { s = s + x; }
  static V finalize(const State& s) { return s; }
};

// op over `count` rows (first, first + step, ...) of the n elements at column j. Counts
// of 2 and 3 (the usual kernels) get unrolled bodies.
template <template <class> class Op, class T, int kCount>
inline Vec<T> reduce_column_block_fixed(const T* first, int64_t step, int64_t count, int64_t j, int64_t n) {
  using V = Vec<T>;
  const T* p = first + j;
  const int64_t rows = kCount > 0 ? kCount : count;
  if (n >= V::width) {
    auto acc = Op<T>::start(V::load(p));
    for (int64_t k = 1; k < rows; ++k) Op<T>::add(acc, V::load(p + k * step));
    return Op<T>::finalize(acc);
  }
  auto acc = Op<T>::start(V::load_partial(p, n));
  for (int64_t k = 1; k < rows; ++k) Op<T>::add(acc, V::load_partial(p + k * step, n));
  return Op<T>::finalize(acc);
}

template <template <class> class Op, class T>
inline Vec<T> reduce_column_block(const T* first, int64_t step, int64_t count, int64_t j, int64_t n) {
  switch (count) {
    case 2: return reduce_column_block_fixed<Op, T, 2>(first, step, count, j, n);
    case 3: return reduce_column_block_fixed<Op, T, 3>(first, step, count, j, n);
    default: return reduce_column_block_fixed<Op, T, 0>(first, step, count, j, n);
  }
}

// Cells of a window row's padded coordinates that some output reads, and the input
// columns among them.
inline int64_t padded_row_cells(const Window2d& g) {
  return (g.out_w - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1;
}
inline int64_t reached_columns(const Window2d& g, int64_t padded_len) {
  return std::max<int64_t>(0, std::min(g.in_w, padded_len - g.pad_w));
}

// The padded row of a window (see pool.h), as the horizontal pass reads it: split by the
// stride s into phases, phase r holding padded cells r, r + s, ... at taps() + r * phase_stride.
// Stride 1 has one phase, the padded row itself; stride 2 writes its two phases straight
// from the vertical reduction; other strides reduce into the padded row and then split.
// Every row and phase is followed by kScratchSlack free cells, so the vertical pass stores
// whole vectors wherever the input row holds them: cells past a row's end land in slack.
template <class T>
struct PaddedRow {
  int64_t stride, pad, cols;  // cols: input columns any window reaches
  int64_t readable;           // columns of an input row in memory (>= cols)
  int64_t padded_len, phase_len, phases;
  int64_t phase_stride;  // cells from one phase to the next: phase_len and the slack
  T* padded;       // stride != 2: the padded row
  T* phase_cells;  // stride 1: == padded
  T* even_cells;   // stride 2: where input columns 0, 2, 4, ... go
  T* odd_cells;    // stride 2: where input columns 1, 3, 5, ... go

  PaddedRow(const Window2d& g, T* scratch) : stride(g.stride_w), pad(g.pad_w), readable(g.in_w) {
    padded_len = padded_row_cells(g);
    phase_len = (padded_len + stride - 1) / stride;
    phases = std::min(stride, padded_len);
    cols = reached_columns(g, padded_len);
    phase_stride = phase_len + kScratchSlack;
    padded = scratch;
    phase_cells = stride <= 2 ? scratch : scratch + padded_len + kScratchSlack;
    // Column j is padded cell pad + j: even j go to phase (pad & 1), odd j to the other.
    even_cells = phase_cells + (pad & 1) * phase_stride + pad / 2;
    odd_cells = phase_cells + (1 - (pad & 1)) * phase_stride + (pad + 1) / 2;
  }
  // Scratch elements used, slack included; what follows is free for the kernel.
  int64_t footprint() const {
    if (stride == 1) return padded_len + kScratchSlack;
    if (stride == 2) return 2 * phase_stride;
    return padded_len + kScratchSlack + phases * phase_stride;
  }
  const T* taps() const { return phase_cells; }

  T& cell(int64_t i) { return stride == 2 ? phase_cells[(i & 1) * phase_stride + (i >> 1)] : padded[i]; }

  // Pad cells never change from row to row: fill them once.
  void fill_pads(T value) {
    for (int64_t i = 0; i < std::min(pad, padded_len); ++i) cell(i) = value;
    for (int64_t i = pad + cols; i < padded_len; ++i) cell(i) = value;
  }
  void fill_center(T value) {
    for (int64_t j = 0; j < cols; ++j) cell(pad + j) = value;
    if (stride > 2) split();
  }

  // Center cells = op over `count` input rows starting at `first`, `step` apart.
  template <template <class> class Op>
  void load(const T* first, int64_t step, int64_t count) {
    switch (count) {
      case 2: return load_rows<Op, 2>(first, step, count);
      case 3: return load_rows<Op, 3>(first, step, count);
      default: return load_rows<Op, 0>(first, step, count);
    }
  }

 private:
  // Whole vectors wherever the input row holds them, even past cols (a window rarely
  // reaches an odd row's last column, so the row usually has one more): masked loads and
  // stores cost several instructions each on AVX2, and this pass runs once per output row.
  // The cells stored past cols are slack (right pad cells exist only when cols reaches
  // the row's end, where no whole vector fits). Then at most one clipped tail block.
  //
  // The members the loops use are read into locals first: read through `this`, they were
  // reloaded after every store (a vector store may alias anything).
  template <template <class> class Op, int kCount>
  void load_rows(const T* first, int64_t step, int64_t count) {
    using V = Vec<T>;
    constexpr int64_t W = V::width;
    const int64_t n = cols, readable_end = readable;
    const auto column = [=](int64_t j) {
      return reduce_column_block_fixed<Op, T, kCount>(first, step, count, j, std::min(W, readable_end - j));
    };
    // Blocks inside cols need no clipping: a constant width folds the load-size branch away.
    const auto whole_column = [=](int64_t j) { return reduce_column_block_fixed<Op, T, kCount>(first, step, count, j, W); };
    int64_t j = 0;
    if (stride != 2) {
      T* const center = padded + pad;
      for (; j < n && j + W <= readable_end; j += W) whole_column(j).store(center + j);
      if (j < n) column(j).store_partial(center + j, n - j);
      if (stride > 2) split();
      return;
    }
    T* const even_out = even_cells;
    T* const odd_out = odd_cells;
    for (; j < n && j + 2 * W <= readable_end; j += 2 * W) {
      const V a = whole_column(j), b = whole_column(j + W);
      even_lanes(a, b).store(even_out + j / 2);
      odd_lanes(a, b).store(odd_out + j / 2);
    }
    if (j < n) {
      const int64_t m = n - j;
      const V a = column(j), b = m > W ? column(j + W) : a;
      const V even = even_lanes(a, b), odd = odd_lanes(a, b);
      even.store_partial(even_out + j / 2, (m + 1) / 2);
      odd.store_partial(odd_out + j / 2, m / 2);
    }
  }

  void split() {
    for (int64_t r = 0; r < phases; ++r) {
      T* dst = phase_cells + r * phase_stride;
      for (int64_t i = 0, c = r; c < padded_len; ++i, c += stride) dst[i] = padded[c];
    }
  }
};

// Where tap kw of output 0 sits: phase (kw*d) % s at offset (kw*d) / s, i.e. at cell
// phase * phase_stride + offset of the phases, walked with additions only.
struct TapWalk {
  int64_t phase = 0, cell = 0;
  int64_t step_phase, step_cell, stride, wrap;
  TapWalk(int64_t dilation, int64_t stride, int64_t phase_stride)
      : step_phase(dilation % stride),
        step_cell((dilation % stride) * phase_stride + dilation / stride),
        stride(stride),
        wrap(1 - stride * phase_stride) {}
  void next() {
    phase += step_phase;
    cell += step_cell;
    if (phase >= stride) {
      phase -= stride;
      cell += wrap;
    }
  }
};

// Valid kernel rows of a window starting at row `start`: kh in [first, last) land inside
// [0, in_h). `first` is not clamped to the kernel: torch reports that row for a window
// with no valid cell.
struct RowSpan {
  int64_t first, last;
};
inline RowSpan valid_rows(int64_t start, int64_t kernel, int64_t dilation, int64_t in_h) {
  if (dilation == 1) {  // the common case, without the divisions below
    const int64_t first = std::max<int64_t>(0, -start);
    return {first, std::max(first, std::min(kernel, in_h - start))};
  }
  const int64_t first = start < 0 ? (-start + dilation - 1) / dilation : 0;
  const int64_t end_exclusive = in_h - start;  // kh * dilation < in_h - start
  const int64_t last = end_exclusive <= 0 ? 0 : std::min(kernel, (end_exclusive + dilation - 1) / dilation);
  return {first, std::max(first, last)};
}

// out[ow] = finish(op over kw of tap(kw, ow)), for ow < out_w. finish(acc, ow, lanes)
// maps a vector of results before it is stored (the division of the average). The last,
// partial vector loads whole vectors too: the phases are followed by kScratchSlack cells of
// scratch (pool.h), and lanes past out_w are never stored. A fixed tap count (kTaps > 0)
// reads its taps' cells from tap_cells, computed once per call; otherwise the walk runs.
template <template <class> class Op, int kTaps, class T, class Finish>
void horizontal_fixed(const T* phases, const TapWalk& first_tap, const int64_t* tap_cells, const Window2d& g, T* out,
                      const Finish& finish) {
  using V = Vec<T>;
  const auto window = [&](int64_t ow) {
    const T* base = phases + ow;
    auto acc = Op<T>::start(V::load(base));  // tap 0 is cell 0 of phase 0
    if constexpr (kTaps > 0) {
      for (int kw = 1; kw < kTaps; ++kw) Op<T>::add(acc, V::load(base + tap_cells[kw]));
    } else {
      TapWalk tap = first_tap;
      for (int64_t kw = 1; kw < g.kernel_w; ++kw) {
        tap.next();
        Op<T>::add(acc, V::load(base + tap.cell));
      }
    }
    return Op<T>::finalize(acc);
  };
  // out_w as a local: read through g, it was reloaded after every store.
  const int64_t out_w = g.out_w;
  int64_t ow = 0;
  for (; ow + V::width <= out_w; ow += V::width) finish(window(ow), ow, V::width).store(out + ow);
  if (ow < out_w) finish(window(ow), ow, out_w - ow).store_partial(out + ow, out_w - ow);
}

// Shared by max (pad -inf) and sum (pad 0): per output row, the vertical reduction into
// a padded row, then the horizontal reduction into the output row. Two padded rows
// alternate, and the vertical pass of row oh + 1 runs before the horizontal pass of row
// oh: the horizontal loads then find the phase cells in cache rather than waiting on the
// store buffer (partial and shifted loads cannot be forwarded from recent stores).
// finish_for(oh) gives the horizontal pass its finish functor. Kernel widths of 2 and 3
// (the usual ones) get their own copy of the row loop, with the tap cells in registers.
template <template <class> class Op, int kTaps, class T, class FinishFor>
void separable_rows_fixed(const T* plane, int64_t row_stride, const Window2d& g, int64_t oh_begin, int64_t oh_end,
                          T* scratch, T pad_value, T* out, const FinishFor& finish_for) {
  // kScratchSlack cells after each row take the whole-vector loads of the horizontal tail;
  // the gap also keeps those loads off the cells the other row's vertical pass just stored.
  PaddedRow<T> rows[2] = {PaddedRow<T>(g, scratch), PaddedRow<T>(g, scratch)};
  rows[1] = PaddedRow<T>(g, scratch + rows[0].footprint() + kScratchSlack);
  const TapWalk first_tap(g.dilation_w, g.stride_w, rows[0].phase_stride);
  int64_t tap_cells[kTaps > 0 ? kTaps : 1] = {};
  if constexpr (kTaps > 0) {
    TapWalk tap = first_tap;
    for (int kw = 1; kw < kTaps; ++kw) {
      tap.next();
      tap_cells[kw] = tap.cell;
    }
  }
  const auto fill = [&](PaddedRow<T>& row, int64_t oh) {
    const int64_t start = oh * g.stride_h - g.pad_h;
    const RowSpan span = valid_rows(start, g.kernel_h, g.dilation_h, g.in_h);
    if (span.last > span.first)
      row.template load<Op>(plane + (start + span.first * g.dilation_h) * row_stride, g.dilation_h * row_stride,
                            span.last - span.first);
    else
      row.fill_center(pad_value);
  };
  rows[0].fill_pads(pad_value);
  rows[1].fill_pads(pad_value);
  // Step oh fills row oh and reduces row oh - 1 (one call site each, so both inline).
  for (int64_t oh = oh_begin; oh <= oh_end; ++oh) {
    if (oh < oh_end) fill(rows[(oh - oh_begin) & 1], oh);
    if (oh > oh_begin)
      horizontal_fixed<Op, kTaps>(rows[(oh - 1 - oh_begin) & 1].taps(), first_tap, tap_cells, g,
                                  out + (oh - 1) * g.out_w, finish_for(oh - 1));
  }
}

#if TENSOROPS_ISA_ID == 2
// Narrow planes (AVX-512): with stride 2, kernel_w 2 or 3, no dilation, padding of at most
// one cell and a padded row of at most two vectors (planes up to ~31 floats wide), a whole
// row fits in two registers. The vertical pass reduces straight into them, shuffles take
// the even and odd cells and a one-lane shift the third tap, and nothing goes through
// scratch. The scratch path's horizontal loads, a few instructions after the vertical
// stores of so short a row, waited on those stores.
template <class T>
bool register_rows_fit(const Window2d& g) {
  return g.stride_w == 2 && g.dilation_w == 1 && (g.kernel_w == 2 || g.kernel_w == 3) && g.pad_w <= 1 &&
         padded_row_cells(g) <= 2 * Vec<T>::width;
}

template <template <class> class Op, int kTaps, class T, class FinishFor>
void register_rows(const T* plane, int64_t row_stride, const Window2d& g, int64_t oh_begin, int64_t oh_end,
                   T pad_value, T* out, const FinishFor& finish_for) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const int64_t out_w = g.out_w, pad = g.pad_w;
  const int64_t cols = reached_columns(g, padded_row_cells(g));
  const V pad_vec(pad_value);
  // Lanes past cols are right pad cells (or unused): load_partial left 0 there, the sum's pad.
  const auto low_valid = V::lanes_between(0, cols), high_valid = V::lanes_between(0, cols - W);
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const int64_t start = oh * g.stride_h - g.pad_h;
    const RowSpan span = valid_rows(start, g.kernel_h, g.dilation_h, g.in_h);
    V lo = pad_vec, hi = pad_vec;  // padded cells 0..W-1 and W..2W-1, before the left pad
    if (span.last > span.first) {
      const T* first = plane + (start + span.first * g.dilation_h) * row_stride;
      const int64_t step = g.dilation_h * row_stride, count = span.last - span.first;
      lo = select(low_valid, reduce_column_block<Op, T>(first, step, count, 0, std::min(W, cols)), pad_vec);
      if (cols > W) hi = select(high_valid, reduce_column_block<Op, T>(first, step, count, W, cols - W), pad_vec);
    }
    if (pad == 1) {
      hi = V::template window<W - 1>(lo, hi);
      lo = V::template window<W - 1>(pad_vec, lo);
    }
    const V even = even_lanes(lo, hi);
    auto acc = Op<T>::start(even);
    Op<T>::add(acc, odd_lanes(lo, hi));
    if constexpr (kTaps == 3) Op<T>::add(acc, V::template window<1>(even, even));
    finish_for(oh)(Op<T>::finalize(acc), 0, out_w).store_partial(out + oh * out_w, out_w);
  }
}
#endif

template <template <class> class Op, class T, class FinishFor>
void separable_rows(const T* plane, int64_t row_stride, const Window2d& g, int64_t oh_begin, int64_t oh_end,
                    T* scratch, T pad_value, T* out, const FinishFor& finish_for) {
#if TENSOROPS_ISA_ID == 2
  if (register_rows_fit<T>(g)) {
    if (g.kernel_w == 2) return register_rows<Op, 2>(plane, row_stride, g, oh_begin, oh_end, pad_value, out, finish_for);
    return register_rows<Op, 3>(plane, row_stride, g, oh_begin, oh_end, pad_value, out, finish_for);
  }
#endif
  switch (g.kernel_w) {
    case 2: return separable_rows_fixed<Op, 2>(plane, row_stride, g, oh_begin, oh_end, scratch, pad_value, out, finish_for);
    case 3: return separable_rows_fixed<Op, 3>(plane, row_stride, g, oh_begin, oh_end, scratch, pad_value, out, finish_for);
    default: return separable_rows_fixed<Op, 0>(plane, row_stride, g, oh_begin, oh_end, scratch, pad_value, out, finish_for);
  }
}

template <class T>
void max_values(const T* plane, int64_t row_stride, T* out, const Window2d& g, int64_t oh_begin, int64_t oh_end,
                T* scratch) {
  const auto identity = [](Vec<T> acc, int64_t, int64_t) { return acc; };
  separable_rows<MaxOp>(plane, row_stride, g, oh_begin, oh_end, scratch, kNegInf<T>, out,
                        [&](int64_t) { return identity; });
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
  T* column_factor = scratch + 2 * (PaddedRow<T>(g, scratch).footprint() + kScratchSlack);
  const bool fixed = divisor.divisor_override != 0;
  for (int64_t ow = 0; ow < g.out_w; ++ow)
    column_factor[ow] = fixed ? T(1)
                              : T(divisor_factor(ow * g.stride_w - g.pad_w, g.kernel_w, g.pad_w, g.in_w,
                                                 divisor.count_include_pad));
  separable_rows<SumOp>(plane, row_stride, g, oh_begin, oh_end, scratch, T(0), out, [&](int64_t oh) {
    const V row_factor(fixed ? T(divisor.divisor_override)
                             : T(divisor_factor(oh * g.stride_h - g.pad_h, g.kernel_h, g.pad_h, g.in_h,
                                                divisor.count_include_pad)));
    // Lanes past `lanes` divide 0 by 0; they are never stored.
    return [row_factor, column_factor](V sum, int64_t ow, int64_t lanes) {
      const V column = lanes == V::width ? V::load(column_factor + ow) : V::load_partial(column_factor + ow, lanes);
      return sum / (column * row_factor);
    };
  });
}

// Max with indices, scanning each window in torch's row-major order (see pool.h). Per
// output row, the running state (value, winning kh, winning kw) of every output column
// lives in scratch while the valid kernel rows stream through.
template <class T>
void max_indices(const T* plane, int64_t row_stride, T* out, int64_t* indices, const Window2d& g, int64_t oh_begin,
                 int64_t oh_end, T* scratch) {
  using V = Vec<T>;
  // g's fields as locals: stores (vector ones, and the index stores) may alias them, and the
  // loops reloaded them after every store, six a element in the index loop.
  const int64_t out_w = g.out_w, kernel_w = g.kernel_w, in_w = g.in_w, stride_w = g.stride_w,
                dilation_h = g.dilation_h, dilation_w = g.dilation_w;
  PaddedRow<T> row(g, scratch);
  T* best_kh = scratch + row.footprint();  // past the slack, which the vertical pass may write
  T* best_kw = best_kh + out_w;
  T* first_kw = best_kw + out_w;
  row.fill_pads(kNegInf<T>);
  for (int64_t ow = 0; ow < out_w; ++ow) {
    const int64_t start = ow * stride_w - g.pad_w;
    first_kw[ow] = T(start < 0 ? (-start + dilation_w - 1) / dilation_w : 0);
  }
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const int64_t start = oh * g.stride_h - g.pad_h;
    const RowSpan rows = valid_rows(start, g.kernel_h, dilation_h, g.in_h);
    T* best = out + oh * out_w;
    std::fill(best, best + out_w, kNegInf<T>);
    std::fill(best_kh, best_kh + out_w, T(rows.first));
    std::copy(first_kw, first_kw + out_w, best_kw);
    const TapWalk first_tap(dilation_w, stride_w, row.phase_stride);
    for (int64_t kh = rows.first; kh < rows.last; ++kh) {
      row.template load<MaxOp>(plane + (start + kh * dilation_h) * row_stride, 0, 1);
      const T* phases = row.taps();
      const V kh_lane(static_cast<T>(kh));
      for (int64_t ow = 0; ow < out_w; ow += V::width) {
        const int64_t m = std::min(V::width, out_w - ow);
        V value = V::load_partial(best + ow, m), vkh = V::load_partial(best_kh + ow, m),
          vkw = V::load_partial(best_kw + ow, m);
        TapWalk tap = first_tap;
        for (int64_t kw = 0; kw < kernel_w; ++kw, tap.next()) {
          const V x = V::load_partial(phases + tap.cell + ow, m);
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
    const int64_t row_start = start * in_w - g.pad_w;
    int64_t* idx = indices + oh * out_w;
    for (int64_t ow = 0; ow < out_w; ++ow)
      idx[ow] = row_start + static_cast<int64_t>(best_kh[ow]) * dilation_h * in_w + ow * stride_w +
                static_cast<int64_t>(best_kw[ow]) * dilation_w;
  }
}

// Windows that reach far past a small plane (torch allows padding up to half the kernel, so
// a kernel of 2^26 cells on a 9-cell row): each output visits its window's in-bounds cells
// one by one. No padded row is laid out (its length would grow with the padding) and
// positions are counted in int64 (float32 lanes hold them exactly only below 2^24). The
// scan order, the first in-bounds cell as the index of a window of -inf and a later NaN
// replacing the maximum are torch's, as in max_indices. `indices` may be null.
template <class T>
void max_far_windows(const T* plane, int64_t row_stride, T* out, int64_t* indices, const Window2d& g,
                     int64_t oh_begin, int64_t oh_end) {
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const int64_t top = oh * g.stride_h - g.pad_h;
    const RowSpan rows = valid_rows(top, g.kernel_h, g.dilation_h, g.in_h);
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const int64_t left = ow * g.stride_w - g.pad_w;
      const RowSpan cols = valid_rows(left, g.kernel_w, g.dilation_w, g.in_w);
      T best = kNegInf<T>;
      int64_t where = (top + rows.first * g.dilation_h) * g.in_w + left + cols.first * g.dilation_w;
      for (int64_t kh = rows.first; kh < rows.last; ++kh) {
        const int64_t ih = top + kh * g.dilation_h;
        const T* row = plane + ih * row_stride;
        for (int64_t kw = cols.first; kw < cols.last; ++kw) {
          const int64_t iw = left + kw * g.dilation_w;
          const T x = row[iw];
          if (x > best || x != x) best = x, where = ih * g.in_w + iw;
        }
      }
      out[oh * g.out_w + ow] = best;
      if (indices) indices[oh * g.out_w + ow] = where;
    }
  }
}

// Average pooling's far windows (see max_far_windows): the in-bounds cells' sum over the
// divisor avg() uses; a window without an in-bounds cell gives 0, as torch.
template <class T>
void avg_far_windows(const T* plane, int64_t row_stride, T* out, const Window2d& g, const AvgDivisor& divisor,
                     int64_t oh_begin, int64_t oh_end) {
  const bool fixed = divisor.divisor_override != 0;
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const int64_t top = oh * g.stride_h - g.pad_h;
    const RowSpan rows = valid_rows(top, g.kernel_h, 1, g.in_h);
    const int64_t row_factor = divisor_factor(top, g.kernel_h, g.pad_h, g.in_h, divisor.count_include_pad);
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const int64_t left = ow * g.stride_w - g.pad_w;
      const RowSpan cols = valid_rows(left, g.kernel_w, 1, g.in_w);
      T sum = 0;
      for (int64_t kh = rows.first; kh < rows.last; ++kh)
        for (int64_t kw = cols.first; kw < cols.last; ++kw) sum += plane[(top + kh) * row_stride + left + kw];
      const bool empty = rows.first == rows.last || cols.first == cols.last;
      const int64_t column_factor = divisor_factor(left, g.kernel_w, g.pad_w, g.in_w, divisor.count_include_pad);
      out[oh * g.out_w + ow] =
          empty ? T(0) : sum / (fixed ? T(divisor.divisor_override) : T(row_factor) * T(column_factor));
    }
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
          // Branch-free: on random data the running maximum changes unpredictably.
          const T x = row[w];
          const bool take = (x > best) | (x != x);
          best = take ? x : best;
          where = take ? h * g.in_w + w : where;
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
    for (int64_t j = 0; j < g.in_w; j += Vec<T>::width)
      reduce_column_block<SumOp>(plane + h0 * row_stride, row_stride, h1 - h0, j, g.in_w - j)
          .store_partial(column_sums + j, g.in_w - j);
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

// Elements per block of global_avg: each block is summed in vectors of T, and the blocks'
// sums are added in double, so a lane adds at most one value of T per row of a block
// however large the plane. One vector across a whole plane of 65536 rows of 17 (a broadcast
// input) had drifted by 4e-4 of the mean in float32.
constexpr int64_t kAvgBlockElements = 1024;

// Planes of one block that follow each other in memory (7x7, 14x14: the global pools of
// CNN heads), width of them at a time: each plane is summed in one vector, whose last load
// is whole with the lanes past the plane masked to zero (the next planes of the run hold
// that memory; only the run's last planes load masked, which costs more on AVX2), then one
// lane_sums turns the width accumulators into a vector of sums, divided and stored at once.
// A plane's sum does not depend on its slot, so thread splits never change a result.
template <class T>
void global_avg_of_packed_planes(const T* first_plane, int64_t n, int64_t count, T* out) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const int64_t whole = n / W * W, rest = n - whole;
  const auto tail = V::lanes_between(0, rest);
  // Planes before tail_safe_end have the W - rest cells their tail load overreads in the run.
  const int64_t overread = rest ? W - rest : 0;
  const int64_t tail_safe_end = count - (overread + n - 1) / n;
  const V divisor(static_cast<T>(n));
  V sums[W];
  for (int64_t p0 = 0; p0 < count; p0 += W) {
    const int64_t group = std::min(W, count - p0);
    for (int64_t k = 0; k < group; ++k) {
      const T* plane = first_plane + (p0 + k) * n;
      // Two chains: a plane of up to one block is short, so loop control is most of the cost.
      V even = V::zero(), odd = V::zero();
      int64_t i = 0;
      for (; i + 2 * W <= whole; i += 2 * W) {
        even = even + V::load(plane + i);
        odd = odd + V::load(plane + i + W);
      }
      if (i < whole) even = even + V::load(plane + i);
      if (rest)
        odd = odd + (p0 + k < tail_safe_end ? select(tail, V::load(plane + whole), V::zero())
                                            : V::load_masked(plane + whole, tail));
      sums[k] = even + odd;
    }
    for (int64_t k = group; k < W; ++k) sums[k] = V::zero();
    const V means = lane_sums(sums) / divisor;
    if (group == W) means.store(out + p0); else means.store_partial(out + p0, group);
  }
}

template <class T>
void global_avg(const T* first_plane, int64_t plane_stride, int64_t row_stride, int64_t h, int64_t w, int64_t count,
                T* out) {
  using V = Vec<T>;
  // A plane of one block (most: 7x7, 14x14) keeps its sum in T.
  const bool blocks = h * w > kAvgBlockElements;
  if (!blocks && h * w > 0 && row_stride == w && plane_stride == h * w)
    return global_avg_of_packed_planes(first_plane, h * w, count, out);
  for (int64_t p = 0; p < count; ++p) {
    const T* plane = first_plane + p * plane_stride;
    double total = 0;
    V block = V::zero();
    int64_t in_block = 0;
    const auto add_run = [&](const T* run, int64_t n) {
      block = accumulate_run(run, n, block);
      if (blocks && (in_block += n) >= kAvgBlockElements)
        total += double(reduce_add(block)), block = V::zero(), in_block = 0;
    };
    if (row_stride == w) {
      for (int64_t i = 0; i < h * w; i += kAvgBlockElements) add_run(plane + i, std::min(kAvgBlockElements, h * w - i));
    } else {
      for (int64_t r = 0; r < h; ++r) add_run(plane + r * row_stride, w);
    }
    // An empty plane gives 0/0 = NaN, as torch's mean.
    out[p] = blocks ? T((total + double(reduce_add(block))) / double(h * w)) : reduce_add(block) / T(h * w);
  }
}

template <class T>
constexpr PoolKernelsFor<T> kernels_for() {
  return {max_values<T>,      max_indices<T>,  avg<T>,       max_far_windows<T>,
          avg_far_windows<T>, adaptive_max<T>, adaptive_avg<T>, global_avg<T>};
}

}  // namespace

const PoolKernels* kernel_table() {
  static const PoolKernels table{kernels_for<float>(), kernels_for<double>()};
  return &table;
}

}  // namespace tensorops::pool::TENSOROPS_ISA_NS
