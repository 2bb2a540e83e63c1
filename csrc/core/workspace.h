// Per-thread workspace: the packing buffers of GEMM and the im2col panels and output tiles
// of convolution.
//
// Each call site owns a thread_local Workspace; it grows on demand to the largest request
// seen on that thread and is kept for the thread's lifetime (OpenMP threads persist), so a
// steady stream of calls never allocates. Drivers size their requests by the cache
// blocking, never by the problem, which bounds what any call can hold to a few MB per
// thread. The bytes held by every workspace in the process are counted so that benchmarks
// can report them (workspace_bytes()).
#pragma once

#include <cstddef>

namespace tensorops {

class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace();

  // At least `count` elements of T, 64-byte aligned; the contents are unspecified.
  template <class T>
  T* get(size_t count) {
    return static_cast<T*>(reserve(count * sizeof(T)));
  }

 private:
  void* reserve(size_t bytes);
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Bytes currently held by all workspaces of all threads.
size_t workspace_bytes();

}  // namespace tensorops
