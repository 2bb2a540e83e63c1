// Normalisation kernel bodies, written once against Vec<T> and compiled per ISA by the tiny
// generic.cc / x86_avx2.cc / x86_avx512.cc files beside this one (see norm.h for the design).
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/simd/math.h"
#include "core/simd/sum.h"
#include "core/simd/vec.h"
#include "core/streaming.h"
#include "norm/norm.h"

namespace tensorops::norm::TENSOROPS_ISA_NS {
namespace {

using simd::Vec;

template <Activation A, class T>
Vec<T> activate(Vec<T> z) {
  if constexpr (A == Activation::relu) {
    return max(Vec<T>::zero(), z);  // x86 max returns its second operand for NaN: NaN stays
  } else if constexpr (A == Activation::silu) {
    return z / (Vec<T>(T(1)) + simd::exp(-z));
  } else {
    return z;
  }
}

// Calls body(std::integral_constant<Activation, act>) so loops are compiled per activation.
template <class Body>
void with_activation(Activation act, const Body& body) {
  switch (act) {
    case Activation::relu: body(std::integral_constant<Activation, Activation::relu>{}); break;
    case Activation::silu: body(std::integral_constant<Activation, Activation::silu>{}); break;
    default: body(std::integral_constant<Activation, Activation::none>{}); break;
  }
}

// (count, mean, M2) from the chunk mean and the sums of deviations from it. The sum of
// deviations corrects the mean's rounding; an infinite or NaN mean is kept as it is (the
// deviations are NaN then, and inf must stay inf as in PyTorch's mean).
inline Moments corrected_moments(double n, double rough_mean, double sum_d, double sum_d2) {
  Moments m;
  m.count = n;
  m.mean = std::isfinite(rough_mean) ? rough_mean + sum_d / n : rough_mean;
  const double m2 = sum_d2 - sum_d * sum_d / n;
  m.m2 = m2 < 0 ? 0 : m2;  // rounding can dip below zero; NaN passes through
  return m;
}

// The one-sweep moments below take their deviations from a shift: the mean of the chunk's
// first vector (its first element when shorter). Their sum of squares carries
// n (mean - shift)^2 on top of the chunk's M2, which corrected_moments subtracts again, so the
// float sum's rounding, relative to M2, grows by 1 + that share / M2. Up to this share (a
// shift within a standard deviation of the mean: all but ~0.5% of chunks of normal data)
// the one sweep stands; past it the chunk is swept again about its mean. A first vector's
// mean strays from the chunk's far less than one element does (x[0] alone was past the
// same bound in a third of normal chunks).
constexpr double kMaxShiftShare = 1;

template <class T>
T chunk_shift(const T* x, int64_t n) {
  using V = Vec<T>;
  return n >= V::width ? reduce_add(V::load(x)) * (T(1) / T(V::width)) : x[0];
}

// Moments of a chunk in one sweep, with beside(offset, lanes) streaming alongside
// (simd::shifted_sums' contract): the sums of deviations from chunk_shift and of their squares,
// exact differences however far the data sit from 0. A chunk whose shift lies far out in its
// spread, or that holds an infinity or NaN, is swept again from L1 about the rough mean (the
// one the first sweep found, or the plain sum's where that is not finite), as the two-sweep
// moments always did: a second sweep, never different rules. Against that two-sweep form (a
// sum, then deviations from sum / n) the one sweep costs three vector instructions where
// those cost four, and one horizontal reduction less: layer norm rows of 768 floats
// 1433 -> 1102 instructions a row (callgrind), 0.80x the time (8x128x768, one thread).
template <class T, class Beside>
Moments chunk_moments_beside(const T* x, int64_t n, const Beside& beside) {
  if (n <= 0) return Moments{};
  const T shift = chunk_shift(x, n);
  const auto [deviations, squares] = simd::shifted_sums(x, n, shift, beside);
  const Moments m = corrected_moments(double(n), shift, deviations, squares);
  const double share = double(deviations) * double(deviations) / double(n);
  if (share <= kMaxShiftShare * m.m2) return m;  // false for NaN, and for the squares' inf
  const T rough_mean = std::isfinite(m.mean) ? T(m.mean) : simd::sum(x, n) / T(n);
  const auto [again_deviations, again_squares] = simd::shifted_sums(x, n, rough_mean);
  return corrected_moments(double(n), rough_mean, again_deviations, again_squares);
}

template <class T>
void chunk_moments(const T* x, int64_t n, Moments* out) {
  *out = chunk_moments_beside(x, n, [](int64_t, int64_t) {});
}

// G vectors of columns (the last one `lanes` wide when Partial) over one tile of `rows` rows:
// two sweeps (a sum, then deviations from the tile's mean), with G independent dependency
// chains per sweep.
// Writes the tile's mean and sums of deviations d and d^2 per column.
template <int G, bool Partial, class T>
void column_tile_sums(const T* x, int64_t rows, int64_t lanes, int64_t stride, T* mean_out, T* d_out, T* q_out) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const auto load = [&](int64_t r, int g) {
    const T* p = x + r * stride + g * W;
    return (Partial && g == G - 1) ? V::load_partial(p, lanes) : V::load(p);
  };
  V s[G], d[G], q[G];
  for (int g = 0; g < G; ++g) s[g] = d[g] = q[g] = V::zero();
  for (int64_t r = 0; r < rows; ++r)
    for (int g = 0; g < G; ++g) s[g] = s[g] + load(r, g);
  const V inv_rows(T(1) / T(rows));
  V mean[G];
  for (int g = 0; g < G; ++g) mean[g] = s[g] * inv_rows;
  for (int64_t r = 0; r < rows; ++r)
    for (int g = 0; g < G; ++g) {
      const V a = load(r, g) - mean[g];
      d[g] = d[g] + a;
      q[g] = fmadd(a, a, q[g]);
    }
  for (int g = 0; g < G; ++g) {
    mean[g].store(mean_out + g * W);
    d[g].store(d_out + g * W);
    q[g].store(q_out + g * W);
  }
}

// Rows are visited in tiles of kRowTile (outer loop), so each tile is a contiguous patch of
// memory; a tile's moments are merged into per-column accumulators (structure of arrays, so
// the merge loop vectorises: its factors depend only on the counts, shared by all columns).
template <class T>
void column_moments(const T* x, int64_t rows, int64_t cols, int64_t stride, Moments* out) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  constexpr int kGroup = 4;
  alignas(64) double acc_mean[kColumnBlock], acc_m2[kColumnBlock];
  alignas(64) T tile_mean[kColumnBlock + 16], tile_d[kColumnBlock + 16], tile_q[kColumnBlock + 16];
  for (int64_t j = 0; j < cols; ++j) acc_mean[j] = acc_m2[j] = 0.0;
  for (int64_t r0 = 0; r0 < rows; r0 += kRowTile) {
    const int64_t tile = std::min(kRowTile, rows - r0);
    const T* xt = x + r0 * stride;
    int64_t j = 0;
    for (; j + kGroup * W <= cols; j += kGroup * W)
      column_tile_sums<kGroup, false>(xt + j, tile, W, stride, tile_mean + j, tile_d + j, tile_q + j);
    for (; j + W <= cols; j += W)
      column_tile_sums<1, false>(xt + j, tile, W, stride, tile_mean + j, tile_d + j, tile_q + j);
    if (j < cols) column_tile_sums<1, true>(xt + j, tile, cols - j, stride, tile_mean + j, tile_d + j, tile_q + j);

    // Chan's merge, as the driver's merge(); an infinite mean takes the weighted sum.
    const double n = double(tile), before = double(r0), total = before + n;
    const double inv_n = 1.0 / n, share = n / total, cross = before * n / total, keep = before / total;
    for (int64_t c = 0; c < cols; ++c) {
      const double rough = tile_mean[c], dsum = tile_d[c];
      const bool rough_finite = std::abs(rough) <= std::numeric_limits<double>::max();
      const double m = rough_finite ? rough + dsum * inv_n : rough;
      const double m2_raw = double(tile_q[c]) - dsum * dsum * inv_n;
      const double m2 = m2_raw < 0 ? 0.0 : m2_raw;
      const double delta = m - acc_mean[c];
      const bool finite = std::abs(delta) <= std::numeric_limits<double>::max();
      acc_mean[c] = finite ? acc_mean[c] + delta * share : acc_mean[c] * keep + m * share;
      acc_m2[c] = acc_m2[c] + m2 + delta * delta * (finite ? cross : 1.0);
    }
  }
  for (int64_t j = 0; j < cols; ++j) out[j] = Moments{double(rows), acc_mean[j], acc_m2[j]};
}

