// GEMM: C = epilogue(A @ B), the engine behind mm, bmm, matmul, addmm, linear and (through
// the C++ entry points below) convolution.
//
// The large-matrix path follows BLIS. B is cut into KC x NC blocks and packed into
// NR-column micro-panels (k-major, zero-padded at the right edge); A is cut into MC x KC
// blocks packed into MR-row micro-panels. A register-blocked microkernel multiplies one
// MR-row A panel by one NR-column B panel over KC, keeping the MR x NR tile of C in
// registers. The A micro-panel stays in L1 while the microkernel sweeps it across every B
// micro-panel of the block, which streams from L2 (KC x NC sized to fit there); measured
// faster on this machine's 48 KiB L1 than BLIS's usual order (B micro-panel resident in L1,
// A streaming), which leaves too little L1 for a 14x32 tile's panels. Packing reads the operands
// through their strides, so transposed and non-contiguous operands are packed from where they
// lie, never copied first. Tile sizes are per ISA and per dtype and were chosen by measurement
// (table in gemm/tiles.h).
//
// Threads split the M and N loops, never K, on tile boundaries: every element of C is
// produced by the same sequence of fused multiply-adds whatever the thread count, so results
// are bit-identical for 1 or N threads.
//
// The epilogue  C = act(alpha * (A @ B) + beta * addend + residual)  runs on each C tile
// right after its last K block, while the tile is still in L1: addend and residual are
// strided matrices whose strides may be zero (bias per column: row_stride 0; bias per row:
// col_stride 0), and act is relu, gelu (erf or tanh form) or silu.
//
// Small M (1..32 rows, batch-1 inference) skips the loop nest: the weight is streamed once.
// When B is a linear weight W[N, K] read as W^T (unit K stride), each output is a dot
// product of an A row with a W row, computed for a few rows of A and of W at a time; when B
// has unit N stride, the microkernel reads B in place, a block of K rows at a time swept along
// the rows (each row a sequential stream). A weight used many times can be
// packed once (PackedB) and the microkernel then streams the packed panels.
//
// C++ callers (convolution) describe each product as a GemmProblem: A as a strided matrix or
// pre-packed panels (PackedA, a filter packed once), B as a strided matrix, pre-packed panels
// (PackedB) or a BlockSource that packs B's blocks itself (convolution's implicit im2col,
// which never materialises the whole im2col matrix); C has unit column stride and row stride
// ldc. gemm_batch threads a batch of same-shaped problems; gemm_on_this_thread runs one on
// the calling thread (for drivers that own their threading).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "core/tensor.h"

namespace tensorops::gemm {

enum class Activation : int { none = 0, relu = 1, gelu = 2, gelu_tanh = 3, silu = 4 };

// Element (i, j) is data[i * row_stride + j * col_stride]; zero strides broadcast.
template <class T>
struct MatrixRef {
  const T* data = nullptr;
  int64_t row_stride = 0;
  int64_t col_stride = 0;
  const T* at(int64_t i, int64_t j) const { return data + i * row_stride + j * col_stride; }
};

// C = act(alpha * (A @ B) + beta * addend + residual); a null addend or residual is absent.
// alpha == 0 skips the product entirely (NaN or Inf in A or B do not reach C, as in BLAS and
// torch.addmm); callers drop the addend when beta == 0 for the same reason.
template <class T>
struct Epilogue {
  T alpha = T(1);
  T beta = T(1);
  MatrixRef<T> addend;
  MatrixRef<T> residual;
  Activation activation = Activation::none;

  bool is_identity() const {
    return alpha == T(1) && !addend.data && !residual.data && activation == Activation::none;
  }
  // The same epilogue for the sub-matrix starting at (row, col).
  Epilogue shifted(int64_t row, int64_t col) const {
    Epilogue e = *this;
    if (e.addend.data) e.addend.data = addend.at(row, col);
    if (e.residual.data) e.residual.data = residual.at(row, col);
    return e;
  }
};

struct GemmKernels;

// Where a packed matrix keeps its panels: an allocation of its own (a weight kept for many
// calls), or a block of the buffer pool (a matrix packed anew on every call - a functional
// convolution's filter - whose fresh pages the OS would otherwise fault in and zero on every
// call: a 38 MB filter's pages took 60% of such a call's time; core/buffer_pool.h).
enum class PanelStorage { own, pooled };

// The panels of a packed matrix, freed or returned to the pool as they were allocated.
template <class T>
class PanelMemory {
 public:
  PanelMemory(std::size_t bytes, PanelStorage storage);
  ~PanelMemory();
  PanelMemory(const PanelMemory&) = delete;
  PanelMemory& operator=(const PanelMemory&) = delete;
  T* get() const { return data_; }

