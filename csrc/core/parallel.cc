#include "core/parallel.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

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
std::atomic<bool> g_parent_had_threads{false};

// Threads in this process (Linux: /proc/self/stat's num_threads), or 0 where unknown.
int threads_in_process() {
#ifdef __linux__
  const int fd = open("/proc/self/stat", O_RDONLY);
  if (fd < 0) return 0;
  char text[1024];
  const ssize_t length = read(fd, text, sizeof(text) - 1);
  close(fd);
  if (length <= 0) return 0;
  text[length] = '\0';
  // Fields after the command name, which ends at the last ')': state is field 3, num_threads 20.
  const char* at = std::strrchr(text, ')');
  for (int field = 2; at && field < 20; ++field) at = std::strchr(at + 1, ' ');
  return at ? std::atoi(at + 1) : 0;
#else
  return 0;
#endif
}

// Before a fork, in the parent: whether other threads run beside this one. The OpenMP
// runtime is one per process and may be shared (torch loads a libgomp of the same soname),
// so its pool may have been started by another library: a pool thread then exists, and the
// child, which has none of them, would wait for them forever in its first parallel region.
void note_threads_before_fork() { g_parent_had_threads.store(threads_in_process() > 1); }

void mark_child_after_fork() {
  if (g_openmp_started.load(std::memory_order_relaxed) || g_parent_had_threads.load(std::memory_order_relaxed))
    g_forked_after_openmp.store(true);
}

const int g_fork_handler_registered = pthread_atfork(note_threads_before_fork, nullptr, mark_child_after_fork);

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