// Calls body(std::bool_constant<stream>) so loops are compiled with and without streaming stores.
template <class Body>
void with_stores(bool stream, const Body& body) {
  if (stream) body(std::true_type{});
  else body(std::false_type{});
}

// Writes `lanes` (<= W) lanes of v at y: a whole vector streamed when Stream (y is inside
// a run's whole cache lines then, see store_blocks), a partial one with an ordinary masked
// store.
template <bool Stream, class T>
[[gnu::always_inline]] inline void put(T* y, Vec<T> v, int64_t lanes) {
  if (lanes != Vec<T>::width) v.store_partial(y, lanes);
  else if constexpr (Stream) store_stream(y, v);
  else v.store(y);
}

// Runs block(i, lanes, streaming tag) over y[0, n) a vector at a time: when Stream, the
// whole cache lines are streamed and the elements before and after them (core/streaming.h)
// are stored the ordinary way. Blocks take their pointers by value: a block that reaches
// them by reference, through the closures around it, reloads them from the stack after
// every store (vector stores may alias anything): streamed layer norm on 4x1024x1031 took
// 1.33x the time so, 8x512x768 1.21x (Zen 4, 1 thread, pairs of processes).
template <bool Stream, class T, class Block>
[[gnu::always_inline]] inline void store_blocks(const T* y, int64_t n, const Block& block) {
  constexpr int64_t W = Vec<T>::width;
  int64_t i = 0;
  if constexpr (Stream) {
    const int64_t head = elements_to_cache_line(y, n);
    for (; i < head; i += W) block(i, std::min(W, head - i), std::false_type{});
    i = head;
    for (const int64_t lines_end = whole_cache_lines_end<T>(head, n); i < lines_end; i += W)
      block(i, W, std::true_type{});
  }
  for (; i < n; i += W) block(i, std::min(W, n - i), std::false_type{});
}

