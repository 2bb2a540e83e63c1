// Vec<T> on AVX-512 (F, DQ, BW, VL): 16 floats or 8 doubles in a zmm register. Masks are
// k-registers, partial loads and stores are masked (no memory touched past the tail), and
// pow2n / split_exponent map onto scalef / getexp / getmant.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace tensorops::simd::x86_avx512 {

template <class T>
struct Vec;

template <>
struct Vec<float> {
  static constexpr int64_t width = 16;
  __m512 v;

  struct Mask {
    __mmask16 m;
    friend Mask operator&(Mask a, Mask b) { return {static_cast<__mmask16>(a.m & b.m)}; }
    friend Mask operator|(Mask a, Mask b) { return {static_cast<__mmask16>(a.m | b.m)}; }
    friend Mask operator~(Mask a) { return {static_cast<__mmask16>(~a.m)}; }
    friend bool any(Mask a) { return a.m != 0; }
    friend bool all(Mask a) { return a.m == 0xffff; }
  };

  Vec() = default;
  Vec(__m512 x) : v(x) {}                   // NOLINT
  Vec(float s) : v(_mm512_set1_ps(s)) {}    // NOLINT
  static Vec zero() { return _mm512_setzero_ps(); }
  static __mmask16 lanes_below(int64_t n) {
    return n >= width ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
  }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load_partial(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(lanes_below(n), p); }
  // Lanes lo <= i < hi.
  static Mask lanes_between(int64_t lo, int64_t hi) {
    lo = lo < 0 ? 0 : lo;
    return {hi <= lo ? static_cast<__mmask16>(0) : static_cast<__mmask16>(lanes_below(hi) & ~lanes_below(lo))};
  }
  // The lanes set in m from p[lane], zero elsewhere; memory of the other lanes is not read.
  static Vec load_masked(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m.m, p); }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void store_partial(float* p, int64_t n) const { _mm512_mask_storeu_ps(p, lanes_below(n), v); }

  friend Vec operator+(Vec a, Vec b) { return _mm512_add_ps(a.v, b.v); }
  friend Vec operator-(Vec a, Vec b) { return _mm512_sub_ps(a.v, b.v); }
  friend Vec operator*(Vec a, Vec b) { return _mm512_mul_ps(a.v, b.v); }
  friend Vec operator/(Vec a, Vec b) { return _mm512_div_ps(a.v, b.v); }
  friend Vec operator-(Vec a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(INT32_MIN))); }
  friend Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a.v, b.v, c.v); }
  friend Vec fnmadd(Vec a, Vec b, Vec c) { return _mm512_fnmadd_ps(a.v, b.v, c.v); }
  friend Vec min(Vec a, Vec b) { return _mm512_min_ps(a.v, b.v); }
  friend Vec max(Vec a, Vec b) { return _mm512_max_ps(a.v, b.v); }
  friend Mask is_nan(Vec a) { return {_mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q)}; }
  friend Mask either_nan(Vec a, Vec b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_UNORD_Q)}; }
  friend Vec minimum(Vec a, Vec b) {
    const __mmask16 nan = _mm512_cmp_ps_mask(a.v, b.v, _CMP_UNORD_Q);
    return _mm512_mask_add_ps(_mm512_min_ps(b.v, a.v), nan, a.v, b.v);
  }
  friend Vec maximum(Vec a, Vec b) {
    const __mmask16 nan = _mm512_cmp_ps_mask(a.v, b.v, _CMP_UNORD_Q);
    return _mm512_mask_add_ps(_mm512_max_ps(b.v, a.v), nan, a.v, b.v);
  }
  friend Vec abs(Vec a) { return _mm512_abs_ps(a.v); }
  // Bitwise sign ? sign : magnitude under the sign-bit mask (one vpternlogd).
  friend Vec copysign(Vec magnitude, Vec sign) {
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_set1_epi32(INT32_MIN), _mm512_castps_si512(magnitude.v),
                                                         _mm512_castps_si512(sign.v), 0xAC));
  }
  // Lane i: table[index_i] for whole-numbered index lanes below lookup_size (one vpermps; a
  // NaN index reads table[0]).
  static constexpr int lookup_size = 16;
  friend Vec lookup(const float* table, Vec index) {
    return _mm512_permutexvar_ps(_mm512_cvtps_epi32(index.v), _mm512_loadu_ps(table));
  }
  friend Vec sqrt(Vec a) { return _mm512_sqrt_ps(a.v); }
  friend Vec floor(Vec a) { return _mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  friend Vec ceil(Vec a) { return _mm512_roundscale_ps(a.v, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }
  friend Vec trunc(Vec a) { return _mm512_roundscale_ps(a.v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  friend Vec round(Vec a) { return _mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  friend Mask lt(Vec a, Vec b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)}; }
  friend Mask le(Vec a, Vec b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ)}; }
  friend Mask gt(Vec a, Vec b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)}; }
  friend Mask ge(Vec a, Vec b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ)}; }
  friend Mask eq(Vec a, Vec b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ)}; }
  friend Mask ne(Vec a, Vec b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_NEQ_UQ)}; }
  friend Vec select(Mask m, Vec a, Vec b) { return _mm512_mask_blend_ps(m.m, b.v, a.v); }
  friend float reduce_add(Vec a) { return _mm512_reduce_add_ps(a.v); }
  // A transposing tree of two-source shuffles and adds over all sixteen vectors at once (30
  // shuffles and 15 adds for the sixteen sums), taking the vectors in the order that leaves
  // v[f]'s sum in lane f. Every sum adds its lanes in reduce_add's pairwise tree (l + l^8,
  // then l + l^4, l + l^2, l + l^1), so it has reduce_add's bits whatever its slot. Sixteen
  // reduce_adds stored lane by lane and reloaded made global average pooling over 7x7 planes
  // on Zen 4 slower than the AVX2 set (0.74x its time there; the reload waits on the stores).
  friend Vec lane_sums(const Vec* v) {
    __m512 in[16], halves[8], quarters[4], pairs[2];
    for (int f = 0; f < 16; ++f) in[4 * (f % 4) + f / 4] = v[f].v;
    for (int i = 0; i < 8; ++i)
      halves[i] = _mm512_add_ps(_mm512_shuffle_f32x4(in[2 * i], in[2 * i + 1], 0x44),
                                _mm512_shuffle_f32x4(in[2 * i], in[2 * i + 1], 0xEE));
    for (int i = 0; i < 4; ++i)
      quarters[i] = _mm512_add_ps(_mm512_shuffle_f32x4(halves[2 * i], halves[2 * i + 1], 0x88),
                                  _mm512_shuffle_f32x4(halves[2 * i], halves[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; ++i)
      pairs[i] = _mm512_add_ps(_mm512_shuffle_ps(quarters[2 * i], quarters[2 * i + 1], 0x44),
                               _mm512_shuffle_ps(quarters[2 * i], quarters[2 * i + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(pairs[0], pairs[1], 0x88), _mm512_shuffle_ps(pairs[0], pairs[1], 0xDD));
  }
  friend float reduce_min(Vec a) { return _mm512_reduce_min_ps(a.v); }
  friend float reduce_max(Vec a) { return _mm512_reduce_max_ps(a.v); }
  friend Vec pow2n(Vec n) { return _mm512_scalef_ps(_mm512_set1_ps(1.0f), n.v); }
  friend Vec scale2n(Vec p, Vec n) { return _mm512_scalef_ps(p.v, n.v); }
  friend Vec split_exponent(Vec x, Vec* e) {
    *e = Vec(_mm512_getexp_ps(x.v));
    return _mm512_getmant_ps(x.v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
  }
  // lo[S] ... lo[15] hi[0] ... hi[S - 1]: the vector S lanes into a pair of adjacent loads
  // (one valignd). AVX-512 only, outside the common interface: elsewhere a cross-lane shift
  // costs more than the unaligned load it replaces (conv/generic.h, depthwise_windows_block).
  template <int S>
  static Vec window(Vec lo, Vec hi) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi.v), _mm512_castps_si512(lo.v), S));
  }
  // Lanes p[0], p[2], ..., p[2 * width - 2] (reads 2 * width elements).
  static Vec load_even(const float* p) { return even_lanes(Vec(_mm512_loadu_ps(p)), Vec(_mm512_loadu_ps(p + 16))); }
  // a0 a2 ... a14 b0 b2 ... b14.
  friend Vec even_lanes(Vec a, Vec b) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(a.v, even, b.v);
  }
  // a1 a3 ... a15 b1 b3 ... b15.
  friend Vec odd_lanes(Vec a, Vec b) {
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return _mm512_permutex2var_ps(a.v, odd, b.v);
  }
  // A two-source permute puts the lanes in order already: the permuted forms are the plain ones.
  friend Vec even_lanes_permuted(Vec a, Vec b) { return even_lanes(a, b); }
  friend Vec odd_lanes_permuted(Vec a, Vec b) { return odd_lanes(a, b); }
  friend Vec unpermute_lanes(Vec v) { return v; }
  // a0 b0 a1 b1 ... : the first width lanes into *lo, the rest into *hi.
  friend void interleave(Vec a, Vec b, Vec* lo, Vec* hi) {
    lo->v = _mm512_permutex2var_ps(a.v, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b.v);
    hi->v = _mm512_permutex2var_ps(a.v, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b.v);
  }
};

