// Sums over a contiguous run, shared by the reduction and normalisation kernels: the plain
// sum, and the sums of deviations from a shift and of their squares (the one-pass moments
// behind var/std and the norms' statistics).
//
// Several vector accumulators: the sweeps are bound by loads and add latency, not arithmetic.
// They are combined pairwise in a fixed order, so the bits depend only on the data and n.
// These functions take no Vec argument, so their names would be the same in every ISA's
// compilation: they live in an anonymous namespace to keep each ISA's copy to itself.
#pragma once

#include <cstdint>

#include "core/simd/vec.h"

namespace tensorops::simd {
namespace {

// The vectors a sweep that streams from beyond L1 loads, and the Vec two of them fold into:
// AVX-512's half-width vectors laid side by side (see Half in x86_avx512.h), elsewhere full
// vectors added.
#if TENSOROPS_ISA_ID == 2
template <class T>
using StreamVec = TENSOROPS_ISA_NS::Half<T>;
template <class T>
Vec<T> fold_pair(StreamVec<T> lo, StreamVec<T> hi) { return join(lo, hi); }
#else
template <class T>
using StreamVec = Vec<T>;
template <class T>
Vec<T> fold_pair(Vec<T> lo, Vec<T> hi) { return lo + hi; }
#endif

// a plus the Vec<T> blocks of x[i, n), one after another (the last one partial).
template <class T>
Vec<T> add_vectors(Vec<T> a, const T* x, int64_t i, int64_t n) {
  constexpr int64_t W = Vec<T>::width;
  for (; i + W <= n; i += W) a = a + Vec<T>::load(x + i);
  if (i < n) a = a + Vec<T>::load_partial(x + i, n - i);
  return a;
}

template <class T>
T sum(const T* x, int64_t n) {
  using S = StreamVec<T>;
  constexpr int64_t SW = S::width;
  S a0 = S::zero(), a1 = S::zero(), a2 = S::zero(), a3 = S::zero();
  S a4 = S::zero(), a5 = S::zero(), a6 = S::zero(), a7 = S::zero();
  int64_t i = 0;
  for (; i + 8 * SW <= n; i += 8 * SW) {
    a0 = a0 + S::load(x + i);
    a1 = a1 + S::load(x + i + SW);
    a2 = a2 + S::load(x + i + 2 * SW);
    a3 = a3 + S::load(x + i + 3 * SW);
    a4 = a4 + S::load(x + i + 4 * SW);
    a5 = a5 + S::load(x + i + 5 * SW);
    a6 = a6 + S::load(x + i + 6 * SW);
    a7 = a7 + S::load(x + i + 7 * SW);
  }
  return reduce_add(add_vectors(fold_pair<T>((a0 + a1) + (a2 + a3), (a4 + a5) + (a6 + a7)), x, i, n));
}

// Runs shorter than this never enter sum()'s main loop: their sum is the lanes of
// add_vectors(zero, x, 0, n), which the short-row kernels take for many runs at once.
template <class T>
constexpr int64_t kSumShortRun = 8 * StreamVec<T>::width;

// Lane l holds l; compared with a count it masks off the lanes past a tail.
template <class T>
Vec<T> lane_index() {
  static constexpr T kIndex[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  static_assert(Vec<T>::width <= 16, "lane_index covers at most 16 lanes");
  return Vec<T>::load(kIndex);
}

template <class T>
struct ShiftedSums {
  T deviations;  // sum of (x - shift)
  T squares;     // sum of (x - shift)^2
};

// The deviations are formed as shift - x, which is -(x - shift) exactly: x86's subtract
// takes its second operand from memory, so each vector costs one load-and-subtract instead
// of a load and a subtract. On Zen 3 the shorter loop brought var over a 64 MB float32 array
// from 7.6 to 7.0 ms (medians of 9 processes; a plain sum of it takes 6.2). Negating the
// summed negated deviations gives the same bits as summing the deviations: rounding is
// symmetric. (Unrolling to 16 vectors made GCC spill accumulators to the stack.)
// beside(offset, lanes) runs once per vector block of x, in order, with lanes == W except for
// the tail: a caller can stream a second array in the same loop (the norms normalise the
// previous unit's piece there) and still get the bits of the plain sums.
template <class T, class Beside>
ShiftedSums<T> shifted_sums(const T* x, int64_t n, T shift, const Beside& beside) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const V k(shift);
  V s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
  V q0 = V::zero(), q1 = V::zero(), q2 = V::zero(), q3 = V::zero();
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    const V d0 = k - V::load(x + i), d1 = k - V::load(x + i + W);
    const V d2 = k - V::load(x + i + 2 * W), d3 = k - V::load(x + i + 3 * W);
    s0 = s0 + d0; q0 = fmadd(d0, d0, q0);
    s1 = s1 + d1; q1 = fmadd(d1, d1, q1);
    s2 = s2 + d2; q2 = fmadd(d2, d2, q2);
    s3 = s3 + d3; q3 = fmadd(d3, d3, q3);
    for (int64_t b = 0; b < 4; ++b) beside(i + b * W, W);
  }
  for (; i + W <= n; i += W) {
    const V d = k - V::load(x + i);
    s0 = s0 + d; q0 = fmadd(d, d, q0);
    beside(i, W);
  }
  if (i < n) {
    const V d = select(lt(lane_index<T>(), V(T(n - i))), k - V::load_partial(x + i, n - i), V::zero());
    s1 = s1 + d; q1 = fmadd(d, d, q1);
    beside(i, n - i);
  }
  return {-reduce_add((s0 + s1) + (s2 + s3)), reduce_add((q0 + q1) + (q2 + q3))};
}

template <class T>
ShiftedSums<T> shifted_sums(const T* x, int64_t n, T shift) {
  return shifted_sums(x, n, shift, [](int64_t, int64_t) {});
}

}  // namespace
}  // namespace tensorops::simd