// y = act((x - mean) * scale + shift): subtracting first keeps x == mean exact (a constant
// run normalises to exactly shift) and x - mean exact when x is near a large mean. The loops
// form (mean - x) * -scale, the same bits (negation is exact and rounding symmetric), because
// x86's subtract takes its second operand from memory: x's load folds into it.
template <Activation A, bool Stream, class T>
[[gnu::always_inline]] inline void normalize_block(const T* x, T* y, int64_t lanes, Vec<T> mean,
                                                   Vec<T> negated_scale, Vec<T> shift) {
  using V = Vec<T>;
  const V v = lanes == V::width ? V::load(x) : V::load_partial(x, lanes);
  put<Stream>(y, activate<A>(fmadd(mean - v, negated_scale, shift)), lanes);
}

// normalize_block over whole vectors [i, end), two at a time, from i; returns where it
// stopped (fewer than two vectors before end). normalize()'s loop, and normalize_plane_run's
// inside each plane.
template <Activation A, bool Stream, class T>
[[gnu::always_inline]] inline int64_t normalize_vector_pairs(const T* x, T* y, int64_t i, int64_t end, Vec<T> mean,
                                                             Vec<T> negated_scale, Vec<T> shift) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  for (; i + 2 * W <= end; i += 2 * W) {
    const V y0 = activate<A>(fmadd(mean - V::load(x + i), negated_scale, shift));
    const V y1 = activate<A>(fmadd(mean - V::load(x + i + W), negated_scale, shift));
    put<Stream>(y + i, y0, W);
    put<Stream>(y + i + W, y1, W);
  }
  return i;
}

template <class T>
void normalize(const T* x, T* y, int64_t n, T mean, T scale, T shift, Activation act, bool stream) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  with_activation(act, [&](auto tag) {
    constexpr Activation A = decltype(tag)::value;
    with_stores(stream, [&](auto stores) {
      constexpr bool S = decltype(stores)::value;
      const V m(mean), a(-scale), b(shift);
      int64_t i = 0, lines_end = n;
      if constexpr (S) {
        const int64_t head = elements_to_cache_line(y, n);
        for (; i < head; i += W) normalize_block<A, false>(x + i, y + i, std::min(W, head - i), m, a, b);
        i = head;
        lines_end = whole_cache_lines_end<T>(head, n);
      }
      i = normalize_vector_pairs<A, S>(x, y, i, lines_end, m, a, b);
      for (; i < n; i += W) normalize_block<A, false>(x + i, y + i, std::min(W, n - i), m, a, b);
    });
  });
}

