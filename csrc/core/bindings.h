// Helpers for module.cc and the csrc/<family>/bindings.inc files it includes: turning a
// NumPy array into a TensorView and running a kernel with the GIL released.
//
// module.cc is the only translation unit that includes pybind11; each family keeps its
// m.def() lines in csrc/<family>/bindings.inc, which module.cc #includes inside
// PYBIND11_MODULE, so a family's bindings live beside its code and still compile once.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "core/buffer_pool.h"
#include "core/error.h"
#include "core/tensor.h"

namespace tensorops {
namespace py = pybind11;

inline DType dtype_of(const py::array& a, const char* op, const char* arg) {
  const py::dtype dt = a.dtype();
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'f' && size == 4) return DType::float32;
  if (kind == 'f' && size == 8) return DType::float64;
  if (kind == 'i' && size == 4) return DType::int32;
  if (kind == 'i' && size == 8) return DType::int64;
  if (kind == 'b' && size == 1) return DType::bool8;
  throw TypeError(std::string(op) + ": unsupported dtype " + std::string(py::str(dt)) + " for argument '" + arg + "'");
}

// Read-only view of an input array. Byte strides that are not a multiple of the item size,
// and data not aligned to it, never reach here (the Python layer copies such arrays first);
// C++ refuses them anyway, since kernels read through typed pointers.
inline TensorView view_of(const py::array& a, const char* op, const char* arg) {
  TensorView v;
  v.dtype = dtype_of(a, op, arg);
  v.ndim = static_cast<int>(a.ndim());
  TENSOROPS_CHECK(v.ndim <= kMaxDims, std::string(op) + ": too many dimensions for '" + arg + "'");
  const int64_t item = itemsize(v.dtype);
  for (int d = 0; d < v.ndim; ++d) {
    v.shape[d] = a.shape(d);
    const int64_t bytes = a.strides(d);
    TENSOROPS_CHECK(bytes % item == 0, std::string(op) + ": misaligned strides in '" + arg + "'");
    v.strides[d] = bytes / item;
  }
  v.data = const_cast<void*>(a.data());
  TENSOROPS_CHECK(reinterpret_cast<uintptr_t>(v.data) % item == 0,
                  std::string(op) + ": data of '" + arg + "' is not aligned to its item size");
  return v;
}

// View of an output array: must be writeable (and the caller checks shape and layout).
inline TensorView output_view_of(py::array& a, const char* op, const char* arg) {
  TENSOROPS_CHECK(a.writeable(), std::string(op) + ": output '" + arg + "' is read-only");
  TensorView v = view_of(a, op, arg);
  v.data = a.mutable_data();
  return v;
}

inline void check_same_shape(const TensorView& a, const TensorView& b, const char* op) {
  bool same = a.ndim == b.ndim;
  for (int d = 0; same && d < a.ndim; ++d) same = a.shape[d] == b.shape[d];
  TENSOROPS_CHECK(same, std::string(op) + ": output shape does not match the result shape");
}

inline void check_dtype(const TensorView& v, DType dtype, const char* op, const char* arg) {
  if (v.dtype != dtype)
    throw TypeError(std::string(op) + ": expected " + dtype_name(dtype) + " for '" + arg + "', got " + dtype_name(v.dtype));
}

inline void check_float(const TensorView& v, const char* op, const char* arg) {
  if (v.dtype != DType::float32 && v.dtype != DType::float64)
    throw TypeError(std::string(op) + ": unsupported dtype " + dtype_name(v.dtype) + " for '" + arg + "'");
}

// A new C-contiguous array for an op's result. Large ones come from the buffer pool
// (core/buffer_pool.h) and go back to it when the array dies; small ones from NumPy.
inline py::array new_output(const std::vector<py::ssize_t>& shape, const py::dtype& dtype) {
  std::size_t bytes = static_cast<std::size_t>(dtype.itemsize());
  for (const py::ssize_t size : shape) {
    TENSOROPS_CHECK(size >= 0, "negative dimensions are not allowed");
    if (size != 0 && bytes > static_cast<std::size_t>(PTRDIFF_MAX) / static_cast<std::size_t>(size))
      throw ShapeError("array is too big; `arr.size * arr.dtype.itemsize` is larger than the maximum possible size.");
    bytes *= static_cast<std::size_t>(size);
  }
  if (bytes < kPooledBytes) return py::array(dtype, shape);
  struct Block {
    void* data;
    std::size_t capacity;
  };
  auto* block = new Block{nullptr, 0};
  block->data = pool_acquire(bytes, &block->capacity);
  if (!block->data) {
    delete block;
    throw std::bad_alloc();
  }
  py::capsule owner(block, [](void* p) {
    auto* b = static_cast<Block*>(p);
    pool_release(b->data, b->capacity);
    delete b;
  });
  return py::array(dtype, shape, {}, block->data, owner);
}

// Runs fn() with the GIL released: pointers and shapes have been read already.
template <class Fn>
void without_gil(const Fn& fn) {
  py::gil_scoped_release release;
  fn();
}

}  // namespace tensorops
