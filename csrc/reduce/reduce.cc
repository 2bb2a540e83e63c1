// The reduce driver: turns any layout into the row or column shape (reduce.h), splits the
// work into fixed spans and chunks, runs them on threads and combines their states in a
// fixed pairwise order.
#include "reduce/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

namespace tensorops::reduce {
namespace {

const ReduceKernels& kernels() { return select_kernels(kernel_tables()); }

template <class T>
const TypedKernels<T>& typed(const ReduceKernels& k);
template <>
const TypedKernels<float>& typed(const ReduceKernels& k) { return k.f32; }
template <>
const TypedKernels<double>& typed(const ReduceKernels& k) { return k.f64; }

// Elements a task should cover at least, so that waking a thread pays off.
constexpr int64_t kTaskElements = 1 << 14;
// The same for the spans of long rows, whose reductions are the cheapest per element: on Zen
// 4, a sum over 16 Ki floats split span by span took 1.3-1.7x the time on 2 threads that it
// took on one, over 64 Ki 1.0-1.3x (waking the second thread costs 1-3 us there); from 256 Ki
// the split gains (0.55-0.7x). Spans are combined in a fixed tree, so the bits do not change.
constexpr int64_t kSpanTaskElements = int64_t(1) << 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Axis {
  int64_t size;
  int64_t in_stride;
  int64_t out_stride;  // kept axes only
  bool reduced;
};

// The kept axes: input and output element offsets of outer index o (row-major over them).
struct KeptAxes {
  int n = 0;
  int64_t size[kMaxDims] = {};
  int64_t in_stride[kMaxDims] = {};
  int64_t out_stride[kMaxDims] = {};

  int64_t count() const {
    int64_t c = 1;
    for (int d = 0; d < n; ++d) c *= size[d];
    return c;
  }
  void offsets(int64_t o, int64_t* in_off, int64_t* out_off) const {
    int64_t i = 0, j = 0;
    for (int d = n - 1; d >= 0; --d) {
      const int64_t k = o % size[d];
      o /= size[d];
      i += k * in_stride[d];
      j += k * out_stride[d];
    }
    *in_off = i;
    *out_off = j;
  }
};

// Steps through consecutive outer indices without dividing.
struct KeptWalker {
  const KeptAxes& axes;
  int64_t index[kMaxDims] = {};
  int64_t in = 0, out = 0;