// normalize() over a run of consecutive planes of `plane` (>= W) elements: the run starts
// `offset` elements into its first plane, and plane k of it takes channel (first_channel + k)
// % channels's mean, scale and shift. The run is stored as one: a vector that straddles two
// planes takes each lane's coefficients from its own plane (at most one boundary a vector),
// so a streamed output leaves in whole lines across the planes. Plane by plane, each plane's
// partial first and last lines went out as ordinary stores, which read the line first: batch
// norm on 20x100x35x45 (planes of 1575 floats), Zen 4, 1 thread, ran at 0.65-0.75x relu's
// rate over the same bytes, and at relu's rate with planes of 1536. Vectors inside a plane
// take normalize()'s loop; testing every vector for a boundary cost AVX2 1.3x the time of
// plane-by-plane calls on 8x64x14x14. With that loop runs are faster on small planes too:
// eval batch norm on 32x64x7x7 0.71x the time (AVX-512), 8x64x14x14 0.94x (AVX-512) and
// 0.75x (AVX2).
template <class T>
void normalize_plane_run(const T* x, T* y, int64_t n, int64_t plane, int64_t offset, const T* mean, const T* scale,
                         const T* shift, int64_t channels, int64_t first_channel, Activation act, bool stream) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  with_activation(act, [&](auto tag) {
    constexpr Activation A = decltype(tag)::value;
    with_stores(stream, [&](auto stores) {
      constexpr bool S = decltype(stores)::value;
      // x and y as locals of this loop, copied into the block closure: reached through the
      // enclosing closures, they were reloaded from the stack after every streaming store
      // (which may alias anything), and the loop ran 3-9% slower than normalize()'s.
      const T* const in = x;
      T* const out = y;
      int64_t c = first_channel, boundary = plane - offset;  // where the next plane starts in the run
      const auto next_channel = [&](int64_t ch) { return ch + 1 == channels ? 0 : ch + 1; };
      V m(mean[c]), a(-scale[c]), b(shift[c]);
      // Block [i, i + lanes): in the current plane, or the first of a new one (which it
      // enters), or across the boundary with each lane's own plane's coefficients.
      const auto block = [&, in, out](int64_t i, int64_t lanes, auto block_stores) {
        constexpr bool BS = decltype(block_stores)::value;
        if (i >= boundary) {
          c = next_channel(c), boundary += plane;
          m = V(mean[c]), a = V(-scale[c]), b = V(shift[c]);
        }
        if (i + lanes <= boundary) {
          normalize_block<A, BS>(in + i, out + i, lanes, m, a, b);
          return;
        }
        const int64_t after = next_channel(c);
        const auto first = V::lanes_between(0, boundary - i);
        normalize_block<A, BS>(in + i, out + i, lanes, select(first, m, V(mean[after])),
                               select(first, a, V(-scale[after])), select(first, b, V(shift[after])));
      };
      int64_t i = 0, lines_end = n;
      if constexpr (S) {
        const int64_t head = elements_to_cache_line(out, n);
        for (; i < head; i += W) block(i, std::min(W, head - i), std::false_type{});
        i = head;
        lines_end = whole_cache_lines_end<T>(head, n);
      }
      // The vectors inside a plane in normalize()'s loop (the boundary test per vector cost
      // DRAM-bound runs 3-9%), then the vector at or across the plane's end.
      while (i + W <= lines_end) {
        const int64_t inside_end = std::min(lines_end, i + std::max<int64_t>(0, boundary - i) / W * W);
        i = normalize_vector_pairs<A, S>(in, out, i, inside_end, m, a, b);
        if (i < inside_end) {
          normalize_block<A, S>(in + i, out + i, W, m, a, b);
          i += W;
        }
        if (i + W <= lines_end) {
          block(i, W, std::bool_constant<S>{});
          i += W;
        }
      }
      for (; i < n; i += W) block(i, std::min(W, n - i), std::false_type{});
    });
  });
}

