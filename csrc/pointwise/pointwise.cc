#include "pointwise/pointwise.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/streaming.h"

namespace tensorops::pointwise {

TENSOROPS_KERNEL_TABLES(PointwiseKernels)

namespace {

const PointwiseKernels& kernels() { return select_kernels(kernel_tables()); }

// Elements per task: large enough to amortise a thread wake-up, small enough to balance.
constexpr int64_t kGrain = 1 << 15;

// The iteration space of one call after broadcasting and coalescing (see pointwise.h):
// `ndim` dims, innermost last, and for each of `kOperands` operands its strides in elements.
// The output is C-contiguous, so its offset is the flat index and needs no strides.
template <int kOperands>
struct Loop {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t strides[kOperands][kMaxDims];
  int64_t numel = 1;
};

// Strides of `in` seen through the output's shape: right-aligned, 0 where `in` has size 1.
// Refuses shapes that do not broadcast (Python has already reported those in torch's words).
void aligned_strides(const TensorView& in, const TensorView& out, int64_t* strides, const char* op) {
  TENSOROPS_CHECK(in.ndim <= out.ndim, std::string(op) + ": input has more dims than the output");
  const int offset = out.ndim - in.ndim;
  for (int d = 0; d < out.ndim; ++d) {
    if (d < offset) {
      strides[d] = 0;
      continue;
    }
    const int64_t size = in.shape[d - offset];
    TENSOROPS_CHECK(size == out.shape[d] || size == 1,
                    std::string(op) + ": input shape does not broadcast to the output shape");
    strides[d] = size == 1 ? 0 : in.strides[d - offset];
  }
}

template <int kOperands>
Loop<kOperands> make_loop(const TensorView* const (&inputs)[kOperands], const TensorView& out, const char* op) {
  TENSOROPS_CHECK(out.is_contiguous(), std::string(op) + ": output must be C-contiguous");
  int64_t aligned[kOperands][kMaxDims];
  for (int k = 0; k < kOperands; ++k) aligned_strides(*inputs[k], out, aligned[k], op);
  Loop<kOperands> loop;
  loop.numel = out.numel();
  for (int d = 0; d < out.ndim; ++d) {
    const int64_t size = out.shape[d];
    if (size == 1) continue;
    // Merge into the previous kept dim when every operand steps through both as one.
    bool merge = loop.ndim > 0;
    for (int k = 0; merge && k < kOperands; ++k)
      merge = aligned[k][d] * size == loop.strides[k][loop.ndim - 1];
    if (merge) {
      // The kept dim becomes the outer part of a longer inner dim.
      loop.shape[loop.ndim - 1] *= size;
      for (int k = 0; k < kOperands; ++k) loop.strides[k][loop.ndim - 1] = aligned[k][d];
      continue;
    }
    loop.shape[loop.ndim] = size;
    for (int k = 0; k < kOperands; ++k) loop.strides[k][loop.ndim] = aligned[k][d];
    ++loop.ndim;
  }
  if (loop.ndim == 0) {  // a single element (or a 0-d tensor)
    loop.shape[0] = 1;
    for (int k = 0; k < kOperands; ++k) loop.strides[k][0] = 0;
    loop.ndim = 1;
  }
  return loop;
}

// Runs fn(offsets, out_begin, count) over every inner run, in parallel chunks of the flat
// output range; offsets[k] is operand k's element offset of the run's first element.
// streamed: fn writes with streaming stores, fenced once per chunk.
template <int kOperands, class Fn>
void for_each_run(const Loop<kOperands>& loop, bool streamed, const Fn& fn) {
  if (loop.numel == 0) return;
  const int inner_dim = loop.ndim - 1;
  const int64_t inner = loop.shape[inner_dim];
  parallel_for(0, loop.numel, kGrain, [&](int64_t begin, int64_t end) {
    // Position of `begin`: an odometer over the outer dims plus an offset in the inner run.
    int64_t index[kMaxDims];
    int64_t offsets[kOperands];
    int64_t outer = begin / inner;
    int64_t j = begin % inner;
    for (int k = 0; k < kOperands; ++k) offsets[k] = j * loop.strides[k][inner_dim];
    for (int d = inner_dim - 1; d >= 0; --d) {
      index[d] = outer % loop.shape[d];
      outer /= loop.shape[d];
      for (int k = 0; k < kOperands; ++k) offsets[k] += index[d] * loop.strides[k][d];
    }
    int64_t pos = begin;
    while (pos < end) {
      const int64_t count = std::min(inner - j, end - pos);
      fn(offsets, pos, count);
      pos += count;
      if (pos >= end) break;
      // Next run: back to the start of the inner dim, step the odometer.
      for (int k = 0; k < kOperands; ++k) offsets[k] -= j * loop.strides[k][inner_dim];
      j = 0;
      for (int d = inner_dim - 1; d >= 0; --d) {
        for (int k = 0; k < kOperands; ++k) offsets[k] += loop.strides[k][d];
        if (++index[d] < loop.shape[d]) break;
        for (int k = 0; k < kOperands; ++k) offsets[k] -= loop.shape[d] * loop.strides[k][d];
        index[d] = 0;
      }
    }
    fence_streamed_stores(streamed);
  });
}

void check_float_out(const TensorView& out, const char* op) {
  if (out.dtype != DType::float32 && out.dtype != DType::float64)
    throw TypeError(std::string(op) + ": unsupported dtype " + dtype_name(out.dtype));
}

void check_operand_dtype(const TensorView& v, DType dtype, const char* op) {
  if (v.dtype != dtype)
    throw TypeError(std::string(op) + ": operands must share the output dtype " + dtype_name(dtype) + ", got " +
                    dtype_name(v.dtype));
}

template <class T>
const TypedKernels<T>& typed(const PointwiseKernels& k);
template <>
const TypedKernels<float>& typed<float>(const PointwiseKernels& k) { return k.f32; }
template <>
const TypedKernels<double>& typed<double>(const PointwiseKernels& k) { return k.f64; }

template <class T>
void run_unary(UnaryOp op, const TensorView& x, const TensorView& out, const Scalars<T>& p) {
  const UnaryKernel<T> kernel = typed<T>(kernels()).unary[static_cast<int>(op)];
  const TensorView* inputs[1] = {&x};
  const Loop<1> loop = make_loop(inputs, out, unary_op_name(op));
  const T* in = x.ptr<const T>();
  T* dst = out.ptr<T>();
  const int64_t inner_stride = loop.strides[0][loop.ndim - 1];
  const bool stream = use_streaming<T>(out);
  for_each_run(loop, stream, [&](const int64_t* offsets, int64_t pos, int64_t count) {
    kernel(in + offsets[0], inner_stride, dst + pos, count, p, stream);
  });
}

// A short inner run that one operand repeats along every outer dim while the others are
// contiguous across the last two (a row of 8 biases added to every row of a (262144, 8)
// array): the repeating operand's run is tiled through a buffer `span + inner` long, so the
// last two dims become one and every kernel call covers up to span elements, its repeating
// operand read from the buffer at the run's phase. Call by call, each 8-element row was a
// kernel call: 262144x8 + 8 took 2.7x torch's time (2128 us); tiled, 327 us (Zen 4, 1
// thread; torch 780).
constexpr int64_t kTiledRunMax = 256, kTiledSpan = 2048;

// Which operands of a two-dim-or-more loop repeat a short inner run (bit k for operand k), or
// 0 when the loop is not of that form.
template <int kOperands>
int repeated_short_runs(const Loop<kOperands>& loop) {
  if (loop.ndim < 2 || loop.shape[loop.ndim - 1] > kTiledRunMax) return 0;
  const int last = loop.ndim - 1;
  const int64_t inner = loop.shape[last];
  int repeated = 0;
  for (int k = 0; k < kOperands; ++k) {
    bool repeats = true;
    for (int d = 0; repeats && d < last; ++d) repeats = loop.strides[k][d] == 0;
    if (repeats) {
      repeated |= 1 << k;
      continue;
    }
    if (loop.strides[k][last] != 1 || loop.strides[k][last - 1] != inner) return 0;
  }
  return repeated;
}

// The loop with its last two dims merged (operands contiguous across them, repeated ones
// read through their tiled buffers).
template <int kOperands>
Loop<kOperands> merge_last_two(Loop<kOperands> loop) {
  const int last = loop.ndim - 1;
  loop.shape[last - 1] *= loop.shape[last];
  for (int k = 0; k < kOperands; ++k) loop.strides[k][last - 1] = 1;
  --loop.ndim;
  return loop;
}

template <class T>
void run_binary(BinaryOp op, const TensorView& a, const TensorView& b, const TensorView& out, T alpha) {
  const BinaryKernel<T> kernel = typed<T>(kernels()).binary[static_cast<int>(op)];
  const TensorView* inputs[2] = {&a, &b};
  const Loop<2> loop = make_loop(inputs, out, binary_op_name(op));
  const T* pa = a.ptr<const T>();
  const T* pb = b.ptr<const T>();
  T* dst = out.ptr<T>();
  if (const int repeated = repeated_short_runs(loop); repeated && repeated != 3) {
    const int64_t inner = loop.shape[loop.ndim - 1];
    const int64_t span = kTiledSpan / inner * inner;
    const int k = repeated == 1 ? 0 : 1;
    const T* source = k == 0 ? pa : pb;
    const int64_t stride = loop.strides[k][loop.ndim - 1];
    std::vector<T> tiled(size_t(span + inner));
    for (int64_t i = 0; i < span + inner; ++i) tiled[size_t(i)] = source[(i % inner) * stride];
    Scalars<T> p;
    p.a = alpha;
    const bool stream = use_streaming<T>(out);
    for_each_run(merge_last_two(loop), stream, [&](const int64_t* offsets, int64_t pos, int64_t count) {
      for (int64_t done = 0; done < count;) {
        const int64_t n = std::min(span, count - done);
        const T* repeat = tiled.data() + (offsets[k] + done) % inner;
        const T* a_run = k == 0 ? repeat : pa + offsets[0] + done;
        const T* b_run = k == 1 ? repeat : pb + offsets[1] + done;
        kernel(a_run, 1, b_run, 1, dst + pos + done, n, p, stream);
        done += n;
      }
    });
    return;
  }
  const int64_t sa = loop.strides[0][loop.ndim - 1];
  const int64_t sb = loop.strides[1][loop.ndim - 1];
  Scalars<T> p;
  p.a = alpha;
  const bool stream = use_streaming<T>(out);
  for_each_run(loop, stream, [&](const int64_t* offsets, int64_t pos, int64_t count) {
    kernel(pa + offsets[0], sa, pb + offsets[1], sb, dst + pos, count, p, stream);
  });
}

template <class T>
void run_where(const TensorView& cond, const TensorView& a, const TensorView& b, const TensorView& out) {
  const WhereKernel<T> kernel = typed<T>(kernels()).where;
  const TensorView* inputs[3] = {&cond, &a, &b};
  const Loop<3> loop = make_loop(inputs, out, "where");
  const uint8_t* pc = cond.ptr<const uint8_t>();
  const T* pa = a.ptr<const T>();
  const T* pb = b.ptr<const T>();
  T* dst = out.ptr<T>();
  const int inner = loop.ndim - 1;
  for_each_run(loop, false, [&](const int64_t* offsets, int64_t pos, int64_t count) {
    kernel(pc + offsets[0], loop.strides[0][inner], pa + offsets[1], loop.strides[1][inner], pb + offsets[2],
           loop.strides[2][inner], dst + pos, count);
  });
}

template <class T>
void run_clamp(const TensorView& x, const TensorView& lo, const TensorView& hi, const TensorView& out) {
  const ClampKernel<T> kernel = typed<T>(kernels()).clamp;
  const TensorView* inputs[3] = {&x, &lo, &hi};
  const Loop<3> loop = make_loop(inputs, out, "clamp");
  const T* px = x.ptr<const T>();
  const T* pl = lo.ptr<const T>();
  const T* ph = hi.ptr<const T>();
  T* dst = out.ptr<T>();
  const int inner = loop.ndim - 1;
  for_each_run(loop, false, [&](const int64_t* offsets, int64_t pos, int64_t count) {
    kernel(px + offsets[0], loop.strides[0][inner], pl + offsets[1], loop.strides[1][inner], ph + offsets[2],
           loop.strides[2][inner], dst + pos, count);
  });
}

}  // namespace

const char* unary_op_name(UnaryOp op) {
  static const char* const names[] = {
#define TENSOROPS_NAME_ENTRY(name) #name,
      TENSOROPS_POINTWISE_UNARY_OPS(TENSOROPS_NAME_ENTRY)
#undef TENSOROPS_NAME_ENTRY
  };
  return names[static_cast<int>(op)];
}

const char* binary_op_name(BinaryOp op) {
  static const char* const names[] = {
#define TENSOROPS_NAME_ENTRY(name) #name,
      TENSOROPS_POINTWISE_BINARY_OPS(TENSOROPS_NAME_ENTRY)
#undef TENSOROPS_NAME_ENTRY
  };
  return names[static_cast<int>(op)];
}

void unary(UnaryOp op, const TensorView& x, const TensorView& out, double pa, double pb, double pc) {
  TENSOROPS_CHECK(static_cast<int>(op) >= 0 && op < UnaryOp::count, "pointwise: unknown unary op");
  const char* name = unary_op_name(op);
  check_float_out(out, name);
  check_operand_dtype(x, out.dtype, name);
  TENSOROPS_CHECK(x.ndim == out.ndim, std::string(name) + ": output shape does not match the input shape");
  for (int d = 0; d < x.ndim; ++d)
    TENSOROPS_CHECK(x.shape[d] == out.shape[d], std::string(name) + ": output shape does not match the input shape");
  if (out.dtype == DType::float32) {
    run_unary<float>(op, x, out, Scalars<float>{static_cast<float>(pa), static_cast<float>(pb), static_cast<float>(pc)});
  } else {
    run_unary<double>(op, x, out, Scalars<double>{pa, pb, pc});
  }
}

void binary(BinaryOp op, const TensorView& a, const TensorView& b, const TensorView& out, double alpha) {
  TENSOROPS_CHECK(static_cast<int>(op) >= 0 && op < BinaryOp::count, "pointwise: unknown binary op");
  const char* name = binary_op_name(op);
  check_float_out(out, name);
  check_operand_dtype(a, out.dtype, name);
  check_operand_dtype(b, out.dtype, name);
  if (out.dtype == DType::float32)
    run_binary<float>(op, a, b, out, static_cast<float>(alpha));
  else
    run_binary<double>(op, a, b, out, alpha);
}

void where(const TensorView& cond, const TensorView& a, const TensorView& b, const TensorView& out) {
  check_float_out(out, "where");
  if (cond.dtype != DType::bool8) throw TypeError("where: condition must be a bool array");
  check_operand_dtype(a, out.dtype, "where");
  check_operand_dtype(b, out.dtype, "where");
  if (out.dtype == DType::float32)
    run_where<float>(cond, a, b, out);
  else
    run_where<double>(cond, a, b, out);
}

void clamp(const TensorView& x, const TensorView& lo, const TensorView& hi, const TensorView& out) {
  check_float_out(out, "clamp");
  check_operand_dtype(x, out.dtype, "clamp");
  check_operand_dtype(lo, out.dtype, "clamp");
  check_operand_dtype(hi, out.dtype, "clamp");
  if (out.dtype == DType::float32)
    run_clamp<float>(x, lo, hi, out);
  else
    run_clamp<double>(x, lo, hi, out);
}

}  // namespace tensorops::pointwise
