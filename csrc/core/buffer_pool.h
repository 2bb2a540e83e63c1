// A cache of large output buffers.
//
// A fresh multi-megabyte output costs more than most memory-bound kernels that fill it: the
// kernel must fault in and zero every page (even as 2 MiB huge pages) before the kernel's
// own writes land, roughly doubling the traffic of a relu or a batch norm. Outputs of at
// least kPooledBytes therefore come from this pool: when the NumPy array that owns a block
// dies, the block returns here with its pages mapped and warm, and the next output of a
// similar size reuses it. Blocks are 2 MiB aligned and advised for huge pages. The pool
// holds at most limit() bytes of idle blocks (TENSOROPS_CACHE_MB, default 1024; 0 turns
// caching off); tensorops.empty_cache() releases them all.
#pragma once

#include <cstddef>

namespace tensorops {

constexpr std::size_t kPooledBytes = std::size_t(4) << 20;

// A block of at least `bytes` bytes (a cached one when one fits); *capacity receives its
// real size, to pass back to pool_release. Returns nullptr when memory is exhausted.
void* pool_acquire(std::size_t bytes, std::size_t* capacity);
void pool_release(void* data, std::size_t capacity);

void pool_empty();                   // frees every idle block
std::size_t pool_idle_bytes();
std::size_t pool_limit();
void set_pool_limit(std::size_t bytes);

}  // namespace tensorops
