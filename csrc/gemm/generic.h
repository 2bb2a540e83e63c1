// GEMM kernel bodies, written once against Vec<T> and compiled per ISA by generic.cc /
// x86_avx2.cc / x86_avx512.cc. Tile sizes come from tiles.h.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "core/prefetch.h"
#include "core/streaming.h"
#include "core/simd/math.h"
#include "core/simd/vec.h"
#include "gemm/gemm.h"
#include "gemm/tiles.h"

namespace tensorops::gemm::TENSOROPS_ISA_NS {
namespace {

using simd::Vec;

using simd::mul_add;

// ---- microkernel ------------------------------------------------------------------------

// ROWS x (NV vectors) of C, accumulated over k in registers. The loops over the tile are
// unrolled at compile time so the accumulators never leave the register file; each A
// element is broadcast once per k and each B vector loaded once per k.
// kStreamB: B streams from L3 or memory, read once per call (the small-M path), so the
// kernel prefetches it kPrefetchSteps k steps ahead (2 KiB of a 32-float panel): the hardware
// prefetcher alone leaves the FMAs waiting (linear M = 8: 5-15% faster). In the blocked path
// B's block sits in L2 and the same prefetches cost 5-8% on mm 1024.
constexpr int64_t kPrefetchSteps = 16;

// `taps` > 1 (convolution's shifted windows): the k loop runs once per tap over B rows
// starting tap_offsets[t] elements past b, A's panel continuing from tap to tap, so a
// whole 3x3 filter is one call and the C tile is loaded and stored once, not nine times.
// kWindowInA swaps the roles: A is the window, read in place (row i of k step p of tap t at
// a + tap_offsets[t] + p * a_step + i), and B's packed panel continues from tap to tap. With
// kSplit > 0, rows from kSplit on come from a second run of the window a_row further on
// (row i at ... + a_row + i - kSplit) and are stored c_row further on in C (row i at c +
// c_row + (i - kSplit) * ldc): two output rows of a narrow image in one tile. tap_edges
// (window as A, may be null) leaves rows out of a tap where the caller knows those pixels'
// taps read the padding's zeros: tap_edges[t] = 1 leaves out the rows that start a run (row
// 0, and row kSplit), 2 those that end one (the last row, and row kSplit - 1), 3 both, 4
// row kSplit alone, 8 row kSplit - 1 alone; any other value, none.
template <class T, int ROWS, int NV, bool kStreamB, bool kWindowInA = false, int kSplit = 0>
__attribute__((always_inline)) inline void microkernel_body(int64_t taps, const int64_t* tap_offsets,
                                                            const uint8_t* tap_edges, int64_t k,
                                                            const T* __restrict a, int64_t a_step, int64_t a_row,
                                                            const T* __restrict b, int64_t b_step, T* __restrict c,
                                                            int64_t ldc, int64_t c_row, int64_t n_valid,
                                                            bool accumulate,
                                                            const T* row_bias, int64_t row_bias_stride) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  V acc[ROWS][NV];
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
  // A tile that is accumulated into is read after the k loop: fetch it now so that its cache
  // misses (C rarely fits in L2) overlap the arithmetic instead of following it. A tile that
  // is only written is not: there the prefetches cost more than the misses they hide
  // (bmm 12x(128x64 @ 64x128) 205 -> 185 us without them, mm 1024 unchanged).
  if (accumulate) {
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      T* row = kSplit > 0 && i >= kSplit ? c + c_row + (i - kSplit) * ldc : c + i * ldc;
      __builtin_prefetch(row, 1);
      __builtin_prefetch(row + NV * W - 1, 1);
    }
  }
  // The operand that continues from tap to tap advances by its constant step (MR for a packed
  // A panel, NR for a packed B panel); the window restarts at each tap's offset.
  constexpr int64_t kPanelStep = kWindowInA ? NV * W : Tiles<T>::MR;
  // One row streaming B (linear at batch 1 with a packed weight): NV chains of k FMAs each,
  // an FMA latency per k step. Where a k step is only 64 bytes of B (AVX2's panels) that caps
  // the row at 16 bytes a cycle, below L2's rate, so a second set of accumulators takes the
  // odd k steps; AVX-512's 128-byte steps are not held back (measured unchanged or slower).
  constexpr bool kTwoSets = kStreamB && ROWS == 1 && !kWindowInA && NV * W * int64_t(sizeof(T)) <= 64;
  V odd[kTwoSets ? NV : 1];
  if constexpr (kTwoSets) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) odd[j] = V::zero();
  }
  for (int64_t t = 0; t < taps; ++t) {
    const T* at = a;
    const T* bt = b;
    if (tap_offsets) (kWindowInA ? at : bt) += tap_offsets[t];
    int64_t p = 0;
    if constexpr (kTwoSets) {
      for (; p + 2 <= k; p += 2) {
        const V a0(at[0]), a1(at[kPanelStep]);
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) {
          __builtin_prefetch(address_past(bt + j * W, uintptr_t(kPrefetchSteps * b_step) * sizeof(T)));
          __builtin_prefetch(address_past(bt + j * W, uintptr_t((kPrefetchSteps + 1) * b_step) * sizeof(T)));
          acc[0][j] = mul_add(a0, V::load(bt + j * W), acc[0][j]);
          odd[j] = mul_add(a1, V::load(bt + b_step + j * W), odd[j]);
        }
        at += 2 * kPanelStep;
        bt += 2 * b_step;
      }
    }
    // The k steps over the rows in the mask (a compile-time constant: the unrolled row loop
    // keeps only their FMAs).
    const auto steps = [&](auto rows_mask) __attribute__((always_inline)) {
      constexpr uint32_t kMask = decltype(rows_mask)::value;
#pragma GCC unroll 2
      for (; p < k; ++p) {
        V bv[NV];
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) {
          if constexpr (kStreamB)
            __builtin_prefetch(address_past(bt + j * W, uintptr_t(kPrefetchSteps * b_step) * sizeof(T)));
          bv[j] = V::load(bt + j * W);
        }
#pragma GCC unroll 16
        for (int i = 0; i < ROWS; ++i) {
          if (!((kMask >> i) & 1u)) continue;
          const V ai(kSplit > 0 && i >= kSplit ? at[a_row + i - kSplit] : at[i]);
#pragma GCC unroll 8
          for (int j = 0; j < NV; ++j) acc[i][j] = mul_add(ai, bv[j], acc[i][j]);
        }
        at += kWindowInA ? a_step : kPanelStep;
        bt += kWindowInA ? kPanelStep : b_step;
      }
    };
    constexpr uint32_t kAllRows = (uint32_t(1) << ROWS) - 1;
    if constexpr (kWindowInA) {
      constexpr uint32_t kStarts = 1u | (kSplit > 0 ? uint32_t(1) << kSplit : 0u);
      constexpr uint32_t kEnds = (uint32_t(1) << (ROWS - 1)) | (kSplit > 0 ? uint32_t(1) << (kSplit - 1) : 0u);
      // (Two runs only: row kSplit alone, row kSplit - 1 alone.)
      constexpr uint32_t kInnerStart = kSplit > 0 ? uint32_t(1) << kSplit : 0u;
      constexpr uint32_t kInnerEnd = kSplit > 0 ? uint32_t(1) << (kSplit - 1) : 0u;
      switch (tap_edges ? tap_edges[t] : 0) {
        case 1: steps(std::integral_constant<uint32_t, kAllRows & ~kStarts>{}); break;
        case 2: steps(std::integral_constant<uint32_t, kAllRows & ~kEnds>{}); break;
        case 3: steps(std::integral_constant<uint32_t, kAllRows & ~kStarts & ~kEnds>{}); break;
        case 4: steps(std::integral_constant<uint32_t, kAllRows & ~kInnerStart>{}); break;
        case 8: steps(std::integral_constant<uint32_t, kAllRows & ~kInnerEnd>{}); break;
        default: steps(std::integral_constant<uint32_t, kAllRows>{});
      }
    } else {
      steps(std::integral_constant<uint32_t, kAllRows>{});
    }
    (kWindowInA ? b : a) = kWindowInA ? bt : at;
  }
  if constexpr (kTwoSets) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[0][j] = acc[0][j] + odd[j];
  }
  if (n_valid >= NV * W) {
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      T* row = kSplit > 0 && i >= kSplit ? c + c_row + (i - kSplit) * ldc : c + i * ldc;
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) {
        V v = acc[i][j];
        if (accumulate) v = v + V::load(row + j * W);
        if (row_bias) v = v + V(row_bias[i * row_bias_stride]);
        v.store(row + j * W);
      }
    }
    return;
  }
  // The right edge: the vectors of each row that hold valid columns. The loops keep
  // compile-time indices into acc (the column count only masks), so acc never has to live
  // in memory: indexing it at run time made GCC zero a stack copy of the tile on every call.
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i) {
    T* row = kSplit > 0 && i >= kSplit ? c + c_row + (i - kSplit) * ldc : c + i * ldc;
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const int64_t cols = std::min<int64_t>(W, n_valid - j * W);
      if (cols <= 0) continue;
      V v = acc[i][j];
      if (accumulate) v = v + V::load_partial(row + j * W, cols);
      if (row_bias) v = v + V(row_bias[i * row_bias_stride]);
      v.store_partial(row + j * W, cols);
    }
  }
}