  KeptWalker(const KeptAxes& a, int64_t o) : axes(a) {
    for (int d = a.n - 1; d >= 0; --d) {
      index[d] = o % a.size[d];
      o /= a.size[d];
      in += index[d] * a.in_stride[d];
      out += index[d] * a.out_stride[d];
    }
  }
  void next() {
    for (int d = axes.n - 1; d >= 0; --d) {
      in += axes.in_stride[d];
      out += axes.out_stride[d];
      if (++index[d] < axes.size[d]) return;
      in -= axes.size[d] * axes.in_stride[d];
      out -= axes.size[d] * axes.out_stride[d];
      index[d] = 0;
    }
  }
};

struct Plan {
  KeptAxes kept;
  bool column = false;     // else row
  int64_t rows = 1;        // row: runs per output; column: reduced length
  int64_t row_stride = 0;
  int64_t len = 1;         // row: run length (stride 1); column: inner length (stride 1)
  int64_t inner_out_stride = 0;
  int64_t in_offset = 0;
  int64_t out_offset = 0;
};

// The row or column shape of a reduction over `axes`, or false when it has neither.
// Reduced axes with negative strides are flipped only when the order of the reduced
// elements does not matter (flip_reduced).
bool make_plan(const std::vector<Axis>& axes, bool flip_reduced, Plan* plan) {
  *plan = Plan{};
  std::vector<Axis> a;
  for (Axis ax : axes) {
    if (ax.size == 1) continue;
    if (ax.in_stride < 0 && (!ax.reduced || flip_reduced)) {
      plan->in_offset += (ax.size - 1) * ax.in_stride;
      ax.in_stride = -ax.in_stride;
      if (!ax.reduced) {
        plan->out_offset += (ax.size - 1) * ax.out_stride;
        ax.out_stride = -ax.out_stride;
      }
    }
    a.push_back(ax);
  }
  std::stable_sort(a.begin(), a.end(),
                   [](const Axis& x, const Axis& y) { return std::abs(x.in_stride) > std::abs(y.in_stride); });
  std::vector<Axis> merged;
  for (const Axis& ax : a) {
    if (!merged.empty()) {
      Axis& prev = merged.back();
      if (prev.reduced == ax.reduced && prev.in_stride == ax.in_stride * ax.size &&
          (ax.reduced || prev.out_stride == ax.out_stride * ax.size)) {
        prev.size *= ax.size;
        prev.in_stride = ax.in_stride;
        prev.out_stride = ax.out_stride;
        continue;
      }
    }
    merged.push_back(ax);
  }
  if (merged.empty()) merged.push_back({1, 1, 1, false});

  const Axis last = merged.back();
  if (last.in_stride != 1) return false;
  merged.pop_back();
  int reduced_axes = 0;
  for (const Axis& ax : merged) {
    if (ax.reduced) {
      if (++reduced_axes > 1) return false;
      plan->rows = ax.size;
      plan->row_stride = ax.in_stride;
    } else {
      plan->kept.size[plan->kept.n] = ax.size;
      plan->kept.in_stride[plan->kept.n] = ax.in_stride;
      plan->kept.out_stride[plan->kept.n] = ax.out_stride;
      ++plan->kept.n;
    }
  }
  plan->column = !last.reduced;
  plan->len = last.size;
  plan->inner_out_stride = last.out_stride;
  return true;
}

// Last resort: copies the input into a C-contiguous scratch ordered kept axes first,
// reduced axes last (each group in its original order), and describes the copy in *packed.
template <class T>
std::vector<T> pack_reduced_last(const T* in, const std::vector<Axis>& axes, std::vector<Axis>* packed) {
  std::vector<Axis> order;
  for (const Axis& ax : axes)
    if (!ax.reduced) order.push_back(ax);
  for (const Axis& ax : axes)
    if (ax.reduced) order.push_back(ax);
  int64_t total = 1;
  for (const Axis& ax : order) total *= ax.size;
  std::vector<T> copy(static_cast<size_t>(total));
  *packed = order;
  int64_t stride = 1;
  for (size_t d = order.size(); d-- > 0;) {
    (*packed)[d].in_stride = stride;
    stride *= order[d].size;
  }
  if (total == 0) return copy;
  const int n = static_cast<int>(order.size());
  if (n == 0) {
    copy[0] = in[0];
    return copy;
  }
  // Odometer over all axes but the last, which is copied as a strided run.
  std::vector<int64_t> index(static_cast<size_t>(n), 0);
  const int64_t inner = order[n - 1].size, inner_stride = order[n - 1].in_stride;
  int64_t src = 0;
  for (int64_t dst = 0; dst < total; dst += inner) {
    for (int64_t i = 0; i < inner; ++i) copy[dst + i] = in[src + i * inner_stride];
    for (int d = n - 2; d >= 0; --d) {
      src += order[d].in_stride;
      if (++index[d] < order[d].size) break;
      src -= order[d].size * order[d].in_stride;
      index[d] = 0;
    }
  }
  return copy;
}

// The fixed pairwise tree over n states s[0], s[stride], ...
template <class P, class S>
S combine_tree(const P& pol, const S* s, int64_t n, int64_t stride) {
  if (n == 1) return s[0];
  const int64_t half = n / 2;
  return pol.combine(combine_tree(pol, s, half, stride), combine_tree(pol, s + half * stride, n - half, stride));
}

template <class T>
struct FoldPolicy;

// Short runs (sum_short_rows and the like) go to the kernel this many at a time.
constexpr int64_t kShortRowBlock = 256;

template <class T, class P>
void run(const Plan& plan, const T* in, const TypedKernels<T>& k, const P& pol) {
  using State = typename P::State;
  const KeptAxes& kept = plan.kept;
  const int64_t outer = kept.count();
  const T* base = in + plan.in_offset;

  if (!plan.column) {
    const int64_t len = plan.len;
    const int64_t spans_per_row = ceil_div(len, kRowSpan);
    const int64_t spans = plan.rows * spans_per_row;
    if (spans == 1) {
      if constexpr (std::is_same_v<P, FoldPolicy<T>>) {
        const auto short_rows = pol.short_rows(k, len);
        if (short_rows && kept.n == 1 && plan.rows == 1) {
          const int64_t in_stride = kept.in_stride[0], out_stride = kept.out_stride[0];
          const int64_t blocks = ceil_div(outer, kShortRowBlock);
          parallel_for(0, blocks, std::max<int64_t>(1, kTaskElements / (len * kShortRowBlock)), [&](int64_t b, int64_t e) {
            T sums[kShortRowBlock];
            for (int64_t block = b; block < e; ++block) {
              const int64_t first = block * kShortRowBlock, count = std::min(kShortRowBlock, outer - first);
              short_rows(base + first * in_stride, count, in_stride, len, sums);
              for (int64_t i = 0; i < count; ++i) pol.store(sums[i], plan.out_offset + (first + i) * out_stride);
            }
          });
          return;
        }
      }
      parallel_for(0, outer, std::max<int64_t>(1, kTaskElements / len), [&](int64_t b, int64_t e) {
        KeptWalker w(kept, b);
        for (int64_t o = b; o < e; ++o, w.next()) pol.store(pol.row(k, base + w.in, len, 0), plan.out_offset + w.out);
      });
      return;
    }
    std::vector<State> states(static_cast<size_t>(outer * spans));
    parallel_for(0, outer * spans, kSpanTaskElements / kRowSpan, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t o = t / spans, s = t % spans, r = s / spans_per_row, c = s % spans_per_row;
        int64_t in_off, out_off;
        kept.offsets(o, &in_off, &out_off);
        const int64_t start = c * kRowSpan;
        states[t] = pol.row(k, base + in_off + r * plan.row_stride + start, std::min(kRowSpan, len - start), r * len + start);
      }
    });
    parallel_for(0, outer, std::max<int64_t>(1, 4096 / spans), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        int64_t in_off, out_off;
        kept.offsets(o, &in_off, &out_off);
        pol.store(combine_tree(pol, states.data() + o * spans, spans, 1), plan.out_offset + out_off);
      }
    });
    return;
  }

  constexpr int64_t tile = kColTileBytes / static_cast<int64_t>(sizeof(T));
  const int64_t inner = plan.len, rows = plan.rows, rs = plan.row_stride;
  const int64_t tiles = ceil_div(inner, tile);
  const int64_t chunks = ceil_div(rows, kColRows);
  const auto store_tile = [&](const State* s, int64_t n, int64_t out_off) {
    for (int64_t j = 0; j < n; ++j) pol.store(s[j], out_off + j * plan.inner_out_stride);
  };
  if (chunks == 1) {
    parallel_for(0, outer * tiles, std::max<int64_t>(1, kTaskElements / (rows * tile)), [&](int64_t b, int64_t e) {
      std::vector<State> local(static_cast<size_t>(tile));
      std::vector<T> scratch(static_cast<size_t>(2 * tile));
      for (int64_t t = b; t < e; ++t) {
        const int64_t o = t / tiles, first = (t % tiles) * tile, n = std::min(tile, inner - first);
        int64_t in_off, out_off;
        kept.offsets(o, &in_off, &out_off);
        pol.cols(k, base + in_off + first, rows, rs, n, 0, local.data(), scratch.data());
        store_tile(local.data(), n, plan.out_offset + out_off + first * plan.inner_out_stride);
      }
    });
    return;
  }
  // states[o][chunk][inner]
  std::vector<State> states(static_cast<size_t>(outer * chunks * inner));
  parallel_for(0, outer * tiles * chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<T> scratch(static_cast<size_t>(2 * tile));
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / (tiles * chunks), rest = t % (tiles * chunks);
      const int64_t first = (rest / chunks) * tile, c = rest % chunks;
      const int64_t first_row = c * kColRows;
      int64_t in_off, out_off;
      kept.offsets(o, &in_off, &out_off);
      pol.cols(k, base + in_off + first_row * rs + first, std::min(kColRows, rows - first_row), rs,
               std::min(tile, inner - first), first_row, &states[(o * chunks + c) * inner + first], scratch.data());
    }
  });
  parallel_for(0, outer * tiles, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / tiles, first = (t % tiles) * tile, n = std::min(tile, inner - first);
      int64_t in_off, out_off;
      kept.offsets(o, &in_off, &out_off);
      const State* s = &states[o * chunks * inner + first];
      const int64_t at = plan.out_offset + out_off + first * plan.inner_out_stride;
      for (int64_t j = 0; j < n; ++j) pol.store(combine_tree(pol, s + j, chunks, inner), at + j * plan.inner_out_stride);
    }
  });
}

