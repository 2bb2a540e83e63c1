#include "shape/shape.h"

#include <algorithm>
#include <string>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/parallel.h"

namespace tensorops::shape {

TENSOROPS_KERNEL_TABLES(ShapeKernels)

namespace {

const ShapeKernels& kernels() { return select_kernels(kernel_tables()); }

// Destination bytes per parallel piece: a thread wake-up is amortised many times over, and a
// copy of a few megabytes still splits evenly across the cores.
constexpr int64_t kPieceBytes = int64_t{128} << 10;
// Transposes whose destination is at least this large bypass the cache (see generic.h).
constexpr int64_t kStreamBytes = int64_t{8} << 20;

int size_class(int64_t item) { return item == 1 ? 0 : item == 4 ? 1 : 2; }

using RowFn = void (*)(const void* src, int64_t src_stride, void* dst, int64_t dst_stride, int64_t n);
using TransposeFn = void (*)(const void* src, int64_t src_ld, void* dst, int64_t dst_ld, int64_t rows, int64_t cols,
                             bool stream);
using ShortRunsFn = void (*)(const void* src, int64_t src_ld, void* dst, int64_t dst_ld, int64_t rows, int64_t bytes);

// Joins of mixed dtypes only: the promoted destination type is never narrower than the source.
template <class S, class D>
void convert_row(const void* src_bytes, int64_t src_stride, void* dst_bytes, int64_t dst_stride, int64_t n) {
  const S* src = static_cast<const S*>(src_bytes);
  D* dst = static_cast<D*>(dst_bytes);
  for (int64_t i = 0; i < n; ++i) dst[i * dst_stride] = static_cast<D>(src[i * src_stride]);
}

template <class Fn>
void with_type(DType dtype, const Fn& fn) {
  switch (dtype) {
    case DType::float32: fn(float{}); break;
    case DType::float64: fn(double{}); break;
    case DType::int32: fn(int32_t{}); break;
    case DType::int64: fn(int64_t{}); break;
    case DType::bool8: fn(bool{}); break;
  }
}

RowFn convert_fn(DType src, DType dst) {
  RowFn fn = nullptr;
  with_type(src, [&](auto s) {
    with_type(dst, [&](auto d) { fn = convert_row<decltype(s), decltype(d)>; });
  });
  return fn;
}

enum class Path { runs, transpose };

// One (source, destination) pair, coalesced, with its path and its cut into pieces.
struct Plan {
  const char* src = nullptr;
  char* dst = nullptr;
  int64_t src_item = 0, dst_item = 0;
  Path path = Path::runs;
  RowFn row = nullptr;
  TransposeFn transpose = nullptr;
  ShortRunsFn short_runs = nullptr;  // runs: whole rows this short go many a call
  bool stream = false;
  int ndim = 0;
  int tdim = -1;  // transpose: the dim that is contiguous in the source
  int64_t shape[kMaxDims] = {};
  int64_t src_stride[kMaxDims] = {};
  int64_t dst_stride[kMaxDims] = {};
  int64_t numel = 0;
  int64_t piece = 0;  // runs: elements per piece; transpose: columns per piece
  int64_t tile = 0;   // transpose: rows per piece
  int64_t row_blocks = 0, col_blocks = 0;
  int64_t pieces = 0;
};

void coalesce(const TensorView& src, const TensorView& dst, Plan& p) {
  int n = 0;
  for (int d = 0; d < src.ndim; ++d) {
    if (src.shape[d] == 1) continue;
    p.shape[n] = src.shape[d];
    p.src_stride[n] = src.strides[d];
    p.dst_stride[n] = dst.strides[d];
    ++n;
  }
  // Destination order (largest stride first), so the inner dim is the destination's fastest.
  for (int i = 1; i < n; ++i)
    for (int j = i; j > 0 && p.dst_stride[j - 1] < p.dst_stride[j]; --j) {
      std::swap(p.shape[j - 1], p.shape[j]);
      std::swap(p.src_stride[j - 1], p.src_stride[j]);
      std::swap(p.dst_stride[j - 1], p.dst_stride[j]);
    }
  int m = 0;
  for (int i = 0; i < n; ++i) {
    if (m > 0 && p.src_stride[m - 1] == p.src_stride[i] * p.shape[i] &&
        p.dst_stride[m - 1] == p.dst_stride[i] * p.shape[i]) {
      p.shape[m - 1] *= p.shape[i];
      p.src_stride[m - 1] = p.src_stride[i];
      p.dst_stride[m - 1] = p.dst_stride[i];
    } else {
      p.shape[m] = p.shape[i];
      p.src_stride[m] = p.src_stride[i];
      p.dst_stride[m] = p.dst_stride[i];
      ++m;
    }
  }
  if (m == 0) {  // a single element
    p.shape[0] = 1;
    p.src_stride[0] = p.dst_stride[0] = 1;
    m = 1;
  }
  p.ndim = m;
}

Plan make_plan(const TensorView& src, const TensorView& dst) {
  Plan p;
  p.src = static_cast<const char*>(src.data);
  p.dst = static_cast<char*>(dst.data);
  p.src_item = itemsize(src.dtype);
  p.dst_item = itemsize(dst.dtype);
  p.numel = src.numel();
  if (p.numel == 0) return p;
  coalesce(src, dst, p);
  const auto& k = kernels();
  const int last = p.ndim - 1;
  if (src.dtype != dst.dtype) {
    p.row = convert_fn(src.dtype, dst.dtype);
  } else {
    p.row = k.strided[size_class(p.src_item)];
    if (p.ndim >= 2 && p.dst_stride[last] == 1 && p.src_stride[last] != 1)
      for (int d = 0; d < last; ++d)
        if (p.src_stride[d] == 1) p.tdim = d;
  }
  if (p.tdim >= 0) {
    p.path = Path::transpose;
    p.transpose = k.transpose[size_class(p.src_item)];
    p.stream = p.numel * p.dst_item >= kStreamBytes;
    p.tile = kTransposeRowBytes / p.src_item;
    p.piece = std::max(p.tile, kPieceBytes / p.src_item / p.tile / p.tile * p.tile);
    p.row_blocks = (p.shape[p.tdim] + p.tile - 1) / p.tile;
    p.col_blocks = (p.shape[last] + p.piece - 1) / p.piece;
    p.pieces = p.numel / (p.shape[p.tdim] * p.shape[last]) * p.row_blocks * p.col_blocks;
  } else {
    p.piece = std::max<int64_t>(1, kPieceBytes / p.dst_item);
    p.pieces = (p.numel + p.piece - 1) / p.piece;
    if (src.dtype == dst.dtype && p.ndim >= 2 && p.src_stride[last] == 1 && p.dst_stride[last] == 1 &&
        p.shape[last] * p.src_item <= kShortRunBytes)
      p.short_runs = k.short_runs;
  }
  return p;
}

// Elements [begin, end) of the plan's iteration space, in destination order, row by row.
void run_rows(const Plan& p, int64_t begin, int64_t end) {
  const int last = p.ndim - 1;
  const int64_t len = p.shape[last];
  const int64_t ss = p.src_stride[last], ds = p.dst_stride[last];
  int64_t idx[kMaxDims];
  int64_t j = begin % len;
  int64_t row = begin / len;
  int64_t so = j * ss, dof = j * ds;
  for (int d = last - 1; d >= 0; --d) {
    idx[d] = row % p.shape[d];
    row /= p.shape[d];
    so += idx[d] * p.src_stride[d];
    dof += idx[d] * p.dst_stride[d];
  }
  for (int64_t left = end - begin;;) {
    if (p.short_runs && j == 0 && left >= len) {
      // Whole rows along the next dim, up to its end, in one call; the odometer below then
      // steps past the last of them.
      const int d = last - 1;
      const int64_t rows = std::min(left / len, p.shape[d] - idx[d]);
      p.short_runs(p.src + so * p.src_item, p.src_stride[d] * p.src_item, p.dst + dof * p.dst_item,
                   p.dst_stride[d] * p.dst_item, rows, len * p.src_item);
      left -= rows * len;
      if (left == 0) return;
      idx[d] += rows - 1;
      so += (rows - 1) * p.src_stride[d];
      dof += (rows - 1) * p.dst_stride[d];
    } else {
      const int64_t n = std::min(left, len - j);
      p.row(p.src + so * p.src_item, ss, p.dst + dof * p.dst_item, ds, n);
      left -= n;
      if (left == 0) return;
    }
    so -= j * ss;
    dof -= j * ds;
    j = 0;
    for (int d = last - 1; d >= 0; --d) {
      if (++idx[d] < p.shape[d]) {
        so += p.src_stride[d];
        dof += p.dst_stride[d];
        break;
      }
      so -= (p.shape[d] - 1) * p.src_stride[d];
      dof -= (p.shape[d] - 1) * p.dst_stride[d];
      idx[d] = 0;
    }
  }
}

// One transpose piece: `tile` source-contiguous rows by `piece` destination-contiguous columns.
void run_transpose_piece(const Plan& p, int64_t q) {
  const int last = p.ndim - 1;
  const int64_t col_block = q % p.col_blocks;
  q /= p.col_blocks;
  const int64_t row_block = q % p.row_blocks;
  int64_t outer = q / p.row_blocks;
  int64_t so = 0, dof = 0;
  for (int d = last - 1; d >= 0; --d) {
    if (d == p.tdim) continue;
    const int64_t i = outer % p.shape[d];
    outer /= p.shape[d];
    so += i * p.src_stride[d];
    dof += i * p.dst_stride[d];
  }
  const int64_t a = row_block * p.tile, b = col_block * p.piece;
  const int64_t rows = std::min(p.tile, p.shape[p.tdim] - a);
  const int64_t cols = std::min(p.piece, p.shape[last] - b);
  so += a + b * p.src_stride[last];
  dof += a * p.dst_stride[p.tdim] + b;
  p.transpose(p.src + so * p.src_item, p.src_stride[last], p.dst + dof * p.dst_item, p.dst_stride[p.tdim], rows,
              cols, p.stream);
}

void run_pieces(const Plan& p, int64_t begin, int64_t end) {
  if (p.path == Path::runs) {
    run_rows(p, begin * p.piece, std::min(p.numel, end * p.piece));
    return;
  }
  for (int64_t q = begin; q < end; ++q) run_transpose_piece(p, q);
}

// All plans' pieces in one parallel region, in the order of their place in their plan: a
// join along an inner dim then writes each region of the output from every input while its
// lines are still in cache (cat of two 262144 x 8 arrays along dim 1 wrote every output line
// twice, a whole pass over the 16 MB output apart: 1.9x the time it takes now).
void run_plans(const std::vector<Plan>& plans) {
  struct Piece {
    int64_t plan, index;
  };
  std::vector<Piece> order;
  for (size_t i = 0; i < plans.size(); ++i)
    for (int64_t q = 0; q < plans[i].pieces; ++q) order.push_back({static_cast<int64_t>(i), q});
  // By (q + 1/2) / pieces, compared exactly in integers; ties keep the plans' order.
  std::stable_sort(order.begin(), order.end(), [&](const Piece& a, const Piece& b) {
    return (2 * a.index + 1) * plans[size_t(b.plan)].pieces < (2 * b.index + 1) * plans[size_t(a.plan)].pieces;
  });
  parallel_for(0, static_cast<int64_t>(order.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end;) {
      // Neighbours from one plan are consecutive pieces of it (the order keeps each plan's
      // own): one call.
      int64_t stop = q + 1;
      while (stop < end && order[size_t(stop)].plan == order[size_t(q)].plan) ++stop;
      const Piece& first = order[size_t(q)];
      run_pieces(plans[size_t(first.plan)], first.index, first.index + (stop - q));
      q = stop;
    }
  });
}

std::string shape_string(const TensorView& v) {
  std::string s = "[";
  for (int d = 0; d < v.ndim; ++d) s += (d ? ", " : "") + std::to_string(v.shape[d]);
  return s + "]";
}

}  // namespace

