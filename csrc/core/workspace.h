// Per-thread workspace: the packing buffers of GEMM and the im2col panels and output tiles
// of convolution.
//
// Each call site owns a thread_local Workspace; it grows on demand to the largest request
// seen on that thread and is kept for the thread's lifetime (OpenMP threads persist), so a
// steady stream of calls never allocates. Drivers size their requests by the cache
// blocking, never by the problem, which bounds what any call can hold to a few MB per
// thread. The bytes held by every workspace in the process are counted so that benchmarks
// can report them (workspace_bytes()), and so are the bytes requested since a mark
// (workspace_requested_bytes()): what one call or one benchmark case needs, whatever
// earlier calls left the workspaces holding.
#pragma once

#include <cstddef>
#include <cstdint>

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
  // The largest request since the mark numbered mark_.
  uint64_t mark_ = 0;
  size_t requested_ = 0;
};

// Bytes currently held by all workspaces of all threads.
size_t workspace_bytes();

// Starts a new count for workspace_requested_bytes(). Call it while no kernel runs.
void mark_workspace_requests();

// Over every workspace of every thread, the sum of the largest request each has had since
// mark_workspace_requests() (all of them since the process started, if never marked).
size_t workspace_requested_bytes();

}  // namespace tensorops