// normalize() of x while the first sweep of chunk_moments(next) runs in the same loop, with the
// same bits: one pass that keeps both memory streams (next's reads, y's writes) busy instead
// of alternating a read-only phase with a write phase. Ordinary stores here: streaming ones
// measured 0-7% slower in this loop (they compete with next's reads for the line fill
// buffers), while they make the plain normalize() 15-25% faster.
template <class T>
void normalize_with_moments(const T* x, T* y, int64_t n, T mean, T scale, T shift, Activation act, const T* next,
                            Moments* next_moments) {
  with_activation(act, [&](auto tag) {
    constexpr Activation A = decltype(tag)::value;
    const Vec<T> m(mean), a(-scale), b(shift);
    *next_moments = chunk_moments_beside(next, n, [&](int64_t i, int64_t lanes) {
      normalize_block<A, false>(x + i, y + i, lanes, m, a, b);
    });
  });
}

template <class T>
void normalize_columns(const T* x, T* y, int64_t n, const T* mean, const T* scale, const T* shift, Activation act,
                       bool stream) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  with_activation(act, [&](auto tag) {
    constexpr Activation A = decltype(tag)::value;
    with_stores(stream, [&](auto stores) {
      store_blocks<decltype(stores)::value>(y, n, [&, x, y, mean, scale, shift](int64_t i, int64_t k, auto s) {
        const auto load = [&](const T* p) { return k == W ? V::load(p + i) : V::load_partial(p + i, k); };
        put<decltype(s)::value>(y + i, activate<A>(fmadd(load(x) - load(mean), load(scale), load(shift))), k);
      });
    });
  });
}

// Block [i, i + lanes) (lanes <= W) of y = act((x - mean) * rstd * weight + bias), formed as
// (mean - x) * -rstd as in normalize_block. Inlined into the loops that call it once per
// vector (simd::shifted_sums' `beside`): as a call it cost layer norm 17% (8x128x768, 317 ->
// 264 us).
template <Activation A, bool HasWeight, bool HasBias, bool Stream, class T>
[[gnu::always_inline]] inline void normalize_affine_block(const T* x, T* y, int64_t i, int64_t lanes, Vec<T> mean,
                                                          Vec<T> negated_rstd, const T* weight, const T* bias) {
  using V = Vec<T>;
  const bool full = lanes == V::width;
  const auto load = [&](const T* p) { return full ? V::load(p + i) : V::load_partial(p + i, lanes); };
  V z = (mean - load(x)) * negated_rstd;
  if constexpr (HasWeight && HasBias) z = fmadd(z, load(weight), load(bias));
  else if constexpr (HasWeight) z = z * load(weight);
  else if constexpr (HasBias) z = z + load(bias);
  put<Stream>(y + i, activate<A>(z), lanes);
}

// Calls body(activation tag, has-weight tag, has-bias tag): one loop per combination.
template <class T, class Body>
void with_affine(Activation act, const T* weight, const T* bias, const Body& body) {
  with_activation(act, [&](auto a) {
    if (weight && bias) body(a, std::true_type{}, std::true_type{});
    else if (weight) body(a, std::true_type{}, std::false_type{});
    else if (bias) body(a, std::false_type{}, std::true_type{});
    else body(a, std::false_type{}, std::false_type{});
  });
}

template <class T>
void normalize_affine(const T* x, T* y, int64_t n, T mean, T rstd, const T* weight, const T* bias, Activation act,
                      bool stream) {
  with_affine(act, weight, bias, [&](auto a, auto has_weight, auto has_bias) {
    const Vec<T> m(mean), r(-rstd);
    with_stores(stream, [&](auto stores) {
      store_blocks<decltype(stores)::value>(y, n, [&, x, y, weight, bias](int64_t i, int64_t lanes, auto s) {
        normalize_affine_block<decltype(a)::value, has_weight, has_bias, decltype(s)::value>(x, y, i, lanes, m, r,
                                                                                              weight, bias);
      });
    });
  });
}