template <>
struct Vec<double> {
  static constexpr int64_t width = 8;
  __m512d v;

  struct Mask {
    __mmask8 m;
    friend Mask operator&(Mask a, Mask b) { return {static_cast<__mmask8>(a.m & b.m)}; }
    friend Mask operator|(Mask a, Mask b) { return {static_cast<__mmask8>(a.m | b.m)}; }
    friend Mask operator~(Mask a) { return {static_cast<__mmask8>(~a.m)}; }
    friend bool any(Mask a) { return a.m != 0; }
    friend bool all(Mask a) { return a.m == 0xff; }
  };

  Vec() = default;
  Vec(__m512d x) : v(x) {}                    // NOLINT
  Vec(double s) : v(_mm512_set1_pd(s)) {}     // NOLINT
  static Vec zero() { return _mm512_setzero_pd(); }
  static __mmask8 lanes_below(int64_t n) {
    return n >= width ? static_cast<__mmask8>(0xff) : static_cast<__mmask8>((1u << n) - 1u);
  }
  static Vec load(const double* p) { return _mm512_loadu_pd(p); }
  static Vec load_partial(const double* p, int64_t n) { return _mm512_maskz_loadu_pd(lanes_below(n), p); }
  // width floats from p, each widened to double.
  static Vec load_widened(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
  // Lanes lo <= i < hi.
  static Mask lanes_between(int64_t lo, int64_t hi) {
    lo = lo < 0 ? 0 : lo;
    return {hi <= lo ? static_cast<__mmask8>(0) : static_cast<__mmask8>(lanes_below(hi) & ~lanes_below(lo))};
  }
  // The lanes set in m from p[lane], zero elsewhere; memory of the other lanes is not read.
  static Vec load_masked(const double* p, Mask m) { return _mm512_maskz_loadu_pd(m.m, p); }
  void store(double* p) const { _mm512_storeu_pd(p, v); }
  void store_partial(double* p, int64_t n) const { _mm512_mask_storeu_pd(p, lanes_below(n), v); }

  friend Vec operator+(Vec a, Vec b) { return _mm512_add_pd(a.v, b.v); }
  friend Vec operator-(Vec a, Vec b) { return _mm512_sub_pd(a.v, b.v); }
  friend Vec operator*(Vec a, Vec b) { return _mm512_mul_pd(a.v, b.v); }
  friend Vec operator/(Vec a, Vec b) { return _mm512_div_pd(a.v, b.v); }
  friend Vec operator-(Vec a) { return _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(a.v), _mm512_set1_epi64(INT64_MIN))); }
  friend Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_pd(a.v, b.v, c.v); }
  friend Vec fnmadd(Vec a, Vec b, Vec c) { return _mm512_fnmadd_pd(a.v, b.v, c.v); }
  friend Vec min(Vec a, Vec b) { return _mm512_min_pd(a.v, b.v); }
  friend Vec max(Vec a, Vec b) { return _mm512_max_pd(a.v, b.v); }
  friend Mask is_nan(Vec a) { return {_mm512_cmp_pd_mask(a.v, a.v, _CMP_UNORD_Q)}; }
  friend Mask either_nan(Vec a, Vec b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_UNORD_Q)}; }
  friend Vec minimum(Vec a, Vec b) {
    const __mmask8 nan = _mm512_cmp_pd_mask(a.v, b.v, _CMP_UNORD_Q);
    return _mm512_mask_add_pd(_mm512_min_pd(b.v, a.v), nan, a.v, b.v);
  }
  friend Vec maximum(Vec a, Vec b) {
    const __mmask8 nan = _mm512_cmp_pd_mask(a.v, b.v, _CMP_UNORD_Q);
    return _mm512_mask_add_pd(_mm512_max_pd(b.v, a.v), nan, a.v, b.v);
  }
  friend Vec abs(Vec a) { return _mm512_abs_pd(a.v); }
  friend Vec copysign(Vec magnitude, Vec sign) {
    return _mm512_castsi512_pd(_mm512_ternarylogic_epi64(_mm512_set1_epi64(INT64_MIN), _mm512_castpd_si512(magnitude.v),
                                                         _mm512_castpd_si512(sign.v), 0xAC));
  }
  friend Vec sqrt(Vec a) { return _mm512_sqrt_pd(a.v); }
  friend Vec floor(Vec a) { return _mm512_roundscale_pd(a.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  friend Vec ceil(Vec a) { return _mm512_roundscale_pd(a.v, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }
  friend Vec trunc(Vec a) { return _mm512_roundscale_pd(a.v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  friend Vec round(Vec a) { return _mm512_roundscale_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  friend Mask lt(Vec a, Vec b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_LT_OQ)}; }
  friend Mask le(Vec a, Vec b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_LE_OQ)}; }
  friend Mask gt(Vec a, Vec b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ)}; }
  friend Mask ge(Vec a, Vec b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_GE_OQ)}; }
  friend Mask eq(Vec a, Vec b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_EQ_OQ)}; }
  friend Mask ne(Vec a, Vec b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_NEQ_UQ)}; }
  friend Vec select(Mask m, Vec a, Vec b) { return _mm512_mask_blend_pd(m.m, b.v, a.v); }
  friend double reduce_add(Vec a) { return _mm512_reduce_add_pd(a.v); }
  friend double reduce_mul(Vec a) { return _mm512_reduce_mul_pd(a.v); }
  // The float version's tree for eight vectors: 256-bit halves, 128-bit quarters, lanes.
  friend Vec lane_sums(const Vec* v) {
    __m512d in[8], halves[4], quarters[2];
    for (int f = 0; f < 8; ++f) in[4 * (f % 2) + f / 2] = v[f].v;
    for (int i = 0; i < 4; ++i)
      halves[i] = _mm512_add_pd(_mm512_shuffle_f64x2(in[2 * i], in[2 * i + 1], 0x44),
                                _mm512_shuffle_f64x2(in[2 * i], in[2 * i + 1], 0xEE));
    for (int i = 0; i < 2; ++i)
      quarters[i] = _mm512_add_pd(_mm512_shuffle_f64x2(halves[2 * i], halves[2 * i + 1], 0x88),
                                  _mm512_shuffle_f64x2(halves[2 * i], halves[2 * i + 1], 0xDD));
    return _mm512_add_pd(_mm512_shuffle_pd(quarters[0], quarters[1], 0x00),
                         _mm512_shuffle_pd(quarters[0], quarters[1], 0xFF));
  }
  friend double reduce_min(Vec a) { return _mm512_reduce_min_pd(a.v); }
  friend double reduce_max(Vec a) { return _mm512_reduce_max_pd(a.v); }
  friend Vec pow2n(Vec n) { return _mm512_scalef_pd(_mm512_set1_pd(1.0), n.v); }
  friend Vec scale2n(Vec p, Vec n) { return _mm512_scalef_pd(p.v, n.v); }
  friend Vec split_exponent(Vec x, Vec* e) {
    *e = Vec(_mm512_getexp_pd(x.v));
    return _mm512_getmant_pd(x.v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
  }
  // lo[S] ... lo[7] hi[0] ... hi[S - 1] (see the float version).
  template <int S>
  static Vec window(Vec lo, Vec hi) {
    return _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(hi.v), _mm512_castpd_si512(lo.v), S));
  }
  // Lanes p[0], p[2], ..., p[2 * width - 2] (reads 2 * width elements).
  static Vec load_even(const double* p) { return even_lanes(Vec(_mm512_loadu_pd(p)), Vec(_mm512_loadu_pd(p + 8))); }
  // a0 a2 a4 a6 b0 b2 b4 b6.
  friend Vec even_lanes(Vec a, Vec b) {
    return _mm512_permutex2var_pd(a.v, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), b.v);
  }
  friend Vec odd_lanes(Vec a, Vec b) {
    return _mm512_permutex2var_pd(a.v, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b.v);
  }
  // A two-source permute puts the lanes in order already: the permuted forms are the plain ones.
  friend Vec even_lanes_permuted(Vec a, Vec b) { return even_lanes(a, b); }
  friend Vec odd_lanes_permuted(Vec a, Vec b) { return odd_lanes(a, b); }
  friend Vec unpermute_lanes(Vec v) { return v; }
  // a0 b0 a1 b1 ... : the first width lanes into *lo, the rest into *hi.
  friend void interleave(Vec a, Vec b, Vec* lo, Vec* hi) {
    lo->v = _mm512_permutex2var_pd(a.v, _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), b.v);
    hi->v = _mm512_permutex2var_pd(a.v, _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15), b.v);
  }
};

}  // namespace tensorops::simd::x86_avx512