template <class T, int ROWS, int NV, bool kStreamB>
void microkernel(int64_t k, const T* a, const T* b, int64_t b_step, T* c, int64_t ldc, int64_t n_valid,
                 bool accumulate, const T* row_bias, int64_t row_bias_stride) {
  microkernel_body<T, ROWS, NV, kStreamB>(1, nullptr, nullptr, k, a, 0, 0, b, b_step, c, ldc, 0, n_valid, accumulate,
                                          row_bias, row_bias_stride);
}

template <class T, int ROWS, int NV>
void microkernel_taps(int64_t taps, const int64_t* tap_offsets, int64_t k, const T* a, const T* b, int64_t b_step,
                      T* c, int64_t ldc, int64_t n_valid, bool accumulate) {
  microkernel_body<T, ROWS, NV, false>(taps, tap_offsets, nullptr, k, a, 0, 0, b, b_step, c, ldc, 0, n_valid,
                                       accumulate, nullptr, 0);
}

template <class T, int ROWS, int NV, int kSplit>
void microkernel_taps_window_a(int64_t taps, const int64_t* tap_offsets, const uint8_t* tap_edges, int64_t k,
                               const T* a, int64_t a_step, int64_t a_row, const T* b, T* c, int64_t ldc,
                               int64_t c_row, int64_t n_valid, bool accumulate) {
  microkernel_body<T, ROWS, NV, false, true, kSplit>(taps, tap_offsets, tap_edges, k, a, a_step, a_row, b, 0, c, ldc,
                                                     c_row, n_valid, accumulate, nullptr, 0);
}

