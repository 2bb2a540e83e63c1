// Reduce: sums, products, extrema (with or without their index), mean, variance and
// log-sum-exp over any set of dims, plus softmax / log_softmax along one dim.
//
// Every reduction is first turned into one of two shapes. The driver drops size-1 dims,
// flips kept dims with negative strides, orders the dims by stride and merges neighbours
// that are contiguous with each other. What is left is either
//   row:    [kept..., rows R (any stride), row L (stride 1)]  - the reduced data of one
//           output is R contiguous runs; kernels vectorise along the run with several
//           independent accumulators; or
//   column: [kept..., reduced R (any stride), inner I (stride 1)] - the innermost kept
//           axis is contiguous; kernels vectorise across it and stream whole rows of a
//           tile, so memory is read front to back and the accumulators stay in L1.
// Anything else (no unit stride at all, or reduced dims that cannot be merged) is copied
// once into a contiguous scratch with the reduced dims last: the row shape.
//
// Determinism and accuracy come from fixed blocking. A row kernel reduces a span of at most
// kRowSpan elements, a column kernel a chunk of at most kColRows rows; span and chunk
// results ("states": a sum, Welford-style moments, a running max with its index, a
// log-sum-exp pair) are combined by a fixed pairwise tree. Spans depend only on the shape,
// never on the thread count, so 1 and N threads give identical bits, and long sums carry
// O(log n) rounding error instead of O(n).
//
// Two sum paths serve shapes that would otherwise pay a call or a masked store per tiny
// run: many row runs shorter than a sum's main loop are summed a vector's width at a time
// (sum_short_rows, one lane tree for all of them; products and extrema of runs under a
// vector go many a call too), and column sums of packed rows narrower
// than a vector run along the flat data, whose columns repeat every lcm(n, W) elements
// (sum_packed_cols). Plain sums read with 256-bit loads on AVX-512 (simd::Half).
//
// Variance is single pass: inside a span, sums of (x - K) and (x - K)^2 with K the span's
// first element (exact differences when the data sit far from zero, e.g. 1e4 + noise in
// float32); spans are merged with Chan's pairwise update. Indices of extrema are carried in
// vector lanes as floating-point numbers, exact because a span is far below 2^24 elements.
//
// Kernels take pointers, lengths and strides, run on one thread, never allocate and never
// throw. Outputs are allocated by Python; the driver writes them through their strides.
#pragma once

#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace tensorops::reduce {

// Elements a row kernel reduces in one call, and rows a column kernel reduces in one call.
constexpr int64_t kRowSpan = 8192;
constexpr int64_t kColRows = 256;
// Bytes of one column tile's row: its accumulators stay in L1 while rows stream past.
constexpr int64_t kColTileBytes = 16384;

// Mean and sum of squared deviations of `count` elements. Kept in double for either input
// type, as torch accumulates float variance in double: spans are merged, divided and
// square-rooted without overflowing where float squares would.
struct Moments {
  double mean;
  double m2;
  int64_t count;
};

// log(sum(exp(x))) = max + log(sum): sum is of exp(x - max).
template <class T>
struct LogSumExp {
  T max;
  T sum;
};

// The winning value and its (first) index; a NaN wins over every number.
template <class T>
struct Extremum {
  T value;
  int64_t index;
};

template <class T>
struct TypedKernels {
  // One contiguous run of n elements (1 <= n <= kRowSpan).
  T (*sum_row)(const T* x, int64_t n);
  // out[r] = the sum of the run of n <= sum_short_row_max elements at x + r * row_stride,
  // for r < rows: many short runs a call, each with the bits of the row kernel's result. The
  // product, max and min the same for runs of n <= fold_short_row_max.
  int64_t sum_short_row_max;
  void (*sum_short_rows)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out);
  int64_t fold_short_row_max;
  void (*prod_short_rows)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out);
  void (*max_short_rows)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out);
  void (*min_short_rows)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out);
  T (*prod_row)(const T* x, int64_t n);
  T (*max_row)(const T* x, int64_t n);  // NaN-propagating
  T (*min_row)(const T* x, int64_t n);
  Moments (*moments_row)(const T* x, int64_t n);
  LogSumExp<T> (*logsumexp_row)(const T* x, int64_t n);
  Extremum<T> (*argmax_row)(const T* x, int64_t n);  // index within the run
  Extremum<T> (*argmin_row)(const T* x, int64_t n);

  // Columns: rows (1 <= rows <= kColRows) of n contiguous elements, row r at x + r*row_stride;
  // result j reduces x[r*row_stride + j] over r into the caller's arrays (scratch: 2n).
  void (*sum_cols)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out);
  void (*prod_cols)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out);
  void (*max_cols)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out);
  void (*min_cols)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out);
  void (*moments_cols)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* scratch, Moments* out);
  void (*logsumexp_cols)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* max, T* sum);
  // index holds the row number (exact in T since rows <= kColRows).
  void (*argmax_cols)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* value, T* index);
  void (*argmin_cols)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* value, T* index);

  // Softmax over `count` contiguous runs of n elements, run i at x + offsets[i] (into out +
  // offsets[i]), or down columns as above (scratch holds 3n).
  void (*softmax_rows)(const T* x, T* out, const int64_t* offsets, int64_t count, int64_t n);
  void (*log_softmax_rows)(const T* x, T* out, const int64_t* offsets, int64_t count, int64_t n);
  void (*softmax_cols)(const T* x, T* out, int64_t rows, int64_t row_stride, int64_t n, T* scratch);
  void (*log_softmax_cols)(const T* x, T* out, int64_t rows, int64_t row_stride, int64_t n, T* scratch);
};

struct ReduceKernels {
  TypedKernels<float> f32;
  TypedKernels<double> f64;
};

TENSOROPS_KERNEL_TABLES(ReduceKernels)

enum class Op { sum, mean, prod, amax, amin, logsumexp, var, std };
enum class ArgOp { max, min };

// out (the kept dims of in, in order) = op over the dims whose bit is set in reduced_mask.
// correction is used by var and std only.
void reduce(Op op, const TensorView& in, const TensorView& out, uint64_t reduced_mask, double correction);

// values / indices (int64) over one dim: max/min with their first index (a NaN wins).
// values may be null (argmax / argmin).
void reduce_arg(ArgOp op, const TensorView& in, const TensorView* values, const TensorView& indices, int dim);

// out = softmax or log_softmax of in along dim; in and out share shape and strides, and
// are dense (C or Fortran order, any permutation of a contiguous block).
void softmax(const TensorView& in, const TensorView& out, int dim, bool log);

}  // namespace tensorops::reduce
