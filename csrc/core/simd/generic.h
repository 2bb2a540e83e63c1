// Vec<T> for the generic ISA: a 16-byte array of lanes written as plain loops, which the
// compiler maps onto whatever baseline SIMD the target has (SSE2 on x86-64, NEON on arm64).
// It is also the reference the x86 implementations must agree with. Rounding and powers of
// two stay inline arithmetic (the 2^(mantissa bits) trick in the default round-to-nearest-even
// mode, exponent bits for pow2n), since baseline x86-64 has no instruction for them and a
// per-lane libm call would cost more than the kernel. fmadd stays fused (std::fma, which
// glibc runs on the FMA unit where there is one), because fused and unfused results differ at
// the edges (a - alpha * b near overflow) and torch fuses.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace tensorops::simd::generic {

template <class T>
struct Vec {
  static constexpr int64_t width = 16 / sizeof(T);
  T lane[width];

  struct Mask {
    bool lane[width];
    friend Mask operator&(Mask a, Mask b) { Mask r; for (int i = 0; i < width; ++i) r.lane[i] = a.lane[i] && b.lane[i]; return r; }
    friend Mask operator|(Mask a, Mask b) { Mask r; for (int i = 0; i < width; ++i) r.lane[i] = a.lane[i] || b.lane[i]; return r; }
    friend Mask operator~(Mask a) { Mask r; for (int i = 0; i < width; ++i) r.lane[i] = !a.lane[i]; return r; }
    friend bool any(Mask a) { for (int i = 0; i < width; ++i) if (a.lane[i]) return true; return false; }
    friend bool all(Mask a) { for (int i = 0; i < width; ++i) if (!a.lane[i]) return false; return true; }
  };

  Vec() = default;
  Vec(T s) { for (int i = 0; i < width; ++i) lane[i] = s; }  // NOLINT: broadcast is implicit by design
  static Vec zero() { return Vec(T(0)); }
  static Vec load(const T* p) { Vec v; std::memcpy(v.lane, p, sizeof(v.lane)); return v; }
  // width floats from p, each widened to T (double).
  static Vec load_widened(const float* p) { Vec v; for (int i = 0; i < width; ++i) v.lane[i] = T(p[i]); return v; }
  static Vec load_partial(const T* p, int64_t n) {
    Vec v(T(0));
    for (int64_t i = 0; i < n && i < width; ++i) v.lane[i] = p[i];
    return v;
  }
  // Lanes lo <= i < hi.
  static Mask lanes_between(int64_t lo, int64_t hi) {
    Mask m;
    for (int i = 0; i < width; ++i) m.lane[i] = i >= lo && i < hi;
    return m;
  }
  // The lanes set in m from p[lane], zero elsewhere; memory of the other lanes is not read.
  static Vec load_masked(const T* p, Mask m) {
    Vec v(T(0));
    for (int i = 0; i < width; ++i)
      if (m.lane[i]) v.lane[i] = p[i];
    return v;
  }
  void store(T* p) const { std::memcpy(p, lane, sizeof(lane)); }
  void store_partial(T* p, int64_t n) const { for (int64_t i = 0; i < n && i < width; ++i) p[i] = lane[i]; }

  template <class F>
  static Vec map(const Vec& a, F f) { Vec r; for (int i = 0; i < width; ++i) r.lane[i] = f(a.lane[i]); return r; }
  template <class F>
  static Vec zip(const Vec& a, const Vec& b, F f) { Vec r; for (int i = 0; i < width; ++i) r.lane[i] = f(a.lane[i], b.lane[i]); return r; }
  template <class F>
  static Mask test(const Vec& a, const Vec& b, F f) { Mask r; for (int i = 0; i < width; ++i) r.lane[i] = f(a.lane[i], b.lane[i]); return r; }

