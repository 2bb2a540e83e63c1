// The tensor view every driver and kernel receives.
//
// Kernels never allocate: the Python layer allocates every output (small ones with NumPy,
// multi-megabyte ones from the buffer pool of core/buffer_pool.h, whose warm blocks spare
// each call the page faults and zeroing of fresh memory) and hands C++ a TensorView: a data
// pointer, a dtype, a shape and strides.
// Strides are counted in elements, not bytes, and may be zero (broadcast) or negative
// (reversed views). All sizes, strides and offsets are int64_t, so tensors of more than
// 2^31 elements index correctly.
#pragma once

#include <cstdint>

namespace tensorops {

enum class DType : int { float32, float64, int32, int64, bool8 };

inline int64_t itemsize(DType dtype) {
  switch (dtype) {
    case DType::float32: return 4;
    case DType::float64: return 8;
    case DType::int32: return 4;
    case DType::int64: return 8;
    case DType::bool8: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::int32: return "int32";
    case DType::int64: return "int64";
    case DType::bool8: return "bool";
  }
  return "unknown";
}

// NumPy allows up to 64 dimensions; so do we.
constexpr int kMaxDims = 64;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::float32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};  // in elements

  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    return n;
  }

  // C-contiguous (size-1 dims may carry any stride, and empty tensors are contiguous, as in
  // NumPy's flags).
  bool is_contiguous() const {
    if (numel() == 0) return true;
    int64_t expected = 1;
    for (int d = ndim - 1; d >= 0; --d) {
      if (shape[d] != 1 && strides[d] != expected) return false;
      expected *= shape[d];
    }
    return true;
  }

  template <class T>
  T* ptr() const { return static_cast<T*>(data); }
};

}  // namespace tensorops
