// The GEMM driver: picks the path (streaming small-M or blocked), splits C between threads
// on tile boundaries, owns the packing buffers and runs the loop nest. Kernels come from the
// active ISA's table (generic.h).
#include "gemm/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <string>

#include "core/buffer_pool.h"
#include "core/cpu.h"
#include "core/dispatch.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/workspace.h"

namespace tensorops::gemm {

TENSOROPS_KERNEL_TABLES(GemmKernels)

const GemmKernels& active_kernels() { return select_kernels(kernel_tables()); }

namespace {

// Below this many flops a product runs on one thread: waking the team costs more.
constexpr double kMinParallelFlops = double(1 << 19);
// The streaming paths pack all of K for up to small_m rows; beyond this K the blocked path,
// whose buffers are bounded by the blocking, takes over.
constexpr int64_t kSmallMaxK = int64_t(1) << 16;
// The blocked path reads B in place (no packing) up to this many columns when K fits one block.
constexpr int64_t kDirectMaxN = 256;
// Columns of C per rowdot pass: the tile is still in L1 when the epilogue runs over it.
constexpr int64_t kRowdotChunk = 256;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

enum ScratchSlot { kPackA = 0, kPackB = 1, kEdge = 2 };

// Packing buffers: a few per thread, sized by the blocking (see core/workspace.h).
template <class T>
T* scratch(ScratchSlot slot, int64_t count) {
  thread_local Workspace buffers[3];
  return buffers[slot].get<T>(size_t(count));
}

template <class T>
using Problem = GemmProblem<T>;

template <class T>
void finish(const KernelSet<T>& ks, const Problem<T>& p, int64_t i, int64_t j, int64_t rows, int64_t cols) {
  if (!p.epilogue.is_identity()) ks.epilogue(rows, cols, p.c + i * p.ldc + j, p.ldc, p.epilogue.shifted(i, j));
}

// K == 0 or alpha == 0: the product contributes nothing, only the epilogue remains.
template <class T>
void without_product(const KernelSet<T>& ks, const Problem<T>& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  for (int64_t i = m0; i < m1; ++i) std::fill(p.c + i * p.ldc + n0, p.c + i * p.ldc + n1, T(0));
  finish(ks, p, m0, n0, m1 - m0, n1 - n0);
}

// A small row-major B (one K block, a few KB per row range) is read in place by the blocked
// path: packing it would cost as much as the product (batched attention products are this
// shape).
template <class T>
bool reads_b_in_place(const KernelSet<T>& ks, const Problem<T>& p, int64_t columns) {
  return !p.packed_b && !p.b_source && p.b.col_stride == 1 && p.k <= ks.kc && columns <= kDirectMaxN;
}

// A per-row bias and nothing else (convolution's usual epilogue) is added by the microkernel
// as it stores the last K block.
template <class T>
bool adds_row_bias_only(const Epilogue<T>& e) {
  return e.addend.data && e.addend.col_stride == 0 && e.alpha == T(1) && e.beta == T(1) && !e.residual.data &&
         e.activation == Activation::none;
}

// Columns of B per block of the jc loop. Every block packs again each row of A it meets, so
// where A is packed (not pre-packed, as a convolution's filter is) and L2 is under 2 MiB
// (Zen 4's 1 MiB) the blocks are twice the tile table's NC: the wider block no longer stays
// in L2 for the next A micro-panel, yet streaming it from L3 costs less than the packing it
// saves. Zen 4, 1 thread, in-process alternation, NC 1024 against 512: float mm 2048^2 0.97x
// the time (2048 0.955x, 3 MiB of packed B a thread), 2 threads 0.95x, AVX2 set 0.97x,
// linear 2048 x 768 -> 3072 0.976x, mm 1024^2 even (2 threads split N in halves of 512);
// double mm 1024^2 0.97x, 2048^2 0.985x, AVX2 set 0.96x. (Double on AVX-512 gained another
// 2-3% with KC 512 and MC 280, 14 x 512 doubles of A per micro-panel: not taken, since KC
// fixes the pre-packed operands' layout and the summation order.) The Xeon the table was
// tuned on (2 MiB L2) keeps 512, its best of the blockings tried.
constexpr int64_t kWideBlockBelowL2Bytes = int64_t(2) << 20;

template <class T>
int64_t block_columns(const KernelSet<T>& ks, const Problem<T>& p) {
  return !p.packed_a && l2_below(kWideBlockBelowL2Bytes) ? 2 * ks.nc : ks.nc;
}

// The BLIS loop nest over C[m0:m1, n0:n1]: jc (NC) > pc (KC, pack B) > ic (MC, pack A) >
// ir (MR, the A micro-panel held in L1) > jr (NR, B micro-panels streamed from L2) >
// microkernel. The epilogue runs on each tile after its last K block.
template <class T>
void blocked(const KernelSet<T>& ks, const Problem<T>& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t MR = ks.mr, NR = ks.nr;
  const int64_t kc_max = std::min(ks.kc, p.k);
  const int64_t nc_max = block_columns(ks, p);
  const bool direct_b = reads_b_in_place(ks, p, n1 - n0);
  T* abuf = p.packed_a ? nullptr : scratch<T>(kPackA, ceil_div(std::min(ks.mc, m1 - m0), MR) * MR * kc_max);
  const bool row_bias_only = adds_row_bias_only(p.epilogue);
  T* bbuf = p.packed_b ? nullptr : scratch<T>(kPackB, ceil_div(std::min(nc_max, n1 - n0), NR) * NR * kc_max);
  for (int64_t jc = n0; jc < n1; jc += nc_max) {
    const int64_t nc = std::min(nc_max, n1 - jc);
    for (int64_t pc = 0; pc < p.k; pc += ks.kc) {
      const int64_t kc = std::min(ks.kc, p.k - pc);
      const bool last = pc + kc == p.k;
      const T* bp;
      int64_t b_panel_stride;
      int64_t b_step = NR;
      if (p.packed_b) {
        bp = p.packed_b->panel(jc / NR) + pc * NR;
        b_panel_stride = p.packed_b->panel_stride();
      } else if (direct_b) {
        bp = p.b.at(pc, jc);
        b_panel_stride = NR;
        b_step = p.b.row_stride;
        // A partial last panel is packed (zero-padded) once for the whole block, so that no
        // load reads past B's last column.
        if (nc % NR)
          ks.pack_b(kc, nc % NR, MatrixRef<T>{p.b.at(pc, jc + nc / NR * NR), p.b.row_stride, 1}, bbuf, kc * NR,
                    nullptr, false);
      } else {
        if (p.b_source) p.b_source->pack(pc, kc, jc, nc, NR, bbuf, kc * NR);
        else
          ks.pack_b(kc, nc, MatrixRef<T>{p.b.at(pc, jc), p.b.row_stride, p.b.col_stride}, bbuf, kc * NR, nullptr,
                    false);
        bp = bbuf;
        b_panel_stride = kc * NR;
      }
      for (int64_t ic = m0; ic < m1; ic += ks.mc) {
        const int64_t mc = std::min(ks.mc, m1 - ic);
        const T* ap = abuf;
        if (p.packed_a) ap = p.packed_a->block(pc, ic);
        else ks.pack_a(mc, kc, MatrixRef<T>{p.a.at(ic, pc), p.a.row_stride, p.a.col_stride}, abuf, nullptr);
        for (int64_t ir = 0; ir < mc; ir += MR) {
          const int64_t rows = std::min(MR, mc - ir);
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int64_t cols = std::min(NR, nc - jr);
            const T* bpanel = bp + (jr / NR) * b_panel_stride;
            int64_t step = b_step;
            if (direct_b && cols < NR) bpanel = bbuf, step = NR;
            T* ctile = p.c + (ic + ir) * p.ldc + jc + jr;
            const T* bias = last && row_bias_only ? p.epilogue.addend.at(ic + ir, 0) : nullptr;
            const auto micro = 2 * cols <= NR && ks.micro_narrow[rows] ? ks.micro_narrow[rows] : ks.micro[rows];
            micro(kc, ap + ir * kc, bpanel, step, ctile, p.ldc, cols, pc > 0, bias, p.epilogue.addend.row_stride);
            if (last && !row_bias_only) finish(ks, p, ic + ir, jc + jr, rows, cols);
          }
        }
      }
    }
  }
}

// A pre-packed A of one row tile (a 1x1 convolution with few output channels) with B read
// in place along its rows also streams, while B is short or its rows are (the limits below):
// the blocked path would pack every element of B to read it once. 1x1 conv, 1 thread, 8 and
// 14 output channels: 1.0-1.9x faster up to 64x64 planes at any K, and at any plane size
// with K <= 64; from 72x72 with K >= 128 0.7-1.2x, so those keep packing (as do two or more
// tiles, where packing won about as often as it lost).
constexpr int64_t kStreamPackedAMaxColumns = 4096, kStreamPackedAAnyColumnsMaxK = 64;

// Addresses this many bytes apart fall in the same L1 set (64 sets of 64-byte lines).
constexpr int64_t kL1SetSpanBytes = 4096;

// B read in place along rows that are a multiple of 4 KiB apart: one column of every row of
// a sweep's block sits in the same L1 set.
template <class T>
bool b_rows_share_l1_sets(const Problem<T>& p) {
  return !p.packed_b && p.b.col_stride == 1 && p.b.row_stride * int64_t(sizeof(T)) % kL1SetSpanBytes == 0;
}

// Above this M, on a core with a small L2 (Zen 3, whose L1 has 8 ways), a row-major B whose
// rows share L1 sets is packed by the blocked path rather than swept in place: each of the
// small path's row tiles rereads the sweep's block, which no longer fits the set's ways, and
// packing B removes the aliasing. Zen 3, AVX2, 1 thread, best of 5, small path -> blocked,
// GFLOP/s, K x N 768 x 3072 / 512 x 4096 / 1024^2 / 2048^2: M = 9 24/17/32/17 -> 35/30/40/24,
// M = 16 27/22/34/23 -> 34/29/48/33, M = 32 17/16/34/22 -> 42/50/50/45; M = 12 even. Up to 8
// rows the small path sweeps fewer rows of B at a time instead (stream_kc_aliased) and stays
// ahead. The Xeon (12-way L1, 2 MiB L2) ran M = 16 at 768 x 3072 at 98 GFLOP/s on the small
// path and keeps it (unmeasured there).
constexpr int64_t kAliasedSmallMaxM = 8;

template <class T>
bool takes_small_path(const KernelSet<T>& ks, const Problem<T>& p) {
  if (p.packed_a)
    return p.m <= ks.mr && (p.n <= kStreamPackedAMaxColumns || p.k <= kStreamPackedAAnyColumnsMaxK) &&
           p.k <= kSmallMaxK && !p.b_source && !p.packed_b && p.b.col_stride == 1;
  return p.m <= ks.small_m && p.k <= kSmallMaxK && !p.packed_a && !p.b_source &&
         (p.packed_b || p.b.col_stride == 1 || p.b.row_stride == 1) &&
         !(p.m > kAliasedSmallMaxM && b_rows_share_l1_sets(p) && has_small_l2());
}

// The row tiles of the small-M paths, each packed as its own MR-row panel at apack + t * MR *
// k: MR rows and the rest, or (balanced) as few tiles as MR allows, of even heights. Balanced
// tiles serve the row-major sweep, where a K block of a B panel stays in L1 for every tile
// and a tile of a few rows only waits on its short FMA chains: 1 thread, K x N = 768 x 3072,
// M = 16 (8 + 8 instead of 14 + 2) 0.87 -> 0.77 ms, M = 30 1.60 -> 1.46 ms, and the DCGAN
// layer at batch 1 (16 pixels) 0.85 -> 0.78 ms. Streaming a packed B, where each tile reads
// the whole panel from L2, M = 17 as 9 + 8 was slower than 14 + 3 (0.68 vs 0.61 ms).
struct RowTiles {
  int64_t count, base, extra;
  RowTiles(int64_t m, int64_t mr, bool balanced)
      : count((m + mr - 1) / mr), base(balanced ? m / count : mr), extra(balanced ? m % count : 0) {}
  int64_t start(int64_t t) const { return t * base + std::min(t, extra); }
  int64_t rows(int64_t t, int64_t m) const { return std::min(base + (t < extra), m - start(t)); }
};

// Elements of C per column chunk of small_m_row_major: the chunk stays in L2 while every
// K block of B adds into it.
constexpr int64_t kRowMajorChunkElements = int64_t(1) << 16;

// Rows of a row-major B per sweep of small_m_row_major: stream_kc, at most 8 per row of A,
// since short sweeps are short of arithmetic and fare better on fewer streams (M = 1, 768 x
// 3072: 8 rows 340 us, 16 370, 32 400; M = 2 best at 16); stream_kc_aliased up to
// kAliasedSmallMaxM rows where B's rows are a multiple of 4 KiB apart (tiles.h).
//
// Below kFewerStreamsMaxM rows of A, a core with an L2 under 2 MiB (Zen 4 here: the AVX-512
// set's 32 rows were tuned on the 2 MiB Xeon) sweeps 16 rows, and 8 where B's rows alias
// and M <= 4, the AVX2 set's choices. Zen 4, AVX-512, 1 thread, one process alternating the
// two, medians of 10-12 rounds, time against 32 rows: K x N = 2048 x 2048 M = 4 0.48x, M = 9
// 0.35x, M = 2 (8 rows) 0.68x; 4096 x 4096 M = 8 0.47x; 2048 x 2000 M = 9 0.37x; 768 x 3072
// M = 2 (8 rows) 0.59x, M = 4 (8 rows) 0.82x, M = 9 0.94x, M = 8 0.97x; 768 x 3000 M = 4
// 0.91x, M = 2 even. From M = 16 the 32 rows stay: 768 x 3072 M = 16 and 32 ran 1.14x and
// 1.28x slower on 16, though 2048 x 2048 (0.92x, 0.97x) and 4096 x 1024 M = 16 (0.80x) gained.
constexpr int64_t kFewerStreamsMaxM = 16, kFewerStreamsL2Bytes = int64_t(2) << 20;
constexpr int64_t kFewerStreamsRows = 16, kFewerStreamsAliasedRows = 8, kFewerStreamsAliasedMaxM = 4;

template <class T>
int64_t rows_per_sweep(const KernelSet<T>& ks, const Problem<T>& p) {
  const int64_t m = p.m;
  const bool aliased = m <= kAliasedSmallMaxM && b_rows_share_l1_sets(p);
  int64_t rows = aliased ? ks.stream_kc_aliased : ks.stream_kc;
  if (m < kFewerStreamsMaxM && l2_below(kFewerStreamsL2Bytes))
    rows = std::min(rows, aliased && m <= kFewerStreamsAliasedMaxM ? kFewerStreamsAliasedRows : kFewerStreamsRows);
  return std::min(rows, 8 * m);
}

// Small M with a row-major B read in place (A packed whole at apack): B is taken in blocks
// of stream_kc rows, each swept across the chunk's columns panel by panel, so that every row
// of the block is one sequential stream the hardware prefetcher follows. Walking a panel down
// all of K instead starts a new row at every k step and waits on each load; with rows of
// 4096 floats (16 KiB apart, every row of a panel in the same cache sets) it was 1.5-2x
// slower at M = 1..32 (K x N = 512 x 4096 and 4096 x 512, 1 thread).
template <class T>
void small_m_row_major(const KernelSet<T>& ks, const Problem<T>& p, const T* apack, const RowTiles& tiles, int64_t n0,
                       int64_t n1) {
  const int64_t MR = ks.mr, NR = ks.nr, m = p.m, k = p.k;
  const int64_t chunk = std::max(NR, kRowMajorChunkElements / m / NR * NR);
  const int64_t kc = rows_per_sweep(ks, p);
  static_assert(KernelSet<T>::kMaxSweepRows >= 8, "one row sweeps up to 8 rows of B at a time");
  for (int64_t j0 = n0; j0 < n1; j0 += chunk) {
    const int64_t j1 = std::min(n1, j0 + chunk);
    if (m == 1) {
      // One row sweeps each block of B's rows across the chunk in one call, reading the last
      // columns with partial loads (no edge panel). Called per NR-column panel, the
      // microkernel ran 8 k steps between each call's setup and its store, and the calls took
      // a third of the time (Zen 3, AVX2, 1 thread, 768 x 3072: 450 -> 250 us, NumPy 230).
      for (int64_t k0 = 0; k0 < k; k0 += kc) {
        const int64_t kb = std::min(kc, k - k0);
        ks.sweep_row[kb](j1 - j0, apack + k0 * MR, MR, p.b.at(k0, j0), p.b.row_stride, p.c + j0, k0 > 0);
      }
      finish(ks, p, 0, j0, 1, j1 - j0);
      continue;
    }
    const int64_t full_end = j0 + (j1 - j0) / NR * NR;
    // The right edge, narrower than a panel, is packed zero-padded (over all of K, once) so
    // that no load reads past the last column.
    T* edge = nullptr;
    if (full_end < j1) {
      edge = scratch<T>(kEdge, k * NR);
      ks.pack_b(k, j1 - full_end, MatrixRef<T>{p.b.at(0, full_end), p.b.row_stride, 1}, edge, k * NR, nullptr, false);
    }
    for (int64_t k0 = 0; k0 < k; k0 += kc) {
      const int64_t kb = std::min(kc, k - k0);
      for (int64_t j = j0; j < j1; j += NR) {
        const bool in_place = j < full_end;
        const T* bp = in_place ? p.b.at(k0, j) : edge + k0 * NR;
        const int64_t b_step = in_place ? p.b.row_stride : NR;
        for (int64_t t = 0; t < tiles.count; ++t)
          ks.micro[tiles.rows(t, m)](kb, apack + t * MR * k + k0 * MR, bp, b_step, p.c + tiles.start(t) * p.ldc + j,
                                     p.ldc, std::min(NR, j1 - j), k0 > 0, nullptr, 0);
      }
    }
    finish(ks, p, 0, j0, m, j1 - j0);
  }
}

// Small M over columns [n0, n1): B (or W) is streamed once, A is packed whole (it is small)
// or comes pre-packed as one row tile.
template <class T>
void small_m(const KernelSet<T>& ks, const Problem<T>& p, int64_t n0, int64_t n1) {
  const int64_t MR = ks.mr, NR = ks.nr, m = p.m, k = p.k;
  if (!p.packed_b && p.b.col_stride != 1 && m <= ks.rowdot_max_m) {
    // B = W^T with W rows contiguous: dot products of A rows with W rows.
    const T* a = p.a.data;
    int64_t lda = p.a.row_stride;
    if (p.a.col_stride != 1) {
      T* copy = scratch<T>(kPackA, m * k);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t q = 0; q < k; ++q) copy[i * k + q] = *p.a.at(i, q);
      a = copy;
      lda = k;
    }
    for (int64_t j0 = n0; j0 < n1; j0 += kRowdotChunk) {
      const int64_t cols = std::min(kRowdotChunk, n1 - j0);
      ks.rowdot(m, cols, k, a, lda, p.b.at(0, j0), p.b.col_stride, p.c + j0, p.ldc);
      finish(ks, p, 0, j0, m, cols);
    }
    return;
  }
  if (p.packed_a) {
    // One row tile of the packed A, its K blocks in turn; B's panels read in place.
    const PackedA<T>& a = *p.packed_a;
    const bool row_bias_only = adds_row_bias_only(p.epilogue);
    for (int64_t j = n0; j < n1; j += NR) {
      const int64_t cols = std::min(NR, n1 - j);
      const T* bp = p.b.at(0, j);
      int64_t b_step = p.b.row_stride;
      if (cols < NR) {
        T* edge = scratch<T>(kEdge, k * NR);
        ks.pack_b(k, cols, MatrixRef<T>{bp, b_step, 1}, edge, k * NR, nullptr, false);
        bp = edge, b_step = NR;
      }
      for (int64_t pc = 0; pc < k; pc += a.block_k()) {
        const int64_t kc = std::min(a.block_k(), k - pc);
        const T* bias = pc + kc == k && row_bias_only ? p.epilogue.addend.data : nullptr;
        ks.micro_streaming[m](kc, a.block(pc, 0), bp + pc * b_step, b_step, p.c + j, p.ldc, cols, pc > 0, bias,
                              p.epilogue.addend.row_stride);
      }
      if (!row_bias_only) finish(ks, p, 0, j, m, cols);
    }
    return;
  }
  const bool row_major = !p.packed_b && p.b.col_stride == 1;
  const RowTiles tiles(m, MR, row_major);
  T* apack = scratch<T>(kPackA, tiles.count * MR * k);
  for (int64_t t = 0; t < tiles.count; ++t)
    ks.pack_a(tiles.rows(t, m), k, MatrixRef<T>{p.a.at(tiles.start(t), 0), p.a.row_stride, p.a.col_stride},
              apack + t * MR * k, nullptr);
  if (row_major) {
    small_m_row_major(ks, p, apack, tiles, n0, n1);
    return;
  }
  for (int64_t j = n0; j < n1; j += NR) {
    const int64_t cols = std::min(NR, n1 - j);
    const T* bp;
    int64_t b_step;
    if (p.packed_b) {
      bp = p.packed_b->panel(j / NR);
      b_step = NR;
    } else {
      // A transposed B (more rows of A than the dot-product kernel serves well): pack this
      // panel and reuse it for every row panel of A.
      T* edge = scratch<T>(kEdge, k * NR);
      ks.pack_b(k, cols, MatrixRef<T>{p.b.at(0, j), p.b.row_stride, p.b.col_stride}, edge, k * NR, nullptr, false);
      bp = edge;
      b_step = NR;
    }
    for (int64_t t = 0; t < tiles.count; ++t)
      ks.micro_streaming[tiles.rows(t, m)](k, apack + t * MR * k, bp, b_step, p.c + tiles.start(t) * p.ldc + j, p.ldc,
                                           cols, false, nullptr, 0);
    finish(ks, p, 0, j, m, cols);
  }
}

