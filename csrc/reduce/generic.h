// Reduce kernel bodies, written once against Vec<T> and compiled per ISA by the tiny
// generic.cc / x86_avx2.cc / x86_avx512.cc files beside this one.
//
// Row kernels keep several independent vector accumulators (the adds of one accumulator
// form a dependency chain; four or eight chains keep the FPU busy) and fold the lanes once
// at the end. Column kernels stream each row of a tile front to back and keep the running
// results in the caller's arrays, which stay in L1; they fold four rows per sweep so that
// the arrays are read and written once per four rows.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/prefetch.h"
#include "core/simd/math.h"
#include "core/simd/sum.h"
#include "core/simd/vec.h"
#include "reduce/reduce.h"

namespace tensorops::reduce::TENSOROPS_ISA_NS {
namespace {

using simd::Vec;
using simd::exp_nonpositive;

template <class T>
constexpr T kInf = std::numeric_limits<T>::infinity();
template <class T>
constexpr T kNaN = std::numeric_limits<T>::quiet_NaN();

// 0, 1, ..., width-1: lane numbers, for tail masks and for carrying indices in lanes.
// The whole vector at p, or its first k lanes (the rest read as 0, memory untouched).
template <class T>
struct FullLanes {
  static Vec<T> load(const T* p) { return Vec<T>::load(p); }
  static void store(Vec<T> v, T* p) { v.store(p); }
  static Vec<T> keep(Vec<T> v, Vec<T>) { return v; }
};
template <class T>
struct PartLanes {
  int64_t k;
  Vec<T> load(const T* p) const { return Vec<T>::load_partial(p, k); }
  void store(Vec<T> v, T* p) const { v.store_partial(p, k); }
  // v in the first k lanes, fill in the others (which hold no element).
  Vec<T> keep(Vec<T> v, Vec<T> fill) const { return select(lt(simd::lane_index<T>(), Vec<T>(T(k))), v, fill); }
};

// body(j, lanes) for j = 0, W, 2W, ... < n; the last call gets PartLanes when n % W != 0.
template <class T, class Body>
inline void each_vector(int64_t n, const Body& body) {
  constexpr int64_t W = Vec<T>::width;
  int64_t j = 0;
  for (; j + W <= n; j += W) body(j, FullLanes<T>{});
  if (j < n) body(j, PartLanes<T>{n - j});
}

// NaN-propagating scalar max / min, matching maximum() / minimum() on vectors.
template <class T>
T max_nan(T a, T b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
template <class T>
T min_nan(T a, T b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }

// ---- rows ---------------------------------------------------------------------------------

template <class T>
T sum_row(const T* x, int64_t n) {
  return simd::sum(x, n);
}

// Sums of `rows` runs of n < simd::kSumShortRun elements, row_stride apart: each run's
// vectors are added as sum_row adds them, and the lanes of Vec<T>::width runs are summed in
// one lane_sums tree (the lanes of one run in reduce_add's order on AVX-512 and generic
// code, pairwise on AVX2, so there the last bit may differ from sum_row's). A call per run
// of 8 floats had cost 9 ns, 1.26x torch's time.
template <class T>
void sum_short_rows(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  V run_sums[W];
  for (int64_t r = 0; r < rows; r += W) {
    const int64_t count = std::min(W, rows - r);
    for (int64_t i = 0; i < W; ++i)
      run_sums[i] = i < count ? simd::add_vectors(V::zero(), x + (r + i) * row_stride, 0, n) : V::zero();
    const V sums = lane_sums(run_sums);
    if (count == W) sums.store(out + r);
    else sums.store_partial(out + r, count);
  }
}

// Products, maxima and minima of `rows` runs of n < Vec<T>::width elements, row_stride
// apart, element by element: the row kernels take such runs one scalar step at a time too
// (prod_row's lanes are multiplied in order, the ones past n exact), so the bits are theirs;
// what goes is a call and its setup per run (amax over rows of 3 had cost 1.7x torch's time,
// prod over rows of 8 2.4x).
template <class T, class F>
void fold_short_rows(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out, const F& f) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* run = x + r * row_stride;
    T v = run[0];
    for (int64_t i = 1; i < n; ++i) v = f(v, run[i]);
    out[r] = v;
  }
}

// A float32 row is multiplied in double vectors and rounded once. In float32 the lanes'
// partial products stay near 1 (each reduction chunk restarts them), where a float multiply
// of short-mantissa values rounds down on average: the product of 10^6 values 1 + 0.001 g
// came out 1.5e-4 low, every seed (torch 4e-5 either way; float32 multiplies of operands
// within 0.1% of 1 lose 0.012 ulp each on average). In double the bias is gone, and rows
// are still read at memory speed.
// The product of the whole vectors load(i) of a row of n elements, four chains at a time;
// *end is where they stop (the tail of under a vector is the caller's).
template <class V, class Load>
V product_of_vectors(int64_t n, int64_t* end, const Load& load) {
  constexpr int64_t W = V::width;
  V a0(1), a1(1), a2(1), a3(1);
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 = a0 * load(i);
    a1 = a1 * load(i + W);
    a2 = a2 * load(i + 2 * W);
    a3 = a3 * load(i + 3 * W);
  }
  for (; i + W <= n; i += W) a0 = a0 * load(i);
  *end = i;
  return (a0 * a1) * (a2 * a3);
}

