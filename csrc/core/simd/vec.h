// Vec<T>: the portable SIMD vector that kernel bodies (csrc/<family>/generic.h) are written
// against, for T = float or double.
//
// A per-ISA translation unit is compiled with -DTENSOROPS_ISA_NS=<isa> and that ISA's
// flags; this header then pulls in the matching implementation and names it
// `tensorops::simd::Vec`. Every implementation lives in its own namespace
// (simd::generic, simd::x86_avx2, simd::x86_avx512), and everything a kernel builds from
// it lives in the family's <isa> namespace, so the three compilations of one kernel body
// never meet at link time (no ODR clash between code built with different flags).
//
// The interface, identical in every ISA (a, b, c: Vec; m: Mask; p: pointer; n: lane count):
//   Vec<T>::width                      lanes per vector (generic 16 bytes, avx2 32, avx512 64)
//   Vec<T>(scalar), Vec<T>::zero()     broadcast
//   Vec<T>::load(p), load_partial(p, n)   (lanes >= n read as 0 and never touch memory)
//   Vec<T>::load_masked(p, m)          the lanes set in m from p, the others 0 and untouched
//   Vec<double>::load_widened(p)       width floats from p, each widened to double
//   Vec<T>::lanes_between(lo, hi)      Mask of lanes lo <= i < hi
//   Vec<T>::load_even(p)               p[0], p[2], ..., p[2*width - 2]
//   even_lanes(a, b)                   a0 a2 ... b0 b2 ... (load_even of a vector pair)
//   odd_lanes(a, b)                    a1 a3 ... b1 b3 ...
//   even_lanes_permuted(a, b), odd_lanes_permuted(a, b)
//                                      the same lanes in the order the ISA's cheapest shuffle
//                                      leaves them, one fixed permutation for both; lane-wise
//                                      arithmetic on them, then unpermute_lanes(v), gives what
//                                      even_lanes / odd_lanes would have for one shuffle per
//                                      result instead of one per operand (AVX2: half of them)
//   interleave(a, b, &lo, &hi)         a0 b0 a1 b1 ... split into two vectors
//   v.store(p), v.store_partial(p, n)
//   + - * / and unary -, fmadd(a, b, c) = a*b + c, fnmadd(a, b, c) = c - a*b
//   mul_add(a, b, c) = a*b + c, fused where the ISA has FMA (the hot loops of GEMM and
//                                      convolution; fmadd is fused everywhere)
//   min(a, b), max(a, b)               x86 semantics: b where either is NaN (fast, for
//                                      clamps whose NaN handling the caller arranges)
//   minimum(a, b), maximum(a, b)       NaN-propagating, as torch.minimum / torch.maximum; a on a tie (-0 vs 0)
//   abs, sqrt, floor, ceil, trunc, round (half to even, as torch.round)
//   copysign(magnitude, sign)          magnitude's bits with sign's sign bit
//   lookup(table, index), Vec<T>::lookup_size
//                                      lane i = table[index_i] for whole-numbered index lanes
//                                      below lookup_size (16 floats in one AVX-512 register, 8
//                                      with AVX2, 16 generic; float only on x86); NaN reads
//                                      table[0]
//   lt, le, gt, ge, eq, ne, is_nan -> Mask;  select(m, a, b) = m ? a : b
//   either_nan(a, b) -> Mask           a or b NaN (one compare for two vectors)
//   Mask: &, |, ~, any(m), all(m)
//   reduce_add, reduce_mul, reduce_min, reduce_max (over lanes; min/max ignore nothing: NaN lanes give
//                                      an unspecified lane, callers test is_nan first)
//   lane_sums(v)                       for an array of width vectors: lane i = the sum of v[i]'s
//                                      lanes (AVX2: one tree of horizontal adds for all of
//                                      them; each sum's order is the same in every lane)
//   pow2n(n)                           2^n for integral-valued n in [-126, 127] (float) or
//                                      [-1022, 1023] (double)
//   scale2n(p, n)                      p * 2^n for integral n over the whole exponent range,
//                                      subnormal results rounded once (avx512) or twice
//   split_exponent(x, &e)              mantissa m in [1, 2) with x = m * 2^e, for finite x > 0
#pragma once

#if !defined(TENSOROPS_ISA_ID)
#error "simd/vec.h is included only from per-ISA kernel files (csrc/<family>/<isa>.cc)"
#endif

#if TENSOROPS_ISA_ID == 2
#include "core/simd/x86_avx512.h"
#elif TENSOROPS_ISA_ID == 1
#include "core/simd/x86_avx2.h"
#else
#include "core/simd/generic.h"
#endif

namespace tensorops::simd {
template <class T>
using Vec = TENSOROPS_ISA_NS::Vec<T>;

// Lanes [lo, hi) from p[lane], zero elsewhere; memory of the other lanes is not read.
template <class T>
inline Vec<T> load_lanes(const T* p, int64_t lo, int64_t hi) {
  return Vec<T>::load_masked(p, Vec<T>::lanes_between(lo, hi));
}

#if TENSOROPS_ISA_ID >= 1
// The ISA's float register transpose (16 x 16 with AVX-512, 8 x 8 with AVX2; GEMM packing of
// rows or columns that lie along memory, the depthwise lane kernels): col[j] lane i =
// src[i * stride + j] for i < rows, j < cols, width each (zero past them; memory past them
// is not read).
[[gnu::always_inline]] inline void transpose_columns(const float* src, int64_t stride, int rows, int cols,
                                                     Vec<float>* col) {
#if TENSOROPS_ISA_ID == 2
  __m512 c[16];
  x86_avx512::transpose16(src, stride, rows, cols, c);
#else
  __m256 c[8];
  x86_avx2::transpose8(src, stride, rows, cols, c);
#endif
  for (int i = 0; i < int(Vec<float>::width); ++i) col[i] = c[i];
}
#endif

// The generic build targets baseline x86-64 / arm64 code, where fmadd is a per-lane std::fma
// (a libm call without hardware FMA), so there the hot loops multiply and add.
template <class V>
inline V mul_add(V a, V b, V c) {
#if TENSOROPS_ISA_ID == 0
  return a * b + c;
#else
  return fmadd(a, b, c);
#endif
}
}  // namespace tensorops::simd