// The kernel set a problem's packed operands were made for, else the active one.
template <class T>
const KernelSet<T>& kernels_of(const Problem<T>& p) {
  if (p.packed_a) return p.packed_a->kernels().template get<T>();
  if (p.packed_b) return p.packed_b->kernels().template get<T>();
  return active_kernels().get<T>();
}

// Splits `batch` problems of one shape into tasks (whole problems, or tile-aligned blocks of
// one when there are fewer problems than threads) and runs them with parallel_for. The split
// never changes what any element of C computes.
template <class T, class ProblemAt>
void run(const KernelSet<T>& ks, int64_t batch, int64_t m, int64_t n, int64_t k, const ProblemAt& problem_at) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  const Problem<T> first = problem_at(0);
  const bool small = takes_small_path(ks, first);
  const int64_t MR = small ? m : ks.mr, NR = ks.nr;
  const int64_t m_tiles = ceil_div(m, MR), n_tiles = ceil_div(n, NR);
  const int threads = get_num_threads();
  const double flops = 2.0 * double(batch) * double(m) * double(n) * double(std::max<int64_t>(k, 1));
  int64_t pm = 1, pn = 1;
  if (threads > 1 && batch < threads && flops >= kMinParallelFlops) {
    const int64_t parts = ceil_div(threads, batch);
    // Of the factorisations pm x pn = parts that fit the tile grid, the one whose busiest
    // task finishes first wins: its rows times its whole NR-column panels (a panel costs the
    // same however few of its columns are wanted) plus what it packs, since every task packs
    // the A rows and the B columns of its block (splitting N repacks A in each task,
    // splitting M repacks B; operands that are pre-packed or read in place cost nothing).
    // Packing an element costs about as long as kPackCost multiply-adds of a tile. Ties go to
    // the squarer blocks. (1x1 conv 1024 -> 256 at 14x14 on 2 threads: N in 4 + 3 panels
    // 380 us, M in 9 + 10 row tiles with B packed twice 310 us.)
    constexpr double kPackCost = 16;
    const bool packs_a = !small && !first.packed_a;
    // The largest share of `size` among `parts` blocks of whole tiles: in elements, or in
    // whole tiles' width when a partial tile costs a whole one.
    auto largest_block = [](int64_t size, int64_t tile, int64_t parts, bool whole_tiles) {
      const int64_t tiles = ceil_div(size, tile);
      int64_t most = 0;
      for (int64_t i = 0; i < parts; ++i) {
        const int64_t t0 = tiles * i / parts, t1 = tiles * (i + 1) / parts;
        most = std::max(most, whole_tiles ? (t1 - t0) * tile : std::min(size, t1 * tile) - std::min(size, t0 * tile));
      }
      return most;
    };
    double best_cost = -1, best_shape = -1;
    for (int64_t d = 1; d <= parts; ++d) {
      if (parts % d || d > m_tiles || parts / d > n_tiles) continue;
      const int64_t block_m = largest_block(m, MR, d, false), block_n = largest_block(n, NR, parts / d, true);
      const bool packs_b = !first.packed_b && !reads_b_in_place(ks, first, block_n);
      const double kk = double(std::max<int64_t>(k, 1));
      const double packed = (packs_a ? double(block_m) : 0) + (packs_b ? double(std::min(n, block_n)) : 0);
      const double cost = double(block_m) * double(block_n) * kk + kPackCost * kk * packed;
      const double bm = double(m) / double(d), bn = double(n) / double(parts / d);
      const double shape = std::min(bm, bn) / std::max(bm, bn);
      if (best_cost < 0 || cost < best_cost || (cost == best_cost && shape > best_shape))
        best_cost = cost, best_shape = shape, pm = d, pn = parts / d;
    }
    if (best_cost < 0) pn = std::min(parts, n_tiles);
  }
  const int64_t per_problem = pm * pn;
  parallel_for(0, batch * per_problem, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const Problem<T> p = t / per_problem == 0 ? first : problem_at(t / per_problem);
      const int64_t im = (t % per_problem) / pn, in = (t % per_problem) % pn;
      const int64_t m0 = std::min(m, m_tiles * im / pm * MR), m1 = std::min(m, m_tiles * (im + 1) / pm * MR);
      const int64_t n0 = std::min(n, n_tiles * in / pn * NR), n1 = std::min(n, n_tiles * (in + 1) / pn * NR);
      if (m0 >= m1 || n0 >= n1) continue;
      if (k == 0 || p.epilogue.alpha == T(0)) without_product(ks, p, m0, m1, n0, n1);
      else if (small) small_m(ks, p, n0, n1);
      else blocked(ks, p, m0, m1, n0, n1);
    }
  });
}