// One row of A against kb rows of a row-major B read in place (M = 1: a vector times a
// matrix), swept across all n columns in one call. The microkernel would be called once per
// NR-column panel, each call a few k steps between its setup and its C tile's store; here the
// kb values of A stay in registers for the whole sweep. Each column sums its kb products from
// zero and then adds C, as the microkernel does. A's values are a_step apart.
template <class T, int KB>
void sweep_row(int64_t n, const T* a, int64_t a_step, const T* b, int64_t b_step, T* c, bool accumulate) {
  using V = Vec<T>;
  constexpr int64_t W = V::width, kVectors = 4;
  V av[KB];
#pragma GCC unroll 16
  for (int q = 0; q < KB; ++q) av[q] = V(a[q * a_step]);
  int64_t j = 0;
  for (; j + kVectors * W <= n; j += kVectors * W) {
    V sum[kVectors];
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) sum[v] = V::zero();
#pragma GCC unroll 16
    for (int q = 0; q < KB; ++q)
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) sum[v] = mul_add(av[q], V::load(b + q * b_step + j + v * W), sum[v]);
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) {
      if (accumulate) sum[v] = sum[v] + V::load(c + j + v * W);
      sum[v].store(c + j + v * W);
    }
  }
  for (; j < n; j += W) {
    const int64_t cols = std::min(W, n - j);
    V sum = V::zero();
#pragma GCC unroll 16
    for (int q = 0; q < KB; ++q) sum = mul_add(av[q], V::load_partial(b + q * b_step + j, cols), sum);
    if (accumulate) sum = sum + V::load_partial(c + j, cols);
    sum.store_partial(c + j, cols);
  }
}

template <class T, int... Rows>
constexpr auto sweep_row_table(std::integer_sequence<int, Rows...>) {
  using SweepRow = typename KernelSet<T>::SweepRow;
  return std::array<SweepRow, KernelSet<T>::kMaxSweepRows + 1>{
      {(Rows >= 1 ? &sweep_row<T, (Rows >= 1 ? Rows : 1)> : nullptr)...}};
}