 private:
  T* data_;
  std::size_t pooled_capacity_;  // 0 when the block is the matrix's own
};

// One pooled block carved into the panels of several packed matrices (the panel sets of a
// filter packed for one call): the pool rounds each block up to 2 MiB, so a block per set
// had left a 512 -> 512 3x3 filter's 9.4 MB in 16.8 MB of blocks. Sized up front with the
// matrices' bytes(); take() hands out 64-byte aligned slices, from any thread.
template <class T>
class PanelArena {
 public:
  // A slice's bytes rounded up to whole cache lines, what take() consumes of the block.
  static std::size_t slice_bytes(std::size_t bytes) { return (bytes + 63) & ~std::size_t(63); }
  explicit PanelArena(std::size_t bytes) : memory_(bytes, PanelStorage::pooled), capacity_(bytes) {}
  T* take(std::size_t bytes);

 private:
  PanelMemory<T> memory_;
  std::size_t capacity_;
  std::atomic<std::size_t> used_{0};
};

// B[K, N] packed once into the microkernel's NR-column panels over the whole of K, for the
// kernel set active when it was packed (it keeps using that set: a lowered ISA cap later does
// not invalidate it). Used for weights that serve many calls (nn.Linear, kept filters) and
// for a filter packed anew for one call (a functional convolution's, in pooled storage).
template <class T>
class PackedB {
 public:
  // With k_dest (K entries, a permutation of 0..K-1), B's row p becomes packed row
  // k_dest[p]: B is read in the order it lies in memory and its rows land in the order the
  // kernel takes them (convolution's filters lie channel-major and are read tap-major).
  // `stream` asks for streaming stores (see KernelSet::pack_b), for a caller whose packed
  // matrices together are too large for the cache (a functional call's large filter, packed
  // anew each call).
  // With an arena the panels are a slice of it (which must outlive this matrix), else an
  // allocation of its own.
  PackedB(int64_t k, int64_t n, MatrixRef<T> b, const int64_t* k_dest = nullptr, bool stream = false,
          PanelArena<T>* arena = nullptr);
  // The bytes of the panels of a [k, n] matrix packed for the active kernel set.
  static std::size_t bytes(int64_t k, int64_t n);
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  const GemmKernels& kernels() const { return *kernels_; }
  // Panel j covers columns [j * NR, j * NR + NR), rows 0..K-1, k-major, zero-padded.
  const T* panel(int64_t j) const { return data_ + j * panel_stride_; }
  int64_t panel_stride() const { return panel_stride_; }

 private:
  int64_t k_, n_, panel_stride_;
  const GemmKernels* kernels_;
  std::unique_ptr<PanelMemory<T>> own_;  // null when the panels are an arena's slice
  T* data_;
};

// A[M, K] packed once into the microkernel's MR-row panels, one block per KC slice of K (the
// layout the loop nest reads), for the kernel set active when it was packed. Convolution
// packs its filters this way: once per call, or once per module. block_k > 0 replaces KC
// (the shifted-window convolution packs each channel block's taps as one block).
template <class T>
class PackedA {
 public:
  // k_dest as for PackedB (A's column p becomes packed column k_dest[p]); only with a
  // single K block (block_k >= k).
  PackedA(int64_t m, int64_t k, MatrixRef<T> a, int64_t block_k = 0, const int64_t* k_dest = nullptr,
          PanelArena<T>* arena = nullptr);
  // The bytes of the panels of an [m, k] matrix packed for the active kernel set.
  static std::size_t bytes(int64_t m, int64_t k);
  int64_t m() const { return m_; }
  int64_t k() const { return k_; }
  const GemmKernels& kernels() const { return *kernels_; }
  int64_t block_k() const { return kc_; }
  // Rows [row, ...) of K block [k0, k0 + KC): row a multiple of MR, k0 a multiple of KC.
  const T* block(int64_t k0, int64_t row) const {
    return data_ + k0 * m_padded_ + row * std::min(kc_, k_ - k0);
  }
  // A's element (i, p) read back from the panels (without a K order), to repack it another way.
  T at(int64_t i, int64_t p) const;

 private:
  int64_t m_, k_, m_padded_, kc_;
  const GemmKernels* kernels_;
  std::unique_ptr<PanelMemory<T>> own_;  // null when the panels are an arena's slice
  T* data_;
};

// A B operand that is not a strided matrix (convolution's implicit im2col): it packs the
// block B[k0:k0+kc, n0:n0+nc] into nr-column panels itself, panel j at dst + j *
// panel_stride, element (p, c) at p * nr + c, columns past nc zero-filled. Called from
// worker threads, concurrently: pack() must only read shared state.
template <class T>
class BlockSource {
 public:
  virtual void pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int64_t nr, T* dst,
                    int64_t panel_stride) const = 0;