template <class T>
void matmul_typed(const TensorView& a, const TensorView& b, const TensorView& out) {
  const int nd = out.ndim, bd = nd - 2;
  const int64_t m = out.shape[nd - 2], n = out.shape[nd - 1], k = a.shape[nd - 1];
  int64_t batch = 1;
  for (int d = 0; d < bd; ++d) batch *= out.shape[d];
  const T* a_data = a.ptr<const T>();
  const T* b_data = b.ptr<const T>();
  T* c_data = out.ptr<T>();
  auto problem_at = [&](int64_t index) {
    Problem<T> p;
    p.m = m, p.n = n, p.k = k;
    int64_t a_off = 0, b_off = 0, rest = index;
    for (int d = bd - 1; d >= 0; --d) {
      const int64_t i = rest % out.shape[d];
      rest /= out.shape[d];
      if (a.shape[d] != 1) a_off += i * a.strides[d];
      if (b.shape[d] != 1) b_off += i * b.strides[d];
    }
    p.a = {a_data + a_off, a.strides[nd - 2], a.strides[nd - 1]};
    p.b = {b_data + b_off, b.strides[nd - 2], b.strides[nd - 1]};
    p.c = c_data + index * m * n;
    p.ldc = n;
    return p;
  };
  run(active_kernels().get<T>(), batch, m, n, k, problem_at);
}

}  // namespace