template <class T, bool kStreamB, int NV, int... Rows>
constexpr auto micro_table(std::integer_sequence<int, Rows...>) {
  using Micro = typename KernelSet<T>::Micro;
  constexpr int MR = Tiles<T>::MR;
  static_assert(MR <= KernelSet<T>::kMaxRows, "MR exceeds KernelSet::kMaxRows");
  return std::array<Micro, KernelSet<T>::kMaxRows + 1>{
      {(Rows >= 1 && Rows <= MR ? &microkernel<T, (Rows >= 1 && Rows <= MR ? Rows : 1), NV, kStreamB> : nullptr)...}};
}

template <class T, int... Rows>
constexpr auto micro_taps_table(std::integer_sequence<int, Rows...>) {
  using MicroTaps = typename KernelSet<T>::MicroTaps;
  constexpr int MR = Tiles<T>::MR;
  return std::array<MicroTaps, KernelSet<T>::kMaxRows + 1>{
      {(Rows >= 1 && Rows <= MR ? &microkernel_taps<T, (Rows >= 1 && Rows <= MR ? Rows : 1), Tiles<T>::NV>
                                : nullptr)...}};
}

template <class T, int... Rows>
constexpr auto micro_taps_window_a_table(std::integer_sequence<int, Rows...>) {
  using MicroTapsWindowA = typename KernelSet<T>::MicroTapsWindowA;
  constexpr int MR = Tiles<T>::MR;
  return std::array<MicroTapsWindowA, KernelSet<T>::kMaxRows + 1>{
      {(Rows >= 1 && Rows <= MR ? &microkernel_taps_window_a<T, (Rows >= 1 && Rows <= MR ? Rows : 1), Tiles<T>::NV, 0>
                                : nullptr)...}};
}

// Entry n: two runs of n rows each (2n <= MR), the second a_row further on.
template <class T, int... Runs>
constexpr auto micro_taps_window_a_pairs_table(std::integer_sequence<int, Runs...>) {
  using MicroTapsWindowA = typename KernelSet<T>::MicroTapsWindowA;
  constexpr int MR = Tiles<T>::MR;
  return std::array<MicroTapsWindowA, KernelSet<T>::kMaxRows / 2 + 1>{
      {(Runs >= 1 && 2 * Runs <= MR
            ? &microkernel_taps_window_a<T, (Runs >= 1 && 2 * Runs <= MR ? 2 * Runs : 2), Tiles<T>::NV,
                                         (Runs >= 1 && 2 * Runs <= MR ? Runs : 1)>
            : nullptr)...}};
}

// Entry s: MR rows, the first s at the window and the other MR - s a_row further on.
template <class T, int... Split>
constexpr auto micro_taps_window_a_split_table(std::integer_sequence<int, Split...>) {
  using MicroTapsWindowA = typename KernelSet<T>::MicroTapsWindowA;
  constexpr int MR = Tiles<T>::MR;
  return std::array<MicroTapsWindowA, KernelSet<T>::kMaxRows>{
      {(Split >= 1 && Split < MR
            ? &microkernel_taps_window_a<T, MR, Tiles<T>::NV, (Split >= 1 && Split < MR ? Split : 1)>
            : nullptr)...}};
}

// ---- packing ----------------------------------------------------------------------------

// The packed row of K index p: k_dest[p] when Ordered, else p. A compile-time choice, so
// that the plain packing of the GEMM's loop nest keeps its address arithmetic.
template <bool Ordered>
int64_t packed_row(const int64_t* k_dest, int64_t p) {
  if constexpr (Ordered) return k_dest[p];
  else return p;
}

