#include "pool/pool.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/parallel.h"

namespace tensorops::pool {

TENSOROPS_KERNEL_TABLES(PoolKernels)

namespace {

const PoolKernels& kernels() { return select_kernels(kernel_tables()); }

template <class T>
const PoolKernelsFor<T>& typed(const PoolKernels& k) {
  if constexpr (sizeof(T) == 4) return k.f32; else return k.f64;
}

// Input elements a task should touch at least, so a thread wake-up is amortised.
constexpr int64_t kWorkGrain = 1 << 15;

// torch's pooling_output_shape.
int64_t pooled_size(int64_t in, int64_t kernel, int64_t pad, int64_t stride, int64_t dilation, bool ceil_mode) {
  const int64_t numerator = in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t out = (numerator >= 0 ? numerator / stride : -((-numerator + stride - 1) / stride)) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

void check_input(const TensorView& in, const char* op) {
  if (in.dtype != DType::float32 && in.dtype != DType::float64)
    throw TypeError(std::string(op) + ": unsupported dtype " + dtype_name(in.dtype) + " for 'input'");
  TENSOROPS_CHECK(in.ndim == 4, std::string(op) + ": expected a 4-D input");
  TENSOROPS_CHECK(in.shape[3] <= 1 || in.strides[3] == 1 || in.numel() == 0, std::string(op) + ": expected unit column stride");
}

void check_output(const TensorView& in, const TensorView& out, int64_t out_h, int64_t out_w, DType dtype,
                  const char* op, const char* arg) {
  TENSOROPS_CHECK(out.ndim == 4 && out.shape[0] == in.shape[0] && out.shape[1] == in.shape[1] &&
                      out.shape[2] == out_h && out.shape[3] == out_w && out.is_contiguous(),
                  std::string(op) + ": '" + arg + "' must be a C-contiguous array of the output shape");
  if (out.dtype != dtype) throw TypeError(std::string(op) + ": wrong dtype for '" + arg + "'");
}

// Fills in the output size of g after checking the window parameters (Python has already
// raised torch's errors; this guards the kernels' memory safety).
void complete_window(Window2d& g, bool ceil_mode, const char* op) {
  TENSOROPS_CHECK(g.kernel_h > 0 && g.kernel_w > 0 && g.stride_h > 0 && g.stride_w > 0 && g.dilation_h > 0 &&
                      g.dilation_w > 0 && g.pad_h >= 0 && g.pad_w >= 0 &&
                      2 * g.pad_h <= (g.kernel_h - 1) * g.dilation_h + 1 &&
                      2 * g.pad_w <= (g.kernel_w - 1) * g.dilation_w + 1,
                  std::string(op) + ": invalid window parameters");
  g.out_h = pooled_size(g.in_h, g.kernel_h, g.pad_h, g.stride_h, g.dilation_h, ceil_mode);
  g.out_w = pooled_size(g.in_w, g.kernel_w, g.pad_w, g.stride_w, g.dilation_w, ceil_mode);
  TENSOROPS_CHECK(g.out_h >= 1 && g.out_w >= 1, std::string(op) + ": output size is too small");
  // Once the output size is known, taps past the padded input are dropped: a window starts at
  // or after -pad, so a tap at (in + 2 pad) / dilation or beyond lands past in + pad, where max
  // pooling sees no cell and average pooling's divisor is clipped anyway (torch clips its
  // window end to in + pad). The kernels' scratch rows and loops then scale with the input,
  // not with a kernel_size of 2^31.
  g.kernel_h = std::min(g.kernel_h, (g.in_h + 2 * g.pad_h + g.dilation_h - 1) / g.dilation_h);
  g.kernel_w = std::min(g.kernel_w, (g.in_w + 2 * g.pad_w + g.dilation_w - 1) / g.dilation_w);
}

// Whether g's windows go to the far-window kernels: their padded scratch rows would pass
// kMaxScratch elements a thread (a kernel and padding of millions of cells), or, with
// indices, float32 lanes could not hold the positions exactly (kernels of 2^24 and more).
// Wide windows below the bound keep the separable passes, whose work does not grow with
// the window area (the far kernels visit every in-bounds cell of every window).
template <class T>
bool far_windows(const Window2d& g, bool with_indices) {
  constexpr int64_t kMaxScratch = int64_t(1) << 20, kExactFloatPositions = int64_t(1) << 24;
  if (with_indices && sizeof(T) == 4 && std::max(g.kernel_h, g.kernel_w) >= kExactFloatPositions) return true;
  return scratch_elements(g) > kMaxScratch;
}

// Runs fn(plane_pointer, plane_index, oh_begin, oh_end, scratch) over every output row of
// every (n, c) plane, split across threads by rows, with `scratch` elements of scratch per
// thread (scratch_elements(g) by default).
template <class T, class Fn>
void for_each_row_block(const TensorView& in, const Window2d& g, int64_t work_per_row, const Fn& fn,
                        int64_t scratch = -1) {
  const int64_t channels = in.shape[1];
  const int64_t rows = in.shape[0] * channels * g.out_h;
  const int64_t grain = std::max<int64_t>(1, kWorkGrain / std::max<int64_t>(1, work_per_row));
  if (scratch < 0) scratch = scratch_elements(g);
  parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> buffer(static_cast<size_t>(scratch));
    while (begin < end) {
      const int64_t plane = begin / g.out_h;
      const int64_t oh_begin = begin - plane * g.out_h;
      const int64_t oh_end = std::min(g.out_h, oh_begin + (end - begin));
      const T* base = in.ptr<const T>() + (plane / channels) * in.strides[0] + (plane % channels) * in.strides[1];
      fn(base, plane, oh_begin, oh_end, buffer.data());
      begin += oh_end - oh_begin;
    }
  });
}

template <class T>
void run_max(const TensorView& in, const TensorView& out, const TensorView* indices, const Window2d& g) {
  const auto& k = typed<T>(kernels());
  const int64_t plane_out = g.out_h * g.out_w;
  T* o = out.ptr<T>();
  int64_t* idx = indices ? indices->ptr<int64_t>() : nullptr;
  if (far_windows<T>(g, idx != nullptr)) {
    const int64_t work = std::min(g.kernel_h, g.in_h) * std::min(g.kernel_w, g.in_w) * g.out_w;
    for_each_row_block<T>(
        in, g, work,
        [&](const T* plane, int64_t p, int64_t oh0, int64_t oh1, T*) {
          k.max_far(plane, in.strides[2], o + p * plane_out, idx ? idx + p * plane_out : nullptr, g, oh0, oh1);
        },
        0);
    return;
  }
  const int64_t work = g.in_w * g.kernel_h + g.out_w * g.kernel_w;
  for_each_row_block<T>(in, g, work, [&](const T* plane, int64_t p, int64_t oh0, int64_t oh1, T* scratch) {
    if (idx)
      k.max_indices(plane, in.strides[2], o + p * plane_out, idx + p * plane_out, g, oh0, oh1, scratch);
    else
      k.max_values(plane, in.strides[2], o + p * plane_out, g, oh0, oh1, scratch);
  });
}

template <class T>
void run_avg(const TensorView& in, const TensorView& out, const Window2d& g, const AvgDivisor& divisor) {
  const auto& k = typed<T>(kernels());
  const int64_t plane_out = g.out_h * g.out_w;
  T* o = out.ptr<T>();
  if (far_windows<T>(g, false)) {
    const int64_t work = std::min(g.kernel_h, g.in_h) * std::min(g.kernel_w, g.in_w) * g.out_w;
    for_each_row_block<T>(
        in, g, work,
        [&](const T* plane, int64_t p, int64_t oh0, int64_t oh1, T*) {
          k.avg_far(plane, in.strides[2], o + p * plane_out, g, divisor, oh0, oh1);
        },
        0);
    return;
  }
  const int64_t work = g.in_w * g.kernel_h + g.out_w * g.kernel_w;
  for_each_row_block<T>(in, g, work, [&](const T* plane, int64_t p, int64_t oh0, int64_t oh1, T* scratch) {
    k.avg(plane, in.strides[2], o + p * plane_out, g, divisor, oh0, oh1, scratch);
  });
}

template <class T>
void run_global_avg(const TensorView& in, const TensorView& out) {
  const auto& k = typed<T>(kernels());
  const int64_t n = in.shape[0], c = in.shape[1], h = in.shape[2], w = in.shape[3];
  const T* base = in.ptr<const T>();
  T* o = out.ptr<T>();
  const int64_t grain = std::max<int64_t>(1, kWorkGrain / std::max<int64_t>(1, h * w));
  parallel_for(0, n * c, grain, [&](int64_t begin, int64_t end) {
    while (begin < end) {
      // Planes of one image are a constant stride apart; images may not be.
      const int64_t image = begin / c, first = begin - image * c;
      const int64_t count = std::min(c - first, end - begin);
      k.global_avg(base + image * in.strides[0] + first * in.strides[1], in.strides[1], in.strides[2], h, w, count,
                   o + begin);
      begin += count;
    }
  });
}

Window2d adaptive_window(const TensorView& in, const TensorView& out) {
  Window2d g{};
  g.in_h = in.shape[2];
  g.in_w = in.shape[3];
  g.out_h = out.shape[2];
  g.out_w = out.shape[3];
  g.kernel_h = g.kernel_w = g.stride_h = g.stride_w = g.dilation_h = g.dilation_w = 1;
  return g;
}

// Adaptive pooling whose output sizes divide the input is pooling with kernel = stride.
bool uniform_adaptive(Window2d& g) {
  if (g.in_h % g.out_h || g.in_w % g.out_w) return false;
  g.kernel_h = g.stride_h = g.in_h / g.out_h;
  g.kernel_w = g.stride_w = g.in_w / g.out_w;
  return true;
}

template <class T>
void run_adaptive_max(const TensorView& in, const TensorView& out, const TensorView* indices) {
  Window2d g = adaptive_window(in, out);
  if (uniform_adaptive(g)) return run_max<T>(in, out, indices, g);
  const auto& k = typed<T>(kernels());
  const int64_t plane_out = g.out_h * g.out_w;
  T* o = out.ptr<T>();
  int64_t* idx = indices ? indices->ptr<int64_t>() : nullptr;
  const int64_t work = (g.in_h / g.out_h + 2) * g.in_w;
  for_each_row_block<T>(in, g, work, [&](const T* plane, int64_t p, int64_t oh0, int64_t oh1, T*) {
    k.adaptive_max(plane, in.strides[2], o + p * plane_out, idx ? idx + p * plane_out : nullptr, g, oh0, oh1);
  });
}

template <class T>
void run_adaptive_avg(const TensorView& in, const TensorView& out) {
  Window2d g = adaptive_window(in, out);
  if (g.out_h == 1 && g.out_w == 1) return run_global_avg<T>(in, out);
  if (uniform_adaptive(g)) return run_avg<T>(in, out, g, AvgDivisor{true, 0});
  const auto& k = typed<T>(kernels());
  const int64_t plane_out = g.out_h * g.out_w;
  T* o = out.ptr<T>();
  const int64_t work = (g.in_h / g.out_h + 2) * g.in_w;
  for_each_row_block<T>(in, g, work, [&](const T* plane, int64_t p, int64_t oh0, int64_t oh1, T* scratch) {
    k.adaptive_avg(plane, in.strides[2], o + p * plane_out, g, oh0, oh1, scratch);
  });
}

bool is_empty(const TensorView& out) { return out.numel() == 0; }

}  // namespace