 protected:
  ~BlockSource() = default;
};

// C[m, n] = epilogue(A @ B) with each operand in one of its forms (exactly one of a /
// packed_a and one of b / packed_b / b_source).
template <class T>
struct GemmProblem {
  int64_t m = 0, n = 0, k = 0;
  MatrixRef<T> a;
  const PackedA<T>* packed_a = nullptr;
  MatrixRef<T> b;
  const PackedB<T>* packed_b = nullptr;
  const BlockSource<T>* b_source = nullptr;
  T* c = nullptr;
  int64_t ldc = 0;
  Epilogue<T> epilogue;
};

// `batch` problems of one shape (m, n, k and operand forms as problem_at(0)'s), threaded
// with parallel_for: whole problems per task, or tile-aligned blocks of one when there are
// fewer problems than threads. problem_at is called from worker threads.
template <class T>
void gemm_batch(int64_t batch, const std::function<GemmProblem<T>(int64_t)>& problem_at);

// One problem on the calling thread.
template <class T>
void gemm_on_this_thread(const GemmProblem<T>& problem);

// C[M, N] (unit column stride, row stride ldc) = epilogue(A[M, K] @ B[K, N]), threaded with
// parallel_for. C must not overlap A, B, the addend or the residual (C is written before the
// epilogue reads them).
template <class T>
void gemm(int64_t m, int64_t n, int64_t k, MatrixRef<T> a, MatrixRef<T> b, T* c, int64_t ldc,
          const Epilogue<T>& epilogue = {});

// The same with a pre-packed B (k and n come from it).
template <class T>
void gemm(int64_t m, MatrixRef<T> a, const PackedB<T>& b, T* c, int64_t ldc, const Epilogue<T>& epilogue = {});

// A linear weight W[N, K] packed once as B = W^T, in either dtype (what Python holds).
class PackedWeight {
 public:
  explicit PackedWeight(const TensorView& weight);  // weight: [N, K] float32 or float64
  DType dtype() const { return dtype_; }
  int64_t out_features() const { return n_; }
  int64_t in_features() const { return k_; }
  const PackedB<float>& f32() const { return *f32_; }
  const PackedB<double>& f64() const { return *f64_; }

 private:
  DType dtype_;
  int64_t n_, k_;
  std::unique_ptr<PackedB<float>> f32_;
  std::unique_ptr<PackedB<double>> f64_;
};

// The tensor-level entry points behind the Python bindings. a: [M, K]; b: [K, N] (any
// strides) or a packed weight; out: C-contiguous [M, N]; addend and residual: [M, N] views
// (zero strides broadcast) or null.
struct EpilogueArgs {
  const TensorView* addend = nullptr;
  const TensorView* residual = nullptr;
  double alpha = 1.0;
  double beta = 1.0;
  Activation activation = Activation::none;
};
void addmm(const TensorView& a, const TensorView& b, const TensorView& out, const EpilogueArgs& epilogue);
void addmm(const TensorView& a, const PackedWeight& b, const TensorView& out, const EpilogueArgs& epilogue);

// Batched: a is [..., M, K], b is [..., K, N], out is C-contiguous [..., M, N]; all three have
// the same rank and the batch dims of a and b broadcast (size 1) to those of out.
void matmul(const TensorView& a, const TensorView& b, const TensorView& out);

// ---- kernel tables (one per ISA, see generic.h) -------------------------------------------