template <class T, bool Ordered>
void pack_a_ordered(int64_t m, int64_t k, MatrixRef<T> a, T* dst, const int64_t* k_dest) {
  constexpr int MR = Tiles<T>::MR;
  const auto at = [k_dest](int64_t p) { return packed_row<Ordered>(k_dest, p); };
  for (int64_t i0 = 0; i0 < m; i0 += MR) {
    const int64_t rows = std::min<int64_t>(MR, m - i0);
    T* d = dst + i0 * k;
    if (a.row_stride == 1 && rows == MR) {
      for (int64_t p = 0; p < k; ++p) {
        const T* src = a.at(i0, p);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) d[at(p) * MR + r] = src[r];
      }
    } else if (a.col_stride == 1 && rows == MR) {
      // Rows of A lie along memory: read a vector from each row, then interleave the rows
      // through a small L1 tile (one vector load per W elements instead of W scalar loads
      // from MR different rows).
      using V = Vec<T>;
      constexpr int64_t W = V::width;
      const T* src = a.at(i0, 0);
      const int64_t rs = a.row_stride;
      int64_t p0 = 0;
#if TENSOROPS_ISA_ID >= 1
      // Through the ISA's register transpose a vector at a time rather than an element at a
      // time (AVX2's element loop had been a third of a 512-channel 3x3 conv2d call with a
      // plain filter, which packs the filter on every call).
      if constexpr (std::is_same_v<T, float>) {
        constexpr int side = int(Vec<float>::width);
        static_assert(MR <= side, "a row panel must fit one transpose");
        for (; p0 + side <= k; p0 += side) {
          Vec<float> col[side];
          simd::transpose_columns(src + p0, rs, MR, side, col);
          for (int j = 0; j < side; ++j) col[j].store_partial(d + at(p0 + j) * MR, MR);
        }
      }
#endif
      for (; p0 + W <= k; p0 += W) {
        alignas(64) T tile[MR][W];
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) V::load(src + r * rs + p0).store(tile[r]);
#pragma GCC unroll 16
        for (int64_t p = 0; p < W; ++p) {
#pragma GCC unroll 16
          for (int r = 0; r < MR; ++r) d[at(p0 + p) * MR + r] = tile[r][p];
        }
      }
      for (; p0 < k; ++p0)
        for (int r = 0; r < MR; ++r) d[at(p0) * MR + r] = src[r * rs + p0];
    } else {
      for (int64_t r = 0; r < rows; ++r) {
        const T* src = a.at(i0 + r, 0);
        for (int64_t p = 0; p < k; ++p) d[at(p) * MR + r] = src[p * a.col_stride];
      }
    }
  }
}

template <class T>
void pack_a(int64_t m, int64_t k, MatrixRef<T> a, T* dst, const int64_t* k_dest) {
  if (k_dest) pack_a_ordered<T, true>(m, k, a, dst, k_dest);
  else pack_a_ordered<T, false>(m, k, a, dst, k_dest);
}

// pack_b's stores: streamed ones (see KernelSet::pack_b) skip the read for ownership of each
// packed line. A functional conv2d packing a 9.4 MB filter (512 -> 512, 3x3) for every call:
// 0.92x the call's time, Zen 4, 1 thread.
template <class T, bool Ordered>
void pack_b_ordered(int64_t k, int64_t n, MatrixRef<T> b, T* dst, int64_t panel_stride, const int64_t* k_dest,
                    bool stream) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  constexpr int64_t NR = Tiles<T>::NV * W;
  const auto at = [k_dest](int64_t p) { return packed_row<Ordered>(k_dest, p); };
  stream = stream && W * int64_t(sizeof(T)) == kCacheLineBytes;
  const auto put = [stream](T* to, V v) {
    if (stream) store_stream(to, v);
    else v.store(to);
  };
  if (b.col_stride == 1) {
    // Rows of B lie along memory: walk each row once, from panel to panel, so reads stay
    // sequential (a panel at a time would read NR elements from every row, a page apart).
    const int64_t full = n / NR * NR;
    for (int64_t p = 0; p < k; ++p) {
      const T* src = b.at(p, 0);
      for (int64_t j0 = 0; j0 < full; j0 += NR) {
        T* out = dst + (j0 / NR) * panel_stride + at(p) * NR;
#pragma GCC unroll 8
        for (int64_t j = 0; j < NR; j += W) put(out + j, V::load(src + j0 + j));
      }
      if (full < n) {
        T* out = dst + (full / NR) * panel_stride + at(p) * NR;
        for (int64_t j = 0; j < NR; j += W)
          put(out + j, V::load_partial(src + full + j, std::max<int64_t>(0, n - full - j)));
      }
    }
    fence_streamed_stores(stream);
    return;
  }
  for (int64_t j0 = 0; j0 < n; j0 += NR) {
    const int64_t cols = std::min<int64_t>(NR, n - j0);
    T* d = dst + (j0 / NR) * panel_stride;
    // Columns of B lie along memory (B = W^T for a linear weight W[N, K]): walk each source
    // row in cache-line blocks of k so that reads stay sequential.
    constexpr int64_t kBlock = 16;
    int64_t p_start = 0;
#if TENSOROPS_ISA_ID >= 1
    if constexpr (std::is_same_v<T, float>) {
      constexpr int side = int(Vec<float>::width);
      if (b.row_stride == 1) {
        for (; p_start + side <= k; p_start += side) {
          for (int64_t j = 0; j < NR; j += side) {
            Vec<float> col[side];
            const int rows = static_cast<int>(std::clamp<int64_t>(cols - j, 0, side));
            simd::transpose_columns(b.at(p_start, j0 + j), b.col_stride, rows, side, col);
            for (int p = 0; p < side; ++p) put(d + at(p_start + p) * NR + j, col[p]);
          }
        }
      }
    }
#endif
    for (int64_t p0 = p_start; p0 < k; p0 += kBlock) {
      const int64_t pend = std::min(k, p0 + kBlock);
      for (int64_t j = 0; j < cols; ++j) {
        const T* src = b.at(0, j0 + j);
        for (int64_t p = p0; p < pend; ++p) d[at(p) * NR + j] = src[p * b.row_stride];
      }
      for (int64_t j = cols; j < NR; ++j)
        for (int64_t p = p0; p < pend; ++p) d[at(p) * NR + j] = T(0);
    }
  }
  fence_streamed_stores(stream);
}

