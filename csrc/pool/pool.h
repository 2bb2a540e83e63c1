// Pooling: max and average over 2-D windows of NCHW planes, with PyTorch's semantics.
//
// Every op works plane by plane: an (n, c) plane is H rows of W contiguous elements (rows
// may sit any distance apart; Python copies inputs whose columns are not contiguous), and
// its output plane is a C-contiguous OH x OW block. The driver (pool.cc) splits the
// N*C*OH output rows across threads, so many small planes and one huge plane both keep
// every thread busy, and gives each thread a scratch buffer; kernels never allocate.
//
// Windows are separable, so the value kernels work in two passes per output row:
//   1. vertical: reduce the KH input rows of the window elementwise (max or sum) into a
//      row buffer laid out in padded coordinates (pad cells hold -inf for max, 0 for sum);
//   2. horizontal: for stride s, split that padded row into s phases (phase r holds the
//      cells r, r+s, r+2s, ...); the tap kw of output ow is then phase[(kw*d) % s] at
//      ow + (kw*d) / s, a contiguous run, so a Vec<T> of outputs is one load per tap.
// Stride 1 needs no split and stride 2 (the common case) deinterleaves with shuffles as
// the vertical pass stores. Two padded rows alternate so that the horizontal loads of
// one row never wait on the stores of the vertical pass that just wrote it. On AVX-512 a
// stride-2 row whose padded cells fit two vectors (planes up to ~31 floats wide) skips the
// buffer: the vertical pass reduces into two registers and the taps are shuffles of them
// (register_rows), since so short a row's horizontal loads still waited on its stores. Max chains
// use the plain x86 max (one instruction on the dependency chain) and OR a NaN mask
// beside it, so a NaN anywhere in a window makes its output NaN, as in torch.
//
// max_pool2d with indices cannot reorder its scan: PyTorch keeps the first maximum in
// row-major window order and the last NaN (a NaN always replaces the running maximum), so
// that kernel walks the taps in torch's order, still vectorised along the output width,
// tracking the winning (kh, kw) per lane. Its running maximum starts at -inf with the
// first in-bounds tap's position, which is what torch reports for a window of -inf.
//
// Windows far larger than the plane (torch lets padding reach half of a kernel of any size)
// would make the padded rows as long as the padding, and float32 lanes cannot count
// positions of 2^24 and more: such pools run the far-window kernels, one output at a time
// over its in-bounds cells, with int64 positions and no scratch (pool.cc, far_windows).
//
// Average divides the window sum by a divisor that is a product of a row factor and a
// column factor (the clipped window extents, or the override), as torch computes it.
// Adaptive pooling with output sizes that divide the input is ordinary pooling with
// kernel = stride; the general adaptive case has variable windows and runs per output.
// Global average pooling (output 1x1) sums each plane in one vector pass.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tensorops::pool {

// The geometry of one pooling op on one plane. Padding and dilation are torch's.
struct Window2d {
  int64_t in_h, in_w, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
};

// How avg_pool2d divides: by the override when non-zero (torch rejects 0), otherwise by the window extent
// clipped to the padded input (count_include_pad) or to the input.
struct AvgDivisor {
  bool count_include_pad;
  int64_t divisor_override;  // 0 = none
};

// Kernel contract: `plane` points at element (0, 0) of an input plane whose rows are
// `row_stride` elements apart; `out` (and `indices`) at the C-contiguous output plane.
// A call computes output rows [oh_begin, oh_end). `scratch` holds scratch_elements(...)
// elements of T, private to the calling thread.
template <class T>
struct PoolKernelsFor {
  void (*max_values)(const T* plane, int64_t row_stride, T* out, const Window2d& g, int64_t oh_begin,
                     int64_t oh_end, T* scratch);
  void (*max_indices)(const T* plane, int64_t row_stride, T* out, int64_t* indices, const Window2d& g,
                      int64_t oh_begin, int64_t oh_end, T* scratch);
  void (*avg)(const T* plane, int64_t row_stride, T* out, const Window2d& g, const AvgDivisor& divisor,
              int64_t oh_begin, int64_t oh_end, T* scratch);
  // Windows far larger than the plane (see far_windows in pool.cc), element by element with
  // int64 positions, no scratch. `indices` may be null.
  void (*max_far)(const T* plane, int64_t row_stride, T* out, int64_t* indices, const Window2d& g, int64_t oh_begin,
                  int64_t oh_end);
  void (*avg_far)(const T* plane, int64_t row_stride, T* out, const Window2d& g, const AvgDivisor& divisor,
                  int64_t oh_begin, int64_t oh_end);
  // Adaptive windows: rows [floor(oh*H/OH), ceil((oh+1)*H/OH)), columns likewise. `indices`
  // may be null. Only g.in_*, g.out_* are read.
  void (*adaptive_max)(const T* plane, int64_t row_stride, T* out, int64_t* indices, const Window2d& g,
                       int64_t oh_begin, int64_t oh_end);
  void (*adaptive_avg)(const T* plane, int64_t row_stride, T* out, const Window2d& g, int64_t oh_begin,
                       int64_t oh_end, T* scratch);
  // out[i] = mean of plane i, for `count` planes `plane_stride` elements apart.
  void (*global_avg)(const T* first_plane, int64_t plane_stride, int64_t row_stride, int64_t h, int64_t w,
                     int64_t count, T* out);
};

struct PoolKernels {
  PoolKernelsFor<float> f32;
  PoolKernelsFor<double> f64;
};

// Scratch elements a kernel needs for geometry g (the same bound serves every kernel).
int64_t scratch_elements(const Window2d& g);
// Cells of scratch after each padded row and phase, so that a whole vector loaded or stored
// at a row's last cells stays inside the buffer (one vector of float on every ISA).
constexpr int64_t kScratchSlack = 16;

// Drivers. `in` is 4-D (N, C, H, W) with unit column stride; outputs are C-contiguous
// (N, C, OH, OW); `indices` is int64 or null. The window parameters were validated in
// Python; the drivers re-check what memory safety depends on.
// g supplies the kernel, stride, padding and dilation (avg_pool2d ignores dilation); the
// drivers fill in the sizes.
void max_pool2d(const TensorView& in, const TensorView& out, const TensorView* indices, const Window2d& g,
                bool ceil_mode);
void avg_pool2d(const TensorView& in, const TensorView& out, const Window2d& g, bool ceil_mode,
                const AvgDivisor& divisor);
void adaptive_max_pool2d(const TensorView& in, const TensorView& out, const TensorView* indices);
void adaptive_avg_pool2d(const TensorView& in, const TensorView& out);

}  // namespace tensorops::pool
