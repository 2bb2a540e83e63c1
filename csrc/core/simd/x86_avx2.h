// Vec<T> on AVX2 + FMA: 8 floats or 4 doubles in a ymm register. Masks are full-width lane
// masks (all ones / all zeros), so select() is a blendv and partial loads are maskloads,
// which never touch the memory of masked-off lanes.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace tensorops::simd::x86_avx2 {

template <class T>
struct Vec;

template <>
struct Vec<float> {
  static constexpr int64_t width = 8;
  __m256 v;

  struct Mask {
    __m256 m;
    friend Mask operator&(Mask a, Mask b) { return {_mm256_and_ps(a.m, b.m)}; }
    friend Mask operator|(Mask a, Mask b) { return {_mm256_or_ps(a.m, b.m)}; }
    friend Mask operator~(Mask a) { return {_mm256_xor_ps(a.m, _mm256_castsi256_ps(_mm256_set1_epi32(-1)))}; }
    friend bool any(Mask a) { return _mm256_movemask_ps(a.m) != 0; }
    friend bool all(Mask a) { return _mm256_movemask_ps(a.m) == 0xff; }
  };

  Vec() = default;
  Vec(__m256 x) : v(x) {}                   // NOLINT
  Vec(float s) : v(_mm256_set1_ps(s)) {}    // NOLINT
  static Vec zero() { return _mm256_setzero_ps(); }
  static __m256i lanes_below(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < width ? n : width)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load_partial(const float* p, int64_t n) { return _mm256_maskload_ps(p, lanes_below(n)); }
  // Lanes lo <= i < hi.
  static Mask lanes_between(int64_t lo, int64_t hi) {
    return {_mm256_castsi256_ps(_mm256_andnot_si256(lanes_below(lo < 0 ? 0 : lo), lanes_below(hi < 0 ? 0 : hi)))};
  }
  // The lanes set in m from p[lane], zero elsewhere; memory of the other lanes is not read.
  static Vec load_masked(const float* p, Mask m) { return _mm256_maskload_ps(p, _mm256_castps_si256(m.m)); }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  // Stores of 4, 2 and 1 lanes rather than vmaskmovps: AMD's Zen cores run a masked store
  // to memory as a long microcoded sequence (see csrc/README.md).
  void store_partial(float* p, int64_t n) const {
    if (n >= 8) return store(p);
    __m128 part = _mm256_castps256_ps128(v);
    if (n >= 4) {
      _mm_storeu_ps(p, part);
      part = _mm256_extractf128_ps(v, 1);
      p += 4, n -= 4;
    }
    if (n >= 2) {
      _mm_storel_pi(reinterpret_cast<__m64*>(p), part);
      part = _mm_movehl_ps(part, part);
      p += 2, n -= 2;
    }
    if (n >= 1) _mm_store_ss(p, part);
  }