inline float prod_row_in_double(const float* x, int64_t n) {
  using D = Vec<double>;
  int64_t i;
  const D vectors = product_of_vectors<D>(n, &i, [x](int64_t at) { return D::load_widened(x + at); });
  double tail = 1.0;
  for (; i < n; ++i) tail *= double(x[i]);
  return float(reduce_mul(vectors) * tail);
}

// Short float32 runs take prod_row_in_double too, so a run's bits do not depend on the path.
template <class T>
void prod_short_rows(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out) {
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t r = 0; r < rows; ++r) out[r] = prod_row_in_double(x + r * row_stride, n);
  } else {
    fold_short_rows(x, rows, row_stride, n, out, [](T a, T b) { return a * b; });
  }
}
template <class T>
void max_short_rows(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out) {
  fold_short_rows(x, rows, row_stride, n, out, max_nan<T>);
}
template <class T>
void min_short_rows(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out) {
  fold_short_rows(x, rows, row_stride, n, out, min_nan<T>);
}

template <class T>
T prod_row(const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) return prod_row_in_double(x, n);
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  int64_t i;
  V product = product_of_vectors<V>(n, &i, [x](int64_t at) { return V::load(x + at); });
  if (i < n) product = product * select(lt(simd::lane_index<T>(), V(T(n - i))), V::load_partial(x + i, n - i), V(T(1)));
  T lanes[W];
  product.store(lanes);
  T p = lanes[0];
  for (int64_t l = 1; l < W; ++l) p *= lanes[l];
  return p;
}

// kMax: NaN-propagating max, else min. A tail shorter than a vector re-reads the last full
// vector (extrema do not mind seeing an element twice).
template <class T, bool kMax>
T extreme_row(const T* x, int64_t n) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  if (n < W) {
    T r;
    (kMax ? max_short_rows<T> : min_short_rows<T>)(x, 1, n, n, &r);
    return r;
  }
  // The running extremes use the one-instruction x86 max/min (which may drop a NaN); NaNs
  // are caught by a separate mask, so the loop carries no three-op NaN-propagating chain.
  const auto fast = [](V a, V b) { return kMax ? max(a, b) : min(a, b); };
  V a0 = V::load(x), a1 = a0, a2 = a0, a3 = a0;
  auto nan = is_nan(a0);
  int64_t i = 0;
  // Eight vectors (512 bytes) per step, as simd::sum reads: with four, max over data in
  // memory ran 3-4% behind sum.
  for (; i + 8 * W <= n; i += 8 * W) {
    const V v0 = V::load(x + i), v1 = V::load(x + i + W), v2 = V::load(x + i + 2 * W), v3 = V::load(x + i + 3 * W);
    const V v4 = V::load(x + i + 4 * W), v5 = V::load(x + i + 5 * W), v6 = V::load(x + i + 6 * W),
            v7 = V::load(x + i + 7 * W);
    a0 = fast(a0, fast(v0, v4));
    a1 = fast(a1, fast(v1, v5));
    a2 = fast(a2, fast(v2, v6));
    a3 = fast(a3, fast(v3, v7));
    nan = nan | (either_nan(v0, v1) | either_nan(v2, v3)) | (either_nan(v4, v5) | either_nan(v6, v7));
  }
  for (; i + W <= n; i += W) {
    const V v = V::load(x + i);
    a0 = fast(a0, v);
    nan = nan | is_nan(v);
  }
  if (i < n) {
    const V v = V::load(x + n - W);
    a1 = fast(a1, v);
    nan = nan | is_nan(v);
  }
  if (any(nan)) return kNaN<T>;
  const V a = fast(fast(a0, a1), fast(a2, a3));
  return kMax ? reduce_max(a) : reduce_min(a);
}

