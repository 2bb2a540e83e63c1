// Pointwise: elementwise functions of one, two or three tensors, with NumPy/torch
// broadcasting.
//
// Every op is out[i] = f(a[i], b[i], ...) over a C-contiguous output that Python allocated
// with the broadcast shape; inputs may have any strides (zero for broadcast dims, negative
// for reversed views). The driver (pointwise.cc) reduces that to runs along one axis:
//   1. align each input's strides with the output shape (size-1 dims get stride 0),
//   2. drop size-1 dims and merge neighbouring dims that every operand walks as one
//      (stride[d-1] == stride[d] * shape[d]), so a contiguous tensor becomes one flat run and
//      8x256x56x56 + 256x1x1 becomes runs of 3136 with the bias at stride 0,
//   3. split the flat output index range into chunks for parallel_for and walk each chunk
//      run by run with an odometer over the outer dims.
// A microkernel maps one run: n elements, each input given by a pointer and a stride. It
// has fast loops for stride 1 (contiguous) and stride 0 (a scalar broadcast along the run)
// and gathers any other stride through a small stack buffer into the contiguous loop, so
// every element goes through the same vector code whatever the layout or the chunking:
// results are bitwise identical for any thread count.
//
// Ops are listed once (the X-macros below); each list entry names a functor in generic.h
// and a slot in the kernel table, and Python finds the slot by name (_core.UNARY_OPS).
// Scalar parameters (alpha, slopes, bounds) travel as Scalars<T>, already in the op's dtype.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tensorops::pointwise {

// neg ... square are torch.<name>; the rest are the activations and the scalar forms of
// clamp / round / pow. Parameters used, in Scalars order (a, b, c):
//   clamp (lo, hi)   leaky_relu (slope)   elu (negative coef, positive coef, input scale)
//   softplus (beta, threshold)   round_scaled (10^decimals)   round_unscaled (10^-decimals)
//   pow_scalar (exponent in the dtype; in float32, what a double exponent holds beyond it, in
//   two more floats)
#define TENSOROPS_POINTWISE_UNARY_OPS(X)                                                    \
  X(neg) X(abs) X(sqrt) X(rsqrt) X(exp) X(log) X(sin) X(cos) X(tanh) X(sigmoid) X(erf)     \
  X(floor) X(ceil) X(round) X(round_scaled) X(round_unscaled) X(sign) X(reciprocal)        \
  X(square) X(pow_scalar) X(clamp) X(relu) X(leaky_relu) X(elu) X(gelu) X(gelu_tanh)       \
  X(silu) X(mish) X(hardsigmoid) X(hardswish) X(softplus) X(softsign) X(logsigmoid)

// add is a + b, add_scaled a + alpha * b (sub is add_scaled with -alpha, or sub).
#define TENSOROPS_POINTWISE_BINARY_OPS(X)                                                   \
  X(add) X(sub) X(add_scaled) X(mul) X(div) X(div_trunc) X(div_floor) X(pow) X(maximum)     \
  X(minimum) X(prelu)

enum class UnaryOp : int {
#define TENSOROPS_ENUM_ENTRY(name) name,
  TENSOROPS_POINTWISE_UNARY_OPS(TENSOROPS_ENUM_ENTRY) count
};
enum class BinaryOp : int { TENSOROPS_POINTWISE_BINARY_OPS(TENSOROPS_ENUM_ENTRY) count };
#undef TENSOROPS_ENUM_ENTRY

constexpr int kUnaryOpCount = static_cast<int>(UnaryOp::count);
constexpr int kBinaryOpCount = static_cast<int>(BinaryOp::count);

template <class T>
struct Scalars {
  T a = T(0), b = T(0), c = T(0);
};

// One run of n elements; strides in elements, any value (0 = broadcast, negative allowed).
// stream: the output is far larger than the caches, so the kernel may write it with
// non-temporal stores (no read-for-ownership, no eviction of the inputs' lines).
template <class T>
using UnaryKernel = void (*)(const T* x, int64_t sx, T* out, int64_t n, const Scalars<T>& p, bool stream);
template <class T>
using BinaryKernel = void (*)(const T* a, int64_t sa, const T* b, int64_t sb, T* out, int64_t n,
                              const Scalars<T>& p, bool stream);
// out = cond ? a : b, cond one byte per element (NumPy bool).
template <class T>
using WhereKernel = void (*)(const uint8_t* cond, int64_t sc, const T* a, int64_t sa, const T* b,
                             int64_t sb, T* out, int64_t n);
// out = min(max(x, lo), hi), NaN-propagating (torch.clamp with tensor bounds).
template <class T>
using ClampKernel = void (*)(const T* x, int64_t sx, const T* lo, int64_t sl, const T* hi, int64_t sh,
                             T* out, int64_t n);

template <class T>
struct TypedKernels {
  UnaryKernel<T> unary[kUnaryOpCount];
  BinaryKernel<T> binary[kBinaryOpCount];
  WhereKernel<T> where;
  ClampKernel<T> clamp;
};

struct PointwiseKernels {
  TypedKernels<float> f32;
  TypedKernels<double> f64;
};

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);

// The drivers. out is C-contiguous with the broadcast shape of the inputs; every operand has
// out's dtype (where's cond is bool). Parameters arrive as double and are rounded to the
// dtype once. Shapes and dtypes are re-checked (ShapeError / TypeError), never trusted.
void unary(UnaryOp op, const TensorView& x, const TensorView& out, double pa, double pb, double pc);
void binary(BinaryOp op, const TensorView& a, const TensorView& b, const TensorView& out, double alpha);
void where(const TensorView& cond, const TensorView& a, const TensorView& b, const TensorView& out);
void clamp(const TensorView& x, const TensorView& lo, const TensorView& hi, const TensorView& out);

}  // namespace tensorops::pointwise