template <class T>
T max_nan(T a, T b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
template <class T>
T min_nan(T a, T b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }

// sum, mean, prod, amax, amin: the state is one value.
template <class T>
struct FoldPolicy {
  using State = T;
  Op op;
  T* out;
  T count;

  State row(const TypedKernels<T>& k, const T* p, int64_t n, int64_t) const {
    switch (op) {
      case Op::prod: return k.prod_row(p, n);
      case Op::amax: return k.max_row(p, n);
      case Op::amin: return k.min_row(p, n);
      default: return k.sum_row(p, n);
    }
  }
  void cols(const TypedKernels<T>& k, const T* p, int64_t rows, int64_t rs, int64_t n, int64_t, State* s, T*) const {
    switch (op) {
      case Op::prod: return k.prod_cols(p, rows, rs, n, s);
      case Op::amax: return k.max_cols(p, rows, rs, n, s);
      case Op::amin: return k.min_cols(p, rows, rs, n, s);
      default: return k.sum_cols(p, rows, rs, n, s);
    }
  }
  State combine(State a, State b) const {
    switch (op) {
      case Op::prod: return a * b;
      case Op::amax: return max_nan(a, b);
      case Op::amin: return min_nan(a, b);
      default: return a + b;
    }
  }
  void store(State s, int64_t at) const { out[at] = op == Op::mean ? s / count : s; }
  // The kernel for many runs of n elements at once, or null where runs that long go one a call.
  using ShortRows = void (*)(const T* x, int64_t rows, int64_t row_stride, int64_t n, T* out);
  ShortRows short_rows(const TypedKernels<T>& k, int64_t n) const {
    if (op == Op::sum || op == Op::mean) return n <= k.sum_short_row_max ? k.sum_short_rows : nullptr;
    if (n > k.fold_short_row_max) return nullptr;
    return op == Op::prod ? k.prod_short_rows : op == Op::amax ? k.max_short_rows : k.min_short_rows;
  }
};

template <class T>
struct MomentsPolicy {
  using State = Moments;
  T* out;
  double correction;
  bool root;

  State row(const TypedKernels<T>& k, const T* p, int64_t n, int64_t) const { return k.moments_row(p, n); }
  void cols(const TypedKernels<T>& k, const T* p, int64_t rows, int64_t rs, int64_t n, int64_t, State* s,
            T* scratch) const {
    k.moments_cols(p, rows, rs, n, scratch, s);
  }
  // Chan et al.'s pairwise update.
  State combine(const State& a, const State& b) const {
    const int64_t count = a.count + b.count;
    const double delta = b.mean - a.mean;
    const double weight_b = static_cast<double>(b.count) / static_cast<double>(count);
    return {a.mean + delta * weight_b, a.m2 + b.m2 + delta * delta * static_cast<double>(a.count) * weight_b, count};
  }
  // A NaN or infinite element leaves the mean non-finite and the variance NaN, as torch's; a
  // single such element would otherwise leave m2 at its starting 0 (correction < 1).
  void store(const State& s, int64_t at) const {
    const double v = std::isfinite(s.mean) ? s.m2 / std::max(0.0, static_cast<double>(s.count) - correction)
                                           : std::numeric_limits<double>::quiet_NaN();
    out[at] = static_cast<T>(root ? std::sqrt(v) : v);
  }
};

template <class T>
struct LogSumExpPolicy {
  using State = LogSumExp<T>;
  T* out;

  State row(const TypedKernels<T>& k, const T* p, int64_t n, int64_t) const { return k.logsumexp_row(p, n); }
  void cols(const TypedKernels<T>& k, const T* p, int64_t rows, int64_t rs, int64_t n, int64_t, State* s,
            T* scratch) const {
    k.logsumexp_cols(p, rows, rs, n, scratch, scratch + n);
    for (int64_t j = 0; j < n; ++j) s[j] = {scratch[j], scratch[n + j]};
  }
  State combine(const State& a, const State& b) const {
    const T m = max_nan(a.max, b.max);
    if (m != m) return {m, m};
    if (std::isinf(m)) return {m, m > 0 ? T(1) : T(0)};
    return {m, a.sum * std::exp(a.max - m) + b.sum * std::exp(b.max - m)};
  }
  void store(const State& s, int64_t at) const { out[at] = s.max + std::log(s.sum); }
};

template <class T>
struct ArgPolicy {
  using State = Extremum<T>;
  bool is_max;
  T* values;  // may be null
  int64_t* indices;

  State row(const TypedKernels<T>& k, const T* p, int64_t n, int64_t first) const {
    State s = is_max ? k.argmax_row(p, n) : k.argmin_row(p, n);
    s.index += first;
    return s;
  }
  void cols(const TypedKernels<T>& k, const T* p, int64_t rows, int64_t rs, int64_t n, int64_t first, State* s,
            T* scratch) const {
    (is_max ? k.argmax_cols : k.argmin_cols)(p, rows, rs, n, scratch, scratch + n);
    for (int64_t j = 0; j < n; ++j) s[j] = {scratch[j], first + static_cast<int64_t>(scratch[n + j])};
  }
  // a holds the earlier indices: it keeps ties; a NaN wins.
  State combine(const State& a, const State& b) const {
    if (a.value != a.value) return a;
    if (b.value != b.value) return b;
    return (is_max ? b.value > a.value : b.value < a.value) ? b : a;
  }
  void store(const State& s, int64_t at) const {
    if (values) values[at] = s.value;
    indices[at] = s.index;
  }
};

// Runs pol over the reduction described by axes, copying the input first only when its
// layout has neither the row nor the column shape.
template <class T, class P>
void execute(const std::vector<Axis>& axes, const T* in, const P& pol, bool flip_reduced) {
  const TypedKernels<T>& k = typed<T>(kernels());
  Plan plan;
  if (make_plan(axes, flip_reduced, &plan)) {
    run(plan, in, k, pol);
    return;
  }
  std::vector<Axis> packed;
  const std::vector<T> copy = pack_reduced_last(in, axes, &packed);
  const bool planned = make_plan(packed, flip_reduced, &plan);
  TENSOROPS_CHECK(planned, "reduce: internal error: no plan for a packed input");
  run(plan, copy.data(), k, pol);
}

// The axes of a reduction of in into out over the dims in reduced_mask, after checking that
// out has the kept shape.
std::vector<Axis> reduction_axes(const TensorView& in, const TensorView& out, uint64_t reduced_mask, const char* op,
                                 int64_t* reduced_count) {
  std::vector<Axis> axes;
  int kept = 0;
  *reduced_count = 1;
  TENSOROPS_CHECK(in.ndim < 64 && (reduced_mask >> in.ndim) == 0, std::string(op) + ": reduced dims out of range");
  for (int d = 0; d < in.ndim; ++d) {
    const bool reduced = (reduced_mask >> d) & 1u;
    if (reduced) {
      *reduced_count *= in.shape[d];
      axes.push_back({in.shape[d], in.strides[d], 0, true});
    } else {
      TENSOROPS_CHECK(kept < out.ndim && out.shape[kept] == in.shape[d],
                      std::string(op) + ": output shape does not match the result shape");
      axes.push_back({in.shape[d], in.strides[d], out.strides[kept], false});
      ++kept;
    }
  }
  TENSOROPS_CHECK(kept == out.ndim, std::string(op) + ": output shape does not match the result shape");
  return axes;
}

// Every element of out, through its strides.
template <class T>
void fill(const TensorView& out, T value) {
  T* p = out.ptr<T>();
  const int64_t total = out.numel();
  for (int64_t i = 0; i < total; ++i) {
    int64_t offset = 0, rest = i;
    for (int d = out.ndim - 1; d >= 0; --d) {
      offset += (rest % out.shape[d]) * out.strides[d];
      rest /= out.shape[d];
    }
    p[offset] = value;
  }
}

const char* op_name(Op op) {
  switch (op) {
    case Op::sum: return "sum";
    case Op::mean: return "mean";
    case Op::prod: return "prod";
    case Op::amax: return "amax";
    case Op::amin: return "amin";
    case Op::logsumexp: return "logsumexp";
    case Op::var: return "var";
    case Op::std: return "std";
  }
  return "reduce";
}

template <class T>
void reduce_typed(Op op, const TensorView& in, const TensorView& out, uint64_t reduced_mask, double correction) {
  int64_t count;
  const std::vector<Axis> axes = reduction_axes(in, out, reduced_mask, op_name(op), &count);
  if (out.numel() == 0) return;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  if (count == 0) {
    switch (op) {
      case Op::sum: return fill(out, T(0));
      case Op::prod: return fill(out, T(1));
      case Op::logsumexp: return fill(out, -std::numeric_limits<T>::infinity());
      case Op::mean:
      case Op::var:
      case Op::std: return fill(out, nan);
      case Op::amax:
      case Op::amin: throw IndexError(std::string(op_name(op)) + "(): Expected reduction dim to have non-zero size.");
    }
  }
  const T* x = in.ptr<const T>();
  T* o = out.ptr<T>();
  switch (op) {
    case Op::var:
    case Op::std: return execute(axes, x, MomentsPolicy<T>{o, correction, op == Op::std}, true);
    case Op::logsumexp: return execute(axes, x, LogSumExpPolicy<T>{o}, true);
    default:
      return execute(axes, x, FoldPolicy<T>{op, o, static_cast<T>(count)}, true);
  }
}

void check_float_pair(const TensorView& in, const TensorView& out, const char* op) {
  if (in.dtype != DType::float32 && in.dtype != DType::float64)
    throw TypeError(std::string(op) + ": unsupported dtype " + dtype_name(in.dtype));
  if (out.dtype != in.dtype) throw TypeError(std::string(op) + ": output dtype must match the input dtype");
}

}  // namespace