// normalize_affine() of x with the first sweep of chunk_moments(next) in the same loop, as
// normalize_with_moments (ordinary stores).
template <class T>
void normalize_affine_with_moments(const T* x, T* y, int64_t n, T mean, T rstd, const T* weight, const T* bias,
                                   Activation act, const T* next, Moments* next_moments) {
  with_affine(act, weight, bias, [&](auto a, auto has_weight, auto has_bias) {
    const Vec<T> m(mean), r(-rstd);
    *next_moments = chunk_moments_beside(next, n, [&](int64_t i, int64_t lanes) {
      normalize_affine_block<decltype(a)::value, has_weight, has_bias, false>(x, y, i, lanes, m, r, weight, bias);
    });
  });
}

// Rows of up to kShortRowMax elements, each normalised by its own statistics, W rows at a
// time (a vector's lanes): each row's sum, then its deviations from its rough mean (the
// corrected two pass, as chunk_moments' second sweep), reduced for all W rows at once
// (lane_sums), then y = act((x - mean) * rstd * weight + bias) with weight and bias per
// element (layer norm: one row for all rows, loaded once; group norm: a row per group, c
// below) or per row's channel (instance norm: channel_weight[c], channel_bias[c]); c runs
// from first_channel through `channels`. A
// row at a time through the units pipeline cost ~170 cycles of calls, merges and
// reductions a row (layer norm on 262144x8 ran at a thirtieth of relu's rate). Zen 4, 1
// thread, one process alternating the two: layer norm on 262144x8 0.18x the time, 131072x16
// 0.23x, 65536x32 0.32x, 32768x64 0.43x; instance norm on 3000x100x3 0.22x, 4000x64x7
// 0.26x, 1000x64x31 0.48x, 500x64x63 0.64x, 32x64x8x8 0.66x; AVX2 0.50-0.82x; the generic
// set 0.78x on rows of 8, 1.02-1.07x slower on rows of 63 and 64.
template <class T>
void normalize_short_rows(const T* x, T* y, int64_t rows, int64_t width, double eps, const T* weight, const T* bias,
                          const T* channel_weight, const T* channel_bias, int64_t channels, int64_t first_channel,
                          Activation act, Moments* moments) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  constexpr int kMaxVectors = int((kShortRowMax + W - 1) / W);
  const int row_vectors = int((width + W - 1) / W);
  const int64_t tail = width - (row_vectors - 1) * W;  // lanes of the last vector
  const auto tail_lanes = lt(simd::lane_index<T>(), V(T(tail)));
  const T inverse_width = T(1) / T(width);
  const bool per_channel = channel_weight || channel_bias;
  // rows_loop(count): count is the row's vector count, fixed at compile time up to four
  // (every row of the AVX-512 float set) so that the loops over a row's vectors unroll: with
  // the count known only at run time, loop control took most of 262144x8 layer norm's time.
  const auto rows_loop = [&](auto count, auto tag) {
    constexpr Activation A = decltype(tag)::value;
    const int vectors = count;
    const auto load = [&](const T* p, int i) {
      return i + 1 < vectors ? V::load(p + i * W) : V::load_partial(p + i * W, tail);
    };
    V row_weight[kMaxVectors], row_bias[kMaxVectors];
    const auto load_affine = [&](int64_t row) {
      for (int i = 0; i < vectors; ++i) {
        row_weight[i] = weight ? load(weight + row * width, i) : V(T(1));
        row_bias[i] = bias ? load(bias + row * width, i) : V::zero();
      }
    };
    const bool affine_rows = !per_channel && (weight || bias);
    const bool cycling_affine = affine_rows && channels > 1;
    if (affine_rows) load_affine(first_channel);
    int64_t c = first_channel;
    for (int64_t r0 = 0; r0 < rows; r0 += W) {
      const int64_t group = std::min(W, rows - r0);
      const T* xg = x + r0 * width;
      T* yg = y + r0 * width;
      V sums[W], deviations[W], squares[W];
      for (int64_t g = 0; g < W; ++g) {
        V sum = V::zero();
        if (g < group)
          for (int i = 0; i < vectors; ++i) sum = sum + load(xg + g * width, i);
        sums[g] = sum;
      }
      alignas(64) T rough[W], deviation_sums[W], square_sums[W];
      (lane_sums(sums) * V(inverse_width)).store(rough);
      for (int64_t g = 0; g < W; ++g) {
        V d_sum = V::zero(), q_sum = V::zero();
        if (g < group) {
          const V shift(rough[g]);
          for (int i = 0; i < vectors; ++i) {
            const V v = load(xg + g * width, i) - shift;
            const V d = i + 1 < vectors ? v : select(tail_lanes, v, V::zero());
            d_sum = d_sum + d;
            q_sum = fmadd(d, d, q_sum);
          }
        }
        deviations[g] = d_sum;
        squares[g] = q_sum;
      }
      // The W rows' moments and rstd in vectors, in T (as corrected_moments, which runs in
      // double, where the caller keeps them): one chain of divisions and square roots for the
      // group instead of one a row, which left the loop waiting on each row's (~60 cycles a
      // row on 262144x8).
      const V rough_means = V::load(rough), deviation_total = lane_sums(deviations);
      const V square_total = lane_sums(squares);
      const V finite = rough_means - rough_means;  // 0 for finite means, NaN otherwise
      const V corrected = rough_means + deviation_total * V(inverse_width);
      const V m2 = square_total - deviation_total * deviation_total * V(inverse_width);
      const V clamped = select(lt(m2, V::zero()), V::zero(), m2);  // NaN passes through
      alignas(64) T means[W], rstds[W];
      select(is_nan(finite), rough_means, corrected).store(means);
      (V(T(1)) / sqrt(fmadd(clamped, V(inverse_width), V(T(eps))))).store(rstds);
      if (moments) {
        deviation_total.store(deviation_sums);
        square_total.store(square_sums);
        for (int64_t g = 0; g < group; ++g)
          moments[r0 + g] = corrected_moments(double(width), rough[g], deviation_sums[g], square_sums[g]);
      }
      for (int64_t g = 0; g < group; ++g) {
        const T rstd = rstds[g];
        const V mean(means[g]);
        const T* xr = xg + g * width;
        T* yr = yg + g * width;
        if (per_channel) {
          const V negated_scale(-(channel_weight ? channel_weight[c] * rstd : rstd));
          const V shift(channel_bias ? channel_bias[c] : T(0));
          c = c + 1 == channels ? 0 : c + 1;
          for (int i = 0; i < vectors; ++i) {
            const V z = activate<A>(fmadd(mean - load(xr, i), negated_scale, shift));
            if (i + 1 < vectors) z.store(yr + i * W);
            else z.store_partial(yr + i * W, tail);
          }
        } else {
          if (cycling_affine) {
            load_affine(c);
            c = c + 1 == channels ? 0 : c + 1;
          }
          const V negated_rstd(-rstd);
          for (int i = 0; i < vectors; ++i) {
            V z = (mean - load(xr, i)) * negated_rstd;
            if (weight || bias) z = fmadd(z, row_weight[i], row_bias[i]);
            z = activate<A>(z);
            if (i + 1 < vectors) z.store(yr + i * W);
            else z.store_partial(yr + i * W, tail);
          }
        }
      }
    }
  };
  with_activation(act, [&](auto tag) {
    switch (row_vectors) {
      case 1: rows_loop(std::integral_constant<int, 1>{}, tag); break;
      case 2: rows_loop(std::integral_constant<int, 2>{}, tag); break;
      case 3: rows_loop(std::integral_constant<int, 3>{}, tag); break;
      case 4: rows_loop(std::integral_constant<int, 4>{}, tag); break;
      default: rows_loop(row_vectors, tag); break;
    }
  });
}

template <class T>
NormKernelsOf<T> kernels_of() {
  // (Not in the generic set, whose vectors are loops over lanes: runs there took 1.02x the
  // time of plane-by-plane calls on eval batch norm and instance norm.)
  constexpr auto plane_run = TENSOROPS_ISA_ID >= 1 ? normalize_plane_run<T> : nullptr;
  return {chunk_moments<T>,    column_moments<T>,   normalize<T>,        plane_run,
          normalize_with_moments<T>, normalize_columns<T>, normalize_affine<T>, normalize_affine_with_moments<T>,
          normalize_short_rows<T>};
}

}  // namespace

const NormKernels* kernel_table() {
  static const NormKernels table{kernels_of<float>(), kernels_of<double>()};
  return &table;
}

}  // namespace tensorops::norm::TENSOROPS_ISA_NS
