// Pointwise kernel bodies, written once against Vec<T> and compiled per ISA by the tiny
// generic.cc / x86_avx2.cc / x86_avx512.cc files beside this one.
//
// Each op is a functor with apply(Vec x, ...) -> Vec. The run loops below feed it whole
// vectors and one masked partial vector for the tail, so every element of a run goes through
// the same instructions. Functions without a vector form here (sin, cos, pow, floor division,
// erf in double) go lane by lane through the C library inside apply(), still one vector at a
// time, which keeps the loops identical for every op.
#include <cmath>
#include <type_traits>

#include "core/prefetch.h"
#include "core/simd/math.h"
#include "core/simd/vec.h"
#include "core/streaming.h"
#include "pointwise/pointwise.h"

namespace tensorops::pointwise::TENSOROPS_ISA_NS {
namespace {

using simd::Vec;

// Elements a strided operand is gathered in at a time (on the stack).
constexpr int64_t kGatherBlock = 256;

template <class T, class F>
Vec<T> map_lanes(Vec<T> x, F f) {
  alignas(64) T lane[Vec<T>::width];
  x.store(lane);
  for (int64_t i = 0; i < Vec<T>::width; ++i) lane[i] = f(lane[i]);
  return Vec<T>::load(lane);
}

template <class T, class F>
Vec<T> zip_lanes(Vec<T> x, Vec<T> y, F f) {
  alignas(64) T xl[Vec<T>::width];
  alignas(64) T yl[Vec<T>::width];
  x.store(xl);
  y.store(yl);
  for (int64_t i = 0; i < Vec<T>::width; ++i) xl[i] = f(xl[i], yl[i]);
  return Vec<T>::load(xl);
}

template <class T>
using P = Scalars<T>;

// Whether an op's loop prefetches its operands (core/prefetch.h): the costly ops, whose
// arithmetic fills the out-of-order window so that the hardware prefetcher falls behind
// (16 Mi float32 written through the cache, one thread: sigmoid 12.7 -> 8.1 ms, gelu 11.2 ->
// 7.8 ms). Every op writes large outputs with streaming stores (core/streaming.h): pure
// memory traffic gains most (sqrt 13.5 vs 35 ms, add 29 vs 41 ms), and since exp's chain
// was shortened the costly ops gain too, where they once lost (sigmoid 45 vs 23 ms then):
// Zen 3, sigmoid into a reused output, time ratios of back-to-back processes, 2 Mi floats
// 0.85x, 4 Mi 0.81x, 16 Mi on two threads 0.69x; gelu on 16 Mi 0.88x. Outputs too small to
// stream are prefetched for writing as well; streamed ones are not, as that would fetch the
// lines the streaming stores replace.
struct Cheap {
  static constexpr bool prefetches = false;
};
struct Costly {
  static constexpr bool prefetches = true;
};

// ---- unary ops ------------------------------------------------------------------------------
// NaN handling follows torch: NaN in gives NaN out everywhere except sign (0, as torch).

struct neg_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return -x; }
};
struct abs_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return abs(x); }
};
struct sqrt_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return sqrt(x); }
};
struct rsqrt_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return Vec<T>(T(1)) / sqrt(x); }
};
struct exp_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return simd::exp(x); }
};
struct log_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return simd::log(x); }
};
struct sin_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return map_lanes(x, [](T v) { return std::sin(v); }); }
};
struct cos_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return map_lanes(x, [](T v) { return std::cos(v); }); }
};
struct tanh_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return simd::tanh(x); }
};
struct sigmoid_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return simd::sigmoid(x); }
};

template <class T>
Vec<T> erf_any(Vec<T> x) {
  if constexpr (std::is_same_v<T, float>) {
    return simd::erf(x);
  } else {
    return map_lanes(x, [](T v) { return std::erf(v); });
  }
}