template <class T>
void gemm(int64_t m, int64_t n, int64_t k, MatrixRef<T> a, MatrixRef<T> b, T* c, int64_t ldc,
          const Epilogue<T>& epilogue) {
  Problem<T> p;
  p.m = m, p.n = n, p.k = k, p.a = a, p.b = b, p.c = c, p.ldc = ldc, p.epilogue = epilogue;
  run(active_kernels().get<T>(), 1, m, n, k, [&](int64_t) { return p; });
}

template <class T>
void gemm(int64_t m, MatrixRef<T> a, const PackedB<T>& b, T* c, int64_t ldc, const Epilogue<T>& epilogue) {
  Problem<T> p;
  p.m = m, p.n = b.n(), p.k = b.k(), p.a = a, p.packed_b = &b, p.c = c, p.ldc = ldc, p.epilogue = epilogue;
  run(b.kernels().template get<T>(), 1, p.m, p.n, p.k, [&](int64_t) { return p; });
}

template <class T>
void gemm_batch(int64_t batch, const std::function<GemmProblem<T>(int64_t)>& problem_at) {
  if (batch <= 0) return;
  const Problem<T> first = problem_at(0);
  run(kernels_of(first), batch, first.m, first.n, first.k, problem_at);
}

template <class T>
void gemm_on_this_thread(const GemmProblem<T>& p) {
  if (p.m <= 0 || p.n <= 0) return;
  const KernelSet<T>& ks = kernels_of(p);
  if (p.k == 0 || p.epilogue.alpha == T(0)) without_product(ks, p, 0, p.m, 0, p.n);
  else if (takes_small_path(ks, p)) small_m(ks, p, 0, p.n);
  else blocked(ks, p, 0, p.m, 0, p.n);
}