// Welford's update in double, one element at a time: only for runs whose float squared
// deviations overflow (finite data near the top of the range).
template <class T>
Moments welford(const T* x, int64_t n, int64_t stride) {
  double mean = 0, m2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i * stride];
    const double delta = v - mean;
    mean += delta / static_cast<double>(i + 1);
    m2 += delta * (v - mean);
  }
  return {mean, m2, n};
}

// (shift + s / n, q - s^2 / n) from the shifted sums s = sum(x - shift), q = sum((x - shift)^2).
inline Moments moments_from_sums(double shift, double s, double q, int64_t n) {
  const double count = static_cast<double>(n);
  double m2 = q - s * (s / count);
  if (m2 < 0) m2 = 0;  // rounding only; NaN stays NaN
  return {shift + s / count, m2, n};
}

// The max of a run and, with kMin, its min, for softmax only: x86 max drops a NaN at random,
// which softmax does not mind, since exp(NaN - max) makes the row's sum, and so every output
// of the row, NaN. The min tells whether every exp(x - max) of the row is a normal number,
// which makes them cheaper where scaling by 2^n is not one instruction (below): there the
// min is worth its pass, on AVX-512 it is not (-inf stands in, as if the row were too wide).
template <class T>
struct RowRange {
  T max, min;
  // Every x - max at or above normal_exp_lo (so exp_nonpositive<T, true> serves the row).
  bool exps_normal() const { return min - max >= simd::MathConstants<T>::normal_exp_lo; }
};

constexpr bool kTracksRowMin = TENSOROPS_ISA_ID != 2;

template <class T>
RowRange<T> softmax_range_row(const T* x, int64_t n) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  constexpr bool kMin = kTracksRowMin;
  if (n < W) {
    T hi = x[0], lo = x[0];
    for (int64_t i = 1; i < n; ++i) hi = x[i] > hi ? x[i] : hi, lo = x[i] < lo ? x[i] : lo;
    return {hi, kMin ? lo : -kInf<T>};
  }
  V hi0 = V::load(x), hi1 = hi0, lo0 = hi0, lo1 = hi0;
  int64_t i = W;
  for (; i + 2 * W <= n; i += 2 * W) {
    const V a = V::load(x + i), b = V::load(x + i + W);
    hi0 = max(hi0, a), hi1 = max(hi1, b);
    if constexpr (kMin) lo0 = min(lo0, a), lo1 = min(lo1, b);
  }
  for (; i + W <= n; i += W) {
    const V a = V::load(x + i);
    hi0 = max(hi0, a);
    if constexpr (kMin) lo0 = min(lo0, a);
  }
  if (i < n) {
    const V a = V::load(x + n - W);
    hi1 = max(hi1, a);
    if constexpr (kMin) lo1 = min(lo1, a);
  }
  return {reduce_max(max(hi0, hi1)), kMin ? reduce_min(min(lo0, lo1)) : -kInf<T>};
}

// Sums of d = x - K and d^2, K = x[0]: differences are exact when the data sit far from 0.
template <class T>
Moments moments_row(const T* x, int64_t n) {
  const T shift = x[0];
  const auto [s, q] = simd::shifted_sums(x, n, shift);
  if (q == kInf<T>) return welford(x, n, 1);
  return moments_from_sums(shift, s, q, n);
}

// The sum of exp(x - max) for a run whose max is finite. Four independent chains per step
// keep enough loads in flight: prefetching ahead, as exp_sum_row does, measured no faster.
template <class T>
T sum_exp_row(const T* x, int64_t n, T max) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const V m(max);
  V a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 = a0 + exp_nonpositive(V::load(x + i) - m);
    a1 = a1 + exp_nonpositive(V::load(x + i + W) - m);
    a2 = a2 + exp_nonpositive(V::load(x + i + 2 * W) - m);
    a3 = a3 + exp_nonpositive(V::load(x + i + 3 * W) - m);
  }
  for (; i + W <= n; i += W) a0 = a0 + exp_nonpositive(V::load(x + i) - m);
  if (i < n) {
    const V e = exp_nonpositive(V::load_partial(x + i, n - i) - m);
    a1 = a1 + select(lt(simd::lane_index<T>(), V(T(n - i))), e, V::zero());
  }
  return reduce_add((a0 + a1) + (a2 + a3));
}

