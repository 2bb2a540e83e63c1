// The one parallel loop.
//
// Drivers split work with parallel_for(begin, end, grain, fn): fn(chunk_begin, chunk_end)
// runs on up to get_num_threads() threads, each getting one contiguous chunk, and never on
// more threads than there are grains of work. OpenMP appears only here, so the threading
// backend can change in one place. Kernels that reduce must not let the chunking change
// their result: they block their sums by a fixed size, never by the thread count.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>

namespace tensorops {

int get_num_threads();
void set_num_threads(int n);
// True in a child forked after the parent started OpenMP workers, or forked while the parent
// ran other threads (a pool started by another library sharing the OpenMP runtime): run
// serially there.
bool openmp_unusable_after_fork();
void note_openmp_started();

template <class Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const Fn& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t max_chunks = (n + grain - 1) / grain;
  const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), max_chunks));
  if (threads <= 1 || omp_in_parallel() || openmp_unusable_after_fork()) {
    fn(begin, end);
    return;
  }
  note_openmp_started();
  // An exception must not leave an OpenMP region (that terminates the process): the first
  // one thrown by any chunk is carried out and rethrown here, after every thread is done.
  std::exception_ptr error;
#pragma omp parallel num_threads(threads)
  {
    const int64_t team = omp_get_num_threads();
    const int64_t t = omp_get_thread_num();
    // Chunks are rounded to the grain so that neighbours never split a grain.
    const int64_t grains_per_thread = (max_chunks + team - 1) / team;
    const int64_t chunk_begin = begin + std::min(n, t * grains_per_thread * grain);
    const int64_t chunk_end = begin + std::min(n, (t + 1) * grains_per_thread * grain);
    if (chunk_begin < chunk_end) {
      try {
        fn(chunk_begin, chunk_end);
      } catch (...) {
#pragma omp critical(tensorops_parallel_for_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace tensorops