  friend Vec operator+(Vec a, Vec b) { return _mm256_add_ps(a.v, b.v); }
  friend Vec operator-(Vec a, Vec b) { return _mm256_sub_ps(a.v, b.v); }
  friend Vec operator*(Vec a, Vec b) { return _mm256_mul_ps(a.v, b.v); }
  friend Vec operator/(Vec a, Vec b) { return _mm256_div_ps(a.v, b.v); }
  friend Vec operator-(Vec a) { return _mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f)); }
  friend Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a.v, b.v, c.v); }
  friend Vec fnmadd(Vec a, Vec b, Vec c) { return _mm256_fnmadd_ps(a.v, b.v, c.v); }
  friend Vec min(Vec a, Vec b) { return _mm256_min_ps(a.v, b.v); }
  friend Vec max(Vec a, Vec b) { return _mm256_max_ps(a.v, b.v); }
  friend Mask is_nan(Vec a) { return {_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q)}; }
  friend Mask either_nan(Vec a, Vec b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_UNORD_Q)}; }
  friend Vec minimum(Vec a, Vec b) {
    const __m256 nan = _mm256_cmp_ps(a.v, b.v, _CMP_UNORD_Q);
    return _mm256_blendv_ps(_mm256_min_ps(b.v, a.v), _mm256_add_ps(a.v, b.v), nan);
  }
  friend Vec maximum(Vec a, Vec b) {
    const __m256 nan = _mm256_cmp_ps(a.v, b.v, _CMP_UNORD_Q);
    return _mm256_blendv_ps(_mm256_max_ps(b.v, a.v), _mm256_add_ps(a.v, b.v), nan);
  }
  friend Vec abs(Vec a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v); }
  friend Vec copysign(Vec magnitude, Vec sign) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sign_bit, magnitude.v), _mm256_and_ps(sign_bit, sign.v));
  }
  // Lane i: table[index_i] for whole-numbered index lanes below lookup_size (one vpermps; a
  // NaN index reads table[0]).
  static constexpr int lookup_size = 8;
  friend Vec lookup(const float* table, Vec index) {
    return _mm256_permutevar8x32_ps(_mm256_loadu_ps(table), _mm256_cvtps_epi32(index.v));
  }
  friend Vec sqrt(Vec a) { return _mm256_sqrt_ps(a.v); }
  friend Vec floor(Vec a) { return _mm256_round_ps(a.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  friend Vec ceil(Vec a) { return _mm256_round_ps(a.v, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }
  friend Vec trunc(Vec a) { return _mm256_round_ps(a.v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  friend Vec round(Vec a) { return _mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  friend Mask lt(Vec a, Vec b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
  friend Mask le(Vec a, Vec b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ)}; }
  friend Mask gt(Vec a, Vec b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)}; }
  friend Mask ge(Vec a, Vec b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)}; }
  friend Mask eq(Vec a, Vec b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ)}; }
  friend Mask ne(Vec a, Vec b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_NEQ_UQ)}; }
  friend Vec select(Mask m, Vec a, Vec b) { return _mm256_blendv_ps(b.v, a.v, m.m); }
  friend float reduce_add(Vec a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // Pairs within each vector first, then pairs of pairs, then the two 128-bit halves.
  friend Vec lane_sums(const Vec* v) {
    const __m256 h0 = _mm256_hadd_ps(v[0].v, v[1].v), h1 = _mm256_hadd_ps(v[2].v, v[3].v);
    const __m256 h2 = _mm256_hadd_ps(v[4].v, v[5].v), h3 = _mm256_hadd_ps(v[6].v, v[7].v);
    const __m256 g0 = _mm256_hadd_ps(h0, h1), g1 = _mm256_hadd_ps(h2, h3);
    return _mm256_add_ps(_mm256_permute2f128_ps(g0, g1, 0x20), _mm256_permute2f128_ps(g0, g1, 0x31));
  }
  friend float reduce_min(Vec a) {
    __m128 s = _mm_min_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_min_ps(s, _mm_movehl_ps(s, s));
    s = _mm_min_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  friend float reduce_max(Vec a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  friend Vec pow2n(Vec n) {
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127)), 23);
    return _mm256_castsi256_ps(bits);
  }
  // p * 2^n for integral n spanning the whole exponent range (subnormal results included):
  // two halves, so that neither power leaves the normal range.
  friend Vec scale2n(Vec p, Vec n) {
    const Vec half = floor(n * Vec(0.5));
    return p * pow2n(half) * pow2n(n - half);
  }
  friend Vec split_exponent(Vec x, Vec* e) {
    const __m256i bits = _mm256_castps_si256(x.v);
    const __m256i biased = _mm256_srli_epi32(bits, 23);
    *e = Vec(_mm256_cvtepi32_ps(_mm256_sub_epi32(biased, _mm256_set1_epi32(127))));
    const __m256i mant = _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                         _mm256_set1_epi32(0x3f800000));
    return _mm256_castsi256_ps(mant);
  }
  // Lanes p[0], p[2], ..., p[2 * width - 2] (reads 2 * width elements).
  static Vec load_even(const float* p) { return even_lanes(Vec(_mm256_loadu_ps(p)), Vec(_mm256_loadu_ps(p + 8))); }
  // a0 a2 a4 a6 b0 b2 b4 b6.
  friend Vec even_lanes(Vec a, Vec b) { return unpermute_lanes(even_lanes_permuted(a, b)); }
  friend Vec odd_lanes(Vec a, Vec b) { return unpermute_lanes(odd_lanes_permuted(a, b)); }
  // One in-lane shuffle: a0 a2 b0 b2 a4 a6 b4 b6 (odd: a1 a3 b1 b3 ...); unpermute_lanes
  // moves the middle pairs of 64 bits back into place.
  friend Vec even_lanes_permuted(Vec a, Vec b) { return _mm256_shuffle_ps(a.v, b.v, _MM_SHUFFLE(2, 0, 2, 0)); }
  friend Vec odd_lanes_permuted(Vec a, Vec b) { return _mm256_shuffle_ps(a.v, b.v, _MM_SHUFFLE(3, 1, 3, 1)); }
  friend Vec unpermute_lanes(Vec v) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v.v), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  // a0 b0 a1 b1 ... : the first width lanes into *lo, the rest into *hi.
  friend void interleave(Vec a, Vec b, Vec* lo, Vec* hi) {
    const __m256 low = _mm256_unpacklo_ps(a.v, b.v), high = _mm256_unpackhi_ps(a.v, b.v);
    lo->v = _mm256_permute2f128_ps(low, high, 0x20);
    hi->v = _mm256_permute2f128_ps(low, high, 0x31);
  }
};

