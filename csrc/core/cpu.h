// CPU detection and the ISA cap.
//
// The CPU is examined once, at first use. Kernels exist in up to three variants, named by
// one token everywhere (file stem, CMake flag key, TENSOROPS_ISA value, pytest id):
// generic, x86_avx2 and x86_avx512. The active ISA is the best one the CPU (and OS) supports,
// lowered by the cap that TENSOROPS_ISA or set_isa_cap() imposes; it is never raised above
// what the CPU supports.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tensorops {

enum class Isa : int { generic = 0, x86_avx2 = 1, x86_avx512 = 2 };
constexpr int kIsaCount = 3;

struct CpuFeatures {
  std::string vendor;
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false;
  std::vector<std::string> names() const;  // the features present, lower-case
};

const CpuFeatures& cpu_features();
// One core's L2 cache in bytes as the C library reports it (glibc reads CPUID), 0 where it
// cannot tell; or the size set_l2_cache_bytes assumes instead (TENSOROPS_L2_CACHE_BYTES, for
// a machine the C library misreports, and for tests of the paths chosen by it).
int64_t detected_l2_cache_bytes();
int64_t l2_cache_bytes();
// 0 restores the detected size.
void set_l2_cache_bytes(int64_t bytes);
// Whether a core's L2 is known to be under `bytes`. The L2 size is how the paths that measured
// differently on the machines tuned on tell those apart: Zen 3 (512 KiB, 8-way 32 KiB L1d),
// Zen 4 (1 MiB, 8-way 32 KiB L1d) and the Xeon most kernels were first tuned on (2 MiB,
// 12-way 48 KiB L1d).
bool l2_below(int64_t bytes);
// l2_below(1 MiB): Zen 3 and smaller.
bool has_small_l2();
Isa detected_isa();
Isa active_isa();
// Lowers (or restores) the cap; a cap above detected_isa() runs detected_isa().
void set_isa_cap(Isa cap);
Isa isa_cap();

const char* isa_token(Isa isa);  // "generic", "x86_avx2", "x86_avx512"
// Accepts the token or the user spelling (scalar, avx2, avx512); false if unknown.
bool parse_isa(const std::string& text, Isa* out);

}  // namespace tensorops