template <class T>
void pack_b(int64_t k, int64_t n, MatrixRef<T> b, T* dst, int64_t panel_stride, const int64_t* k_dest,
            bool stream) {
  if (k_dest) pack_b_ordered<T, true>(k, n, b, dst, panel_stride, k_dest, stream);
  else pack_b_ordered<T, false>(k, n, b, dst, panel_stride, k_dest, stream);
}

// ---- epilogue ---------------------------------------------------------------------------

template <class T>
Vec<T> load_strided(const T* p, int64_t stride, int64_t n) {
  using V = Vec<T>;
  if (stride == 1) return n >= V::width ? V::load(p) : V::load_partial(p, n);
  if (stride == 0) return V(*p);
  T lanes[V::width] = {};
  for (int64_t i = 0; i < n && i < V::width; ++i) lanes[i] = p[i * stride];
  return V::load(lanes);
}

template <class T, Activation Act>
Vec<T> activate(Vec<T> x) {
  using V = Vec<T>;
  if constexpr (Act == Activation::relu) {
    return max(V::zero(), x);  // a NaN x stays NaN (x86 max returns its second operand)
  } else if constexpr (Act == Activation::silu) {
    return x / (V(T(1)) + simd::exp(-x));
  } else if constexpr (Act == Activation::gelu_tanh) {
    // 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)): accurate for both signs of x.
    const V kSqrt2OverPi(T(0.7978845608028654));
    const V x3 = x * x * x;
    const V u = kSqrt2OverPi * mul_add(V(T(0.044715)), x3, x);
    return x / (V(T(1)) + simd::exp(V(T(-2)) * u));
  } else if constexpr (Act == Activation::gelu) {
    if constexpr (sizeof(T) == 4) {
      return simd::gelu(x);
    } else {
      // 0.5 x erfc(-x / sqrt 2): no cancellation for negative x.
      T lanes[V::width];
      x.store(lanes);
      for (auto& v : lanes) v = T(0.5) * v * std::erfc(v * T(-0.7071067811865476));
      return V::load(lanes);
    }
  } else {
    return x;
  }
}

template <class T, Activation Act>
void epilogue_rows(int64_t m, int64_t n, T* c, int64_t ldc, const Epilogue<T>& e) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  const V alpha(e.alpha), beta(e.beta);
  const bool scale = e.alpha != T(1);
  for (int64_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    const T* add = e.addend.data ? e.addend.data + i * e.addend.row_stride : nullptr;
    const T* res = e.residual.data ? e.residual.data + i * e.residual.row_stride : nullptr;
    for (int64_t j = 0; j < n; j += W) {
      const int64_t cnt = std::min(W, n - j);
      V v = cnt == W ? V::load(row + j) : V::load_partial(row + j, cnt);
      if (scale) v = v * alpha;
      if (add) v = mul_add(beta, load_strided(add + j * e.addend.col_stride, e.addend.col_stride, cnt), v);
      if (res) v = v + load_strided(res + j * e.residual.col_stride, e.residual.col_stride, cnt);
      v = activate<T, Act>(v);
      if (cnt == W) v.store(row + j);
      else v.store_partial(row + j, cnt);
    }
  }
}