// ---- Appended for pointwise: streaming (non-temporal) stores -------------------------------
// For outputs far larger than the caches: the line is written without being read first and
// without displacing cached data. p must be aligned to the vector width (64 bytes); callers
// must fence (a full memory fence) after their last streaming store, before other threads read the data.
namespace tensorops::simd::x86_avx512 {
inline void store_stream(float* p, Vec<float> v) { _mm512_stream_ps(p, v.v); }
inline void store_stream(double* p, Vec<double> v) { _mm512_stream_pd(p, v.v); }
}  // namespace tensorops::simd::x86_avx512

// ---- Appended for pointwise: reciprocal estimate ------------------------------------------------
// 1/d to a relative error below 2^-14 (rcp14), for callers that refine it with Newton steps
// instead of paying for a division.
namespace tensorops::simd::x86_avx512 {
inline Vec<float> reciprocal_estimate(Vec<float> d) { return _mm512_rcp14_ps(d.v); }
}  // namespace tensorops::simd::x86_avx512

// ---- 16 x 16 float transpose (GEMM packing, depthwise convolution on small planes) --------
// Columns 0..15 of `rows` (<= 16) rows, `stride` apart, as 16 vectors: col[j] lane i =
// src[i * stride + j] for j < cols (lanes past `rows` and columns past `cols` are 0, and
// memory past them is not read). Four rounds of 16 shuffles: pairs of rows interleave, then
// 4x4 blocks transpose inside each 128-bit lane, then the 128-bit blocks transpose across
// lanes; about a third of a cycle per element instead of a scalar load and store each.
namespace tensorops::simd::x86_avx512 {
[[gnu::always_inline]] inline void transpose16(const float* src, int64_t stride, int rows, int cols, __m512 col[16]) {
  __m512 r[16], t[16], u[16];
  const __mmask16 loaded = cols >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << cols) - 1u);
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(loaded, src + i * stride) : _mm512_setzero_ps();
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4i + c], 128-bit lane q: column 4q + c of rows 4i..4i+3.
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 ab_lo = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), ab_hi = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
    const __m512 cd_lo = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44),
                 cd_hi = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    col[c] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0x88);
    col[4 + c] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0xDD);
    col[8 + c] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0x88);
    col[12 + c] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0xDD);
  }
}
}  // namespace tensorops::simd::x86_avx512