void copy(const TensorView& src, const TensorView& dst) {
  bool same = src.ndim == dst.ndim;
  for (int d = 0; same && d < src.ndim; ++d) same = src.shape[d] == dst.shape[d];
  TENSOROPS_CHECK(same, "copy: source shape " + shape_string(src) + " does not match destination shape " +
                            shape_string(dst));
  run_plans({make_plan(src, dst)});
}

void cat(const std::vector<TensorView>& inputs, int dim, const TensorView& out) {
  TENSOROPS_CHECK(dim >= 0 && dim < out.ndim, "cat: dim out of range");
  std::vector<Plan> plans;
  plans.reserve(inputs.size());
  int64_t offset = 0;
  for (const TensorView& in : inputs) {
    bool fits = in.ndim == out.ndim;
    for (int d = 0; fits && d < out.ndim; ++d) fits = d == dim || in.shape[d] == out.shape[d];
    TENSOROPS_CHECK(fits && in.shape[dim] <= out.shape[dim] - offset,
                    "cat: input of shape " + shape_string(in) + " does not fit output " + shape_string(out));
    TensorView slice = out;
    slice.shape[dim] = in.shape[dim];
    slice.data = static_cast<char*>(out.data) + offset * out.strides[dim] * itemsize(out.dtype);
    offset += in.shape[dim];
    plans.push_back(make_plan(in, slice));
  }
  TENSOROPS_CHECK(offset == out.shape[dim], "cat: inputs do not fill output " + shape_string(out));
  run_plans(plans);
}

void stack(const std::vector<TensorView>& inputs, int dim, const TensorView& out) {
  TENSOROPS_CHECK(dim >= 0 && dim < out.ndim && out.shape[dim] == static_cast<int64_t>(inputs.size()),
                  "stack: output shape " + shape_string(out) + " does not hold the inputs");
  TensorView slice = out;
  for (int d = dim; d + 1 < out.ndim; ++d) {
    slice.shape[d] = out.shape[d + 1];
    slice.strides[d] = out.strides[d + 1];
  }
  slice.ndim = out.ndim - 1;
  std::vector<Plan> plans;
  plans.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorView& in = inputs[i];
    bool fits = in.ndim == slice.ndim;
    for (int d = 0; fits && d < slice.ndim; ++d) fits = in.shape[d] == slice.shape[d];
    TENSOROPS_CHECK(fits, "stack: input of shape " + shape_string(in) + " does not fit output " + shape_string(out));
    slice.data = static_cast<char*>(out.data) + static_cast<int64_t>(i) * out.strides[dim] * itemsize(out.dtype);
    plans.push_back(make_plan(in, slice));
  }
  run_plans(plans);
}

}  // namespace tensorops::shape