// Below this size a pooled matrix takes its own allocation all the same: the pool rounds its
// blocks up to 2 MiB and serves a request only from a block at most twice its size, so a
// smaller request would take a new block (fresh pages) every time.
constexpr size_t kPooledPanelBytes = size_t(1) << 20;

template <class T>
PanelMemory<T>::PanelMemory(size_t bytes, PanelStorage storage) : data_(nullptr), pooled_capacity_(0) {
  void* data = storage == PanelStorage::pooled && bytes >= kPooledPanelBytes
                   ? pool_acquire(bytes, &pooled_capacity_)
                   : std::aligned_alloc(64, (bytes + 63) & ~size_t(63));
  if (!data) throw std::bad_alloc();
  data_ = static_cast<T*>(data);
}

template <class T>
PanelMemory<T>::~PanelMemory() {
  if (pooled_capacity_) pool_release(data_, pooled_capacity_);
  else std::free(data_);
}

template <class T>
T* PanelArena<T>::take(size_t bytes) {
  const size_t at = used_.fetch_add(slice_bytes(bytes));
  TENSOROPS_CHECK(at + bytes <= capacity_, "PanelArena: the panels outgrow the block sized for them");
  return memory_.get() + at / sizeof(T);
}

namespace {

// Panels of `bytes` from the arena, or an allocation of their own kept in `own`.
template <class T>
T* panel_memory(size_t bytes, PanelArena<T>* arena, std::unique_ptr<PanelMemory<T>>& own) {
  if (arena) return arena->take(bytes);
  own = std::make_unique<PanelMemory<T>>(bytes, PanelStorage::own);
  return own->get();
}

}  // namespace