// A max of +-inf or NaN decides the result alone (and exp(x - max) would be NaN).
template <class T>
LogSumExp<T> logsumexp_row(const T* x, int64_t n) {
  const T max = extreme_row<T, true>(x, n);
  if (max != max) return {max, max};
  if (max == kInf<T>) return {max, T(1)};
  if (max == -kInf<T>) return {max, T(0)};
  return {max, sum_exp_row(x, n, max)};
}

// First index of the max (kMax) or min; a NaN wins, its first index is returned. Lanes
// carry their element's index as T; strict comparisons keep each lane's first winner.
//
// Rows of up to a vector are scanned element by element, and shorter rows than four vectors
// scan only the two vectors of lanes they fill: the final scan over all 4 W lanes took ~55 ns
// a row, so argmax over the last dim of 262144x8 ran at 0.45x torch's speed.
template <class T, bool kMax>
Extremum<T> arg_row(const T* x, int64_t n) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  if (n <= W) {
    T best = x[0];
    int64_t at = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (x[j] != x[j]) return {x[j], j};
      if (kMax ? x[j] > best : x[j] < best) best = x[j], at = j;
    }
    return {best, at};
  }
  const auto better = [](V a, V b) { return kMax ? gt(a, b) : lt(a, b); };
  const V worst(kMax ? -kInf<T> : kInf<T>);
  V b0 = worst, b1 = worst, b2 = worst, b3 = worst;
  V i0 = V::zero(), i1 = V::zero(), i2 = V::zero(), i3 = V::zero();
  auto nan = is_nan(V::zero());
  V idx = simd::lane_index<T>();
  const V step(static_cast<T>(W));
  const auto update = [&](V& best, V& at, V v, V index) {
    const auto m = better(v, best);
    best = select(m, v, best);
    at = select(m, index, at);
    nan = nan | is_nan(v);
  };
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    // The compare-and-blend chains fill the out-of-order window before the loads of the next
    // lines issue, so the row is prefetched ahead (max with indices over the rows of 4096 x
    // 4096: AVX2 7.6 -> 3.2 ms, AVX-512 3.2 -> 2.8).
    for (int64_t line = 0; line < 4 * W; line += 64 / int64_t(sizeof(T))) prefetch_ahead(x + i + line);
    update(b0, i0, V::load(x + i), idx);
    update(b1, i1, V::load(x + i + W), idx + step);
    update(b2, i2, V::load(x + i + 2 * W), idx + V(T(2 * W)));
    update(b3, i3, V::load(x + i + 3 * W), idx + V(T(3 * W)));
    idx = idx + V(T(4 * W));
  }
  for (; i + W <= n; i += W) {
    update(b0, i0, V::load(x + i), idx);
    idx = idx + step;
  }
  if (i < n) update(b1, i1, select(lt(simd::lane_index<T>(), V(T(n - i))), V::load_partial(x + i, n - i), worst), idx);
  if (any(nan)) {
    for (int64_t j = 0; j < n; ++j)
      if (x[j] != x[j]) return {x[j], j};
  }
  T values[4 * W], indices[4 * W];
  b0.store(values); b1.store(values + W); b2.store(values + 2 * W); b3.store(values + 3 * W);
  i0.store(indices); i1.store(indices + W); i2.store(indices + 2 * W); i3.store(indices + 3 * W);
  T best = values[0], at = indices[0];
  for (int64_t l = 1, lanes = n < 4 * W ? 2 * W : 4 * W; l < lanes; ++l) {
    const bool wins = kMax ? values[l] > best : values[l] < best;
    if (wins || (values[l] == best && indices[l] < at)) {
      best = values[l];
      at = indices[l];
    }
  }
  return {best, static_cast<int64_t>(at)};
}

// ---- columns ------------------------------------------------------------------------------

