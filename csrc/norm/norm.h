// Normalisation: batch, instance, group and layer norm.
//
// All four compute y = (x - mean) / sqrt(var + eps) * weight + bias (optionally followed by
// relu or silu, a tensorops extension) and differ only in which elements share a mean and
// variance. With the input seen as C-contiguous (N, C, S), S the product of the spatial dims:
//   batch_norm     one set of statistics per channel c, over the N planes x[:, c, :];
//   instance_norm  one per (n, c) plane, a contiguous run of S elements;
//   group_norm     one per (n, group), a contiguous run of (C / groups) * S elements;
//   layer_norm     one per row of the trailing normalized_shape, a contiguous run.
// So every statistic is gathered from contiguous runs, and every output element is one
// subtract and multiply-add with per-plane (for layer_norm, per-element) coefficients.
//
// Statistics: runs are cut into chunks of a fixed number of elements that fit in L1. Each
// chunk is read from memory once; while it sits in L1 the kernel sums it, then sums the
// deviations d from that chunk mean and d^2 (the corrected two-pass algorithm: mean + sum(d)/n
// and sum(d^2) - sum(d)^2/n). This stays exact when the mean is large against the spread
// (1000 + noise in float32), where E[x^2] - E[x]^2 collapses, and, unlike a sum shifted by
// one sample, it cannot be spoilt by an outlier. Chunk results (count, mean, M2) are merged in
// double with Chan's formula in a fixed order (n, then chunk), never in an order that depends
// on the thread count, so results are bit-identical for any thread count.
//
// Normalisation: the driver folds rstd and weight into one scale, and the kernel streams
// y = act((x - mean) * scale + bias). Subtracting the mean first (not x * scale + shift with
// the mean folded into shift) keeps a constant run exactly at bias and x - mean exact near a
// large mean; the extra subtraction is free in a memory-bound loop.
//
// Memory traffic: work is split into units (a batch_norm channel, an instance plane, a group,
// a layer_norm row), one thread per unit. A unit's normalising pass rereads it from L1/L2 and
// runs in the same loop as the first statistics sweep of a later unit's matching piece (the
// next channel's for batch_norm, two units on for the others: pipeline() in norm.cc, the
// *_with_moments kernels), so the data crosses the memory bus once
// for reading and once for writing, with both streams busy at once: alternating a read-only
// statistics phase with a normalising phase left the train-mode norms 10-15% slower than a
// copy of the same bytes, the fused sweep leaves them 2-4% slower. (Where L2 is small, as on
// Zen 3, units of 4 KiB and more whose output is streamed go one at a time instead: their
// statistics, then their normalising with streaming stores; see pipeline(). Instance and
// group norm units, whole planes, are normalised there as runs across planes from the line
// a unit shares with the one before, so the stream leaves in whole lines; see
// normalize_plane_units.) When
// batch_norm has fewer channels than the threads can share evenly, chunk statistics are
// gathered in parallel instead and merged in the same order (identical bits), then a separate
// pass normalises. When S == 1 ((N, C) input) the channel axis is the contiguous one: the
// column kernels vectorise across channels, tile by tile of rows, and up to 256 channels the
// normalising runs across rows with the coefficients tiled through the channel period.
//
// Short units: layer norm rows, instance norm planes and group norm groups of up to
// kShortRowMax elements go through normalize_short_rows, a vector's lanes of rows at a time
// with their reductions shared, since a unit at a time through the pipeline costs more in
// calls and reductions than a short row holds in data; batch norm's short planes (and (N, C)
// data) normalise through coefficients tiled across the channel period.
//
// Stores: a normalising pass of its own (eval-mode batch norm, the few-channel path, each
// thread's last unit) writes outputs of kStreamMinBytes and more (kStreamMinBytesThreaded on
// more than one thread) with streaming stores, which skip the read-for-ownership of every
// output line: eval batch norm on 8x256x56x56 went from 27 to 33-35 GB/s on one thread, as
// fast as relu. The fused sweeps keep ordinary stores:
// there streaming measured 0-7% slower (its write-combining buffers compete with the new
// data's reads for the line fill buffers), and neither prefetching the next chunk nor moving
// part of the normalising into the statistics' second (L1) sweep changed their 23-26 GB/s.
//
// Kernel contract: pointers and lengths, one thread, no allocation, no throwing. Drivers
// own shapes, scratch and threads. Inputs and outputs are C-contiguous; running statistics
// may carry any stride (they are updated in place, as PyTorch does).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tensorops::norm {

enum class Activation : int { none = 0, relu = 1, silu = 2 };

// Statistics of a run: element count, mean and the sum of squared deviations M2.
struct Moments {
  double count = 0;
  double mean = 0;
  double m2 = 0;
};