template <>
struct Vec<double> {
  static constexpr int64_t width = 4;
  __m256d v;

  struct Mask {
    __m256d m;
    friend Mask operator&(Mask a, Mask b) { return {_mm256_and_pd(a.m, b.m)}; }
    friend Mask operator|(Mask a, Mask b) { return {_mm256_or_pd(a.m, b.m)}; }
    friend Mask operator~(Mask a) { return {_mm256_xor_pd(a.m, _mm256_castsi256_pd(_mm256_set1_epi64x(-1)))}; }
    friend bool any(Mask a) { return _mm256_movemask_pd(a.m) != 0; }
    friend bool all(Mask a) { return _mm256_movemask_pd(a.m) == 0xf; }
  };

  Vec() = default;
  Vec(__m256d x) : v(x) {}                   // NOLINT
  Vec(double s) : v(_mm256_set1_pd(s)) {}    // NOLINT
  static Vec zero() { return _mm256_setzero_pd(); }
  static __m256i lanes_below(int64_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n < width ? n : width), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static Vec load(const double* p) { return _mm256_loadu_pd(p); }
  static Vec load_partial(const double* p, int64_t n) { return _mm256_maskload_pd(p, lanes_below(n)); }
  // width floats from p, each widened to double.
  static Vec load_widened(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
  // Lanes lo <= i < hi.
  static Mask lanes_between(int64_t lo, int64_t hi) {
    return {_mm256_castsi256_pd(_mm256_andnot_si256(lanes_below(lo < 0 ? 0 : lo), lanes_below(hi < 0 ? 0 : hi)))};
  }
  // The lanes set in m from p[lane], zero elsewhere; memory of the other lanes is not read.
  static Vec load_masked(const double* p, Mask m) { return _mm256_maskload_pd(p, _mm256_castpd_si256(m.m)); }
  void store(double* p) const { _mm256_storeu_pd(p, v); }
  // As for float: no vmaskmovpd.
  void store_partial(double* p, int64_t n) const {
    if (n >= 4) return store(p);
    __m128d part = _mm256_castpd256_pd128(v);
    if (n >= 2) {
      _mm_storeu_pd(p, part);
      part = _mm256_extractf128_pd(v, 1);
      p += 2, n -= 2;
    }
    if (n >= 1) _mm_store_sd(p, part);
  }

  friend Vec operator+(Vec a, Vec b) { return _mm256_add_pd(a.v, b.v); }
  friend Vec operator-(Vec a, Vec b) { return _mm256_sub_pd(a.v, b.v); }
  friend Vec operator*(Vec a, Vec b) { return _mm256_mul_pd(a.v, b.v); }
  friend Vec operator/(Vec a, Vec b) { return _mm256_div_pd(a.v, b.v); }
  friend Vec operator-(Vec a) { return _mm256_xor_pd(a.v, _mm256_set1_pd(-0.0)); }
  friend Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_pd(a.v, b.v, c.v); }
  friend Vec fnmadd(Vec a, Vec b, Vec c) { return _mm256_fnmadd_pd(a.v, b.v, c.v); }
  friend Vec min(Vec a, Vec b) { return _mm256_min_pd(a.v, b.v); }
  friend Vec max(Vec a, Vec b) { return _mm256_max_pd(a.v, b.v); }
  friend Mask is_nan(Vec a) { return {_mm256_cmp_pd(a.v, a.v, _CMP_UNORD_Q)}; }
  friend Mask either_nan(Vec a, Vec b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_UNORD_Q)}; }
  friend Vec minimum(Vec a, Vec b) {
    const __m256d nan = _mm256_cmp_pd(a.v, b.v, _CMP_UNORD_Q);
    return _mm256_blendv_pd(_mm256_min_pd(b.v, a.v), _mm256_add_pd(a.v, b.v), nan);
  }
  friend Vec maximum(Vec a, Vec b) {
    const __m256d nan = _mm256_cmp_pd(a.v, b.v, _CMP_UNORD_Q);
    return _mm256_blendv_pd(_mm256_max_pd(b.v, a.v), _mm256_add_pd(a.v, b.v), nan);
  }
  friend Vec abs(Vec a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a.v); }
  friend Vec copysign(Vec magnitude, Vec sign) {
    const __m256d sign_bit = _mm256_set1_pd(-0.0);
    return _mm256_or_pd(_mm256_andnot_pd(sign_bit, magnitude.v), _mm256_and_pd(sign_bit, sign.v));
  }
  friend Vec sqrt(Vec a) { return _mm256_sqrt_pd(a.v); }
  friend Vec floor(Vec a) { return _mm256_round_pd(a.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  friend Vec ceil(Vec a) { return _mm256_round_pd(a.v, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }
  friend Vec trunc(Vec a) { return _mm256_round_pd(a.v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  friend Vec round(Vec a) { return _mm256_round_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  friend Mask lt(Vec a, Vec b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_LT_OQ)}; }
  friend Mask le(Vec a, Vec b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_LE_OQ)}; }
  friend Mask gt(Vec a, Vec b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_GT_OQ)}; }
  friend Mask ge(Vec a, Vec b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_GE_OQ)}; }
  friend Mask eq(Vec a, Vec b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_EQ_OQ)}; }
  friend Mask ne(Vec a, Vec b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_NEQ_UQ)}; }
  friend Vec select(Mask m, Vec a, Vec b) { return _mm256_blendv_pd(b.v, a.v, m.m); }
  friend double reduce_add(Vec a) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  friend double reduce_mul(Vec a) {
    __m128d p = _mm_mul_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
    return _mm_cvtsd_f64(_mm_mul_sd(p, _mm_unpackhi_pd(p, p)));
  }
  friend Vec lane_sums(const Vec* v) {
    const __m256d h0 = _mm256_hadd_pd(v[0].v, v[1].v), h1 = _mm256_hadd_pd(v[2].v, v[3].v);
    return _mm256_add_pd(_mm256_permute2f128_pd(h0, h1, 0x20), _mm256_permute2f128_pd(h0, h1, 0x31));
  }
  friend double reduce_min(Vec a) {
    __m128d s = _mm_min_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
    return _mm_cvtsd_f64(_mm_min_sd(s, _mm_unpackhi_pd(s, s)));
  }
  friend double reduce_max(Vec a) {
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
  }
  friend Vec pow2n(Vec n) {
    // n is integral and in range: adding 2^52 + 1023 leaves the biased exponent in the low bits.
    const __m256d shifted = _mm256_add_pd(n.v, _mm256_set1_pd(4503599627370496.0 + 1023.0));
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(shifted), 52));
  }
  // p * 2^n for integral n spanning the whole exponent range (subnormal results included):
  // two halves, so that neither power leaves the normal range.
  friend Vec scale2n(Vec p, Vec n) {
    const Vec half = floor(n * Vec(0.5));
    return p * pow2n(half) * pow2n(n - half);
  }
  friend Vec split_exponent(Vec x, Vec* e) {
    const __m256i bits = _mm256_castpd_si256(x.v);
    // Biased exponent -> double via the 2^52 magic: or it into the mantissa of 2^52.
    const __m256i biased = _mm256_srli_epi64(bits, 52);
    const __m256d magic = _mm256_set1_pd(4503599627370496.0);
    const __m256d ebiased = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(biased, _mm256_castpd_si256(magic))), magic);
    *e = Vec(_mm256_sub_pd(ebiased, _mm256_set1_pd(1023.0)));
    const __m256i mant = _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi64x(0x000fffffffffffffLL)),
                                         _mm256_set1_epi64x(0x3ff0000000000000LL));
    return _mm256_castsi256_pd(mant);
  }
  // Lanes p[0], p[2], ..., p[2 * width - 2] (reads 2 * width elements).
  static Vec load_even(const double* p) { return even_lanes(Vec(_mm256_loadu_pd(p)), Vec(_mm256_loadu_pd(p + 4))); }
  // a0 a2 b0 b2.
  friend Vec even_lanes(Vec a, Vec b) { return unpermute_lanes(even_lanes_permuted(a, b)); }
  friend Vec odd_lanes(Vec a, Vec b) { return unpermute_lanes(odd_lanes_permuted(a, b)); }
  // One in-lane unpack: a0 b0 a2 b2 (odd: a1 b1 a3 b3); unpermute_lanes swaps the middle two.
  friend Vec even_lanes_permuted(Vec a, Vec b) { return _mm256_unpacklo_pd(a.v, b.v); }
  friend Vec odd_lanes_permuted(Vec a, Vec b) { return _mm256_unpackhi_pd(a.v, b.v); }
  friend Vec unpermute_lanes(Vec v) { return _mm256_permute4x64_pd(v.v, _MM_SHUFFLE(3, 1, 2, 0)); }
  // a0 b0 a1 b1 ... : the first width lanes into *lo, the rest into *hi.
  friend void interleave(Vec a, Vec b, Vec* lo, Vec* hi) {
    const __m256d low = _mm256_unpacklo_pd(a.v, b.v), high = _mm256_unpackhi_pd(a.v, b.v);
    lo->v = _mm256_permute2f128_pd(low, high, 0x20);
    hi->v = _mm256_permute2f128_pd(low, high, 0x31);
  }
};

}  // namespace tensorops::simd::x86_avx2