template <class T>
size_t PackedA<T>::bytes(int64_t m, int64_t k) {
  const int64_t mr = active_kernels().get<T>().mr;
  return size_t(std::max<int64_t>(ceil_div(m, mr) * mr * k, 1)) * sizeof(T);
}

template <class T>
PackedA<T>::PackedA(int64_t m, int64_t k, MatrixRef<T> a, int64_t block_k, const int64_t* k_dest,
                    PanelArena<T>* arena)
    : m_(m), k_(k), kernels_(&active_kernels()) {
  const KernelSet<T>& ks = kernels_->get<T>();
  m_padded_ = ceil_div(m, ks.mr) * ks.mr;
  kc_ = block_k > 0 ? block_k : ks.kc;
  data_ = panel_memory(bytes(m, k), arena, own_);
  T* const data = data_;
  TENSOROPS_CHECK(!k_dest || kc_ >= k, "PackedA: a K order needs a single K block");
  for (int64_t k0 = 0; k0 < k; k0 += kc_) {
    const int64_t kc = std::min(kc_, k - k0);
    ks.pack_a(m, kc, MatrixRef<T>{a.at(0, k0), a.row_stride, a.col_stride}, data + k0 * m_padded_, k_dest);
  }
}

template <class T>
T PackedA<T>::at(int64_t i, int64_t p) const {
  const int64_t mr = kernels_->get<T>().mr, k0 = p / kc_ * kc_;
  return block(k0, i / mr * mr)[(p - k0) * mr + i % mr];
}

