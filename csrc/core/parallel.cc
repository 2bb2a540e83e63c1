#include "core/parallel.h"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdlib>

namespace tensorops {
namespace {

// Default: the cores this process may run on, unless OMP_NUM_THREADS says otherwise.
int default_threads() {
  if (std::getenv("OMP_NUM_THREADS")) return std::max(1, omp_get_max_threads());
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1, omp_get_num_procs());
}

std::atomic<bool> g_openmp_started{false};
std::atomic<bool> g_forked_after_openmp{false};

void mark_child_after_fork() {
  if (g_openmp_started.load(std::memory_order_relaxed)) g_forked_after_openmp.store(true);
}

const int g_fork_handler_registered = pthread_atfork(nullptr, nullptr, mark_child_after_fork);

std::atomic<int>& thread_setting() {
  static std::atomic<int> threads{default_threads()};
  return threads;
}

}  // namespace

int get_num_threads() { return thread_setting().load(std::memory_order_relaxed); }

bool openmp_unusable_after_fork() { return g_forked_after_openmp.load(std::memory_order_relaxed); }

void note_openmp_started() {
  if (!g_openmp_started.load(std::memory_order_relaxed)) g_openmp_started.store(true, std::memory_order_relaxed);
}

void set_num_threads(int n) { thread_setting().store(std::max(1, n), std::memory_order_relaxed); }

}  // namespace tensorops