struct erf_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return erf_any(x); }
};
struct floor_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return floor(x); }
};
struct ceil_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return ceil(x); }
};
struct round_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return round(x); }
};
// torch.round(x, decimals=d): d > 0 rounds x * 10^d and divides back, d < 0 rounds
// x / 10^-d and multiplies back, with the power of ten in the tensor's dtype (as torch).
struct round_scaled_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>& p) { return round(x * Vec<T>(p.a)) / Vec<T>(p.a); }
};
struct round_unscaled_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>& p) { return round(x / Vec<T>(p.a)) * Vec<T>(p.a); }
};
struct sign_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) {
    const Vec<T> zero = Vec<T>::zero();
    return select(gt(x, zero), Vec<T>(T(1)), select(lt(x, zero), Vec<T>(T(-1)), zero));
  }
};
struct reciprocal_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return Vec<T>(T(1)) / x; }
};
struct square_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return x * x; }
};
// An exponent a float cannot hold (16777217, 1e10 + 0.5) arrives split in three floats,
// a + b + c, which hold any double's 53 bits, and is applied in double as torch does: rounded
// to float it could turn odd into even or a fraction into an integer, flipping the sign or
// the NaN of a negative base's power.
struct pow_scalar_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>& p) {
    if (p.b != T(0)) {
      const double e = double(p.a) + double(p.b) + double(p.c);
      return map_lanes(x, [e](T v) { return T(std::pow(double(v), e)); });
    }
    const T e = p.a;
    return map_lanes(x, [e](T v) { return std::pow(v, e); });
  }
};
// min(max(x, lo), hi) with NaN in x, lo or hi giving NaN, and hi winning when lo > hi.
struct clamp_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>& p) { return minimum(maximum(x, Vec<T>(p.a)), Vec<T>(p.b)); }
};
// max(0, x) keeps a NaN x: Vec's max returns its second operand when either is NaN.
struct relu_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return max(Vec<T>::zero(), x); }
};
struct leaky_relu_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>& p) { return select(gt(x, Vec<T>::zero()), x, x * Vec<T>(p.a)); }
};
// elu, selu and celu: x > 0 ? x * positive : expm1(x * input_scale) * negative.
struct elu_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>& p) {
    const Vec<T> negative = simd::expm1(x * Vec<T>(p.c)) * Vec<T>(p.a);
    return select(le(x, Vec<T>::zero()), negative, x * Vec<T>(p.b));
  }
};
struct gelu_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) {
    if constexpr (std::is_same_v<T, float>) {
      return simd::gelu(x);
    } else {
      const Vec<T> half_x = x * Vec<T>(T(0.5));
      const Vec<T> e = erf_any(x * Vec<T>(T(0.70710678118654752440)));
      // torch's own product x/2 (1 + erf): +inf gives inf; -inf gives -inf * 0 = NaN; x << 0
      // gives -0, where a fused x/2 e + x/2 would round to +0.
      return half_x * (Vec<T>(T(1)) + e);
    }
  }
};
struct gelu_tanh_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) {
    const Vec<T> beta(T(0.79788456080286535588));  // sqrt(2 / pi)
    const Vec<T> kappa(T(0.044715));
    const Vec<T> inner = beta * fmadd(kappa * x, x * x, x);
    const Vec<T> half_x = x * Vec<T>(T(0.5));
    return half_x * (Vec<T>(T(1)) + simd::tanh(inner));
  }
};
struct silu_op : Costly {
  // x * sigmoid(x); where sigmoid flushes to 0 the product is -0 or, for -inf, NaN, as
  // torch's x / (1 + exp(-x)) gives.
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return x * simd::sigmoid(x); }
};
struct mish_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return x * simd::tanh(simd::log1p(simd::exp(x))); }
};
struct hardsigmoid_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) {
    const Vec<T> clipped = minimum(maximum(x + Vec<T>(T(3)), Vec<T>::zero()), Vec<T>(T(6)));
    return clipped / Vec<T>(T(6));
  }
};
struct hardswish_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) {
    const Vec<T> clipped = minimum(maximum(x + Vec<T>(T(3)), Vec<T>::zero()), Vec<T>(T(6)));
    return x * clipped / Vec<T>(T(6));
  }
};
// x * beta > threshold ? x : log1p(exp(x * beta)) / beta.
struct softplus_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>& p) {
    const Vec<T> scaled = x * Vec<T>(p.a);
    const Vec<T> soft = simd::log1p(simd::exp(scaled)) / Vec<T>(p.a);
    return select(gt(scaled, Vec<T>(p.b)), x, soft);
  }
};
struct softsign_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) { return x / (abs(x) + Vec<T>(T(1))); }
};
// log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): never overflows, never cancels.
struct logsigmoid_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> x, const P<T>&) {
    const Vec<T> negative_part = select(lt(x, Vec<T>::zero()), x, Vec<T>::zero());
    return negative_part - simd::log1p(simd::exp(-abs(x)));
  }
};