// ---- Appended for pointwise: streaming (non-temporal) stores -------------------------------
// See x86_avx512.h; p must be aligned to 32 bytes.
namespace tensorops::simd::x86_avx2 {
inline void store_stream(float* p, Vec<float> v) { _mm256_stream_ps(p, v.v); }
inline void store_stream(double* p, Vec<double> v) { _mm256_stream_pd(p, v.v); }
}  // namespace tensorops::simd::x86_avx2

// ---- 8 x 8 float transpose (the transposed copy, convolution's pixel-major tiles) ---------
// r[i] lane j becomes r[j] lane i in three rounds of eight shuffles: pairs of rows
// interleave, then pairs of pairs (as doubles), then the 128-bit halves of rows four apart
// trade places.
namespace tensorops::simd::x86_avx2 {
inline void transpose8(__m256 r[8]) {
  __m256 u[8];
  for (int g = 0; g < 2; ++g) {
    const __m256* q = r + 4 * g;
    const __m256d t0 = _mm256_castps_pd(_mm256_unpacklo_ps(q[0], q[1]));
    const __m256d t1 = _mm256_castps_pd(_mm256_unpackhi_ps(q[0], q[1]));
    const __m256d t2 = _mm256_castps_pd(_mm256_unpacklo_ps(q[2], q[3]));
    const __m256d t3 = _mm256_castps_pd(_mm256_unpackhi_ps(q[2], q[3]));
    u[4 * g] = _mm256_castpd_ps(_mm256_unpacklo_pd(t0, t2));
    u[4 * g + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(t0, t2));
    u[4 * g + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(t1, t3));
    u[4 * g + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(t1, t3));
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}

// Columns 0..7 of `rows` (<= 8) rows, `stride` apart, as 8 vectors: col[j] lane i =
// src[i * stride + j] for j < cols (lanes past `rows` and columns past `cols` are 0, and
// memory past them is not read).
[[gnu::always_inline]] inline void transpose8(const float* src, int64_t stride, int rows, int cols, __m256 col[8]) {
  const __m256i loaded = Vec<float>::lanes_below(cols);
  for (int i = 0; i < 8; ++i)
    col[i] = i >= rows   ? _mm256_setzero_ps()
             : cols >= 8 ? _mm256_loadu_ps(src + i * stride)
                         : _mm256_maskload_ps(src + i * stride, loaded);
  transpose8(col);
}
}  // namespace tensorops::simd::x86_avx2
