// Pointwise kernel bodies, written once against Vec<T> and compiled per ISA by the tiny
// generic.cc / x86_avx2.cc / x86_avx512.cc files beside this one.
#include "core/simd/vec.h"
#include "pointwise/pointwise.h"

namespace tensorops::pointwise::TENSOROPS_ISA_NS {
namespace {

using simd::Vec;

// max(0, x) keeps a NaN x: x86 max returns its second operand when either is NaN.
template <class T>
void relu_kernel(const T* in, T* out, int64_t n) {
  using V = Vec<T>;
  const V zero = V::zero();
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) max(zero, V::load(in + i)).store(out + i);
  if (i < n) max(zero, V::load_partial(in + i, n - i)).store_partial(out + i, n - i);
}

}  // namespace

const PointwiseKernels* kernel_table() {
  static const PointwiseKernels table{relu_kernel<float>, relu_kernel<double>};
  return &table;
}

}  // namespace tensorops::pointwise::TENSOROPS_ISA_NS
