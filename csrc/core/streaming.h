// When a kernel writes its output with non-temporal (streaming) stores.
//
// Streaming stores skip the read-for-ownership of each output line and leave the caches to the
// inputs; they pay off once the output cannot stay in cache anyway. Measured on a 2-core
// AVX-512 machine: relu into a reused 64 MB buffer takes 5.5 ms streaming vs 9.9 ms with
// ordinary stores (np.copyto: 9.6 ms); at 16 MB 1.4 vs 2.2 ms. Kernels that stream write
// whole cache lines only: the elements before the first line boundary and after the last
// one go out with ordinary stores. A line written partly by streaming stores and partly by
// ordinary ones (AVX2's 32-byte vectors split every line in two) leaves the core as partial
// writes: batch norm over 35 x 45 planes ran at 21 GB/s on AVX2 against 34 on AVX-512.
// Drivers fence once per thread's share before the output is read.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/parallel.h"
#include "core/tensor.h"

namespace tensorops {

//
// With two threads and more, outputs under kStreamMinBytesThreaded stay in the cache: there
// input and output fit a 32 MiB L3 together, whose bandwidth grows with the cores writing to
// it, while streaming stores all queue for DRAM. Zen 4, one process alternating the two
// thresholds, 2 threads, 8 and 16 MiB: relu into 8 MB 0.61x the time (into a reused `out`
// 0.38x), into 12 MB 0.52x (0.55x), batch norm eval and train on 20x100x35x45 (12.6 MB)
// 0.55x and 0.66x, instance norm 0.78x, layer norm 8x512x768 0.72x (another run 1.15x);
// relu into 16 MB even. One thread keeps 8 MiB: there 12 MB went either way (batch norm
// eval 0.81x, relu into a reused `out` 0.95x, relu 1.33x and layer norm 1.28x slower).
constexpr int64_t kStreamMinBytes = int64_t(8) << 20;
constexpr int64_t kStreamMinBytesThreaded = int64_t(16) << 20;
// (Outputs tensorops allocates come warm from the buffer pool, core/buffer_pool.h, so the
// same rule holds for them: fresh OS pages, whose zeroing leaves the lines dirty in cache and
// makes streaming stores lose, never reach the kernels for outputs of this size.)

// The output must also be aligned to its element size for the kernels' ordinary-store head
// to reach a cache-line boundary.
template <class T>
bool use_streaming(const TensorView& out) {
  const int64_t bytes = out.numel() * static_cast<int64_t>(sizeof(T));
  const int64_t least = get_num_threads() > 1 ? kStreamMinBytesThreaded : kStreamMinBytes;
  return bytes >= least && reinterpret_cast<uintptr_t>(out.data) % sizeof(T) == 0;
}

constexpr int64_t kCacheLineBytes = 64;

// Elements from p to the next cache-line boundary (0 when p is on one), at most n: the
// ordinary-store head of a streamed run.
template <class T>
int64_t elements_to_cache_line(const T* p, int64_t n) {
  const auto offset = static_cast<int64_t>(reinterpret_cast<uintptr_t>(p) % kCacheLineBytes);
  const int64_t head = (kCacheLineBytes - offset) % kCacheLineBytes / static_cast<int64_t>(sizeof(T));
  return head < n ? head : n;
}

// Whether p starts a cache line.
inline bool on_cache_line(const void* p) { return reinterpret_cast<uintptr_t>(p) % kCacheLineBytes == 0; }

// The end of the whole cache lines of a run that starts on a line boundary at `begin`: the
// streamed part of [begin, end).
template <class T>
int64_t whole_cache_lines_end(int64_t begin, int64_t end) {
  constexpr int64_t line = kCacheLineBytes / static_cast<int64_t>(sizeof(T));
  return begin + (end - begin) / line * line;
}

// Streamed stores pass through write-combining buffers and become visible to other threads
// only after a fence: each thread calls this once at the end of its share of a parallel
// region that streamed (one fence per run instead would stall on the buffers).
inline void fence_streamed_stores(bool streamed) {
  if (streamed) std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace tensorops
