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
#include <type_traits>

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
  static constexpr int exp_degree = 7;   // Taylor terms on |r| <= ln2/2 (expm1): error < 2^-27
  // exp: e^r = 1 + r + r^2 (c2 + c3 r + ... + c6 r^4) on |r| <= ln2/2, c2..c6 fitted by
  // tools/fit_exp.py (minimax relative error by Lawson's iteration, c0 = c1 = 1 exact). Relative
  // error of the polynomial 3e-9; float exp within 0.88 ulp on a dense sweep of [-87, 0],
  // against 0.93 for the degree-7 Taylor polynomial it replaced, with one multiply-add less
  // on exp's dependency chain (softmax and sigmoid are bound by that chain's latency).
  static constexpr int exp_fitted_count = 5;
  static constexpr float exp_fitted[exp_fitted_count] = {1.381451963e-03f, 8.368743584e-03f, 4.166839272e-02f,
                                                         1.666652113e-01f, 4.999999404e-01f};
  static constexpr int log_degree = 5;   // atanh series terms in z = s^2
  static constexpr float subnormal_scale = 16777216.0f;  // 2^24
  static constexpr float subnormal_shift = 24.0f;
  static constexpr float pow2n_min = -126.0f, pow2n_max = 127.0f;  // 2^n normal
  static constexpr float normal_exp_lo = -87.3f;                     // e^x normal above
};

template <>
struct MathConstants<double> {
  static constexpr double exp_hi = 709.782712893384;
  static constexpr double exp_lo = -746.0;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr int exp_degree = 13;  // Taylor terms on |r| <= ln2/2 (expm1)
  // exp: as for float, c2..c11 fitted (tools/fit_exp.py --double): relative error of the
  // polynomial 3.6e-18 (0.02 ulp), as Taylor to degree 13, with two multiply-adds less.
  static constexpr int exp_fitted_count = 10;
  static constexpr double exp_fitted[exp_fitted_count] = {
      2.500002078952665e-08, 2.7630306802980594e-07, 2.7557586800370822e-06, 2.4801492947987373e-05,
      0.0001984126950577352, 0.0013888888943761658,  0.00833333333349498,    0.04166666666652972,
      0.1666666666666641,    0.5000000000000011};
  static constexpr int log_degree = 11;
  static constexpr double subnormal_scale = 18014398509481984.0;  // 2^54
  static constexpr double subnormal_shift = 54.0;
  static constexpr double pow2n_min = -1022.0, pow2n_max = 1023.0;
  static constexpr double normal_exp_lo = -708.0;
};

// p * 2^n where 2^n is a normal number: where scale2n is one instruction (AVX-512's scalef)
// that, elsewhere one multiply by 2^n instead of scale2n's two halves (a floor, two powers
// and two multiplies), which only results below the normal range need. In sigmoid this took
// AVX2 from 9.0 to 6.8 ms on 8 Mi floats: its exp is one long dependency chain of ~45
// operations per vector, and the scheduler held only about four vectors' chains at a time.
// (Evaluating the polynomial by Estrin's scheme instead of Horner's, shorter in latency,
// gained nothing more there and cost softmax 5-20%: more operations per vector.)
template <class T>
Vec<T> scale2n_normal(Vec<T> p, Vec<T> n) {
#if TENSOROPS_ISA_ID == 2
  return scale2n(p, n);
#else
  return p * pow2n(n);
#endif
}

// How exp_of_clamped scales by 2^n. full: over the whole exponent range, subnormal
// results included (scale2n). normal: the caller keeps x at or above -87.3 (float) / -708
// (double), where 2^n is a normal number (scale2n_normal). checked: one multiply when every
// lane's 2^n is normal, else full; typical inputs never need more (AVX2 exp on 8 Mi floats
// 6.8 -> 5.9 ms). The per-vector test cost softmax's exp-and-sum loop 10-20%, so softmax
// decides once per row from the row's range instead (reduce/generic.h, softmax_range_row).
enum class Scaling { full, normal, checked };

