// Shape: views, reshapes, joins and splits, and the one strided copy under all of them.
//
// Most shape ops move no data. transpose, permute, squeeze, unsqueeze, expand, narrow, split,
// chunk, and reshape/view whenever the strides allow, are NumPy views built in Python
// (python/tensorops/shape.py) with PyTorch's rules for when a view is possible. Data moves in
// three cases only: contiguous() of a non-contiguous array, reshape() when no strides can
// express the new shape, and the joins cat/stack. All three are one operation: copy a strided
// source into a destination of the same shape, where the destination is a fresh C-contiguous
// array (or, for the joins, one input's slice of the preallocated output, so every input is
// written once, straight to where it belongs).
//
// The driver (shape.cc) turns each (source, destination) pair into a plan:
//   1. coalesce: drop size-1 dims, order dims by destination stride, and merge neighbours that
//      are contiguous in both arrays, so a plain copy becomes one long run;
//   2. pick a path: runs (the inner dim is copied as a row: memcpy when both sides are
//      contiguous, many rows a call when they are that and at most 64 bytes, a strided
//      element loop otherwise) or transpose (the destination's inner dim
//      is strided in the source but another dim is contiguous there: the copy walks
//      cache-line-square tiles, transposed in registers where the ISA allows, so every cache
//      line read or written is used in full, with streaming stores once the destination is
//      far larger than the caches);
//   3. cut the destination into fixed-size pieces (kPieceBytes, never a function of the
//      thread count) and hand them to parallel_for; a join hands out the pieces of all its
//      inputs in one parallel region, ordered by their place in their input, so that the
//      inputs of a join along an inner dim fill each region of the output in turn.
// Kernels move bytes, not numbers: element sizes 1, 4 and 8 map to uint8/uint32/uint64, so
// bool, int32, int64, float32 and float64 share them. A join of mixed dtypes (torch promotes
// float32 + float64 to float64) converts while copying, on a scalar path.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tensorops::shape {

// Element size classes of the byte-moving kernels: 1, 4 and 8 bytes.
constexpr int kSizeClasses = 3;

// The transpose path's pieces are this many bytes of each source row tall (the kernel's
// blocks walk down them; see generic.h).
constexpr int64_t kTransposeRowBytes = 1024;
// Contiguous rows up to this many bytes are copied many a call (ShapeKernels::short_runs).
constexpr int64_t kShortRunBytes = 64;

struct ShapeKernels {
  // dst[i * dst_stride] = src[i * src_stride] for i < n (strides in elements; memcpy when both are 1).
  void (*strided[kSizeClasses])(const void* src, int64_t src_stride, void* dst, int64_t dst_stride, int64_t n);
  // dst[a * dst_ld + b] = src[b * src_ld + a] for a < rows, b < cols (a is contiguous in src,
  // b in dst); stream: the whole copy is far larger than the caches.
  void (*transpose[kSizeClasses])(const void* src, int64_t src_ld, void* dst, int64_t dst_ld, int64_t rows,
                                  int64_t cols, bool stream);
  // rows runs of `bytes` (1 <= bytes <= kShortRunBytes) contiguous bytes, run r at src +
  // r * src_ld into dst + r * dst_ld (leading dimensions in bytes): many short rows a call.
  void (*short_runs)(const void* src, int64_t src_ld, void* dst, int64_t dst_ld, int64_t rows, int64_t bytes);
};

// dst = src elementwise; same shape; dst does not overlap src. Any strides, dtypes may differ
// (converting as static_cast does).
void copy(const TensorView& src, const TensorView& dst);

// out = torch.cat(inputs, dim): inputs share out's shape except along dim, whose sizes sum
// to out's. Each input is written into its slice of out.
void cat(const std::vector<TensorView>& inputs, int dim, const TensorView& out);

// out = torch.stack(inputs, dim): inputs share one shape; out has that shape with
// inputs.size() inserted at dim.
void stack(const std::vector<TensorView>& inputs, int dim, const TensorView& out);

}  // namespace tensorops::shape