int64_t scratch_elements(const Window2d& g) {
  const int64_t padded = (g.out_w - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1;
  const int64_t phase_len = (padded + g.stride_w - 1) / g.stride_w;
  // Stride 2 lays out two phases even for a one-cell row; every row and phase has its slack.
  const int64_t phases = std::max<int64_t>(2, std::min(g.stride_w, padded)) * (phase_len + kScratchSlack);
  return 2 * (padded + kScratchSlack + phases + kScratchSlack) + 3 * g.out_w + g.in_w;  // two padded rows (see generic.h)
}

void max_pool2d(const TensorView& in, const TensorView& out, const TensorView* indices, const Window2d& window,
                bool ceil_mode) {
  check_input(in, "max_pool2d");
  Window2d g = window;
  g.in_h = in.shape[2];
  g.in_w = in.shape[3];
  complete_window(g, ceil_mode, "max_pool2d");
  check_output(in, out, g.out_h, g.out_w, in.dtype, "max_pool2d", "out");
  if (indices) check_output(in, *indices, g.out_h, g.out_w, DType::int64, "max_pool2d", "indices");
  if (is_empty(out)) return;
  if (in.dtype == DType::float32) run_max<float>(in, out, indices, g); else run_max<double>(in, out, indices, g);
}

void avg_pool2d(const TensorView& in, const TensorView& out, const Window2d& window, bool ceil_mode,
                const AvgDivisor& divisor) {
  check_input(in, "avg_pool2d");
  Window2d g = window;
  g.in_h = in.shape[2];
  g.in_w = in.shape[3];
  g.dilation_h = g.dilation_w = 1;
  complete_window(g, ceil_mode, "avg_pool2d");
  check_output(in, out, g.out_h, g.out_w, in.dtype, "avg_pool2d", "out");
  if (is_empty(out)) return;
  if (in.dtype == DType::float32) run_avg<float>(in, out, g, divisor); else run_avg<double>(in, out, g, divisor);
}

void adaptive_max_pool2d(const TensorView& in, const TensorView& out, const TensorView* indices) {
  check_input(in, "adaptive_max_pool2d");
  TENSOROPS_CHECK(out.ndim == 4, "adaptive_max_pool2d: expected a 4-D output");
  check_output(in, out, out.shape[2], out.shape[3], in.dtype, "adaptive_max_pool2d", "out");
  if (indices) check_output(in, *indices, out.shape[2], out.shape[3], DType::int64, "adaptive_max_pool2d", "indices");
  if (is_empty(out)) return;
  TENSOROPS_CHECK(in.shape[2] > 0 && in.shape[3] > 0, "adaptive_max_pool2d: empty input plane");
  if (in.dtype == DType::float32) run_adaptive_max<float>(in, out, indices); else run_adaptive_max<double>(in, out, indices);
}

void adaptive_avg_pool2d(const TensorView& in, const TensorView& out) {
  check_input(in, "adaptive_avg_pool2d");
  TENSOROPS_CHECK(out.ndim == 4, "adaptive_avg_pool2d: expected a 4-D output");
  check_output(in, out, out.shape[2], out.shape[3], in.dtype, "adaptive_avg_pool2d", "out");
  if (is_empty(out)) return;
  TENSOROPS_CHECK((in.shape[2] > 0 && in.shape[3] > 0) || (out.shape[2] == 1 && out.shape[3] == 1),
                  "adaptive_avg_pool2d: empty input plane");
  if (in.dtype == DType::float32) run_adaptive_avg<float>(in, out); else run_adaptive_avg<double>(in, out);
}

}  // namespace tensorops::pool