void reduce(Op op, const TensorView& in, const TensorView& out, uint64_t reduced_mask, double correction) {
  check_float_pair(in, out, op_name(op));
  if (in.dtype == DType::float32)
    reduce_typed<float>(op, in, out, reduced_mask, correction);
  else
    reduce_typed<double>(op, in, out, reduced_mask, correction);
}

void reduce_arg(ArgOp op, const TensorView& in, const TensorView* values, const TensorView& indices, int dim) {
  const char* name = op == ArgOp::max ? "max" : "min";
  if (values) check_float_pair(in, *values, name);
  else if (in.dtype != DType::float32 && in.dtype != DType::float64)
    throw TypeError(std::string(name) + ": unsupported dtype " + dtype_name(in.dtype));
  if (indices.dtype != DType::int64) throw TypeError(std::string(name) + ": indices must be int64");
  TENSOROPS_CHECK(dim >= 0 && dim < in.ndim, std::string(name) + ": dim out of range");
  int64_t count;
  const std::vector<Axis> axes = reduction_axes(in, indices, uint64_t(1) << dim, name, &count);
  if (values) {
    bool same = values->ndim == indices.ndim;
    for (int d = 0; same && d < indices.ndim; ++d)
      same = values->shape[d] == indices.shape[d] && (values->shape[d] == 1 || values->strides[d] == indices.strides[d]);
    TENSOROPS_CHECK(same, std::string(name) + ": values and indices must share shape and strides");
  }
  if (indices.numel() == 0) return;
  if (count == 0)
    throw IndexError(std::string(name) + "(): Expected reduction dim " + std::to_string(dim) + " to have non-zero size.");
  if (in.dtype == DType::float32) {
    execute(axes, in.ptr<const float>(),
            ArgPolicy<float>{op == ArgOp::max, values ? values->ptr<float>() : nullptr, indices.ptr<int64_t>()}, false);
  } else {
    execute(axes, in.ptr<const double>(),
            ArgPolicy<double>{op == ArgOp::max, values ? values->ptr<double>() : nullptr, indices.ptr<int64_t>()}, false);
  }
}

