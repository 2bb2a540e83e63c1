// Per-ISA tile and blocking sizes for the GEMM kernels, included by generic.h only (so each
// ISA's translation unit sees its own values).
//
// MR x NR is the microkernel's C tile (NR = NV vectors); KC x NR of packed B stays in L1
// while MC x KC of packed A stays in L2; NC bounds the packed B block. SMALL_M is the
// largest M that takes the streaming paths. ROWDOT_* shape the small-M dot-product kernel
// (rows of A x rows of W per tile; the accumulators fill the register file).
//
// ROWDOT_MAX_M: with B = W^T, M up to this uses the dot products; above it each W panel is
// transposed into the microkernel's layout on the fly (fast only where transpose16 exists).
//
// STREAM_KC: rows of a row-major B per sweep along them in the small-M path (each row of
// the block one prefetcher stream; more rows per sweep load and store C less often).
// STREAM_KC_ALIASED: the same for M <= 8 where B's row stride is a multiple of 4 KiB, which
// puts one column of every row of the block in the same L1 set (64 sets of 64 bytes).
//
// WINDOW_IN_A: the kernel set has the window-as-A microkernels (micro_taps_window_a), with
// which convolution puts output pixels in the tile's rows and output channels across the
// lanes. The x86 sets have them; AVX2's 6-row tiles gain only since a tile may run from one
// output row into the next (conv.cc, window_tile_channels_in_lanes): before, 7-wide rows
// went as 3 + 4 rows and the orientation measured 2-7% slower than the other there. With
// the tiles full, AVX2, 1 thread, ResNet 3x3 layers against pixels across the lanes: 512 at
// 7x7 batch 8 65 -> 85 GFLOP/s, batch 1 65 -> 76, 256 at 14x14 77 -> 86, 128 at 28x28
// +4%, 64 at 56x56 even; float64 +3-8%. The generic set (arm64) is unmeasured and keeps the
// pixels across the lanes.
//
// Measured on the project machine (2-core Xeon with AVX-512, 48 KiB L1d, 2 MiB L2 per core;
// FMA peak per core 225 GFLOP/s with zmm, 115 with ymm), bench/gemm.cc, 1 thread, GFLOP/s per
// CPU second, median of 3 on a loaded machine (+-5%):
//
//   AVX-512 fp32 microkernel alone (KC 128, L1-resident): 14x32 185-190, 12x32 178-182,
//     8x48 163-175, 6x64 162-186, 10x48 161-170, 4x96 145-168. 14x32 kept (28 accumulators,
//     16 loads per 28 FMAs).
//   AVX-512 fp32 mm 1024 / 2048 by (KC, MC, NC) with the A micro-panel resident in L1:
//     (256,280,1024) 168/159, (256,140,512) 166/147, (384,280,512) 166/165,
//     (384,560,512) 169/167 <- kept, (512,280,384) 163/155, (320,420,640) 149/159.
//     The BLIS order (B micro-panel in L1) peaked at 151/146 for every blocking tried.
//   AVX-512 fp64 mm 1024: 14x16 KC 256 80, KC 128 74, 8x24 80, 12x16 79 -> 14x16, KC 256.
//   AVX2 fp32 6x16 microkernel 115-118 (100% of the ymm peak); mm 1024 96.
//   Linear W^T, M = 32, K/N 768/3072: dot products 103, panels transposed on the fly 114
//     -> ROWDOT_MAX_M 16 on AVX-512 fp32; at M = 8 dot products 92 vs 59.
//   mm with a row-major B, M = 1..32, K x N in {512 x 4096, 768 x 3072, 2048^2, 4096 x 512}:
//     AVX-512 fp32 STREAM_KC 16 / 32 / 64: 32 best from M = 8 (M = 32: 1.5 vs 1.9 and 1.4 ms
//     at 512 x 4096), equal at M = 4; AVX2 fp32: 16 best (M = 1: 0.38 vs 0.48 ms at 32). M = 1
//     and 2 sweep 8 and 16 rows on either ISA (gemm.cc, small_m_row_major).
//   The same on a Zen 3 (AVX2, 32 KiB 8-way L1d, 512 KiB L2), 16 vs 8 rows for M = 2..8: a
//     row stride that is a multiple of 4 KiB (768 x 3072, 512 x 4096) puts a panel's 16 rows
//     in one L1 set, and 8 rows ran 1.4-2.3x faster in four runs (M = 2, 768 x 3072: 1.05 ->
//     0.51 ms); at other strides (768 x 3000, 4096 x 512) 0.7-2.5x, run to run, and from
//     M = 16 0.86-1.08x: STREAM_KC_ALIASED 8 for AVX2. AVX-512 keeps 32 (best at 512 x 4096
//     on the machine above, whose L1 has 12 ways); on cores with an L2 under 2 MiB (Zen 4)
//     gemm.cc's rows_per_sweep takes the AVX2 set's 16 and 8 below 16 rows of A.
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
  static constexpr int64_t KC = 384, MC = 560, NC = 512, SMALL_M = 32, ROWDOT_MAX_M = 16, STREAM_KC = 32,
                           STREAM_KC_ALIASED = 32;
  static constexpr int ROWDOT_M = 4, ROWDOT_N = 4, ROWDOT_N_THIN = 8;
  static constexpr bool WINDOW_IN_A = true;
};
template <>
struct Tiles<double> {
  static constexpr int MR = 14, NV = 2;
  static constexpr int64_t KC = 256, MC = 560, NC = 512, SMALL_M = 32, ROWDOT_MAX_M = 32, STREAM_KC = 32,
                           STREAM_KC_ALIASED = 32;
  static constexpr int ROWDOT_M = 4, ROWDOT_N = 6, ROWDOT_N_THIN = 8;
  static constexpr bool WINDOW_IN_A = true;
};
#elif TENSOROPS_ISA_ID == 1
template <>
struct Tiles<float> {
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t KC = 384, MC = 576, NC = 512, SMALL_M = 32, ROWDOT_MAX_M = 32, STREAM_KC = 16,
                           STREAM_KC_ALIASED = 8;
  static constexpr int ROWDOT_M = 2, ROWDOT_N = 4, ROWDOT_N_THIN = 6;
  static constexpr bool WINDOW_IN_A = true;
};
template <>
struct Tiles<double> {
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t KC = 384, MC = 576, NC = 512, SMALL_M = 32, ROWDOT_MAX_M = 32, STREAM_KC = 16,
                           STREAM_KC_ALIASED = 8;
  static constexpr int ROWDOT_M = 2, ROWDOT_N = 4, ROWDOT_N_THIN = 6;
  static constexpr bool WINDOW_IN_A = true;
};
#else
template <>
struct Tiles<float> {
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t KC = 256, MC = 576, NC = 512, SMALL_M = 32, ROWDOT_MAX_M = 32, STREAM_KC = 16,
                           STREAM_KC_ALIASED = 16;
  static constexpr int ROWDOT_M = 2, ROWDOT_N = 4, ROWDOT_N_THIN = 6;
  static constexpr bool WINDOW_IN_A = false;
};
template <>
struct Tiles<double> {
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t KC = 256, MC = 576, NC = 512, SMALL_M = 32, ROWDOT_MAX_M = 32, STREAM_KC = 16,
                           STREAM_KC_ALIASED = 16;
  static constexpr int ROWDOT_M = 2, ROWDOT_N = 4, ROWDOT_N_THIN = 6;
  static constexpr bool WINDOW_IN_A = false;
};
#endif

}  // namespace
}  // namespace tensorops::gemm::TENSOROPS_ISA_NS