// Elements per statistics chunk: 4 KiB, a multiple of every vector width, resident in L1 for
// the second sweep of a chunk whose one-sweep moments are measured again (16 KiB chunks
// measured 3-6% slower on the train-mode norms: a fused sweep pairs pieces of equal length,
// and small ones keep the two streams in step).
// Fixed, so the order of summation never depends on threads.
template <class T>
constexpr int64_t kChunk = 4096 / sizeof(T);
// The column kernels ((N, C) input): blocks of at most kColumnBlock columns, visited in tiles
// of kRowTile rows whose moments are merged into the running ones.
constexpr int64_t kColumnBlock = 128;
constexpr int64_t kRowTile = 64;

// The longest rows normalize_short_rows takes (the whole row in registers).
constexpr int64_t kShortRowMax = 64;

template <class T>
struct NormKernelsOf {
  // Moments of x[0..n), n <= kChunk<T>.
  void (*chunk_moments)(const T* x, int64_t n, Moments* out);
  // Per-column moments of a rows x cols block (cols <= kColumnBlock) whose rows start
  // row_stride elements apart; out[j] for column j.
  void (*column_moments)(const T* x, int64_t rows, int64_t cols, int64_t row_stride, Moments* out);
  // y[i] = act((x[i] - mean) * scale + shift). stream: whole vectors of y go out with
  // non-temporal stores (core/streaming.h); the caller fences before y is read elsewhere.
  void (*normalize)(const T* x, T* y, int64_t n, T mean, T scale, T shift, Activation act, bool stream);
  // normalize() over n elements of consecutive planes of `plane` (at least 16) elements, the
  // first `offset` elements into its plane; plane k takes mean, scale and shift
  // [(first_channel + k) % channels]. Streamed as one run across the planes. Null in the
  // generic set: the driver calls normalize() plane by plane there.
  void (*normalize_plane_run)(const T* x, T* y, int64_t n, int64_t plane, int64_t offset, const T* mean,
                              const T* scale, const T* shift, int64_t channels, int64_t first_channel,
                              Activation act, bool stream);
  // normalize(x, y, n, ...) and chunk_moments(next, n, next_moments) in one sweep, with the bits
  // of the two calls made apart.
  void (*normalize_with_moments)(const T* x, T* y, int64_t n, T mean, T scale, T shift, Activation act,
                                 const T* next, Moments* next_moments);
  // y[i] = act((x[i] - mean[i]) * scale[i] + shift[i]).
  void (*normalize_columns)(const T* x, T* y, int64_t n, const T* mean, const T* scale, const T* shift,
                            Activation act, bool stream);
  // y[i] = act((x[i] - mean) * rstd * weight[i] + bias[i]); weight and bias may be null.
  void (*normalize_affine)(const T* x, T* y, int64_t n, T mean, T rstd, const T* weight, const T* bias,
                           Activation act, bool stream);
  // normalize_affine and chunk_moments(next, n, next_moments) in one sweep, as above (both
  // with ordinary stores, see generic.h).
  void (*normalize_affine_with_moments)(const T* x, T* y, int64_t n, T mean, T rstd, const T* weight,
                                        const T* bias, Activation act, const T* next, Moments* next_moments);
  // Rows of `width` <= kShortRowMax elements, each normalised by its own moments (stored to
  // moments[r] when not null), row r in channel c = (first_channel + r) % channels:
  // y = act((x - mean) * rstd * weight[c * width + i] + bias[c * width + i]) with weight and
  // bias rows per channel (either may be null; one row when channels <= 1), or, when
  // channel_weight or channel_bias is given, act((x - mean) * rstd * channel_weight[c] +
  // channel_bias[c]).
  void (*normalize_short_rows)(const T* x, T* y, int64_t rows, int64_t width, double eps, const T* weight,
                               const T* bias, const T* channel_weight, const T* channel_bias, int64_t channels,
                               int64_t first_channel, Activation act, Moments* moments);
};

struct NormKernels {
  NormKernelsOf<float> f32;
  NormKernelsOf<double> f64;
};

// Drivers. `in` and `out` are C-contiguous with equal shapes and float dtype; optional
// arguments are views with data == nullptr when absent. weight and bias are contiguous with
// C elements (layer_norm: the normalized elements); running statistics hold C elements at
// any stride. Python validates everything first; these re-check only what memory safety needs.
void batch_norm(const TensorView& in, const TensorView& out, const TensorView& weight, const TensorView& bias,
                const TensorView& running_mean, const TensorView& running_var, bool training, double momentum,
                double eps, Activation act);
void instance_norm(const TensorView& in, const TensorView& out, const TensorView& weight, const TensorView& bias,
                   const TensorView& running_mean, const TensorView& running_var, bool use_input_stats,
                   double momentum, double eps, Activation act);
void group_norm(const TensorView& in, const TensorView& out, int64_t num_groups, const TensorView& weight,
                const TensorView& bias, double eps, Activation act);
// Normalises over the trailing `normalized_numel` elements of each row.
void layer_norm(const TensorView& in, const TensorView& out, int64_t normalized_numel, const TensorView& weight,
                const TensorView& bias, double eps, Activation act);

}  // namespace tensorops::norm