// ---- binary ops -----------------------------------------------------------------------------

struct add_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> a, Vec<T> b, const P<T>&) { return a + b; }
};
struct sub_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> a, Vec<T> b, const P<T>&) { return a - b; }
};
struct add_scaled_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> a, Vec<T> b, const P<T>& p) { return fmadd(b, Vec<T>(p.a), a); }
};
struct mul_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> a, Vec<T> b, const P<T>&) { return a * b; }
};
struct div_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> a, Vec<T> b, const P<T>&) { return a / b; }
};
struct div_trunc_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> a, Vec<T> b, const P<T>&) { return trunc(a / b); }
};

// Python's floor division, as torch computes it for floating types: from fmod, so that
// a = b * q + r holds exactly where it can, with the quotient nudged to the nearest integer.
template <class T>
T floor_divide(T a, T b) {
  if (b == T(0)) return a / b;
  const T mod = std::fmod(a, b);
  T div = (a - mod) / b;
  if (mod != T(0) && (b < T(0)) != (mod < T(0))) div -= T(1);
  if (div == T(0)) return std::copysign(T(0), a / b);
  T floored = std::floor(div);
  if (div - floored > T(0.5)) floored += T(1);
  return floored;
}

struct div_floor_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> a, Vec<T> b, const P<T>&) { return zip_lanes(a, b, floor_divide<T>); }
};
struct pow_op : Costly {
  template <class T> static Vec<T> apply(Vec<T> a, Vec<T> b, const P<T>&) {
    return zip_lanes(a, b, [](T x, T y) { return std::pow(x, y); });
  }
};
struct maximum_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> a, Vec<T> b, const P<T>&) { return maximum(a, b); }
};
struct minimum_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> a, Vec<T> b, const P<T>&) { return minimum(a, b); }
};
// a = input, b = weight (broadcast along the channel dim by the driver).
struct prelu_op : Cheap {
  template <class T> static Vec<T> apply(Vec<T> a, Vec<T> b, const P<T>&) { return select(gt(a, Vec<T>::zero()), a, a * b); }
};

// ---- run loops ------------------------------------------------------------------------------

// Writes out[0, n) from full(i) (the vector at element i) and part(i, m) (the first m < width
// lanes at i). kStream: the run's whole cache lines go out with non-temporal stores, the
// elements before and after them with ordinary ones (core/streaming.h); the caller fences
// before anyone reads `out`.
// flatten: GCC otherwise calls the larger ops (sigmoid, erf, tanh) out of line once per
// vector, which measured 1.5-2x slower than the inlined loop.
template <bool kStream, class T, class Full, class Part>
__attribute__((flatten)) void write_run(T* out, int64_t n, const Full& full, const Part& part) {
  constexpr int64_t W = Vec<T>::width;
  int64_t i = 0;
  if constexpr (kStream) {
    const int64_t head = elements_to_cache_line(out, n);
    for (; i + W <= head; i += W) full(i).store(out + i);
    if (i < head) {
      part(i, head - i).store_partial(out + i, head - i);
      i = head;
    }
    // No fence here: one per run would stall every row of a broadcast op on the write-
    // combining buffers; the driver fences once per thread's chunk (pointwise.cc).
    for (const int64_t lines_end = whole_cache_lines_end<T>(head, n); i < lines_end; i += W)
      store_stream(out + i, full(i));
  }
  for (; i + W <= n; i += W) full(i).store(out + i);
  if (i < n) part(i, n - i).store_partial(out + i, n - i);
}

