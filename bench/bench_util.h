// Helpers shared by the Google Benchmark files.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tensorops::bench {

// A C-contiguous view of `data` with the given shape.
inline TensorView contiguous_view(void* data, DType dtype, const std::vector<int64_t>& shape) {
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.ndim = static_cast<int>(shape.size());
  int64_t stride = 1;
  for (int d = v.ndim - 1; d >= 0; --d) {
    v.shape[d] = shape[size_t(d)];
    v.strides[d] = stride;
    stride *= shape[size_t(d)];
  }
  return v;
}

}  // namespace tensorops::bench