template <class T>
void epilogue(int64_t m, int64_t n, T* c, int64_t ldc, const Epilogue<T>& e) {
  switch (e.activation) {
    case Activation::none: return epilogue_rows<T, Activation::none>(m, n, c, ldc, e);
    case Activation::relu: return epilogue_rows<T, Activation::relu>(m, n, c, ldc, e);
    case Activation::gelu: return epilogue_rows<T, Activation::gelu>(m, n, c, ldc, e);
    case Activation::gelu_tanh: return epilogue_rows<T, Activation::gelu_tanh>(m, n, c, ldc, e);
    case Activation::silu: return epilogue_rows<T, Activation::silu>(m, n, c, ldc, e);
  }
}

// ---- small-M dot products ---------------------------------------------------------------

#if TENSOROPS_ISA_ID == 2
// The lane sums of 16 accumulators at once (Vec::lane_sums: one transposing tree, a third of
// the shuffles of 16 separate reductions, with reduce_add's bits, so a tile's results do not
// depend on whether it took this path), stored as the tile's rows of nb.
inline void store_sums16(const Vec<float>* acc_rowmajor, float* c, int64_t ldc, int nb) {
  const Vec<float> sums = lane_sums(acc_rowmajor);
  const int rows = 16 / nb;
  const __mmask16 row_mask = static_cast<__mmask16>((1u << nb) - 1u);
  for (int i = 0; i < rows; ++i)
    _mm512_mask_storeu_ps(c + i * ldc - i * nb, static_cast<__mmask16>(row_mask << (i * nb)), sums.v);
}
#endif

// C[RM, NB] = A[RM, k] . W[NB, k]^T: each W vector is loaded once and used RM times, each A
// vector used NB times; lanes are summed at the end, in the same order for every element.
template <class T, int RM, int NB>
void rowdot_tile(int64_t k, const T* __restrict a, int64_t lda, const T* __restrict w, int64_t ldw,
                 T* __restrict c, int64_t ldc) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  V acc[RM][NB];
#pragma GCC unroll 8
  for (int i = 0; i < RM; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) acc[i][j] = V::zero();
  }
  int64_t p = 0;
#if TENSOROPS_ISA_ID == 2
  // A single row of A streams W from L2 or L3: with 256-bit loads (see simd::Half) into
  // half-width accumulators that join to acc's lanes, the same sums in the same order, linear
  // M = 1 over BERT's shapes took 0.96-0.98x the time on Zen 4 (one process alternating).
  if constexpr (RM == 1) {
    using H = simd::x86_avx512::Half<T>;
    constexpr int64_t HW = H::width;
    H lo[NB], hi[NB];
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) lo[j] = H::zero(), hi[j] = H::zero();
    for (; p + W <= k; p += W) {
      const H a_lo = H::load(a + p), a_hi = H::load(a + p + HW);
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) {
        lo[j] = fmadd(a_lo, H::load(w + j * ldw + p), lo[j]);
        hi[j] = fmadd(a_hi, H::load(w + j * ldw + p + HW), hi[j]);
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) acc[0][j] = join(lo[j], hi[j]);
  }
#endif
  for (; p + W <= k; p += W) {
    V wv[NB];
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) wv[j] = V::load(w + j * ldw + p);
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) {
      const V av = V::load(a + i * lda + p);
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) acc[i][j] = mul_add(av, wv[j], acc[i][j]);
    }
  }
  if (p < k) {
    const int64_t rest = k - p;
    for (int i = 0; i < RM; ++i) {
      const V av = V::load_partial(a + i * lda + p, rest);
      for (int j = 0; j < NB; ++j) acc[i][j] = mul_add(av, V::load_partial(w + j * ldw + p, rest), acc[i][j]);
    }
  }
#if TENSOROPS_ISA_ID == 2
  if constexpr (std::is_same_v<T, float> && RM * NB == 16) {
    store_sums16(&acc[0][0], c, ldc, NB);
    return;
  }
#endif
  for (int i = 0; i < RM; ++i)
    for (int j = 0; j < NB; ++j) c[i * ldc + j] = reduce_add(acc[i][j]);
}

// All n rows of W against RM rows of A: NB rows at a time, then one at a time.
template <class T, int RM, int NB>
void rowdot_rows(int64_t n, int64_t k, const T* a, int64_t lda, const T* w, int64_t ldw, T* c, int64_t ldc) {
  int64_t j = 0;
  for (; j + NB <= n; j += NB) rowdot_tile<T, RM, NB>(k, a, lda, w + j * ldw, ldw, c + j, ldc);
  for (; j < n; ++j) rowdot_tile<T, RM, 1>(k, a, lda, w + j * ldw, ldw, c + j, ldc);
}