// e^x for x already clamped to [exp_lo, exp_hi]: Cody-Waite reduction x = n ln2 + r with
// |r| <= ln2 / 2, Horner on a fitted polynomial for e^r, then one scaling by 2^n.
template <class T, Scaling S = Scaling::full>
Vec<T> exp_of_clamped(Vec<T> x) {
  using V = Vec<T>;
  using C = MathConstants<T>;
  const V n = round(x * V(T(1.4426950408889634)));
  V r = fnmadd(n, V(C::ln2_hi), x);
  r = fnmadd(n, V(C::ln2_lo), r);
  V p(C::exp_fitted[0]);
  for (int k = 1; k < C::exp_fitted_count; ++k) p = fmadd(p, r, V(C::exp_fitted[k]));
  p = fmadd(p, r, V(T(1)));
  const V e_r = fmadd(p, r, V(T(1)));
  if constexpr (S == Scaling::normal) return scale2n_normal(e_r, n);
#if TENSOROPS_ISA_ID != 2
  if constexpr (S == Scaling::checked)
    if (all(ge(n, V(C::pow2n_min)) & le(n, V(C::pow2n_max)))) return e_r * pow2n(n);
#endif
  return scale2n(e_r, n);
}

// e^x.
template <class T>
Vec<T> exp(Vec<T> x) {
  using V = Vec<T>;
  using C = MathConstants<T>;
  V result = exp_of_clamped<T, Scaling::checked>(min(max(x, V(C::exp_lo)), V(C::exp_hi)));
  result = select(gt(x, V(C::exp_hi)), V(std::numeric_limits<T>::infinity()), result);
  return select(is_nan(x), x, result);
}

