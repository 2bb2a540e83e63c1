#include "core/buffer_pool.h"

#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <vector>

namespace tensorops {
namespace {

constexpr std::size_t kHugePage = std::size_t(2) << 20;

struct IdleBlock {
  void* data;
  std::size_t capacity;
};

struct Pool {
  std::mutex mutex;
  std::vector<IdleBlock> idle;  // most recently released last
  std::size_t idle_bytes = 0;
  std::size_t limit = initial_limit();

  // TENSOROPS_CACHE_MB is read, and checked, by the Python package at import.
  static std::size_t initial_limit() { return std::size_t(1024) << 20; }
};

Pool& pool() {
  static Pool* instance = new Pool();  // never destroyed: arrays may outlive static teardown
  return *instance;
}

std::size_t round_up(std::size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }

// Drops the oldest idle blocks until the idle total fits `limit`; returns them for freeing
// outside the lock.
std::vector<IdleBlock> evict_to(Pool& p, std::size_t limit) {
  std::vector<IdleBlock> evicted;
  std::size_t i = 0;
  while (p.idle_bytes > limit && i < p.idle.size()) {
    evicted.push_back(p.idle[i]);
    p.idle_bytes -= p.idle[i].capacity;
    ++i;
  }
  p.idle.erase(p.idle.begin(), p.idle.begin() + static_cast<std::ptrdiff_t>(i));
  return evicted;
}

void free_all(const std::vector<IdleBlock>& blocks) {
  for (const auto& b : blocks) std::free(b.data);
}

}  // namespace

void* pool_acquire(std::size_t bytes, std::size_t* capacity) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    // Best fit among blocks no more than twice the request, newest first on ties.
    std::ptrdiff_t best = -1;
    for (std::ptrdiff_t i = static_cast<std::ptrdiff_t>(p.idle.size()) - 1; i >= 0; --i) {
      const std::size_t cap = p.idle[i].capacity;
      if (cap >= bytes && cap / 2 <= bytes && (best < 0 || cap < p.idle[best].capacity)) best = i;
    }
    if (best >= 0) {
      const IdleBlock block = p.idle[best];
      p.idle.erase(p.idle.begin() + best);
      p.idle_bytes -= block.capacity;
      *capacity = block.capacity;
      return block.data;
    }
  }
  const std::size_t size = round_up(bytes);
  void* data = std::aligned_alloc(kHugePage, size);
  if (!data) {
    pool_empty();  // idle blocks may be what stands in the way
    data = std::aligned_alloc(kHugePage, size);
    if (!data) return nullptr;
  }
#ifdef MADV_HUGEPAGE
  madvise(data, size, MADV_HUGEPAGE);
#endif
  *capacity = size;
  return data;
}

void pool_release(void* data, std::size_t capacity) {
  Pool& p = pool();
  std::vector<IdleBlock> evicted;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    if (capacity > p.limit) {
      evicted.push_back({data, capacity});
    } else {
      p.idle.push_back({data, capacity});
      p.idle_bytes += capacity;
      evicted = evict_to(p, p.limit);
    }
  }
  free_all(evicted);
}

void pool_empty() {
  Pool& p = pool();
  std::vector<IdleBlock> evicted;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    evicted = evict_to(p, 0);
  }
  free_all(evicted);
}

std::size_t pool_idle_bytes() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  return p.idle_bytes;
}

std::size_t pool_limit() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  return p.limit;
}

void set_pool_limit(std::size_t bytes) {
  Pool& p = pool();
  std::vector<IdleBlock> evicted;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    p.limit = bytes;
    evicted = evict_to(p, bytes);
  }
  free_all(evicted);
}

}  // namespace tensorops