  friend Vec operator+(Vec a, Vec b) { return zip(a, b, [](T x, T y) { return x + y; }); }
  friend Vec operator-(Vec a, Vec b) { return zip(a, b, [](T x, T y) { return x - y; }); }
  friend Vec operator*(Vec a, Vec b) { return zip(a, b, [](T x, T y) { return x * y; }); }
  friend Vec operator/(Vec a, Vec b) { return zip(a, b, [](T x, T y) { return x / y; }); }
  friend Vec operator-(Vec a) { return map(a, [](T x) { return -x; }); }
  friend Vec fmadd(Vec a, Vec b, Vec c) { Vec r; for (int i = 0; i < width; ++i) r.lane[i] = std::fma(a.lane[i], b.lane[i], c.lane[i]); return r; }
  friend Vec fnmadd(Vec a, Vec b, Vec c) { Vec r; for (int i = 0; i < width; ++i) r.lane[i] = std::fma(-a.lane[i], b.lane[i], c.lane[i]); return r; }
  friend Vec min(Vec a, Vec b) { return zip(a, b, [](T x, T y) { return x < y ? x : y; }); }
  friend Vec max(Vec a, Vec b) { return zip(a, b, [](T x, T y) { return x > y ? x : y; }); }
  friend Vec minimum(Vec a, Vec b) { return zip(a, b, [](T x, T y) { return (x != x || y != y) ? x + y : (y < x ? y : x); }); }
  friend Vec maximum(Vec a, Vec b) { return zip(a, b, [](T x, T y) { return (x != x || y != y) ? x + y : (y > x ? y : x); }); }
  friend Vec abs(Vec a) { return map(a, [](T x) { return std::fabs(x); }); }
  friend Vec copysign(Vec magnitude, Vec sign) { return zip(magnitude, sign, [](T m, T s) { return std::copysign(m, s); }); }
  // Lane i: table[index_i] for whole-numbered index lanes below lookup_size; a NaN index
  // reads table[0], as on x86. Sixteen entries, as AVX-512, whose results this path matches.
  static constexpr int lookup_size = 16;
  friend Vec lookup(const T* table, Vec index) {
    return map(index, [table](T i) { return i >= T(0) && i < T(lookup_size) ? table[int(i)] : table[0]; });
  }
  friend Vec sqrt(Vec a) { return map(a, [](T x) { return std::sqrt(x); }); }
  // Nearest integer, ties to even: below 2^(digits-1) adding and removing that power rounds
  // in the FPU's default mode; larger magnitudes (and NaN, inf) are integral already.
  static T round_lane(T x) {
    constexpr T big = T(1) / std::numeric_limits<T>::epsilon();  // 2^23 or 2^52
    const T magnitude = std::fabs(x);
    return magnitude < big ? std::copysign((magnitude + big) - big, x) : x;
  }
  friend Vec round(Vec a) { return map(a, round_lane); }
  friend Vec floor(Vec a) { return map(a, [](T x) { const T t = round_lane(x); return t > x ? t - T(1) : t; }); }
  // ceil keeps the sign of x: ceil(-0.5) is -0, as IEEE and torch have it.
  friend Vec ceil(Vec a) { return map(a, [](T x) { const T t = round_lane(x); return std::copysign(t < x ? t + T(1) : t, x); }); }
  friend Vec trunc(Vec a) {
    return map(a, [](T x) {
      const T magnitude = std::fabs(x);
      const T t = round_lane(magnitude);
      return std::copysign(t > magnitude ? t - T(1) : t, x);
    });
  }
  friend Mask lt(Vec a, Vec b) { return test(a, b, [](T x, T y) { return x < y; }); }
  friend Mask le(Vec a, Vec b) { return test(a, b, [](T x, T y) { return x <= y; }); }
  friend Mask gt(Vec a, Vec b) { return test(a, b, [](T x, T y) { return x > y; }); }
  friend Mask ge(Vec a, Vec b) { return test(a, b, [](T x, T y) { return x >= y; }); }
  friend Mask eq(Vec a, Vec b) { return test(a, b, [](T x, T y) { return x == y; }); }
  friend Mask ne(Vec a, Vec b) { return test(a, b, [](T x, T y) { return x != y; }); }
  friend Mask is_nan(Vec a) { return test(a, a, [](T x, T) { return x != x; }); }
  friend Mask either_nan(Vec a, Vec b) { return test(a, b, [](T x, T y) { return x != x || y != y; }); }
  friend Vec select(Mask m, Vec a, Vec b) { Vec r; for (int i = 0; i < width; ++i) r.lane[i] = m.lane[i] ? a.lane[i] : b.lane[i]; return r; }
  friend T reduce_add(Vec a) { T s = a.lane[0]; for (int i = 1; i < width; ++i) s += a.lane[i]; return s; }
  friend T reduce_mul(Vec a) { T p = a.lane[0]; for (int i = 1; i < width; ++i) p *= a.lane[i]; return p; }
  friend Vec lane_sums(const Vec* v) {
    Vec sums;
    for (int i = 0; i < width; ++i) sums.lane[i] = reduce_add(v[i]);
    return sums;
  }
  friend T reduce_min(Vec a) { T s = a.lane[0]; for (int i = 1; i < width; ++i) s = a.lane[i] < s ? a.lane[i] : s; return s; }
  friend T reduce_max(Vec a) { T s = a.lane[0]; for (int i = 1; i < width; ++i) s = a.lane[i] > s ? a.lane[i] : s; return s; }
  friend Vec pow2n(Vec n) {
    return map(n, [](T x) {
      using Bits = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
      using UBits = std::make_unsigned_t<Bits>;
      constexpr int mantissa_bits = std::numeric_limits<T>::digits - 1;
      constexpr Bits bias = std::numeric_limits<T>::max_exponent - 1;
      // Bit for bit what the vector ISAs compute, without C++'s undefined behaviour: NaN and
      // out-of-range n convert to the integer minimum (x86's "integer indefinite"), and the
      // add and shift wrap (done unsigned). Callers overwrite the lanes where that matters.
      constexpr T lowest = T(std::numeric_limits<Bits>::min());
      const Bits n = x >= lowest && x < -lowest ? static_cast<Bits>(x) : std::numeric_limits<Bits>::min();
      const Bits bits = static_cast<Bits>((static_cast<UBits>(n) + static_cast<UBits>(bias)) << mantissa_bits);
      T result;
      std::memcpy(&result, &bits, sizeof(result));
      return result;
    });
  }
  // p * 2^n for integral n spanning the whole exponent range (subnormal results included):
  // two halves, so that neither power leaves the normal range.
  friend Vec scale2n(Vec p, Vec n) {
    const Vec half = floor(n * Vec(0.5));
    return p * pow2n(half) * pow2n(n - half);
  }
  friend Vec split_exponent(Vec x, Vec* e) {
    Vec m;
    for (int i = 0; i < width; ++i) {
      int ex = 0;
      m.lane[i] = std::frexp(x.lane[i], &ex) * T(2);
      e->lane[i] = static_cast<T>(ex - 1);
    }
    return m;
  }
  // Lanes p[0], p[2], ..., p[2 * width - 2] (reads 2 * width elements).
  static Vec load_even(const T* p) {
    Vec v;
    for (int i = 0; i < width; ++i) v.lane[i] = p[2 * i];
    return v;
  }
  // a0 a2 ... b0 b2 ...
  friend Vec even_lanes(Vec a, Vec b) {
    Vec v;
    for (int i = 0; i < width / 2; ++i) v.lane[i] = a.lane[2 * i], v.lane[width / 2 + i] = b.lane[2 * i];
    return v;
  }
  // a1 a3 ... b1 b3 ...
  friend Vec odd_lanes(Vec a, Vec b) {
    Vec v;
    for (int i = 0; i < width / 2; ++i) v.lane[i] = a.lane[2 * i + 1], v.lane[width / 2 + i] = b.lane[2 * i + 1];
    return v;
  }
  // Lane copies cost the same in any order: the permuted forms are the plain ones.
  friend Vec even_lanes_permuted(Vec a, Vec b) { return even_lanes(a, b); }
  friend Vec odd_lanes_permuted(Vec a, Vec b) { return odd_lanes(a, b); }
  friend Vec unpermute_lanes(Vec v) { return v; }
  // a0 b0 a1 b1 ... : the first width lanes into *lo, the rest into *hi.
  friend void interleave(Vec a, Vec b, Vec* lo, Vec* hi) {
    for (int i = 0; i < width; ++i) {
      Vec* half = 2 * i < width ? lo : hi;
      half->lane[(2 * i) % width] = a.lane[i];
      half->lane[(2 * i) % width + 1] = b.lane[i];
    }
  }
};

}  // namespace tensorops::simd::generic

// ---- Appended for pointwise: streaming stores (see x86_avx512.h); plain stores here ------------
namespace tensorops::simd::generic {
template <class T>
void store_stream(T* p, Vec<T> v) { v.store(p); }
}  // namespace tensorops::simd::generic