// out[j] = fold of x[r*rs + j] over r, four rows per sweep.
template <class T, class F>
void fold_cols(const T* x, int64_t rows, int64_t rs, int64_t n, T* out, const F& f) {
  int64_t r;
  if (rows >= 4) {
    each_vector<T>(n, [&](int64_t j, auto lanes) {
      const T* p = x + j;
      lanes.store(f(f(lanes.load(p), lanes.load(p + rs)), f(lanes.load(p + 2 * rs), lanes.load(p + 3 * rs))), out + j);
    });
    r = 4;
  } else {
    each_vector<T>(n, [&](int64_t j, auto lanes) { lanes.store(lanes.load(x + j), out + j); });
    r = 1;
  }
  for (; r + 4 <= rows; r += 4) {
    const T* row = x + r * rs;
    each_vector<T>(n, [&](int64_t j, auto lanes) {
      const T* p = row + j;
      const auto v = f(f(lanes.load(p), lanes.load(p + rs)), f(lanes.load(p + 2 * rs), lanes.load(p + 3 * rs)));
      lanes.store(f(lanes.load(out + j), v), out + j);
    });
  }
  for (; r < rows; ++r) {
    const T* row = x + r * rs;
    each_vector<T>(n, [&](int64_t j, auto lanes) { lanes.store(f(lanes.load(out + j), lanes.load(row + j)), out + j); });
  }
}

// Column sums of packed rows narrower than a vector (row_stride == n < W): the rows are one
// run, whose pattern of columns repeats every lcm(n, W) elements, PERIOD vectors. Lane l
// of accumulator v sums column (v * W + l) % n of every period; the lanes of a column are
// added at the end, in lane order. Row by row, each row a masked load and the running sums
// a masked store and reload, (100000, 3) over dim 0 took 3x torch's time.
template <class T, int PERIOD>
void sum_packed_cols(const T* x, int64_t rows, int64_t n, T* out) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  V acc[PERIOD];
  for (int v = 0; v < PERIOD; ++v) acc[v] = V::zero();
  const int64_t total = rows * n;
  int64_t i = 0;
  for (; i + PERIOD * W <= total; i += PERIOD * W)
    for (int v = 0; v < PERIOD; ++v) acc[v] = acc[v] + V::load(x + i + v * W);
  T lanes[PERIOD * W];
  for (int v = 0; v < PERIOD; ++v) acc[v].store(lanes + v * W);
  for (int64_t j = 0; j < n; ++j) {
    T s = lanes[j];
    for (int64_t k = j + n; k < PERIOD * W; k += n) s += lanes[k];
    out[j] = s;
  }
  for (int64_t r = i / n; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) out[j] += x[r * n + j];
}

template <class T>
void sum_cols(const T* x, int64_t rows, int64_t rs, int64_t n, T* out) {
  constexpr int64_t W = Vec<T>::width;
  if (rs == n && n < W) {
    // lcm(n, W) / W vectors: W / gcd(n, W) is a power of two, so n / gcd(n, W) is odd.
    switch (n / std::gcd(n, W)) {
      case 1: return sum_packed_cols<T, 1>(x, rows, n, out);
      case 3: return sum_packed_cols<T, 3>(x, rows, n, out);
      case 5: return sum_packed_cols<T, 5>(x, rows, n, out);
      case 7: return sum_packed_cols<T, 7>(x, rows, n, out);
      case 9: return sum_packed_cols<T, 9>(x, rows, n, out);
      case 11: return sum_packed_cols<T, 11>(x, rows, n, out);
      case 13: return sum_packed_cols<T, 13>(x, rows, n, out);
      default: return sum_packed_cols<T, 15>(x, rows, n, out);
    }
  }
  fold_cols(x, rows, rs, n, out, [](Vec<T> a, Vec<T> b) { return a + b; });
}
// float32 column products in double, rounded once per column (see prod_row_in_double): the
// rows swept in order, four at a time (as fold_cols), into a block of double products as wide
// as the driver's column tile (kColTileBytes of floats), so the rows stream. Blocks of 256
// columns, each down every row, read the rows in short strided runs: 1.9x the time.
inline void prod_cols_in_double(const float* x, int64_t rows, int64_t rs, int64_t n, float* out) {
  constexpr int64_t kBlock = kColTileBytes / int64_t(sizeof(float));
  double products[kBlock];
  for (int64_t j = 0; j < n; j += kBlock) {
    const int64_t m = std::min(kBlock, n - j);
    for (int64_t l = 0; l < m; ++l) products[l] = double(x[j + l]);
    int64_t r = 1;
    for (; r + 4 <= rows; r += 4) {
      const float* p = x + r * rs + j;
      for (int64_t l = 0; l < m; ++l)
        products[l] *= (double(p[l]) * double(p[l + rs])) * (double(p[l + 2 * rs]) * double(p[l + 3 * rs]));
    }
    for (; r < rows; ++r) {
      const float* row = x + r * rs + j;
      for (int64_t l = 0; l < m; ++l) products[l] *= double(row[l]);
    }
    for (int64_t l = 0; l < m; ++l) out[j + l] = float(products[l]);
  }
}

