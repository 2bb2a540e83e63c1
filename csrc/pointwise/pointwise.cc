#include "pointwise/pointwise.h"

#include "core/dispatch.h"
#include "core/error.h"
#include "core/parallel.h"

namespace tensorops::pointwise {

TENSOROPS_KERNEL_TABLES(PointwiseKernels)

namespace {

const PointwiseKernels& kernels() { return select_kernels(kernel_tables()); }

// Elements per task: large enough to amortise a thread wake-up, small enough to balance.
constexpr int64_t kGrain = 1 << 15;

template <class T>
void run_contiguous(void (*kernel)(const T*, T*, int64_t), const T* in, T* out, int64_t n) {
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) { kernel(in + b, out + b, e - b); });
}

}  // namespace

void relu(const TensorView& in, const TensorView& out) {
  TENSOROPS_CHECK(in.is_contiguous() && out.is_contiguous(), "relu: expected contiguous arrays");
  const auto& k = kernels();
  if (in.dtype == DType::float32)
    run_contiguous(k.relu_f32, in.ptr<const float>(), out.ptr<float>(), in.numel());
  else
    run_contiguous(k.relu_f64, in.ptr<const double>(), out.ptr<double>(), in.numel());
}

}  // namespace tensorops::pointwise