namespace {

// Rows handed to one softmax kernel call (their offsets gathered on the stack).
constexpr int64_t kSoftmaxRowsPerCall = 64;

template <class T>
void softmax_typed(const TensorView& in, const TensorView& out, int dim, bool log) {
  std::vector<Axis> axes;
  for (int d = 0; d < in.ndim; ++d) axes.push_back({in.shape[d], in.strides[d], in.strides[d], d == dim});
  Plan plan;
  TENSOROPS_CHECK(make_plan(axes, false, &plan), "softmax: expected a dense input");
  const TypedKernels<T>& k = typed<T>(kernels());
  const T* x = in.ptr<const T>() + plan.in_offset;
  T* y = out.ptr<T>() + plan.in_offset;
  const KeptAxes& kept = plan.kept;
  const int64_t outer = kept.count();
  if (!plan.column) {
    TENSOROPS_CHECK(plan.rows == 1, "softmax: expected a dense input");
    const auto rows = log ? k.log_softmax_rows : k.softmax_rows;
    const int64_t len = plan.len;
    parallel_for(0, outer, std::max<int64_t>(1, kTaskElements / len), [&](int64_t b, int64_t e) {
      KeptWalker w(kept, b);
      int64_t offsets[kSoftmaxRowsPerCall];
      for (int64_t o = b; o < e;) {
        const int64_t count = std::min(kSoftmaxRowsPerCall, e - o);
        for (int64_t i = 0; i < count; ++i, w.next()) offsets[i] = w.in;
        rows(x, y, offsets, count, len);
        o += count;
      }
    });
    return;
  }
  constexpr int64_t tile = kColTileBytes / static_cast<int64_t>(sizeof(T));
  const auto cols = log ? k.log_softmax_cols : k.softmax_cols;
  const int64_t inner = plan.len, rows = plan.rows, rs = plan.row_stride;
  const int64_t tiles = ceil_div(inner, tile);
  parallel_for(0, outer * tiles, std::max<int64_t>(1, kTaskElements / (rows * tile)), [&](int64_t b, int64_t e) {
    std::vector<T> scratch(static_cast<size_t>(3 * tile));
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / tiles, first = (t % tiles) * tile;
      int64_t in_off, out_off;
      kept.offsets(o, &in_off, &out_off);
      cols(x + in_off + first, y + in_off + first, rows, rs, std::min(tile, inner - first), scratch.data());
    }
  });
}

}  // namespace

void softmax(const TensorView& in, const TensorView& out, int dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_float_pair(in, out, name);
  TENSOROPS_CHECK(dim >= 0 && dim < in.ndim, std::string(name) + ": dim out of range");
  bool same = in.ndim == out.ndim;
  for (int d = 0; same && d < in.ndim; ++d)
    same = in.shape[d] == out.shape[d] && (in.shape[d] == 1 || in.strides[d] == out.strides[d]);
  TENSOROPS_CHECK(same, std::string(name) + ": output must share the input's shape and strides");
  if (in.numel() == 0) return;
  if (in.dtype == DType::float32)
    softmax_typed<float>(in, out, dim, log);
  else
    softmax_typed<double>(in, out, dim, log);
}

}  // namespace tensorops::reduce