template <class T, class Op, bool kStream>
void unary_contiguous(const T* x, T* out, int64_t n, const P<T>& p) {
  using V = Vec<T>;
  write_run<kStream>(
      out, n,
      [&](int64_t i) {
        if constexpr (Op::prefetches) {
          prefetch_ahead(x + i);
          if constexpr (!kStream) prefetch_ahead_for_write(out + i);
        }
        return Op::apply(V::load(x + i), p);
      },
      [&](int64_t i, int64_t m) { return Op::apply(V::load_partial(x + i, m), p); });
}

template <class T>
const T* gather(const T* x, int64_t stride, int64_t n, T* buffer) {
  for (int64_t i = 0; i < n; ++i) buffer[i] = x[i * stride];
  return buffer;
}

template <class T, class Op>
void unary_kernel(const T* x, int64_t sx, T* out, int64_t n, const P<T>& p, bool stream) {
  if (sx == 1) {
    if (stream) return unary_contiguous<T, Op, true>(x, out, n, p);
    return unary_contiguous<T, Op, false>(x, out, n, p);
  }
  if (sx == 0) {
    // One value: compute it once (as a full vector, like any other element) and fill.
    const Vec<T> v = Op::apply(Vec<T>(x[0]), p);
    int64_t i = 0;
    for (; i + Vec<T>::width <= n; i += Vec<T>::width) v.store(out + i);
    if (i < n) v.store_partial(out + i, n - i);
    return;
  }
  T buffer[kGatherBlock];
  for (int64_t start = 0; start < n; start += kGatherBlock) {
    const int64_t m = n - start < kGatherBlock ? n - start : kGatherBlock;
    unary_contiguous<T, Op, false>(gather(x + start * sx, sx, m, buffer), out + start, m, p);
  }
}

// kScalarA / kScalarB: that operand has stride 0 along the run (read once, broadcast).
template <class T, class Op, bool kScalarA, bool kScalarB, bool kStream>
void binary_contiguous(const T* a, const T* b, T* out, int64_t n, const P<T>& p) {
  using V = Vec<T>;
  const V a0 = kScalarA ? V(a[0]) : V::zero();
  const V b0 = kScalarB ? V(b[0]) : V::zero();
  write_run<kStream>(
      out, n,
      [&](int64_t i) {
        if constexpr (Op::prefetches) {
          if (!kScalarA) prefetch_ahead(a + i);
          if (!kScalarB) prefetch_ahead(b + i);
          if constexpr (!kStream) prefetch_ahead_for_write(out + i);
        }
        return Op::apply(kScalarA ? a0 : V::load(a + i), kScalarB ? b0 : V::load(b + i), p);
      },
      [&](int64_t i, int64_t m) {
        return Op::apply(kScalarA ? a0 : V::load_partial(a + i, m), kScalarB ? b0 : V::load_partial(b + i, m), p);
      });
}

template <class T, class Op, bool kStream>
void binary_dispatch(const T* a, bool scalar_a, const T* b, bool scalar_b, T* out, int64_t n, const P<T>& p) {
  if (scalar_a) {
    if (scalar_b) return binary_contiguous<T, Op, true, true, kStream>(a, b, out, n, p);
    return binary_contiguous<T, Op, true, false, kStream>(a, b, out, n, p);
  }
  if (scalar_b) return binary_contiguous<T, Op, false, true, kStream>(a, b, out, n, p);
  binary_contiguous<T, Op, false, false, kStream>(a, b, out, n, p);
}