template <class T>
struct KernelSet {
  static constexpr int kMaxRows = 16;  // largest MR of any ISA
  int64_t mr, nr;                      // microkernel tile
  int64_t kc, mc, nc;                  // cache blocking
  int64_t small_m;                     // M up to this takes the streaming paths
  int64_t rowdot_max_m;                // ... and up to this, with B = W^T, the dot products
  int64_t stream_kc;                   // rows of a row-major B per sweep of the small-M path
  int64_t stream_kc_aliased;           // ... for M <= 8 and a row stride of n x 4 KiB
  // C[rows, nr] (= or +=) an A panel (pack_a layout: k-major, mr apart) times B (rows
  // b_step apart, nr wide); only the first n_valid columns are stored. micro[r] has r rows,
  // r in 1..mr.
  // With row_bias non-null, row r's result also gets row_bias[r * row_bias_stride] (a conv
  // bias fused into the last K block instead of an epilogue pass over the tile).
  using Micro = void (*)(int64_t k, const T* a, const T* b, int64_t b_step, T* c, int64_t ldc,
                         int64_t n_valid, bool accumulate, const T* row_bias, int64_t row_bias_stride);
  Micro micro[kMaxRows + 1];
  // The same over the first NR / 2 columns of the panel only (half the vectors; null where
  // NR is one vector): a right-edge panel with at most that many valid columns.
  Micro micro_narrow[kMaxRows + 1];
  // The same, for a B read once from beyond L2 (the small-M path): prefetches B ahead.
  Micro micro_streaming[kMaxRows + 1];
  // c[0, n) (= or +=) one row of A (values a_step apart) times kb rows of a row-major B
  // (b_step apart), all n columns in one call: sweep_row[kb], kb in 1..kMaxSweepRows.
  static constexpr int kMaxSweepRows = 8;
  using SweepRow = void (*)(int64_t n, const T* a, int64_t a_step, const T* b, int64_t b_step, T* c, bool accumulate);
  SweepRow sweep_row[kMaxSweepRows + 1];
  // The same over `taps` stretches of K, the stretch t reading B from b + tap_offsets[t] (rows
  // b_step apart, k rows each) and A continuing through its panel: a shifted-window
  // convolution's whole filter in one call, C loaded and stored once.
  using MicroTaps = void (*)(int64_t taps, const int64_t* tap_offsets, int64_t k, const T* a, const T* b,
                             int64_t b_step, T* c, int64_t ldc, int64_t n_valid, bool accumulate);
  MicroTaps micro_taps[kMaxRows + 1];
  // The same product with the window as A: C[rows, nr] for `rows` consecutive positions of
  // the window (row i of stretch t read in place at a + tap_offsets[t] + i, k rows a_step
  // apart, each element broadcast) times a packed NR-column B panel (pack_b layout) that
  // continues from tap to tap. Convolution with output pixels as C's rows and output
  // channels across the vector lanes: no column of C is spent on padding. a_row and c_row
  // are unused. tap_edges (null, or one per tap) leaves rows out of a tap, where those
  // pixels' taps read only padding: 1 the rows that start a run of pixels (row 0; with two
  // runs, the second's first row too), 2 those that end one (the last row; with two runs,
  // the first's last row too), 3 both, 4 and 8 (two runs) the second run's first row alone
  // and the first run's last row alone; other values none.
  // Null where the ISA's tiles leave this orientation out (tiles.h, WINDOW_IN_A).
  using MicroTapsWindowA = void (*)(int64_t taps, const int64_t* tap_offsets, const uint8_t* tap_edges, int64_t k,
                                    const T* a, int64_t a_step, int64_t a_row, const T* b, T* c, int64_t ldc,
                                    int64_t c_row, int64_t n_valid, bool accumulate);
  MicroTapsWindowA micro_taps_window_a[kMaxRows + 1];
  // micro_taps_window_a_pairs[n], 2n <= mr: 2n rows, the first n as above and the last n
  // a_row further on in the window and c_row further on in C (two output rows of images at
  // most mr / 2 pixels wide).
  MicroTapsWindowA micro_taps_window_a_pairs[kMaxRows / 2 + 1];
  // micro_taps_window_a_split[s], 1 <= s < mr: mr rows, the first s as above and the other
  // mr - s a_row further on in the window and c_row in C (a tile that runs from the end of
  // one output row into the next).
  MicroTapsWindowA micro_taps_window_a_split[kMaxRows];
  // MR-row panels of A[m, k]: panel i at dst + i * mr * k, element (r, p) at p * mr + r
  // (at k_dest[p] * mr + r with a k_dest, a permutation of 0..k-1; null for none).
  void (*pack_a)(int64_t m, int64_t k, MatrixRef<T> a, T* dst, const int64_t* k_dest);
  // NR-column panels of B[k, n]: panel j at dst + j * panel_stride, (p, c) at p * nr + c
  // (at k_dest[p] * nr + c with a k_dest), columns past n zero-filled. With `stream`, where
  // the ISA's vector is a cache line (a line written by several streaming stores apart leaves
  // the core as partial writes: AVX2, core/streaming.h), the vector stores stream, fenced
  // before returning.
  void (*pack_b)(int64_t k, int64_t n, MatrixRef<T> b, T* dst, int64_t panel_stride, const int64_t* k_dest,
                 bool stream);
  // The epilogue on an m x n tile of C, the epilogue's matrices already shifted to the tile.
  void (*epilogue)(int64_t m, int64_t n, T* c, int64_t ldc, const Epilogue<T>& e);
  // C[m, n] = A[m, k] . W[n, k]^T with unit k stride in both (small m).
  void (*rowdot)(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* w, int64_t ldw, T* c,
                 int64_t ldc);
};

struct GemmKernels {
  KernelSet<float> f32;
  KernelSet<double> f64;
  template <class T>
  const KernelSet<T>& get() const;
};

template <>
inline const KernelSet<float>& GemmKernels::get<float>() const { return f32; }
template <>
inline const KernelSet<double>& GemmKernels::get<double>() const { return f64; }

const GemmKernels& active_kernels();

}  // namespace tensorops::gemm