template <class T>
void rowdot(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* w, int64_t ldw, T* c, int64_t ldc) {
  constexpr int RM = Tiles<T>::ROWDOT_M, NB = Tiles<T>::ROWDOT_N, NB_THIN = Tiles<T>::ROWDOT_N_THIN;
  // Blocks of W rows small enough to stay in L1 while every group of A rows passes over them.
  const int64_t block = std::max<int64_t>(NB * NB_THIN, (int64_t(16) << 10) / (std::max<int64_t>(k, 1) * int64_t(sizeof(T))) / (NB * NB_THIN) * (NB * NB_THIN));
  for (int64_t j0 = 0; j0 < n; j0 += block) {
    const int64_t cols = std::min(block, n - j0);
    const T* wb = w + j0 * ldw;
    T* cb = c + j0;
    int64_t i = 0;
    for (; i + RM <= m; i += RM) rowdot_rows<T, RM, NB>(cols, k, a + i * lda, lda, wb, ldw, cb + i * ldc, ldc);
    // The last few rows: a thinner tile with more W rows, so the accumulators still fill.
    for (; i < m; ++i) rowdot_rows<T, 1, NB_THIN>(cols, k, a + i * lda, lda, wb, ldw, cb + i * ldc, ldc);
  }
}

template <class T>
KernelSet<T> make_kernel_set() {
  using Tl = Tiles<T>;
  KernelSet<T> s{};
  s.mr = Tl::MR;
  s.nr = Tl::NV * Vec<T>::width;
  s.kc = Tl::KC;
  s.mc = Tl::MC;
  s.nc = Tl::NC;
  s.small_m = Tl::SMALL_M;
  s.rowdot_max_m = Tl::ROWDOT_MAX_M;
  s.stream_kc = Tl::STREAM_KC;
  s.stream_kc_aliased = Tl::STREAM_KC_ALIASED;
  constexpr auto rows = std::make_integer_sequence<int, KernelSet<T>::kMaxRows + 1>{};
  const auto micro = micro_table<T, false, Tl::NV>(rows);
  const auto micro_streaming = micro_table<T, true, Tl::NV>(rows);
  const auto micro_taps = micro_taps_table<T>(rows);
  for (int r = 0; r <= KernelSet<T>::kMaxRows; ++r) {
    s.micro[r] = micro[r];
    s.micro_streaming[r] = micro_streaming[r];
    s.micro_taps[r] = micro_taps[r];
  }
  const auto sweep_row = sweep_row_table<T>(std::make_integer_sequence<int, KernelSet<T>::kMaxSweepRows + 1>{});
  for (int kb = 0; kb <= KernelSet<T>::kMaxSweepRows; ++kb) s.sweep_row[kb] = sweep_row[kb];
  if constexpr (Tl::NV % 2 == 0) {
    const auto micro_narrow = micro_table<T, false, Tl::NV / 2>(rows);
    for (int r = 0; r <= KernelSet<T>::kMaxRows; ++r) s.micro_narrow[r] = micro_narrow[r];
  }
  if constexpr (Tl::WINDOW_IN_A) {
    const auto window_a = micro_taps_window_a_table<T>(rows);
    const auto window_a_pairs =
        micro_taps_window_a_pairs_table<T>(std::make_integer_sequence<int, KernelSet<T>::kMaxRows / 2 + 1>{});
    for (int r = 0; r <= KernelSet<T>::kMaxRows; ++r) s.micro_taps_window_a[r] = window_a[r];
    for (int n = 0; n <= KernelSet<T>::kMaxRows / 2; ++n) s.micro_taps_window_a_pairs[n] = window_a_pairs[n];
    const auto window_a_split =
        micro_taps_window_a_split_table<T>(std::make_integer_sequence<int, KernelSet<T>::kMaxRows>{});
    for (int n = 0; n < KernelSet<T>::kMaxRows; ++n) s.micro_taps_window_a_split[n] = window_a_split[n];
  }
  s.pack_a = pack_a<T>;
  s.pack_b = pack_b<T>;
  s.epilogue = epilogue<T>;
  s.rowdot = rowdot<T>;
  return s;
}

}  // namespace

const GemmKernels* kernel_table() {
  static const GemmKernels table{make_kernel_set<float>(), make_kernel_set<double>()};
  return &table;
}

}  // namespace tensorops::gemm::TENSOROPS_ISA_NS