// ---- Half<T>: 256-bit lanes for sweeps that stream from beyond L1 -------------------------
// Zen 4 carries out each 512-bit load as two 256-bit halves. A plain sum over 64 MB in
// memory took 0.80-0.85x the time with 256-bit loads into 256-bit accumulators than with
// 512-bit ones, over 8 MB in L3 0.92x (1 thread, rows 64-byte aligned or not); torch's sum,
// which reads 256 bits at a time, had been 1.1x faster than ours. Sweeps that do more per
// vector gained nothing: the shifted sums behind var and the norms' statistics measured
// 0.97-1.06x. Where a core loads 64 bytes a cycle, 256-bit loads still keep up with L2 and
// beyond. Only what the plain sums and the single-row dot products (gemm's rowdot_tile) need
// (loads, adds, fused multiply-adds, and join(lo, hi), the full Vec with lo in its low lanes),
// and what the depthwise column walk needs to run a last strip of at most half a vector at
// half the cost (masked loads and stores, the low half of a full vector).
namespace tensorops::simd::x86_avx512 {
template <class T>
struct Half;

template <>
struct Half<float> {
  static constexpr int64_t width = 8;
  __m256 v;
  struct Mask {
    __mmask8 m;
  };
  Half() = default;
  Half(__m256 x) : v(x) {}  // NOLINT
  // The low half of a full vector (no instruction).
  static Half lower(Vec<float> x) { return _mm512_castps512_ps256(x.v); }
  static Half zero() { return _mm256_setzero_ps(); }
  static __mmask8 lanes_below(int64_t n) {
    return n >= width ? static_cast<__mmask8>(0xff) : n <= 0 ? static_cast<__mmask8>(0) : static_cast<__mmask8>((1u << n) - 1u);
  }
  static Mask lanes_between(int64_t lo, int64_t hi) {
    return {hi <= lo ? static_cast<__mmask8>(0) : static_cast<__mmask8>(lanes_below(hi) & ~lanes_below(lo))};
  }
  static Half load(const float* p) { return _mm256_loadu_ps(p); }
  static Half load_masked(const float* p, Mask m) { return _mm256_maskz_loadu_ps(m.m, p); }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void store_partial(float* p, int64_t n) const { _mm256_mask_storeu_ps(p, lanes_below(n), v); }
  friend Half operator+(Half a, Half b) { return _mm256_add_ps(a.v, b.v); }
  friend Half fmadd(Half a, Half b, Half c) { return _mm256_fmadd_ps(a.v, b.v, c.v); }
  friend Vec<float> join(Half lo, Half hi) { return _mm512_insertf32x8(_mm512_castps256_ps512(lo.v), hi.v, 1); }
};

template <>
struct Half<double> {
  static constexpr int64_t width = 4;
  __m256d v;
  struct Mask {
    __mmask8 m;
  };
  Half() = default;
  Half(__m256d x) : v(x) {}  // NOLINT
  static Half lower(Vec<double> x) { return _mm512_castpd512_pd256(x.v); }
  static Half zero() { return _mm256_setzero_pd(); }
  static __mmask8 lanes_below(int64_t n) {
    return n >= width ? static_cast<__mmask8>(0xf) : n <= 0 ? static_cast<__mmask8>(0) : static_cast<__mmask8>((1u << n) - 1u);
  }
  static Mask lanes_between(int64_t lo, int64_t hi) {
    return {hi <= lo ? static_cast<__mmask8>(0) : static_cast<__mmask8>(lanes_below(hi) & ~lanes_below(lo))};
  }
  static Half load(const double* p) { return _mm256_loadu_pd(p); }
  static Half load_masked(const double* p, Mask m) { return _mm256_maskz_loadu_pd(m.m, p); }
  void store(double* p) const { _mm256_storeu_pd(p, v); }
  void store_partial(double* p, int64_t n) const { _mm256_mask_storeu_pd(p, lanes_below(n), v); }
  friend Half operator+(Half a, Half b) { return _mm256_add_pd(a.v, b.v); }
  friend Half fmadd(Half a, Half b, Half c) { return _mm256_fmadd_pd(a.v, b.v, c.v); }
  friend Vec<double> join(Half lo, Half hi) { return _mm512_insertf64x4(_mm512_castpd256_pd512(lo.v), hi.v, 1); }
};
}  // namespace tensorops::simd::x86_avx512
