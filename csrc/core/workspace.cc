#include "core/workspace.h"

#include <atomic>
#include <cstdlib>

namespace tensorops {
namespace {
std::atomic<size_t> g_held_bytes{0};
std::atomic<uint64_t> g_mark{0};
std::atomic<size_t> g_requested_bytes{0};
}  // namespace

Workspace::~Workspace() {
  std::free(data_);
  g_held_bytes -= size_;
}

void* Workspace::reserve(size_t bytes) {
  const uint64_t mark = g_mark.load(std::memory_order_relaxed);
  if (mark_ != mark) mark_ = mark, requested_ = 0;
  if (bytes > requested_) {
    g_requested_bytes += bytes - requested_;
    requested_ = bytes;
  }
  if (bytes > size_) {
    std::free(data_);
    g_held_bytes -= size_;
    size_ = (bytes + 4095) & ~size_t(4095);
    data_ = std::aligned_alloc(64, size_);
    // Requests are bounded by cache blocking (a few MB), so failure means the process is out
    // of memory already; there is no sensible recovery inside a kernel thread.
    if (!data_) std::abort();
    g_held_bytes += size_;
  }
  return data_;
}

size_t workspace_bytes() { return g_held_bytes.load(); }

void mark_workspace_requests() {
  g_requested_bytes = 0;
  ++g_mark;
}

size_t workspace_requested_bytes() { return g_requested_bytes.load(); }

}  // namespace tensorops