// e^x for x <= 0 or NaN, as in softmax, log-sum-exp (x - max) and sigmoid (-|x|): no overflow
// to guard. NaN flows through (x86 max returns its second operand when one is NaN).
// kNormal: x is clamped at normal_exp_lo, so 2^n is normal (Scaling::normal); the caller
// knows x is above it (softmax's row range) or discards the lanes below (sigmoid).
template <class T, bool kNormal = false>
Vec<T> exp_nonpositive(Vec<T> x) {
  if constexpr (kNormal) return exp_of_clamped<T, Scaling::normal>(max(Vec<T>(MathConstants<T>::normal_exp_lo), x));
  else return exp_of_clamped(max(Vec<T>(MathConstants<T>::exp_lo), x));
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

// ---- Functions built on exp and log (pointwise activations) --------------------------------
//
// expm1 and log1p keep full relative accuracy near 0, where exp(x) - 1 and log(1 + x) would
// cancel; tanh, sigmoid and the activations are written on top of them so that small
// arguments stay accurate too. erf and gelu for float look their polynomials up by interval (below).

namespace tensorops::simd {

template <class T>
struct Expm1Limits;

template <>
struct Expm1Limits<float> {
  static constexpr float saturate_low = -20.0f;  // e^x - 1 rounds to -1 below
  static constexpr float use_exp_above = 20.0f;  // e^x - 1 rounds to e^x above
  static constexpr float tanh_saturate = 9.5f;   // tanh rounds to +-1 beyond
};

template <>
struct Expm1Limits<double> {
  static constexpr double saturate_low = -40.0;
  static constexpr double use_exp_above = 40.0;
  static constexpr double tanh_saturate = 19.5;
};

// e^x - 1. Reduction x = n ln2 + r, |r| <= ln2/2, then e^x - 1 = 2^n expm1(r) + (2^n - 1):
// both terms are exact or nearly so for the small n that matter (|x| < 1 has n in {-1, 0, 1}),
// so there is no cancellation. Large positive x is handed to exp (the -1 no longer matters).
template <class T>
Vec<T> expm1(Vec<T> x) {
  using V = Vec<T>;
  using C = MathConstants<T>;
  using L = Expm1Limits<T>;
  const V clamped = min(max(x, V(L::saturate_low)), V(L::use_exp_above));
  const V n = round(clamped * V(T(1.4426950408889634)));
  V r = fnmadd(n, V(C::ln2_hi), clamped);
  r = fnmadd(n, V(C::ln2_lo), r);
  // expm1(r) = r + r^2 (1/2! + r/3! + ... + r^(d-2)/d!).
  T coef = T(1);
  for (int k = 2; k <= C::exp_degree; ++k) coef /= T(k);
  V q(coef);
  for (int k = C::exp_degree - 1; k >= 2; --k) {
    coef *= T(k + 1);
    q = fmadd(q, r, V(coef));
  }
  const V p = fmadd(r * r, q, r);
  const V scale = pow2n(n);
  V result = fmadd(p, scale, scale - V(T(1)));
  const auto big = gt(x, V(L::use_exp_above));
  if (any(big)) result = select(big, exp(x), result);
  // expm1(-0) is -0 (the reduction above loses the sign), and so are tanh, elu and selu of -0.
  result = select(eq(x, V::zero()), x, result);
  return select(is_nan(x), x, result);
}

// log(1 + x). With u = 1 + x rounded, log(u) * x / (u - 1) corrects the rounding of u to
// first order (Goldberg), which keeps a few-ulp relative error for every x > -1.
template <class T>
Vec<T> log1p(Vec<T> x) {
  using V = Vec<T>;
  const V one(T(1));
  const V u = x + one;
  V result = log(u) * (x / (u - one));
  result = select(eq(u, one), x, result);
  return select(eq(x, V(std::numeric_limits<T>::infinity())), x, result);
}

// tanh(x) = e / (e + 2) with e = expm1(2x): no cancellation for small |x|, and saturated to
// +-1 where the correctly rounded result is +-1 anyway.
template <class T>
Vec<T> tanh(Vec<T> x) {
  using V = Vec<T>;
  const V limit(Expm1Limits<T>::tanh_saturate);
  const V clamped = min(max(x, -limit), limit);
  const V e = expm1(clamped + clamped);
  return select(is_nan(x), x, e / (e + V(T(2))));
}

// 1/d for d in [1, 2^100]. AVX-512 float: the 14-bit hardware estimate and one Newton step
// (within an ulp, 1/1 exactly 1, several times cheaper than a division). Elsewhere a
// division: AVX2's estimate has 12 bits, one Newton step left 1/1 at 0.99999994 (sigmoid of
// large x one ulp below torch's 1.0, and 0.69 ulp off on average against 0.14), and on a
// long chain of operations the division, one instruction for three, was even faster: AVX2
// sigmoid on 8 Mi floats 6.8 -> 6.3 ms.
template <class T>
Vec<T> reciprocal_of_moderate(Vec<T> d) {
#if TENSOROPS_ISA_ID == 2
  if constexpr (std::is_same_v<T, float>) {
    const Vec<float> y = reciprocal_estimate(d);
    return fmadd(y, fnmadd(d, y, Vec<float>(1.0f)), y);
  }
#endif
  return Vec<T>(T(1)) / d;
}

// 1 / (1 + e^-x) from e = e^-|x| <= 1, which never overflows: q = 1 / (1 + e) is the answer
// for x >= 0 and e q for x < 0 (both within a few ulp). Below x = -87.3 (float) / -708
// (double) the result would be subnormal; it is flushed to 0 there (torch gives subnormals
// just below that point and 0 further down), where the exp that serves the normal range
// would hold it at the smallest normal result for every x below. A NaN x runs through the
// arithmetic as NaN (exp_nonpositive keeps it, compares with it are false): no select for it.
template <class T>
Vec<T> sigmoid(Vec<T> x) {
  using V = Vec<T>;
  const V e = exp_nonpositive<T, true>(copysign(x, V(T(-0.0))));  // -|x| (AVX-512: one instruction)
  const V q = reciprocal_of_moderate(V(T(1)) + e);
  const V s = select(lt(x, V::zero()), e * q, q);
  return select(lt(x, V(MathConstants<T>::normal_exp_lo)), V::zero(), s);
}

// erf for float by table. erf(z)/2 on 0 <= z < 4 + width/2 (past 3.92 float erf rounds to 1)
// is cut into Vec<float>::lookup_size equal pieces centred on the whole positions s = z / width,
// width = 4 / (lookup_size - 1); on the piece nearest s it is a polynomial in t = s - piece,
// |t| <= 1/2, whose coefficients the ISA's in-register table lookup fetches per lane (one
// vpermps each). Fitted by tools/fit_erf.py (minimax: absolute error on every piece but the
// first, relative on the first, whose constant term is exactly 0 so that erf keeps its relative
// accuracy for tiny z); float erf within 2.3 ulp, gelu within 1.3e-7 (1 + |gelu|).
// It replaces a pair of fitted polynomials evaluated in every lane, a degree-5 one in z^2 below
// 0.9 and a degree-12 erfc beyond (19 multiply-adds against 5 or 6 here): Zen 4, gelu over
// 16 Mi floats on one thread ran compute-bound at 47% of copy bandwidth.
template <int N>
struct ErfTable;

template <>
struct ErfTable<16> {
  static constexpr int degree = 5;
  static constexpr float inverse_width = 3.75f;  // (16 - 1) / 4
  static constexpr float last_position = 15.499999f;  // the float below 15.5
  alignas(64) static constexpr float coefficients[degree + 1][16] = {
      {7.473741425e-05f, 5.082575080e-05f, -1.521655122e-06f, -4.021946370e-05f, -4.421062840e-05f, -2.439091259e-05f, -3.095437478e-06f, 7.465114777e-06f, 8.318985238e-06f, 5.326792689e-06f, 2.498237791e-06f, 9.216726653e-07f, 2.762261886e-07f, 6.845431244e-08f, 1.418315243e-08f, 2.475128325e-09f},
      {7.915585343e-07f, 3.346513258e-04f, 4.606400616e-04f, 3.436326515e-04f, 1.185107540e-04f, -5.802946544e-05f, -1.236413664e-04f, -1.077480920e-04f, -6.546700752e-05f, -3.084529089e-05f, -1.174933641e-05f, -3.695906116e-06f, -9.721836705e-07f, -2.155824177e-07f, -4.052703062e-08f, -6.484866866e-09f},
      {-3.566396888e-03f, -2.849007724e-03f, -1.156850136e-03f, 5.264586071e-04f, 1.458027633e-03f, 1.540338271e-03f, 1.135851373e-03f, 6.528904778e-04f, 3.050006344e-04f, 1.182188134e-04f, 3.847431071e-05f, 1.059333772e-05f, 2.480248440e-06f, 4.956104362e-07f, 8.474975743e-08f, 1.242740133e-08f},
      {1.104626257e-08f, -9.964063764e-03f, -1.609979570e-02f, -1.692391187e-02f, -1.371711586e-02f, -9.041259065e-03f, -4.962462001e-03f, -2.296992578e-03f, -9.034270188e-04f, -3.033959656e-04f, -8.728719695e-05f, -2.156460141e-05f, -4.582879683e-06f, -8.389076811e-07f, -1.324072940e-07f, -1.803355509e-08f},
      {1.504505575e-01f, 1.401233822e-01f, 1.132038385e-01f, 7.933144271e-02f, 4.822399840e-02f, 2.542814799e-02f, 1.163054071e-02f, 4.614436999e-03f, 1.588076004e-03f, 4.740865261e-04f, 1.227659232e-04f, 2.757605216e-05f, 5.373046861e-06f, 9.081212511e-07f, 1.331380162e-07f, 1.693152285e-08f},
      {0.000000000e+00f, 1.469591260e-01f, 2.746496201e-01f, 3.710504770e-01f, 4.342859983e-01f, 4.703267813e-01f, 4.881742001e-01f, 4.958530366e-01f, 4.987235069e-01f, 4.996557534e-01f, 4.999187887e-01f, 4.999832511e-01f, 4.999969900e-01f, 4.999995232e-01f, 4.999999404e-01f, 5.000000000e-01f},
  };
};

template <>
struct ErfTable<8> {
  static constexpr int degree = 6;
  static constexpr float inverse_width = 1.75f;  // (8 - 1) / 4
  static constexpr float last_position = 7.4999995f;  // the float below 7.5
  alignas(64) static constexpr float coefficients[degree + 1][8] = {
      {-3.829048946e-04f, -7.742687594e-04f, 2.714685397e-04f, 1.839484466e-04f, -5.007117943e-05f, -2.142619087e-05f, -2.100116944e-06f, -8.039414467e-08f},
      {3.647905774e-03f, -3.616176837e-04f, -1.777609461e-03f, 1.117027423e-04f, 3.033390094e-04f, 5.839442383e-05f, 4.089461981e-06f, 1.250512582e-07f},
      {-5.384557517e-05f, 9.695399553e-03f, 1.206845976e-03f, -2.617984544e-03f, -9.194149170e-04f, -1.086971315e-04f, -5.507306923e-06f, -1.290920153e-07f},
      {-3.508424386e-02f, -8.788323030e-03f, 1.531951316e-02f, 9.062661789e-03f, 1.785115222e-03f, 1.529441797e-04f, 6.154672064e-06f, 1.202079858e-07f},
      {-2.681575495e-07f, -7.594494522e-02f, -5.702964589e-02f, -1.671621203e-02f, -2.266720869e-03f, -1.499796927e-04f, -4.959368198e-06f, -8.303537413e-08f},
      {3.223940432e-01f, 2.325824201e-01f, 8.732648194e-02f, 1.706437580e-02f, 1.735473750e-03f, 9.186912939e-05f, 2.531949349e-06f, 3.635020818e-08f},
      {0.000000000e+00f, 2.904898226e-01f, 4.469792247e-01f, 4.923324287e-01f, 4.993864000e-01f, 4.999733567e-01f, 4.999993742e-01f, 5.000000000e-01f},
  };
};

// erf(z)/2 for z = position * width >= 0 (inf and past the table: 1/2; NaN gives NaN).
inline Vec<float> half_erf_at(Vec<float> position) {
  using V = Vec<float>;
  using Table = ErfTable<V::lookup_size>;
  // Just below the last piece's far edge, so that rounding keeps to the table; min returns
  // its second operand for NaN, which then runs through as t.
  const V s = min(V(Table::last_position), position);
  const V piece = round(s);
  const V t = s - piece;
  V p = lookup(Table::coefficients[0], piece);
  for (int k = 1; k <= Table::degree; ++k) p = fmadd(p, t, lookup(Table::coefficients[k], piece));
  return p;
}

inline Vec<float> erf(Vec<float> x) {
  using V = Vec<float>;
  const V half = half_erf_at(abs(x) * V(ErfTable<V::lookup_size>::inverse_width));
  return copysign(half + half, x);
}

// gelu(x) = x Phi(x) = x (1/2 + erf(x / sqrt 2) / 2) for float: torch's x/2 (1 + erf) up to
// rounding, with its values at the edges: +inf gives inf, -inf gives -inf * 0 = NaN, x << 0
// gives -0 (x times +0).
inline Vec<float> gelu(Vec<float> x) {
  using V = Vec<float>;
  constexpr float inverse_width = ErfTable<V::lookup_size>::inverse_width * 0.70710678118654752440f;
  const V half = half_erf_at(abs(x) * V(inverse_width));
  return x * (V(0.5f) + copysign(half, x));
}

}  // namespace tensorops::simd
