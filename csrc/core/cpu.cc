#include "core/cpu.h"

#include <atomic>
#include <cstdlib>

#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

namespace tensorops {
namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  // libgcc's cpuinfo also checks that the OS saves the AVX/AVX-512 register state.
  __builtin_cpu_init();
  f.vendor = __builtin_cpu_is("intel") ? "GenuineIntel" : __builtin_cpu_is("amd") ? "AuthenticAMD" : "x86";
  f.sse42 = __builtin_cpu_supports("sse4.2");
  f.avx = __builtin_cpu_supports("avx");
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.bmi2 = __builtin_cpu_supports("bmi2");
  f.f16c = f.avx;  // every AVX-capable CPU we dispatch to AVX2 on has F16C
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
#else
  f.vendor = "non-x86";
#endif
  return f;
}

Isa best_isa(const CpuFeatures& f) {
#if TENSOROPS_X86
  if (f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl && f.avx2 && f.fma) return Isa::x86_avx512;
  if (f.avx2 && f.fma) return Isa::x86_avx2;
#endif
  (void)f;
  return Isa::generic;
}

std::atomic<int> g_cap{static_cast<int>(Isa::x86_avx512)};

}  // namespace

std::vector<std::string> CpuFeatures::names() const {
  std::vector<std::string> out;
  const std::pair<const char*, bool> all[] = {
      {"sse4_2", sse42},     {"avx", avx},           {"avx2", avx2},         {"fma", fma},
      {"f16c", f16c},        {"bmi2", bmi2},         {"avx512f", avx512f},   {"avx512dq", avx512dq},
      {"avx512bw", avx512bw}, {"avx512vl", avx512vl}};
  for (const auto& [name, present] : all)
    if (present) out.emplace_back(name);
  return out;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::atomic<int64_t> g_l2_override{0};

int64_t detected_l2_cache_bytes() {
  static const int64_t bytes = [] {
#ifdef _SC_LEVEL2_CACHE_SIZE
    const long size = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return int64_t(size > 0 ? size : 0);
#else
    return int64_t(0);
#endif
  }();
  return bytes;
}

int64_t l2_cache_bytes() {
  const int64_t assumed = g_l2_override.load(std::memory_order_relaxed);
  return assumed > 0 ? assumed : detected_l2_cache_bytes();
}

void set_l2_cache_bytes(int64_t bytes) {
  g_l2_override.store(bytes > 0 ? bytes : 0, std::memory_order_relaxed);
}

bool l2_below(int64_t bytes) {
  const int64_t l2 = l2_cache_bytes();
  return l2 > 0 && l2 < bytes;
}

bool has_small_l2() { return l2_below(int64_t(1) << 20); }

Isa detected_isa() {
  static const Isa isa = best_isa(cpu_features());
  return isa;
}

Isa active_isa() {
  const int cap = g_cap.load(std::memory_order_relaxed);
  const int best = static_cast<int>(detected_isa());
  return static_cast<Isa>(cap < best ? cap : best);
}

void set_isa_cap(Isa cap) { g_cap.store(static_cast<int>(cap), std::memory_order_relaxed); }
Isa isa_cap() { return static_cast<Isa>(g_cap.load(std::memory_order_relaxed)); }

const char* isa_token(Isa isa) {
  switch (isa) {
    case Isa::generic: return "generic";
    case Isa::x86_avx2: return "x86_avx2";
    case Isa::x86_avx512: return "x86_avx512";
  }
  return "generic";
}

bool parse_isa(const std::string& text, Isa* out) {
  if (text == "generic" || text == "scalar") *out = Isa::generic;
  else if (text == "x86_avx2" || text == "avx2") *out = Isa::x86_avx2;
  else if (text == "x86_avx512" || text == "avx512") *out = Isa::x86_avx512;
  else return false;
  return true;
}

}  // namespace tensorops