template <class T>
size_t PackedB<T>::bytes(int64_t k, int64_t n) {
  const int64_t nr = active_kernels().get<T>().nr;
  return size_t(std::max<int64_t>(ceil_div(n, nr), 1) * std::max<int64_t>(k, 1) * nr) * sizeof(T);
}

template <class T>
PackedB<T>::PackedB(int64_t k, int64_t n, MatrixRef<T> b, const int64_t* k_dest, bool stream, PanelArena<T>* arena)
    : k_(k), n_(n), kernels_(&active_kernels()) {
  const KernelSet<T>& ks = kernels_->get<T>();
  panel_stride_ = std::max<int64_t>(k, 1) * ks.nr;
  data_ = panel_memory(bytes(k, n), arena, own_);
  T* const data = data_;
  if (k > 0 && n > 0) {
    const int64_t per_task = ceil_div(std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(k, 1)), ks.nr);
    parallel_for(0, ceil_div(n, ks.nr), per_task, [&](int64_t j0, int64_t j1) {
      const int64_t c0 = j0 * ks.nr, c1 = std::min(n, j1 * ks.nr);
      ks.pack_b(k, c1 - c0, MatrixRef<T>{b.at(0, c0), b.row_stride, b.col_stride}, data + j0 * panel_stride_,
                panel_stride_, k_dest, stream);
    });
  }
}

template class PanelMemory<float>;
template class PanelMemory<double>;
template class PanelArena<float>;
template class PanelArena<double>;
template class PackedA<float>;
template class PackedA<double>;
template class PackedB<float>;
template class PackedB<double>;
template void gemm_batch<float>(int64_t, const std::function<GemmProblem<float>(int64_t)>&);
template void gemm_batch<double>(int64_t, const std::function<GemmProblem<double>(int64_t)>&);
template void gemm_on_this_thread<float>(const GemmProblem<float>&);
template void gemm_on_this_thread<double>(const GemmProblem<double>&);
template void gemm<float>(int64_t, int64_t, int64_t, MatrixRef<float>, MatrixRef<float>, float*, int64_t,
                          const Epilogue<float>&);
template void gemm<double>(int64_t, int64_t, int64_t, MatrixRef<double>, MatrixRef<double>, double*, int64_t,
                           const Epilogue<double>&);
template void gemm<float>(int64_t, MatrixRef<float>, const PackedB<float>&, float*, int64_t,
                          const Epilogue<float>&);
template void gemm<double>(int64_t, MatrixRef<double>, const PackedB<double>&, double*, int64_t,
                           const Epilogue<double>&);