template <class T>
void prod_cols(const T* x, int64_t rows, int64_t rs, int64_t n, T* out) {
  if constexpr (std::is_same_v<T, float>) prod_cols_in_double(x, rows, rs, n, out);
  else fold_cols(x, rows, rs, n, out, [](Vec<T> a, Vec<T> b) { return a * b; });
}
template <class T>
void max_cols(const T* x, int64_t rows, int64_t rs, int64_t n, T* out) {
  fold_cols(x, rows, rs, n, out, [](Vec<T> a, Vec<T> b) { return maximum(a, b); });
}
template <class T>
void min_cols(const T* x, int64_t rows, int64_t rs, int64_t n, T* out) {
  fold_cols(x, rows, rs, n, out, [](Vec<T> a, Vec<T> b) { return minimum(a, b); });
}

// Shifted sums down each column, K = row 0, kept in scratch (sums[n], squares[n]).
template <class T>
void moments_cols(const T* x, int64_t rows, int64_t rs, int64_t n, T* scratch, Moments* out) {
  using V = Vec<T>;
  T* sums = scratch;
  T* squares = scratch + n;
  each_vector<T>(n, [&](int64_t j, auto lanes) {
    lanes.store(V::zero(), sums + j);
    lanes.store(V::zero(), squares + j);
  });
  int64_t r = 1;
  for (; r + 2 <= rows; r += 2) {
    const T* row = x + r * rs;
    each_vector<T>(n, [&](int64_t j, auto lanes) {
      const V k = lanes.load(x + j);
      const V d0 = lanes.load(row + j) - k, d1 = lanes.load(row + rs + j) - k;
      lanes.store(lanes.load(sums + j) + (d0 + d1), sums + j);
      lanes.store(fmadd(d0, d0, fmadd(d1, d1, lanes.load(squares + j))), squares + j);
    });
  }
  for (; r < rows; ++r) {
    const T* row = x + r * rs;
    each_vector<T>(n, [&](int64_t j, auto lanes) {
      const V d = lanes.load(row + j) - lanes.load(x + j);
      lanes.store(lanes.load(sums + j) + d, sums + j);
      lanes.store(fmadd(d, d, lanes.load(squares + j)), squares + j);
    });
  }
  for (int64_t j = 0; j < n; ++j) {
    const T s = sums[j], q = squares[j];
    out[j] = q == kInf<T> ? welford(x + j, rows, rs) : moments_from_sums(x[j], s, q, rows);
  }
}

template <class T>
void logsumexp_cols(const T* x, int64_t rows, int64_t rs, int64_t n, T* max, T* sum) {
  using V = Vec<T>;
  max_cols(x, rows, rs, n, max);
  each_vector<T>(n, [&](int64_t j, auto lanes) { lanes.store(V::zero(), sum + j); });
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * rs;
    each_vector<T>(n, [&](int64_t j, auto lanes) {
      lanes.store(lanes.load(sum + j) + exp_nonpositive(lanes.load(row + j) - lanes.load(max + j)), sum + j);
    });
  }
  // Infinite maxima decide alone: exp(inf - inf) is NaN.
  each_vector<T>(n, [&](int64_t j, auto lanes) {
    const V m = lanes.load(max + j);
    V s = lanes.load(sum + j);
    s = select(eq(m, V(kInf<T>)), V(T(1)), select(eq(m, V(-kInf<T>)), V::zero(), s));
    lanes.store(s, sum + j);
  });
}