template <class T, class Op>
void binary_kernel(const T* a, int64_t sa, const T* b, int64_t sb, T* out, int64_t n, const P<T>& p, bool stream) {
  const bool direct_a = sa == 0 || sa == 1;
  const bool direct_b = sb == 0 || sb == 1;
  if (direct_a && direct_b) {
    if (stream) return binary_dispatch<T, Op, true>(a, sa == 0, b, sb == 0, out, n, p);
    return binary_dispatch<T, Op, false>(a, sa == 0, b, sb == 0, out, n, p);
  }
  T buffer_a[kGatherBlock];
  T buffer_b[kGatherBlock];
  for (int64_t start = 0; start < n; start += kGatherBlock) {
    const int64_t m = n - start < kGatherBlock ? n - start : kGatherBlock;
    const T* ra = direct_a ? a + start * sa : gather(a + start * sa, sa, m, buffer_a);
    const T* rb = direct_b ? b + start * sb : gather(b + start * sb, sb, m, buffer_b);
    binary_dispatch<T, Op, false>(ra, sa == 0, rb, sb == 0, out + start, m, p);
  }
}

// where and tensor-bounded clamp are not on anyone's hot path: plain loops, which the
// compiler vectorises for the contiguous case.
template <class T>
void where_kernel(const uint8_t* cond, int64_t sc, const T* a, int64_t sa, const T* b, int64_t sb, T* out,
                  int64_t n) {
  if (sc == 1 && sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = cond[i] ? a[i] : b[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = cond[i * sc] ? a[i * sa] : b[i * sb];
}

template <class T>
void clamp_kernel(const T* x, int64_t sx, const T* lo, int64_t sl, const T* hi, int64_t sh, T* out, int64_t n) {
  using V = Vec<T>;
  T bx[kGatherBlock], bl[kGatherBlock], bh[kGatherBlock];
  for (int64_t start = 0; start < n; start += kGatherBlock) {
    const int64_t m = n - start < kGatherBlock ? n - start : kGatherBlock;
    const T* rx = sx == 1 ? x + start : gather(x + start * sx, sx, m, bx);
    const T* rl = sl == 1 ? lo + start : gather(lo + start * sl, sl, m, bl);
    const T* rh = sh == 1 ? hi + start : gather(hi + start * sh, sh, m, bh);
    int64_t i = 0;
    for (; i + V::width <= m; i += V::width)
      minimum(maximum(V::load(rx + i), V::load(rl + i)), V::load(rh + i)).store(out + start + i);
    if (i < m) {
      const int64_t r = m - i;
      minimum(maximum(V::load_partial(rx + i, r), V::load_partial(rl + i, r)), V::load_partial(rh + i, r))
          .store_partial(out + start + i, r);
    }
  }
}

template <class T>
TypedKernels<T> typed_kernels() {
  return TypedKernels<T>{
      {
#define TENSOROPS_UNARY_ENTRY(name) unary_kernel<T, name##_op>,
          TENSOROPS_POINTWISE_UNARY_OPS(TENSOROPS_UNARY_ENTRY)
#undef TENSOROPS_UNARY_ENTRY
      },
      {
#define TENSOROPS_BINARY_ENTRY(name) binary_kernel<T, name##_op>,
          TENSOROPS_POINTWISE_BINARY_OPS(TENSOROPS_BINARY_ENTRY)
#undef TENSOROPS_BINARY_ENTRY
      },
      where_kernel<T>,
      clamp_kernel<T>,
  };
}

}  // namespace

const PointwiseKernels* kernel_table() {
  static const PointwiseKernels table{typed_kernels<float>(), typed_kernels<double>()};
  return &table;
}

}  // namespace tensorops::pointwise::TENSOROPS_ISA_NS
