// Pointwise: elementwise functions of one or more tensors.
//
// Kernels see contiguous runs: a microkernel maps n elements of each input to n outputs
// and knows nothing of shapes. The driver (pointwise.cc) turns any strides into such runs
// and splits them across threads with parallel_for; outputs are always C-contiguous arrays
// that Python allocated.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tensorops::pointwise {

struct PointwiseKernels {
  void (*relu_f32)(const float* in, float* out, int64_t n);
  void (*relu_f64)(const double* in, double* out, int64_t n);
};

// out = relu(in); in and out share a shape, out is C-contiguous.
void relu(const TensorView& in, const TensorView& out);

}  // namespace tensorops::pointwise