template <class T, bool kMax>
void arg_cols(const T* x, int64_t rows, int64_t rs, int64_t n, T* value, T* index) {
  using V = Vec<T>;
  each_vector<T>(n, [&](int64_t j, auto lanes) {
    lanes.store(lanes.load(x + j), value + j);
    lanes.store(V::zero(), index + j);
  });
  // Four rows per sweep, the running values and indices kept in registers between them
  // rather than loaded and stored for every row (AVX2, 4096 x 4096: 5.8 -> 5.3 ms).
  constexpr int64_t kRowsPerSweep = 4;
  for (int64_t r0 = 1; r0 < rows; r0 += kRowsPerSweep) {
    const int64_t count = std::min(kRowsPerSweep, rows - r0);
    each_vector<T>(n, [&](int64_t j, auto lanes) {
      V best = lanes.load(value + j), at = lanes.load(index + j);
      for (int64_t q = 0; q < count; ++q) {
        const V v = lanes.load(x + (r0 + q) * rs + j);
        const auto m = (kMax ? gt(v, best) : lt(v, best)) | (is_nan(v) & ~is_nan(best));
        best = select(m, v, best);
        at = select(m, V(static_cast<T>(r0 + q)), at);
      }
      lanes.store(best, value + j);
      lanes.store(at, index + j);
    });
  }
}

// ---- softmax ------------------------------------------------------------------------------

// The sum of exp(x - max) over a run, stored to out when kStore; spans of kRowSpan are
// summed apart and then added, so long rows keep their accuracy. exp is a long dependency
// chain per vector, so the run prefetches ahead (core/prefetch.h); rows are usually
// consecutive, so this also brings in the next rows.
template <class T, bool kStore, bool kNormal>
T exp_sum_row(const T* x, T* out, int64_t n, T max) {
  using V = Vec<T>;
  const V m(max);
  T total = T(0);
  for (int64_t start = 0; start < n; start += kRowSpan) {
    const int64_t len = std::min(kRowSpan, n - start);
    V sum = V::zero();
    each_vector<T>(len, [&](int64_t j, auto lanes) {
      prefetch_ahead(x + start + j);
      if (kStore) prefetch_ahead_for_write(out + start + j);
      const V e = exp_nonpositive<T, kNormal>(lanes.load(x + start + j) - m);
      if (kStore) lanes.store(e, out + start + j);
      sum = sum + lanes.keep(e, V::zero());
    });
    total += reduce_add(sum);
  }
  return total;
}

// exp_sum_row with its exps scaled the cheap way when the row's range allows: AVX2 softmax
// of 8 x 12 x 128 x 128 floats 1.3 -> 1.05 ms, of 8192 x 1024 9.6 -> 7.9 ms.
template <class T, bool kStore>
T exp_sum_row(const T* x, T* out, int64_t n, const RowRange<T>& range) {
  if (kTracksRowMin && range.exps_normal()) return exp_sum_row<T, kStore, true>(x, out, n, range.max);
  return exp_sum_row<T, kStore, false>(x, out, n, range.max);
}

// Softmax (kLog: log_softmax) of G rows of n elements, row g at offsets[g], each pass over
// all G rows before the next pass: a row's passes wait on each other (its max's horizontal
// reduction before the exps, the sum's and a divide before the scaling), and G rows give the
// out-of-order core independent work across those waits. Every row goes through the same
// instructions as alone, so the bits never depend on the grouping.
template <class T, bool kLog, int G>
void softmax_group(const T* x, T* out, const int64_t* offsets, int64_t n) {
  using V = Vec<T>;
  RowRange<T> range[G];
  T sum[G];
  for (int g = 0; g < G; ++g) range[g] = softmax_range_row(x + offsets[g], n);
  for (int g = 0; g < G; ++g) sum[g] = exp_sum_row<T, !kLog>(x + offsets[g], out + offsets[g], n, range[g]);
  for (int g = 0; g < G; ++g) {
    const T* xr = x + offsets[g];
    T* yr = out + offsets[g];
    if constexpr (kLog) {
      const V m(range[g].max), log_sum(std::log(sum[g]));
      each_vector<T>(n, [&](int64_t j, auto lanes) { lanes.store((lanes.load(xr + j) - m) - log_sum, yr + j); });
    } else {
      const V scale(T(1) / sum[g]);
      each_vector<T>(n, [&](int64_t j, auto lanes) { lanes.store(lanes.load(yr + j) * scale, yr + j); });
    }
  }
}