namespace {

void check_matrix(const TensorView& v, const TensorView& out, int64_t rows, int64_t cols, const char* what) {
  TENSOROPS_CHECK(v.ndim == 2 && v.shape[0] == rows && v.shape[1] == cols,
                  std::string("addmm: ") + what + " has the wrong shape");
  TENSOROPS_CHECK(v.dtype == out.dtype, std::string("addmm: ") + what + " has the wrong dtype");
}

template <class T>
MatrixRef<T> matrix_of(const TensorView& v) {
  return {v.ptr<const T>(), v.strides[0], v.strides[1]};
}

template <class T>
Epilogue<T> epilogue_of(const EpilogueArgs& args) {
  Epilogue<T> e;
  e.alpha = T(args.alpha);
  e.beta = T(args.beta);
  if (args.addend) e.addend = matrix_of<T>(*args.addend);
  if (args.residual) e.residual = matrix_of<T>(*args.residual);
  e.activation = args.activation;
  return e;
}

void check_out_and_epilogue(const TensorView& out, int64_t m, int64_t n, const EpilogueArgs& args) {
  TENSOROPS_CHECK(out.ndim == 2 && out.shape[0] == m && out.shape[1] == n && out.is_contiguous(),
                  "addmm: output must be a C-contiguous [M, N] array");
  if (args.addend) check_matrix(*args.addend, out, m, n, "addend");
  if (args.residual) check_matrix(*args.residual, out, m, n, "residual");
}

}  // namespace

void addmm(const TensorView& a, const TensorView& b, const TensorView& out, const EpilogueArgs& args) {
  TENSOROPS_CHECK(a.ndim == 2 && b.ndim == 2 && a.shape[1] == b.shape[0], "addmm: operand shapes do not match");
  TENSOROPS_CHECK(a.dtype == out.dtype && b.dtype == out.dtype, "addmm: operands and output must share a dtype");
  const int64_t m = a.shape[0], n = b.shape[1], k = a.shape[1];
  check_out_and_epilogue(out, m, n, args);
  if (out.dtype == DType::float32)
    gemm<float>(m, n, k, matrix_of<float>(a), matrix_of<float>(b), out.ptr<float>(), n, epilogue_of<float>(args));
  else if (out.dtype == DType::float64)
    gemm<double>(m, n, k, matrix_of<double>(a), matrix_of<double>(b), out.ptr<double>(), n, epilogue_of<double>(args));
  else
    throw TypeError(std::string("addmm: unsupported dtype ") + dtype_name(out.dtype));
}

void addmm(const TensorView& a, const PackedWeight& b, const TensorView& out, const EpilogueArgs& args) {
  TENSOROPS_CHECK(a.ndim == 2 && a.shape[1] == b.in_features(), "linear: input does not match the packed weight");
  TENSOROPS_CHECK(a.dtype == b.dtype() && out.dtype == b.dtype(), "linear: input, weight and output must share a dtype");
  const int64_t m = a.shape[0], n = b.out_features();
  check_out_and_epilogue(out, m, n, args);
  if (out.dtype == DType::float32)
    gemm<float>(m, matrix_of<float>(a), b.f32(), out.ptr<float>(), n, epilogue_of<float>(args));
  else
    gemm<double>(m, matrix_of<double>(a), b.f64(), out.ptr<double>(), n, epilogue_of<double>(args));
}

PackedWeight::PackedWeight(const TensorView& weight) : dtype_(weight.dtype) {
  TENSOROPS_CHECK(weight.ndim == 2, "pack_linear_weight: weight must be 2-D [out_features, in_features]");
  n_ = weight.shape[0];
  k_ = weight.shape[1];
  // B = W^T: B(k, n) = W(n, k).
  if (dtype_ == DType::float32)
    f32_ = std::make_unique<PackedB<float>>(k_, n_, MatrixRef<float>{weight.ptr<const float>(), weight.strides[1], weight.strides[0]});
  else if (dtype_ == DType::float64)
    f64_ = std::make_unique<PackedB<double>>(k_, n_, MatrixRef<double>{weight.ptr<const double>(), weight.strides[1], weight.strides[0]});
  else
    throw TypeError(std::string("pack_linear_weight: unsupported dtype ") + dtype_name(dtype_));
}

void matmul(const TensorView& a, const TensorView& b, const TensorView& out) {
  const int nd = out.ndim;
  TENSOROPS_CHECK(nd >= 2 && a.ndim == nd && b.ndim == nd, "matmul: operands must have the output's rank (>= 2)");
  TENSOROPS_CHECK(a.dtype == out.dtype && b.dtype == out.dtype, "matmul: operands and output must share a dtype");
  TENSOROPS_CHECK(out.is_contiguous(), "matmul: output must be C-contiguous");
  TENSOROPS_CHECK(a.shape[nd - 2] == out.shape[nd - 2] && b.shape[nd - 1] == out.shape[nd - 1] &&
                      a.shape[nd - 1] == b.shape[nd - 2],
                  "matmul: operand shapes do not match the output");
  for (int d = 0; d < nd - 2; ++d)
    TENSOROPS_CHECK((a.shape[d] == out.shape[d] || a.shape[d] == 1) && (b.shape[d] == out.shape[d] || b.shape[d] == 1),
                    "matmul: batch dimensions do not broadcast to the output's");
  if (out.dtype == DType::float32) matmul_typed<float>(a, b, out);
  else if (out.dtype == DType::float64) matmul_typed<double>(a, b, out);
  else throw TypeError(std::string("matmul: unsupported dtype ") + dtype_name(out.dtype));
}

}  // namespace tensorops::gemm
