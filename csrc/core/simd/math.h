// Vectorised elementary functions, written once against Vec<T> (simd/vec.h) and so
// compiled per ISA with the kernels that include them.
//
// Accuracy goal: within a few ulp of the correctly rounded result over the whole range,
// including the edges torch users hit: exp underflows gradually to subnormals and then to
// 0, overflows to +inf, log(0) = -inf, log(x < 0) = NaN, log of subnormals is exact, and
// NaN in gives NaN out. Range reduction splits ln 2 into a high and a low part (Cody-Waite)
// so that the reduced argument keeps its precision; polynomials are evaluated by Horner's
// rule with fused multiply-adds.
#pragma once

#include <cstdint>
#include <limits>

#include "core/simd/vec.h"

namespace tensorops::simd {

template <class T>
struct MathConstants;

template <>
struct MathConstants<float> {
  static constexpr float exp_hi = 88.72283935546875f;  // above: +inf
  static constexpr float exp_lo = -104.0f;             // below: 0 (after rounding)
  static constexpr float ln2_hi = 0.693359375f;
  static constexpr float ln2_lo = -2.12194440e-4f;
  static constexpr int exp_degree = 7;   // Taylor terms on |r| <= ln2/2: error < 2^-27
  static constexpr int log_degree = 5;   // atanh series terms in z = s^2
  static constexpr float subnormal_scale = 16777216.0f;  // 2^24
  static constexpr float subnormal_shift = 24.0f;
};

template <>
struct MathConstants<double> {
  static constexpr double exp_hi = 709.782712893384;
  static constexpr double exp_lo = -746.0;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr int exp_degree = 13;
  static constexpr int log_degree = 11;
  static constexpr double subnormal_scale = 18014398509481984.0;  // 2^54
  static constexpr double subnormal_shift = 54.0;
};

// e^x.
template <class T>
Vec<T> exp(Vec<T> x) {
  using V = Vec<T>;
  using C = MathConstants<T>;
  const V clamped = min(max(x, V(C::exp_lo)), V(C::exp_hi));
  const V n = round(clamped * V(T(1.4426950408889634)));
  V r = fnmadd(n, V(C::ln2_hi), clamped);
  r = fnmadd(n, V(C::ln2_lo), r);
  // Horner on the Taylor series 1 + r + r^2/2! + ... + r^d/d!.
  T coef = T(1);
  for (int k = 2; k <= C::exp_degree; ++k) coef /= T(k);
  V p(coef);
  for (int k = C::exp_degree - 1; k >= 1; --k) {
    coef *= T(k + 1);
    p = fmadd(p, r, V(coef));
  }
  p = fmadd(p, r, V(T(1)));
  // 2^n in two halves so that neither leaves the normal range (subnormal results round
  // gradually, as libm's do).
  const V n_half = floor(n * V(T(0.5)));
  V result = p * pow2n(n_half) * pow2n(n - n_half);
  result = select(gt(x, V(C::exp_hi)), V(std::numeric_limits<T>::infinity()), result);
  return select(is_nan(x), x, result);
}

// Natural logarithm.
template <class T>
Vec<T> log(Vec<T> x) {
  using V = Vec<T>;
  using C = MathConstants<T>;
  const V tiny(std::numeric_limits<T>::min());
  const auto subnormal = lt(x, tiny) & gt(x, V::zero());
  const V scaled = select(subnormal, x * V(C::subnormal_scale), x);
  V e;
  V m = split_exponent(scaled, &e);
  e = e - select(subnormal, V(C::subnormal_shift), V::zero());
  // Centre the mantissa on 1: m in [sqrt(1/2), sqrt(2)).
  const auto above = gt(m, V(T(1.4142135623730951)));
  m = select(above, m * V(T(0.5)), m);
  e = e + select(above, V(T(1)), V::zero());
  // log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716.
  const V s = (m - V(T(1))) / (m + V(T(1)));
  const V z = s * s;
  V p(T(1) / T(2 * C::log_degree + 1));
  for (int k = C::log_degree - 1; k >= 0; --k) p = fmadd(p, z, V(T(1) / T(2 * k + 1)));
  const V log_m = (s + s) * p;
  V result = fmadd(e, V(C::ln2_hi), fmadd(e, V(C::ln2_lo), log_m));
  // Edges: log(+inf) = +inf, log(0) = -inf, log(x < 0) = NaN, log(NaN) = NaN.
  result = select(eq(x, V(std::numeric_limits<T>::infinity())), x, result);
  result = select(eq(x, V::zero()), V(-std::numeric_limits<T>::infinity()), result);
  return select(lt(x, V::zero()) | is_nan(x), V(std::numeric_limits<T>::quiet_NaN()), result);
}

}  // namespace tensorops::simd