// Rows go four at a time while four of them span at most kSoftmaxGroupBytes, else two at a
// time under the same bound, else one by one (their exps, stored and then rescaled, stay in
// L1 either way). Zen 4, 1 thread, in-process alternation against one row at a time, float
// rows of 32 / 64 / 128 / 256: four at a time 0.86x / 0.89x / 0.88x / 0.90x the time; rows
// of 512 two at a time 0.92x (four 0.965x), 1024 two 0.95x (noisy) and four 1.02x, from
// 4096 even. AVX2 rows of 128 0.84x (four), of 512 0.96x (two); double rows of 128 0.92x.
constexpr int64_t kSoftmaxGroupBytes = 4096;

template <class T, bool kLog>
void softmax_rows(const T* x, T* out, const int64_t* offsets, int64_t count, int64_t n) {
  const int64_t row_bytes = n * int64_t(sizeof(T));
  int64_t i = 0;
  if (4 * row_bytes <= kSoftmaxGroupBytes)
    for (; i + 4 <= count; i += 4) softmax_group<T, kLog, 4>(x, out, offsets + i, n);
  if (2 * row_bytes <= kSoftmaxGroupBytes)
    for (; i + 2 <= count; i += 2) softmax_group<T, kLog, 2>(x, out, offsets + i, n);
  for (; i < count; ++i) softmax_group<T, kLog, 1>(x, out, offsets + i, n);
}

// scratch: the max[n], the sum[n], and the sum of the current block of kColRows rows, which is
// added to sum once complete so that tall columns keep their accuracy.
template <class T, bool kLog>
void softmax_cols(const T* x, T* out, int64_t rows, int64_t rs, int64_t n, T* scratch) {
  using V = Vec<T>;
  T* peak = scratch;
  T* total = scratch + n;
  T* block = scratch + 2 * n;
  fold_cols(x, rows, rs, n, peak, [](Vec<T> a, Vec<T> b) { return max(a, b); });  // NaN: as softmax_range_row
  each_vector<T>(n, [&](int64_t j, auto lanes) { lanes.store(V::zero(), total + j); });
  for (int64_t first = 0; first < rows; first += kColRows) {
    each_vector<T>(n, [&](int64_t j, auto lanes) { lanes.store(V::zero(), block + j); });
    for (int64_t r = first; r < std::min(rows, first + kColRows); ++r) {
      const T* row = x + r * rs;
      T* out_row = out + r * rs;
      each_vector<T>(n, [&](int64_t j, auto lanes) {
        prefetch_ahead(row + j);
        if (!kLog) prefetch_ahead_for_write(out_row + j);
        const V e = exp_nonpositive(lanes.load(row + j) - lanes.load(peak + j));
        if (!kLog) lanes.store(e, out_row + j);
        lanes.store(lanes.load(block + j) + e, block + j);
      });
    }
    each_vector<T>(n, [&](int64_t j, auto lanes) { lanes.store(lanes.load(total + j) + lanes.load(block + j), total + j); });
  }
  each_vector<T>(n, [&](int64_t j, auto lanes) {
    const V s = lanes.load(total + j);
    lanes.store(kLog ? simd::log(s) : V(T(1)) / s, total + j);
  });
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * rs;
    T* out_row = out + r * rs;
    each_vector<T>(n, [&](int64_t j, auto lanes) {
      const V s = lanes.load(total + j);
      lanes.store(kLog ? (lanes.load(row + j) - lanes.load(peak + j)) - s : lanes.load(out_row + j) * s, out_row + j);
    });
  }
}

template <class T>
TypedKernels<T> typed_kernels() {
  return {
      sum_row<T>, simd::kSumShortRun<T> - 1, sum_short_rows<T>, Vec<T>::width - 1, prod_short_rows<T>,
      max_short_rows<T>, min_short_rows<T>, prod_row<T>, extreme_row<T, true>, extreme_row<T, false>,
      moments_row<T>, logsumexp_row<T>, arg_row<T, true>, arg_row<T, false>,
      sum_cols<T>, prod_cols<T>, max_cols<T>, min_cols<T>,
      moments_cols<T>, logsumexp_cols<T>, arg_cols<T, true>, arg_cols<T, false>,
      softmax_rows<T, false>, softmax_rows<T, true>, softmax_cols<T, false>, softmax_cols<T, true>,
  };
}

}  // namespace

const ReduceKernels* kernel_table() {
  static const ReduceKernels table{typed_kernels<float>(), typed_kernels<double>()};
  return &table;
}

}  // namespace tensorops::reduce::TENSOROPS_ISA_NS
