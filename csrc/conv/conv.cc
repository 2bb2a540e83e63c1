// The convolution driver: packs filters, describes each image x group (x stride phase) as a
// GEMM problem or a depthwise plane, and owns the threading. Kernels come from the active
// ISA's table (generic.h) and from the GEMM engine.
#include "conv/conv.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <string>

#include "core/cpu.h"
#include "core/dispatch.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/streaming.h"
#include "core/workspace.h"
#include "shape/shape.h"

namespace tensorops::conv {

TENSOROPS_KERNEL_TABLES(ConvKernels)

namespace {

const ConvKernels& active_kernels() { return select_kernels(kernel_tables()); }

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Positions phase, phase + stride, ... below size: one stride phase's grid along an axis of
// conv_transpose2d's output.
int64_t phase_grid(int64_t size, int64_t phase, int64_t stride) {
  return phase < size ? ceil_div(size - phase, stride) : 0;
}

// The phase tiles of one band of conv_transpose2d hold about this many bytes together (they
// stay in L2 between the GEMMs that write them and the stores that spread them over the
// output).
constexpr int64_t kPhaseTilesBytes = 512 << 10;
// conv2d takes the shifted-window path (conv2d_shifted) from this many input channels per
// group.
constexpr int64_t kShiftedMinChannels = 1;
// The shifted-window microkernel covers every tap of this many input channels per call.
constexpr int64_t kShiftedChannelBlock = 64;
// ... and this many for a 1x1 filter, whose calls would otherwise run 64 K steps between
// loads and stores of the C tile: 2048 -> 512 at 7x7, batch 8, 1 thread, 6.05 -> 5.85 ms.
// (Blocks of 256 made the 3x3 layers 512@7 and 256@14 8-10% slower.)
constexpr int64_t kPointwiseChannelBlock = 256;
// The input channels per block of conv2d's shifted-window filter panels.
inline int64_t window_channel_block(int64_t taps) { return taps == 1 ? kPointwiseChannelBlock : kShiftedChannelBlock; }

// conv2d's shifted-window path puts the output channels of a group across the vector lanes
// (pixel-major tiles: window_columns, micro_taps_window_a) when they fill at least 7/8 of
// the lanes they take, each output takes at least kLanesMinProducts multiply-adds and the
// kernel set has the window-as-A microkernels (the x86 sets, see gemm/tiles.h); fewer
// channels (the seed's 33) keep pixels across the lanes (window_panels, micro_taps). The
// pixel-major tile is transposed as it is stored, which is worth it only where each output
// costs enough arithmetic: the ResNet stem (3 channels x 7 x 7 = 147 products an output)
// ran 2% faster with AVX-512 and 5% with AVX2 with pixels across the lanes, layers of 576
// and more gained or held even. (1x1 filters take the path only with channels in the lanes,
// under pointwise_window's own conditions.)
constexpr int64_t kLanesMinProducts = 256;
// Whether a group's output channels fill at least 7/8 of the lanes they take, with a kernel
// set that has the window-as-A microkernels.
template <class T>
bool fills_lanes(int64_t cog, const gemm::KernelSet<T>& ks) {
  return ks.micro_taps_window_a[1] != nullptr && cog * 8 >= ceil_div(cog, ks.nr) * ks.nr * 7;
}
template <class T>
bool channels_in_lanes(int64_t cog, int64_t products, const gemm::KernelSet<T>& ks) {
  return products >= kLanesMinProducts && fills_lanes(cog, ks);
}
// 1x1 convolutions (stride 1, no padding) take the shifted-window path with channels in the
// lanes where the direct GEMM would waste an eighth of its columns or more: it multiplies
// each image's plane alone in NR-column panels (a 7x7 plane fills 49 of 64 columns, 10x10
// 100 of 128), while the window path's tiles run across rows and images. Against the direct
// GEMM, one thread, AVX-512, batch 1 and 8, C_in and C_out in 64..512: at 7x7 and 10x10
// 1.1-1.5x faster from 128 output channels (2048 -> 512 at 7x7, batch 8, 6.7 -> 5.9 ms; 256 -> 512
// 1.13 -> 0.74 ms), 0.8-0.95x with 64; at 12x12 (10% wasted) 0.8-1.13x, so not there; at
// 14x14 (12.5%) 0.8-1.05x. A 1x1 plane (a classifier as a convolution, 1280 -> 1000) 2.6x.
// That machine has 2 MiB of L2 and 48 KiB of L1 a core. On a Zen 3 with 512 KiB and 32 KiB
// (AVX2, 1 thread, the same grid) the window path lost at 5x5 and 7x7 (0.43-0.92x; 2048 ->
// 512 at 7x7 ~2.1 vs ~1.6 ms at batch 1), lost a little or held even at 10x10 (0.79-1.03x),
// was mixed at 3x3 (0.79-1.37x) and won on 1x1 planes (1.2-4.4x): below 1 MiB of L2 only
// planes of a few outputs take it.
constexpr int64_t kPointwiseWindowMaxOutputs = 144, kPointwiseWindowSmallL2MaxOutputs = 4;
constexpr int64_t kPointwiseWindowMinOutChannels = 128, kPointwiseWindowMinInChannels = 64;
template <class T>
bool pointwise_window(const Shape4& ws, int64_t groups, const TensorView& out, const ConvArgs& args,
                      const gemm::KernelSet<T>& ks) {
  const int64_t cog = ws[0] / groups, cig = ws[1], outputs = out.shape[2] * out.shape[3];
  const int64_t gemm_columns = ceil_div(outputs, ks.nr) * ks.nr;
  const int64_t max_outputs = has_small_l2() ? kPointwiseWindowSmallL2MaxOutputs : kPointwiseWindowMaxOutputs;
  return ws[2] == 1 && ws[3] == 1 && args.stride == Pair{1, 1} && args.padding == Pair{0, 0} && outputs > 0 &&
         outputs <= max_outputs && 8 * (gemm_columns - outputs) >= gemm_columns &&
         cog >= kPointwiseWindowMinOutChannels && cig >= kPointwiseWindowMinInChannels && fills_lanes(cog, ks);
}
// Whole depthwise planes go to the kernel this many at a time.
constexpr int64_t kDepthwiseRun = 4;
// Depthwise planes take the kernel with one channel per lane (depthwise_channels) when their
// tile and staging fit this many bytes (in L2 beside the input and output streaming through)
// and their filter is wide or tall (lanes_wide_filter, lanes_tall_filter) or they have at
// most kLanesMaxOutputs outputs. 96 x 56 x 56 7x7 needs 272 KiB; lanes lost to rows on 3x3
// planes of 28 x 28 and more (192 channels: 60 -> 88 us) and on stride 2.
//
// Planes the column walk takes (depthwise_column_stride) keep to it from output rows of
// kColumnWalkMinWidth: there it beat the lanes on Zen 4, 1 thread, one process alternating
// the two, medians of 12-16 rounds, time against the lanes, AVX-512 / AVX2: 3x3 stride 1 at
// 12 x 12 (576 channels) 0.82x / even, 14 x 14 (576) 0.62x / 0.86x, (384) 0.66x / 0.86x,
// (144) 0.77x / 1.05x, 16 x 16 0.55x / 0.85x; 3x3 stride 2 into 14 x 14 (192) 0.63x / 0.74x,
// into 16 x 16 0.49x / 0.59x; 5x5 stride 2 into 14 x 14 (240) 0.92x / 0.96x. Narrower rows
// (a vector's lanes left idle by one output row) stay on the lanes: 3x3 stride 1 at 7 x 7
// (960) 1.36x / 1.06x slower in the walk, 10 x 10 1.31x / 1.12x; 5x5 stride 2 into 7 x 7
// 1.94x / 1.13x.
constexpr int64_t kLanesMaxOutputs = 256, kColumnWalkMinWidth = 12;
constexpr int64_t kLanesMaxScratchBytes = int64_t(512) << 10;
template <class T>
bool lanes_pay(const DepthwisePlane<T>& g, int64_t lanes) {
  if (depthwise_column_stride(g) != 0 && g.out_w >= kColumnWalkMinWidth) return false;
  return lanes_wide_filter(g, lanes) || lanes_tall_filter(g, lanes) || g.out_h * g.out_w <= kLanesMaxOutputs;
}
// conv_transpose2d outputs at least this large bypass the cache as they are stored.
constexpr int64_t kStreamOutputBytes = int64_t(16) << 20;

// The weight as dense C-contiguous values: the caller's array when it is so already, else a
// copy (filters are small; this frees the packing below from the caller's strides).
template <class T>
class DenseWeight {
 public:
  explicit DenseWeight(const TensorView& w) {
    if (w.is_contiguous()) {
      data_ = w.ptr<const T>();
      return;
    }
    copy_.resize(size_t(w.numel()));
    const T* src = w.ptr<const T>();
    size_t i = 0;
    for (int64_t a = 0; a < w.shape[0]; ++a)
      for (int64_t b = 0; b < w.shape[1]; ++b)
        for (int64_t c = 0; c < w.shape[2]; ++c)
          for (int64_t d = 0; d < w.shape[3]; ++d)
            copy_[i++] = src[a * w.strides[0] + b * w.strides[1] + c * w.strides[2] + d * w.strides[3]];
    data_ = copy_.data();
  }
  const T* data() const { return data_; }
  T operator[](size_t i) const { return data_[i]; }

 private:
  const T* data_ = nullptr;
  std::vector<T> copy_;
};

// The kernel taps of one transposed-conv stride phase along one axis: output index
// r + s*j reads input index j + offset for every tap k with (r + p - k*d) divisible by s.
struct PhaseTaps {
  std::vector<int64_t> taps, offsets;
};

// The phases of one axis that some tap reaches, at most `kernel` of them whatever the
// stride (the other phases receive only the bias), in increasing order.
struct AxisPhases {
  std::vector<int64_t> phases;
  std::vector<PhaseTaps> taps;  // taps[i] for phases[i]
  // The index of phase r, or -1 when no tap reaches it.
  int64_t find(int64_t r) const {
    const auto it = std::lower_bound(phases.begin(), phases.end(), r);
    return it != phases.end() && *it == r ? int64_t(it - phases.begin()) : -1;
  }
};

AxisPhases axis_phases(int64_t kernel, int64_t stride, int64_t padding, int64_t dilation) {
  AxisPhases a;
  for (int64_t k = 0; k < kernel; ++k) {
    const int64_t r = ((k * dilation - padding) % stride + stride) % stride;
    if (a.find(r) < 0) {
      const auto at = std::lower_bound(a.phases.begin(), a.phases.end(), r) - a.phases.begin();
      a.phases.insert(a.phases.begin() + at, r);
      a.taps.insert(a.taps.begin() + at, PhaseTaps{});
    }
    PhaseTaps& t = a.taps[size_t(a.find(r))];
    t.taps.push_back(k);
    t.offsets.push_back((r + padding - k * dilation) / stride);
  }
  return a;
}

}  // namespace

template <class T>
struct PackedConvWeight::Filters {
  // A filter packed for one call: the one pooled block its panel sets are carved from.
  std::unique_ptr<gemm::PanelArena<T>> arena;
  // conv2d: one [C_out/g, C_in/g * KH * KW] panel set per group. Transposed: one
  // [C_out/g, C_in/g * taps] set per (group, phase), phase = ry * stride_w + rx.
  std::vector<std::unique_ptr<gemm::PackedA<T>>> panels;
  // conv2d with several taps: also one set per (group, block of window_channel_block input
  // channels) with K ordered (tap, channel), one KC block, for the shifted-window path
  // (window_panels[g * blocks + block]). Transposed: one per (group, phase, block), K
  // ordered (phase tap, channel), for conv_transpose2d's window path
  // (window_panels[((g * rows + i) * cols + j) * blocks + block]).
  std::vector<std::unique_ptr<gemm::PackedA<T>>> window_panels;
  // conv2d with several taps whose output channels fill the vector lanes
  // (channels_in_lanes): the same blocks as window_panels, packed as B = A^T in NR-column
  // panels, in place of window_panels.
  std::vector<std::unique_ptr<gemm::PackedB<T>>> window_columns;
  // A 1x1 conv2d filter kept for many calls (packed with Panels::all: `kept`): its
  // shifted-window blocks, made from `panels` by the first call on a plane small enough for
  // that path (pointwise_window). Most 1x1 layers never see one, so most never hold a
  // second copy of their filter.
  bool kept = false;
  mutable std::once_flag pointwise_once;
  mutable std::unique_ptr<Filters> pointwise;
  // Transposed only: the phases with taps; panels[(g * rows + i) * cols + j] serves row
  // phase row_phases.phases[i] and column phase col_phases.phases[j].
  AxisPhases row_phases, col_phases;
  // Transposed, kept for many calls: the weight itself, dense, for the calls on images so
  // few and small that the products path is cheaper (prefers_filter_in_place).
  std::vector<T> dense;
  // Transposed: one [C_in/g, C_out/g] B panel set per (group, tap) for the border-class
  // path, made from `dense` by the first call that takes it when kept for many calls, or
  // made instead of every other set when packed for one such call (Panels::border).
  mutable std::once_flag tap_columns_once;
  mutable std::vector<std::unique_ptr<gemm::PackedB<T>>> tap_columns;
  std::vector<T> depthwise_taps;                  // depthwise only: [C_out, KH * KW]
  // Depthwise with one output channel per input channel, where the kernel set has a
  // depthwise_channels kernel: the taps as [C_out / lanes][KH * KW][lanes], zero-padded.
  std::vector<T> depthwise_lane_taps;
  int64_t lane_width = 0;
};

template <>
const PackedConvWeight::Filters<float>& PackedConvWeight::filters<float>() const { return *f32_; }
template <>
const PackedConvWeight::Filters<double>& PackedConvWeight::filters<double>() const { return *f64_; }

namespace {

// Block `block` (window_channel_block(taps) input channels) of group g of a conv2d filter,
// dense at w ([C_out, C_in/g, KH, KW]), into f's shifted-window set (sized groups * blocks):
// B panels with the output channels across the lanes (`columns`), else A panels; `stream` and
// `arena` as for gemm::PackedB. The
// block's [channel][tap] run of each output channel is packed as it lies (a transpose of
// contiguous rows, at memory speed), each element stored at its tap-major place: the run's
// element c * taps + tap is K row tap * cb + c. tap_major: the caller's scratch.
template <class T>
void pack_window_block(const T* w, int64_t g, int64_t block, int64_t blocks, int64_t cig, int64_t cog, int64_t taps,
                       bool columns, bool stream, gemm::PanelArena<T>* arena, std::vector<int64_t>& tap_major,
                       PackedConvWeight::Filters<T>& f) {
  const int64_t size = window_channel_block(taps);
  const int64_t c0 = block * size, cb = std::min(size, cig - c0), kb = taps * cb;
  tap_major.resize(size_t(kb));
  for (int64_t c = 0; c < cb; ++c)
    for (int64_t tap = 0; tap < taps; ++tap) tap_major[size_t(c * taps + tap)] = tap * cb + c;
  const T* run = w + (g * cog * cig + c0) * taps;
  if (columns)
    f.window_columns[size_t(g * blocks + block)] =
        std::make_unique<gemm::PackedB<T>>(kb, cog, gemm::MatrixRef<T>{run, 1, cig * taps}, tap_major.data(), stream,
                                           arena);
  else
    f.window_panels[size_t(g * blocks + block)] =
        std::make_unique<gemm::PackedA<T>>(cog, kb, gemm::MatrixRef<T>{run, cig * taps, 1}, kb, tap_major.data(),
                                           arena);
}

// The border-class path's B panels of a transposed filter ([C_in, C_out/g, KH, KW], dense):
// one [C_in/g, C_out/g] set per (group, tap). The filter is first turned tap-major, each
// tap's matrix contiguous, by the shape family's transposing copy, and each set is packed from
// contiguous rows: packed from the filter as it lies, every element was a strided scalar load.
// With an arena (a filter packed for one call) the sets are its slices and the tap-major copy
// a block of the pool.
template <class T>
std::vector<std::unique_ptr<gemm::PackedB<T>>> tap_columns_of(const T* filter, int64_t groups, int64_t cig,
                                                               int64_t cog, int64_t taps, gemm::PanelArena<T>* arena) {
  const int64_t pairs = groups * cig * cog;  // (input channel, output channel) pairs
  gemm::PanelMemory<T> tap_major(size_t(std::max<int64_t>(pairs * taps, 1)) * sizeof(T),
                                 arena ? gemm::PanelStorage::pooled : gemm::PanelStorage::own);
  TensorView from, to;
  from.data = const_cast<T*>(filter), to.data = tap_major.get();
  from.dtype = to.dtype = std::is_same_v<T, float> ? DType::float32 : DType::float64;
  from.ndim = to.ndim = 2;
  from.shape[0] = to.shape[0] = taps, from.shape[1] = to.shape[1] = pairs;
  from.strides[0] = 1, from.strides[1] = taps;
  to.strides[0] = pairs, to.strides[1] = 1;
  shape::copy(from, to);
  std::vector<std::unique_ptr<gemm::PackedB<T>>> columns(size_t(groups * taps));
  parallel_for(0, groups * taps, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const T* matrix = tap_major.get() + (t % taps) * pairs + (t / taps) * cig * cog;
      columns[size_t(t)] =
          std::make_unique<gemm::PackedB<T>>(cig, cog, gemm::MatrixRef<T>{matrix, cog, 1}, nullptr, false, arena);
    }
  });
  return columns;
}

template <class T>
std::unique_ptr<PackedConvWeight::Filters<T>> pack_filters(const TensorView& weight, int64_t groups, bool transposed,
                                                           bool depthwise, Pair stride, Pair padding, Pair dilation,
                                                           PackedConvWeight::Panels sets) {
  auto f = std::make_unique<PackedConvWeight::Filters<T>>();
  f->kept = sets == PackedConvWeight::Panels::all;
  // A filter packed for one call carves its panel sets from one block of the buffer pool
  // (gemm::PanelArena), sized here from the sets' bytes; a kept one gives each set its own.
  const auto make_arena = [&](size_t bytes) {
    if (!f->kept) f->arena = std::make_unique<gemm::PanelArena<T>>(bytes);
    return f->arena.get();
  };
  const auto slice = [](size_t bytes) { return gemm::PanelArena<T>::slice_bytes(bytes); };
  const DenseWeight<T> w(weight);
  const int64_t kh = weight.shape[2], kw = weight.shape[3], taps = kh * kw;
  if (depthwise) {
    f->depthwise_taps.assign(w.data(), w.data() + weight.numel());
    const int64_t lanes = active_kernels().get<T>().depthwise_lanes, channels = weight.shape[0];
    if (lanes > 0 && channels == groups) {
      f->lane_width = lanes;
      f->depthwise_lane_taps.assign(size_t(ceil_div(channels, lanes) * taps * lanes), T(0));
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t t = 0; t < taps; ++t)
          f->depthwise_lane_taps[size_t(((c / lanes) * taps + t) * lanes + c % lanes)] = w[size_t(c * taps + t)];
    }
    return f;
  }
  // The panel sets are independent: packed in parallel, each task writing its own slot.
  if (!transposed) {
    const int64_t cog = weight.shape[0] / groups, k = weight.shape[1] * taps;
    const int64_t cig = weight.shape[1];
    // (A 1x1 filter kept for many calls makes its window blocks when a call needs them.)
    using Panels = PackedConvWeight::Panels;
    const bool general = sets != Panels::shifted, window = sets == Panels::shifted || (sets == Panels::all && taps > 1);
    const int64_t blocks = window ? ceil_div(cig, window_channel_block(taps)) : 0;
    const bool columns = taps == 1 || channels_in_lanes(cog, k, gemm::active_kernels().get<T>());
    // A filter packed for one call and too large to stay in the cache is packed with
    // streaming stores (gemm::PackedB), on any thread count: a functional call packing
    // 512 -> 512 3x3 (9.4 MB) on 7x7 took 0.89x the time on 1 thread and 0.54x on 2,
    // 1024 -> 1024 (38 MB) 0.90x and 0.75x (Zen 4). (A kept filter is packed once.)
    const bool stream = !f->kept && weight.numel() * int64_t(sizeof(T)) >= kStreamMinBytes;
    f->panels.resize(general ? size_t(groups) : 0);
    if (columns) f->window_columns.resize(size_t(groups * blocks));
    else f->window_panels.resize(size_t(groups * blocks));
    const int64_t sets_per_group = int64_t(general) + blocks;
    size_t bytes = general ? slice(gemm::PackedA<T>::bytes(cog, k)) : 0;
    for (int64_t block = 0; block < blocks; ++block) {
      const int64_t cb = std::min(window_channel_block(taps), cig - block * window_channel_block(taps));
      bytes += slice(columns ? gemm::PackedB<T>::bytes(taps * cb, cog) : gemm::PackedA<T>::bytes(cog, taps * cb));
    }
    gemm::PanelArena<T>* const arena = make_arena(bytes * size_t(groups));
    parallel_for(0, groups * sets_per_group, 1, [&](int64_t t0, int64_t t1) {
      std::vector<int64_t> tap_major;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t g = t / sets_per_group, block = t % sets_per_group - int64_t(general);
        if (block < 0) {
          f->panels[size_t(g)] =
              std::make_unique<gemm::PackedA<T>>(cog, k, gemm::MatrixRef<T>{w.data() + g * cog * k, k, 1}, 0, nullptr,
                                                 arena);
          continue;
        }
        pack_window_block(w.data(), g, block, blocks, cig, cog, taps, columns, stream, arena, tap_major, *f);
      }
    });
    return f;
  }
  // Transposed: w is [C_in, C_out/g, KH, KW]; phase (ry, rx) of group g multiplies
  // A[co, (ci, ty, tx)] = w[g*C_in/g + ci, co, row_taps[ty], col_taps[tx]].
  const int64_t cig = weight.shape[0] / groups, cog = weight.shape[1];
  if (sets == PackedConvWeight::Panels::border) {
    f->tap_columns = tap_columns_of(w.data(), groups, cig, cog, taps,
                                    make_arena(size_t(groups * taps) * slice(gemm::PackedB<T>::bytes(cig, cog))));
    return f;
  }
  if (sets == PackedConvWeight::Panels::all) f->dense.assign(w.data(), w.data() + weight.numel());
  f->row_phases = axis_phases(kh, stride[0], padding[0], dilation[0]);
  f->col_phases = axis_phases(kw, stride[1], padding[1], dilation[1]);
  const int64_t row_sets = int64_t(f->row_phases.taps.size()), col_sets = int64_t(f->col_phases.taps.size());
  const int64_t phase_sets = groups * row_sets * col_sets;
  const bool general = sets != PackedConvWeight::Panels::shifted, window = sets != PackedConvWeight::Panels::general;
  const int64_t blocks = window ? ceil_div(cig, kShiftedChannelBlock) : 0;
  f->panels.resize(general ? size_t(phase_sets) : 0);
  f->window_panels.resize(size_t(phase_sets * blocks));
  // Each phase's taps, as [KH, KW] indices in the order of its K rows.
  const int64_t phases = row_sets * col_sets;
  std::vector<std::vector<int64_t>> phase_taps(static_cast<size_t>(phases));
  for (int64_t i = 0; i < row_sets; ++i)
    for (int64_t j = 0; j < col_sets; ++j)
      for (const int64_t ty : f->row_phases.taps[size_t(i)].taps)
        for (const int64_t tx : f->col_phases.taps[size_t(j)].taps)
          phase_taps[size_t(i * col_sets + j)].push_back(ty * kw + tx);
  // Each phase's matrix of group g, input channels [b0, b0 + cb) and output channels
  // [co0, co1), row co at to[ph] + co * cb * (phase taps), for every phase at once: the
  // filter lines of kChannelBlock input channels and one output channel, each [KH, KW], are
  // read once and every phase takes its taps from them in L1 (a task per phase read an 8 MB
  // filter once per phase). K is ordered (channel, phase tap) in the general panels
  // (`channel_major`), (phase tap, channel) in a window block.
  const auto gather = [&](int64_t g, int64_t b0, int64_t cb, int64_t co0, int64_t co1, bool channel_major,
                          T* const* to) {
    constexpr int64_t kChannelBlock = 8;
    for (int64_t c0 = b0; c0 < b0 + cb; c0 += kChannelBlock) {
      const int64_t c1 = std::min(b0 + cb, c0 + kChannelBlock);
      for (int64_t co = co0; co < co1; ++co)
        for (int64_t ph = 0; ph < phases; ++ph) {
          const std::vector<int64_t>& tap_at = phase_taps[size_t(ph)];
          const int64_t pt = int64_t(tap_at.size());
          T* row = to[ph] + co * cb * pt;
          for (int64_t ci = c0; ci < c1; ++ci) {
            const T* from = w.data() + ((g * cig + ci) * cog + co) * taps;
            if (channel_major) {
              T* at_channel = row + (ci - b0) * pt;
              for (const int64_t at : tap_at) *at_channel++ = from[at];
            } else {
              T* at_channel = row + ci - b0;
              for (int64_t slot = 0; slot < pt; ++slot) at_channel[slot * cb] = from[tap_at[size_t(slot)]];
            }
          }
        }
    }
  };
  size_t bytes = 0;
  for (int64_t ph = 0; ph < phases; ++ph) {
    const int64_t pt = int64_t(phase_taps[size_t(ph)].size());
    if (general) bytes += slice(gemm::PackedA<T>::bytes(cog, cig * pt));
    for (int64_t block = 0; block < blocks; ++block)
      bytes += slice(gemm::PackedA<T>::bytes(cog, std::min(kShiftedChannelBlock, cig - block * kShiftedChannelBlock) * pt));
  }
  gemm::PanelArena<T>* const arena = make_arena(bytes * size_t(groups));
  if (general) {
    // One matrix per (group, phase) over all input channels: filled by tasks of
    // kGatherChannels output channels (a task per group would leave the other threads idle
    // at groups = 1), then packed a phase per task.
    constexpr int64_t kGatherChannels = 16;
    // Left uninitialised: the gather writes every element (zeroing 8 MB first took 6% of a
    // DCGAN layer's call at batch 1).
    std::vector<std::unique_ptr<T[]>> matrices(static_cast<size_t>(phase_sets));
    std::vector<T*> starts(static_cast<size_t>(phase_sets));
    for (int64_t set = 0; set < phase_sets; ++set) {
      matrices[size_t(set)].reset(new T[size_t(cog * cig) * phase_taps[size_t(set % phases)].size()]);
      starts[size_t(set)] = matrices[size_t(set)].get();
    }
    const int64_t parts = ceil_div(cog, kGatherChannels);
    parallel_for(0, groups * parts, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t g = t / parts, co0 = t % parts * kGatherChannels;
        gather(g, 0, cig, co0, std::min(cog, co0 + kGatherChannels), true, starts.data() + g * phases);
      }
    });
    parallel_for(0, phase_sets, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t set = t0; set < t1; ++set) {
        const int64_t k = cig * int64_t(phase_taps[size_t(set % phases)].size());
        f->panels[size_t(set)] =
            std::make_unique<gemm::PackedA<T>>(cog, k, gemm::MatrixRef<T>{matrices[size_t(set)].get(), k, 1}, 0,
                                               nullptr, arena);
      }
    });
  }
  // Window blocks: a task per (group, block of input channels), gathered and packed.
  parallel_for(0, groups * blocks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<std::vector<T>> matrices(static_cast<size_t>(phases));
    std::vector<T*> starts(static_cast<size_t>(phases));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / blocks, block = t % blocks;
      const int64_t b0 = block * kShiftedChannelBlock, cb = std::min(kShiftedChannelBlock, cig - b0);
      for (int64_t ph = 0; ph < phases; ++ph) {
        matrices[size_t(ph)].resize(size_t(cog * cb) * phase_taps[size_t(ph)].size());
        starts[size_t(ph)] = matrices[size_t(ph)].data();
      }
      gather(g, b0, cb, 0, cog, false, starts.data());
      for (int64_t ph = 0; ph < phases; ++ph) {
        const int64_t k = cb * int64_t(phase_taps[size_t(ph)].size()), set = g * phases + ph;
        f->window_panels[size_t(set * blocks + block)] =
            std::make_unique<gemm::PackedA<T>>(cog, k, gemm::MatrixRef<T>{starts[size_t(ph)], k, 1}, k, nullptr,
                                               arena);
      }
    }
  });
  return f;
}

}  // namespace

PackedConvWeight::PackedConvWeight(const TensorView& weight, int64_t groups, bool transposed, Pair stride,
                                   Pair padding, Pair dilation, Panels panels)
    : dtype_(weight.dtype), groups_(groups), transposed_(transposed), stride_(stride), padding_(padding),
      dilation_(dilation) {
  TENSOROPS_CHECK(weight.ndim == 4, "pack_conv_weight: weight must be 4-D");
  TENSOROPS_CHECK(groups >= 1 && weight.shape[0] % groups == 0,
                  "pack_conv_weight: groups must be positive and divide the weight's first dimension");
  for (int i = 0; i < 2; ++i)
    TENSOROPS_CHECK(stride[i] >= 1 && dilation[i] >= 1 && padding[i] >= 0,
                    "pack_conv_weight: stride and dilation must be positive and padding non-negative");
  for (int d = 0; d < 4; ++d) shape_[size_t(d)] = weight.shape[d];
  depthwise_ = is_depthwise(weight, groups, transposed);
  if (dtype_ == DType::float32)
    f32_ = pack_filters<float>(weight, groups, transposed, depthwise_, stride, padding, dilation, panels);
  else if (dtype_ == DType::float64)
    f64_ = pack_filters<double>(weight, groups, transposed, depthwise_, stride, padding, dilation, panels);
  else
    throw TypeError(std::string("pack_conv_weight: unsupported dtype ") + dtype_name(dtype_));
}

PackedConvWeight::~PackedConvWeight() = default;

namespace {

// Implicit im2col for one GEMM problem: B(k, p) read from the image as Im2colView
// describes, over an output grid `grid_w` pixels wide whose row 0 is grid row `first_row`.
// Rows past `grid_h` continue in the next image (image_stride elements further on), so one
// problem can span several small images (conv_transpose2d's phase grids).
template <class T>
class Im2colSource final : public gemm::BlockSource<T> {
 public:
  Im2colSource(const ConvKernelsFor<T>& kernels, const Im2colView<T>& view, int64_t grid_h, int64_t grid_w,
               int64_t first_row, int64_t image_stride)
      : kernels_(&kernels), view_(view), grid_h_(grid_h), grid_w_(grid_w), first_row_(first_row),
        image_stride_(image_stride) {
    min_col_offset_ = max_col_offset_ = view.taps_x ? view.col_offset[0] : 0;
    for (int64_t t = 1; t < view.taps_x; ++t) {
      min_col_offset_ = std::min(min_col_offset_, view.col_offset[t]);
      max_col_offset_ = std::max(max_col_offset_, view.col_offset[t]);
    }
  }

  void pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int64_t nr, T* dst, int64_t panel_stride) const override {
    // The runs depend only on the pixel block: worked out once, replayed for every K row.
    thread_local Workspace run_buffer;
    PixelRun* runs = run_buffer.get<PixelRun>(size_t(nc + 2));
    int64_t count = 0;
    for (int64_t p = n0; p < n0 + nc;) {
      const int64_t row = first_row_ + p / grid_w_, x = p % grid_w_, col = (p - n0) % nr, panel = (p - n0) / nr;
      const int64_t length = std::min({grid_w_ - x, n0 + nc - p, nr - col});
      const int64_t ix_first = x * view_.stride_x + min_col_offset_;
      const int64_t ix_last = (x + length - 1) * view_.stride_x + max_col_offset_;
      const auto kind = ix_first >= 0 && ix_last < view_.w ? PixelRun::inside : PixelRun::clipped;
      runs[count++] = {panel * panel_stride + col, (row / grid_h_) * image_stride_, row % grid_h_, x, length, kind};
      p += length;
    }
    if (nc % nr) runs[count++] = {(nc / nr) * panel_stride + nc % nr, 0, 0, 0, nr - nc % nr, PixelRun::padding};
    kernels_->pack_im2col(view_, runs, count, k0, kc, nr, dst);
  }

 private:
  const ConvKernelsFor<T>* kernels_;
  Im2colView<T> view_;
  int64_t grid_h_, grid_w_, first_row_, image_stride_;
  int64_t min_col_offset_, max_col_offset_;  // over the taps, for PixelRun::kind
};

template <class T>
struct Operands {
  const T* input = nullptr;
  const T* bias = nullptr;
  int64_t bias_stride = 0;
  const T* residual = nullptr;
  const int64_t* residual_strides = nullptr;
  int64_t residual_pixel_stride = 0;  // between pixels of the folded (OH*OW) axis
  T* out = nullptr;
};

template <class T>
Operands<T> operands_of(const TensorView& input, const TensorView& out, const ConvArgs& args) {
  Operands<T> o;
  o.input = input.ptr<const T>();
  if (args.bias) o.bias = args.bias->ptr<const T>(), o.bias_stride = args.bias->strides[0];
  if (args.residual) {
    const TensorView& r = *args.residual;
    o.residual = r.ptr<const T>(), o.residual_strides = r.strides;
    o.residual_pixel_stride = r.shape[3] == 1 ? r.strides[2] : r.strides[3];
  }
  o.out = out.ptr<T>();
  return o;
}

// The GEMM epilogue for output channels [c0, ...) of image n, as a [channels, OH*OW] matrix.
template <class T>
gemm::Epilogue<T> epilogue_for(const Operands<T>& o, int64_t n, int64_t c0, bool with_bias, bool with_residual,
                               gemm::Activation activation) {
  gemm::Epilogue<T> e;
  if (with_bias && o.bias) e.addend = {o.bias + c0 * o.bias_stride, o.bias_stride, 0};
  if (with_residual && o.residual) {
    const int64_t* rs = o.residual_strides;
    e.residual = {o.residual + n * rs[0] + c0 * rs[1], rs[1], o.residual_pixel_stride};
  }
  e.activation = activation;
  return e;
}

template <class T>
void depthwise_conv2d(const TensorView& input, const PackedConvWeight& weight, const TensorView& out,
                      const ConvArgs& args) {
  const ConvKernelsFor<T>& kernels = active_kernels().get<T>();
  const gemm::KernelSet<T>& gemm_kernels = gemm::active_kernels().get<T>();
  const Operands<T> o = operands_of<T>(input, out, args);
  const int64_t batch = out.shape[0], channels = out.shape[1], oh = out.shape[2], ow = out.shape[3];
  const int64_t multiplier = channels / weight.groups();
  const int64_t kh = weight.weight_shape()[2], kw = weight.weight_shape()[3];
  const T* taps = weight.filters<T>().depthwise_taps.data();
  const int64_t planes = batch * channels;
  if (planes == 0 || oh == 0 || ow == 0) return;
  // Few units of work (planes, or blocks of planes in the lanes; batch 1, late layers): split
  // each into blocks of rows so that every thread works.
  const int threads = get_num_threads();
  const auto row_blocks_for = [&](int64_t units) {
    return units >= 4 * threads ? int64_t(1) : std::min(oh, ceil_div(4 * threads, units));
  };
  const int64_t row_blocks = row_blocks_for(planes);
  const bool fused = o.residual || args.activation != gemm::Activation::none;
  DepthwisePlane<T> geometry;
  geometry.row_stride = input.strides[2], geometry.col_stride = input.strides[3];
  geometry.h = input.shape[2], geometry.w = input.shape[3];
  geometry.out_h = oh, geometry.out_w = ow, geometry.kernel_h = kh, geometry.kernel_w = kw;
  geometry.stride_h = args.stride[0], geometry.stride_w = args.stride[1];
  geometry.pad_h = args.padding[0], geometry.pad_w = args.padding[1];
  geometry.dilation_h = args.dilation[0], geometry.dilation_w = args.dilation[1];
  // The residual and activation of output plane (n, c), rows [r0, r1), once the kernel has
  // written them.
  auto finish_rows = [&](int64_t n, int64_t c, int64_t r0, int64_t r1, T* plane_out) {
    gemm::Epilogue<T> e;
    if (o.residual) {
      const int64_t* rs = o.residual_strides;
      e.residual = {o.residual + n * rs[0] + c * rs[1] + r0 * rs[2], rs[2], rs[3]};
    }
    e.activation = args.activation;
    gemm_kernels.epilogue(r1 - r0, ow, plane_out + r0 * ow, ow, e);
  };
  const auto& filters = weight.filters<T>();
  if (filters.lane_width > 0 && filters.lane_width == kernels.depthwise_lanes && multiplier == 1 &&
      input.strides[3] == 1 && input.strides[2] == input.shape[3] && lanes_pay(geometry, kernels.depthwise_lanes) &&
      kernels.depthwise_channels_scratch(geometry) * int64_t(sizeof(T)) <= kLanesMaxScratchBytes) {
    // `lanes` channels at a time, one per vector lane; few blocks split into rows.
    const int64_t lanes = filters.lane_width, channel_blocks = ceil_div(channels, lanes);
    const int64_t blocks = batch * channel_blocks;
    const int64_t row_splits = row_blocks_for(blocks);
    // The bias in whole blocks of lanes, made before any kernel loads it as a vector (lanes
    // stored one at a time just before that load stalled it: a sixth of 960 7x7 planes).
    std::vector<T> bias_lanes(static_cast<size_t>(channel_blocks * lanes), T(0));
    for (int64_t c = 0; o.bias && c < channels; ++c) bias_lanes[size_t(c)] = o.bias[c * o.bias_stride];
    parallel_for(0, blocks * row_splits, 1, [&](int64_t t0, int64_t t1) {
      thread_local Workspace scratch_buffer;
      T* scratch = scratch_buffer.get<T>(size_t(kernels.depthwise_channels_scratch(geometry)));
      kernels.depthwise_channels_prepare(geometry, scratch);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t block = t / row_splits, split = t % row_splits;
        const int64_t r0 = oh * split / row_splits, r1 = oh * (split + 1) / row_splits;
        const int64_t n = block / channel_blocks, c0 = block % channel_blocks * lanes;
        const int64_t count = std::min(lanes, channels - c0);
        T* out_planes = o.out + (n * channels + c0) * oh * ow;
        kernels.depthwise_channels(geometry, o.input + n * input.strides[0] + c0 * input.strides[1], input.strides[1],
                                   count, filters.depthwise_lane_taps.data() + (c0 / lanes) * kh * kw * lanes,
                                   bias_lanes.data() + c0, out_planes, r0, r1, scratch);
        for (int64_t i = 0; fused && i < count; ++i) finish_rows(n, c0 + i, r0, r1, out_planes + i * oh * ow);
      }
    });
    return;
  }
  parallel_for(0, planes * row_blocks, 1, [&](int64_t t0, int64_t t1) {
    thread_local Workspace scratch_buffer;
    T* scratch = scratch_buffer.get<T>(size_t(kernels.depthwise_scratch(geometry)));
    kernels.depthwise_prepare(geometry, scratch);
    // Counters advance with t (no divisions per plane: a 7x7 plane costs only ~50 cycles).
    // Whole planes go to the kernel in runs of kDepthwiseRun, which small planes share work
    // across; a row block goes alone.
    int64_t plane = t0 / row_blocks, block = t0 % row_blocks;
    int64_t n = plane / channels, c = plane % channels;
    DepthwisePlane<T> run[kDepthwiseRun];
    int64_t run_channel[kDepthwiseRun], run_image[kDepthwiseRun];
    for (int64_t t = t0; t < t1;) {
      const int64_t r0 = row_blocks == 1 ? 0 : oh * block / row_blocks;
      const int64_t r1 = row_blocks == 1 ? oh : oh * (block + 1) / row_blocks;
      const int64_t count = row_blocks == 1 ? std::min(kDepthwiseRun, t1 - t) : 1;
      for (int64_t i = 0; i < count; ++i) {
        DepthwisePlane<T>& p = run[i];
        p = geometry;
        p.input = o.input + n * input.strides[0] + (multiplier == 1 ? c : c / multiplier) * input.strides[1];
        p.taps = taps + c * kh * kw;
        p.bias = o.bias ? o.bias[c * o.bias_stride] : T(0);
        p.out = o.out + plane * oh * ow;
        run_channel[i] = c, run_image[i] = n;
        if (++block == row_blocks) {
          block = 0, ++plane;
          if (++c == channels) c = 0, ++n;
        }
      }
      kernels.depthwise(run, count, r0, r1, scratch);
      for (int64_t i = 0; fused && i < count; ++i) finish_rows(run_image[i], run_channel[i], r0, r1, run[i].out);
      t += count;
    }
  });
}

// Convolution as a sum over taps of GEMMs that read the image in place (the shifted-window
// path).
//
// Stride 1 first. Copy a band of input rows into a buffer whose rows are Wp apart, each row's
// W values followed by Wp - W zeros, and index output pixels on the same grid (p' = oy * Wp
// + ox; the columns ox >= OW are computed and thrown away). The zeros after a row serve as
// its right padding and as the next row's left padding, so Wp = W + max(left, right
// padding) (W + 1 for a 3x3 "same" layer, not W + 2: 7% fewer columns at 14x14). Then for
// each tap (ky, kx) the im2col rows of all input channels are slices of that buffer, one
// plane apart, starting at ky*dh*Wp + kx*dw - left: a strided matrix the microkernel reads
// directly (the buffer starts with `left` zeros for the first row's left padding). The
// convolution is the sum over taps of W[:, :, ky, kx] @ slice, which the microkernel
// accumulates in registers over every tap of a block of input channels (micro_taps), so
// nothing is packed but the filter (once) and the band (one copy of the input instead of
// KH*KW), and the C tile is loaded and stored once per channel block.
//
// Stride s: output column ox of tap kx reads padded column s*ox + kx*dw, which is column
// ox + (kx*dw)/s of the input's phase (kx*dw) % s, the columns congruent to it mod s. So the
// band holds each stride phase (row phase x column phase) that some tap reads as a plane of
// its own, laid out as above (the inside columns of the phase, then zeros), and each tap
// again reads a slice of the band at a fixed offset: a stride-2 7x7 stem is 49 slices of
// four phase planes, with no im2col packing and no taps multiplied by zeros.
//
// The valid columns of the tile are then copied to the output and the epilogue runs there.
//
// Orientation. So far the output pixels lie across the vector lanes (the microkernel's NR
// columns) and output channels down its MR rows, which spends columns on the padded-width
// grid and on rounding each band up to whole panels: a 14x14 plane is 15 x 14 = 210 columns
// computed as 224, 87.5% of them wanted. When a group's output channels fill the lanes
// (channels_in_lanes), the product is turned around: C's rows are output pixels, runs of at
// most MR along an output row (two rows at a time for planes at most MR/2 wide), read in
// place from the same band with each element broadcast (micro_taps_window_a, the band's
// planes a_step apart), and the lanes hold output channels, the filter packed as B panels
// (window_columns). Every computed row is a wanted pixel; the pixel-major tile is transposed
// to NCHW as it is stored. Measured in one process against the other orientation, 1
// thread, AVX-512: 256@14 -10%, 512@7 -13%, 128@56 stride 2 -15%, 64@56 -3%, the stem even
// (float64 alike); AVX2 is left out (see channels_in_lanes). When a band is a whole image, a
// task takes several images, their rows counted in turn (ShiftedGeometry::images).
constexpr int64_t kShiftedBandColumns = 2048;
// With channels in the lanes, the band and the tile of a task stay within this many bytes.
constexpr int64_t kLanesBandBytes = int64_t(512) << 10;
// When a band is a whole image (channels in the lanes), a task takes several images whose
// bands and tiles fit this many bytes (see ShiftedGeometry::images).
constexpr int64_t kLanesImagesBytes = int64_t(1) << 20;
constexpr int64_t kShiftedMinBandColumns = 128;
constexpr int64_t kShiftedMaxBandBytes = int64_t(4) << 20;

// One axis of the shifted window. The phases that some tap reads (at most one per tap,
// whatever the stride) are phases[0..]: tap k reads phase index phase_of[k] at shift
// shift_of[k]. Phase i's inside positions start at input index first[i] and number
// inside[i], preceded on the padded axis by before[i] padding positions; reach[i] is its
// largest shift.
struct WindowAxis {
  std::vector<int64_t> phases, phase_of, shift_of, first, inside, before, reach;
  int64_t max_shift = 0;
};

WindowAxis window_axis(int64_t size, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation) {
  WindowAxis a;
  for (int64_t k = 0; k < kernel; ++k) {
    const int64_t phase = k * dilation % stride, shift = k * dilation / stride;
    auto at = std::find(a.phases.begin(), a.phases.end(), phase);
    if (at == a.phases.end()) {
      // Positions phase + stride * i of the padded axis; the input occupies [padding, padding + size).
      const int64_t before = std::max<int64_t>(0, ceil_div(padding - phase, stride));
      const int64_t end = padding + size - phase > 0 ? ceil_div(padding + size - phase, stride) : 0;
      a.phases.push_back(phase), a.before.push_back(before), a.reach.push_back(0);
      a.inside.push_back(std::max<int64_t>(0, end - before));
      a.first.push_back(phase + stride * before - padding);
      at = a.phases.end() - 1;
    }
    const auto i = size_t(at - a.phases.begin());
    a.phase_of.push_back(int64_t(i)), a.shift_of.push_back(shift);
    a.reach[i] = std::max(a.reach[i], shift);
    a.max_shift = std::max(a.max_shift, shift);
  }
  return a;
}

template <class T>
struct ShiftedGeometry {
  int64_t padded_w = 0, band_rows = 0, buffer_rows = 0, lead = 0;
  bool channels_in_lanes = false;  // pixel-major tiles (see channels_in_lanes)
  int64_t channel_unit = 1;        // MR, or NR with channels in the lanes
  int64_t channel_parts = 1;       // output channels split this many ways (in channel_unit multiples)
  int64_t images = 1;              // whole images per task (channels in the lanes, one band per image)
  WindowAxis rows, cols;  // the band holds one plane per (row phase, column phase) pair
  bool usable = false;
};

template <class T>
ShiftedGeometry<T> shifted_geometry(const TensorView& input, const Shape4& ws, int64_t groups,
                                    const gemm::KernelSet<T>& ks, const TensorView& out, const ConvArgs& args) {
  ShiftedGeometry<T> s;
  const int64_t cig = ws[1], cog = ws[0] / groups, kh = ws[2], kw = ws[3], oh = out.shape[2], ow = out.shape[3];
  if ((kh * kw == 1 && !pointwise_window(ws, groups, out, args, ks)) || cig < kShiftedMinChannels || oh == 0 ||
      ow == 0)
    return s;
  s.rows = window_axis(input.shape[2], kh, args.stride[0], args.padding[0], args.dilation[0]);
  s.cols = window_axis(input.shape[3], kw, args.stride[1], args.padding[1], args.dilation[1]);
  // Row pitch: a phase row's inside columns, then zeros enough for its own right edge and
  // for the left edge of the row after it (which may be another phase's or channel's: hence
  // `lead`, the most any phase needs); at least the output width.
  const int64_t too_far = kShiftedMaxBandBytes / int64_t(sizeof(T));
  for (int64_t before : s.cols.before) s.lead = std::max(s.lead, before);
  s.padded_w = ow;
  for (size_t i = 0; i < s.cols.phases.size(); ++i)
    s.padded_w = std::max({s.padded_w, s.cols.inside[i] + s.lead, ow + s.cols.reach[i] - s.cols.before[i]});
  // (Huge paddings, strides or dilations: the band would not fit; also keeps the sizes below
  // from overflowing.)
  if (s.padded_w > too_far || s.rows.max_shift > too_far) return s;
  // The band height and the split of output channels between tasks. With pixels across the
  // lanes the GEMM computes whole NR-column panels, so a band of r rows costs
  // ceil(r * Wp / NR) panels whatever r * OW of them are wanted; with channels across the
  // lanes a band costs its r * OW pixels. Each height whose band fits (kShiftedBandColumns;
  // with channels in the lanes, band and tile within kLanesBandBytes) and is wide enough to
  // fill the panels (kShiftedMinBandColumns) is priced as the time of its busiest thread
  // (that cost x panels of output channels over the contiguous runs of tasks parallel_for
  // hands out); ties go to the least work in all, then to the taller band. 56x56 with 64
  // channels on one thread, pixels in the lanes: 5 rows, 285 of 288 columns used, not 4
  // rows, 228 of 256. Output channels are split only until every thread has a task, since
  // each task pads the whole band for itself (256 channels at 14x14 on 2 threads: 4 parts
  // padded 4 times, 2 parts 1-3% faster).
  s.channels_in_lanes = kh * kw == 1 || channels_in_lanes(cog, cig * kh * kw, ks);
  s.channel_unit = s.channels_in_lanes ? ks.nr : ks.mr;
  const int64_t slots = int64_t(s.rows.phases.size() * s.cols.phases.size());
  const int64_t problems = input.shape[0] * groups, threads = get_num_threads();
  const int64_t m_panels = ceil_div(cog, s.channel_unit);
  const int64_t row_bytes = (cig * slots * s.padded_w + ow * m_panels * s.channel_unit) * int64_t(sizeof(T));
  const int64_t tallest = std::clamp<int64_t>(
      s.channels_in_lanes ? kLanesBandBytes / row_bytes : kShiftedBandColumns / s.padded_w, 1, oh);
  const int64_t row_width = s.channels_in_lanes ? ow : s.padded_w;
  int64_t best_makespan = -1, best_total = -1;
  for (int64_t r = tallest; r >= 1; --r) {
    if (r < tallest && r * row_width < kShiftedMinBandColumns) break;
    const int64_t bands = ceil_div(oh, r), band_tasks = problems * bands;
    int64_t parts = 1;
    while (band_tasks * parts < threads && parts < m_panels) ++parts;
    const int64_t tasks = band_tasks * parts, per_thread = ceil_div(tasks, std::min<int64_t>(threads, tasks));
    int64_t makespan = 0, total = 0, chunk = 0;
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t band = (t / parts) % bands, part = t % parts;
      const int64_t rows = std::min(r, oh - band * r);
      const int64_t cost = s.channels_in_lanes ? rows * ow : ceil_div(rows * s.padded_w, ks.nr);
      const int64_t work = cost * (m_panels * (part + 1) / parts - m_panels * part / parts);
      total += work, chunk += work;
      if ((t + 1) % per_thread == 0 || t + 1 == tasks) makespan = std::max(makespan, chunk), chunk = 0;
    }
    if (best_makespan < 0 || makespan < best_makespan || (makespan == best_makespan && total < best_total)) {
      best_makespan = makespan, best_total = total;
      s.band_rows = r, s.channel_parts = parts;
    }
  }
  // Several images to a task when a band is a whole image, pixels counted across them: every
  // filter panel then serves the tiles of all of them while it is in L2, and output rows of
  // a narrow image pair across images (7x7: row 0 of one image with row 0 of the next, so
  // that both leave out the taps above the image), so every tile is full. Only as many as
  // leave every thread a task.
  if (s.channels_in_lanes && s.band_rows == oh && s.channel_parts == 1) {
    const int64_t batch = input.shape[0];
    s.images = std::clamp<int64_t>(kLanesImagesBytes / (oh * row_bytes), 1, batch);
    while (s.images > 1 && ceil_div(batch, s.images) * groups < threads) --s.images;
    s.images = ceil_div(batch, ceil_div(batch, s.images));
  }
  s.buffer_rows = s.band_rows + s.rows.max_shift;
  s.usable = s.buffer_rows * s.padded_w <= too_far && cig * slots * s.buffer_rows * s.padded_w <= too_far;
  return s;
}

// The kernel set a filter's shifted-window panels were packed for.
template <class T>
const gemm::KernelSet<T>& window_kernels(const PackedConvWeight::Filters<T>& filters) {
  return (filters.window_columns.empty() ? filters.window_panels[0]->kernels() : filters.window_columns[0]->kernels())
      .template get<T>();
}

// The shifted-window blocks of a 1x1 filter kept for many calls (Filters::pointwise), made
// once, from its general panels, for the kernel set active then (later calls use that set,
// as they do a filter's other panels).
template <class T>
const PackedConvWeight::Filters<T>& pointwise_window_filters(const PackedConvWeight& weight) {
  const PackedConvWeight::Filters<T>& f = weight.filters<T>();
  std::call_once(f.pointwise_once, [&] {
    const int64_t groups = weight.groups(), cog = weight.weight_shape()[0] / groups, cig = weight.weight_shape()[1];
    std::vector<T> dense(size_t(groups * cog * cig));
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t i = 0; i < cog; ++i)
        for (int64_t p = 0; p < cig; ++p) dense[size_t((g * cog + i) * cig + p)] = f.panels[size_t(g)]->at(i, p);
    auto window = std::make_unique<PackedConvWeight::Filters<T>>();
    const int64_t blocks = ceil_div(cig, window_channel_block(1));
    window->window_columns.resize(size_t(groups * blocks));
    parallel_for(0, groups * blocks, 1, [&](int64_t t0, int64_t t1) {
      std::vector<int64_t> tap_major;
      for (int64_t t = t0; t < t1; ++t)
        pack_window_block<T>(dense.data(), t / blocks, t % blocks, blocks, cig, cog, 1, true, false, nullptr,
                             tap_major, *window);
    });
    f.pointwise = std::move(window);
  });
  return *f.pointwise;
}

// Taps [first, end) of a filter in tap-major order (tap = ky * KW + kx).
struct TapRun {
  int64_t first, end;
};

// The taps that output rows oy0 .. oy0 + rows - 1 of a band read inside the image: output
// row oy reads input row oy * stride - padding + ky * dilation at tap row ky, so the rows
// inside are one run of ky, and its taps one run of the tap-major filter. The other taps
// multiply zeros of the padding, and a tile whose rows all skip them leaves them out
// (3 of 9 taps on the first and last rows of a 3x3 "same" layer).
class RowTaps {
 public:
  RowTaps(int64_t h, int64_t kh, int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t oy0,
          int64_t rows)
      : runs_(size_t(rows)) {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t top = (oy0 + r) * stride - padding;  // the input row of ky = 0
      int64_t lo = 0, hi = kh;
      while (lo < kh && top + lo * dilation < 0) ++lo;
      while (hi > lo && top + (hi - 1) * dilation >= h) --hi;
      runs_[size_t(r)] = {lo * kw, hi * kw};
    }
  }
  const TapRun& of(int64_t r) const { return runs_[size_t(r)]; }
  // The taps a tile of band rows r0 and r1 reads: the hull of their runs (any taps between
  // two runs that do not touch read the padding's zeros, as every tap did without the runs).
  TapRun across(int64_t r0, int64_t r1) const {
    const TapRun& a = runs_[size_t(r0)];
    const TapRun& b = runs_[size_t(r1)];
    return a.first == a.end ? b : b.first == b.end ? a : TapRun{std::min(a.first, b.first), std::max(a.end, b.end)};
  }

 private:
  std::vector<TapRun> runs_;
};

// The taps that read only padding at the first and at the last pixel of an output row: the
// pixel at ox reads input column ox * stride - padding + kx * dilation at tap column kx. A
// tile of pixels across the lanes leaves those taps out of its rows that start and end output
// rows (the microkernel's tap_edges), so a 3x3 "same" layer multiplies no padding on rows of
// the tile's width, and little where tiles cross from row to row (AVX2's 6-pixel tiles).
class EdgeTaps {
 public:
  EdgeTaps(int64_t w, int64_t kh, int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t ow)
      : taps_(kh * kw), flags_(size_t(8 * kh * kw), 0) {
    const auto outside = [&](int64_t ox, int64_t kx) {
      const int64_t col = ox * stride - padding + kx * dilation;
      return col < 0 || col >= w;
    };
    for (int kind = 1; kind < 8; ++kind) {
      const bool starts = kind & 1, ends = kind & 2, two_runs = kind & 4;
      for (int64_t tap = 0; tap < taps_; ++tap) {
        const int64_t kx = tap % kw;
        const bool left = outside(0, kx), right = outside(ow - 1, kx);
        // The rows at the image's left edge: the tile's first (if it starts a row) and, with
        // two runs, the second run's first (always a row start); the right edge alike.
        const int left_code = !left ? 0 : two_runs ? (starts ? 1 : 4) : (starts ? 1 : 0);
        const int right_code = !right ? 0 : two_runs ? (ends ? 2 : 8) : (ends ? 2 : 0);
        const int code = left_code | right_code;
        // (Both edges at once, where the runs' outer rows do not both qualify: no skipping.)
        flags_[size_t(kind * taps_ + tap)] = uint8_t(code == 1 || code == 2 || code == 3 || code == 4 || code == 8
                                                         ? code
                                                         : 0);
      }
    }
  }
  // The flags of a tile whose first pixel starts an output row (`starts`), whose last ends
  // one (`ends`), of two runs (the second starting a row, the first ending one); null
  // where none apply.
  const uint8_t* of(bool starts, bool ends, bool two_runs) const {
    const int kind = int(starts) | int(ends) << 1 | int(two_runs) << 2;
    return kind ? flags_.data() + kind * taps_ : nullptr;
  }

 private:
  int64_t taps_;
  std::vector<uint8_t> flags_;
};

// Rows [m0, m1) of a shifted-window tile, `columns` wide (its row stride): every tap of a block
// of `block_channels` input channels in one microkernel call, block by block, block b's
// filter panels at *panels[b] and the band's channels `plane` apart. Every channel
// panel of a column panel runs before the next column panel: the band's columns (a block of
// channels and the rows every tap reaches) are read from L2 once and then reused from L1 by
// every MR-row panel.
template <class T>
void window_tile(const gemm::KernelSet<T>& ks, const std::unique_ptr<gemm::PackedA<T>>* panels, int64_t channels,
                 int64_t block_channels, const std::vector<int64_t>& tap_offsets, const T* band, int64_t plane,
                 int64_t columns, int64_t m0, int64_t m1, T* tile) {
  const int64_t taps = int64_t(tap_offsets.size()), blocks = ceil_div(channels, block_channels);
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t c0 = block * block_channels, cb = std::min(block_channels, channels - c0);
    const gemm::PackedA<T>& a = *panels[block];
    for (int64_t jr = 0; jr < columns; jr += ks.nr)
      for (int64_t ic = m0; ic < m1; ic += ks.mr)
        ks.micro_taps[std::min(ks.mr, m1 - ic)](taps, tap_offsets.data(), cb, a.block(0, ic), band + c0 * plane + jr,
                                                plane, tile + ic * columns + jr, columns,
                                                std::min(ks.nr, columns - jr), block > 0);
  }
}

// The same with channels across the lanes: the pixel-major tile of `images` x `rows` output
// rows (pixel q = row * ow + x at tile + q * ldt, the images' rows in turn) for output
// channels [n0, n1), block b's filter columns at *columns[b], image i's band `image_band`
// after image 0's. The microkernel's rows are output pixels read in place from the band,
// each tile over the taps its rows read inside the image (row_taps):
// - rows of at least MR - 1 pixels are one stream of pixels cut into MR-pixel tiles; a tile
//   that runs from the end of one row into the next reads its second part a_row further on
//   (micro_taps_window_a_split), so every tile but the last is full. Cutting each row into
//   its own runs instead left AVX2's 6-row tiles 3 and 4 rows deep on 7-wide rows (512
//   channels at 7x7, batch 8, 1 thread: 65 -> 85 GFLOP/s);
// - rows of at most MR / 2 pixels go two to a tile (micro_taps_window_a_pairs), so a 7x7
//   image fills AVX-512's 14-row tiles; a pair is two rows that read the same taps (the
//   first rows of two images), so that the taps over the top and bottom padding drop out of
//   the tiles of the edge rows as they do from a one-row tile;
// - rows in between are a tile each.
// Every channel panel of a tile runs before the next tile, so the tile's window (a block of
// channels, the rows every tap reaches) is reused from L1 while the filter's panels stream
// from L2.
template <class T>
void window_tile_channels_in_lanes(const gemm::KernelSet<T>& ks, const std::unique_ptr<gemm::PackedB<T>>* columns,
                                   int64_t channels, int64_t block_channels, const std::vector<int64_t>& tap_offsets,
                                   const T* band, int64_t plane, int64_t wp, int64_t images, int64_t image_band,
                                   int64_t rows, int64_t ow, const RowTaps& row_taps, const EdgeTaps& edge_taps,
                                   int64_t n0, int64_t n1, T* tile, int64_t ldt) {
  const int64_t blocks = ceil_div(channels, block_channels);
  const int64_t all_rows = images * rows, pixels = all_rows * ow;
  const bool streamed = ow >= ks.mr - 1, paired = !streamed && 2 * ow <= ks.mr;
  const auto row_start = [&](int64_t r) { return r / rows * image_band + r % rows * wp; };
  // Pairs of rows (the second -1 for a row alone): rows grouped by the taps they read,
  // paired within a group, the groups' odd rows paired with each other last.
  std::vector<std::pair<int64_t, int64_t>> row_tiles;
  if (paired) {
    std::vector<int64_t> order(static_cast<size_t>(all_rows)), odd;
    for (int64_t r = 0; r < all_rows; ++r) order[size_t(r)] = r;
    const auto key = [&](int64_t r) { return std::make_pair(row_taps.of(r % rows).first, row_taps.of(r % rows).end); };
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return key(x) < key(y); });
    for (size_t i = 0; i < order.size();) {
      if (i + 1 < order.size() && key(order[i]) == key(order[i + 1])) {
        row_tiles.emplace_back(order[i], order[i + 1]);
        i += 2;
      } else {
        odd.push_back(order[i++]);
      }
    }
    for (size_t i = 0; i < odd.size(); i += 2) row_tiles.emplace_back(odd[i], i + 1 < odd.size() ? odd[i + 1] : -1);
  }
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t c0 = block * block_channels, cb = std::min(block_channels, channels - c0);
    const gemm::PackedB<T>& b = *columns[block];
    const T* channel_band = band + c0 * plane;
    // The stream's pixels from q on, and for a tile of two runs (micro's second part) those
    // from pixel q2 on (the next row, or the row paired with q's), through `micro` over
    // every channel panel; `last` is the tile's last pixel.
    const auto run_tile = [&](typename gemm::KernelSet<T>::MicroTapsWindowA micro, int64_t q, int64_t q2,
                              int64_t last) {
      const int64_t at = row_start(q / ow) + q % ow, at2 = row_start(q2 / ow) + q2 % ow;
      const TapRun run = row_taps.across(q / ow % rows, q2 / ow % rows);
      const uint8_t* edges = edge_taps.of(q % ow == 0, last % ow == ow - 1, q2 != q);
      for (int64_t jc = n0; jc < n1; jc += ks.nr)
        micro(run.end - run.first, tap_offsets.data() + run.first, edges ? edges + run.first : nullptr, cb,
              channel_band + at, plane, at2 - at, b.panel(jc / ks.nr) + run.first * cb * ks.nr, tile + q * ldt + jc,
              ldt, (q2 - q) * ldt, std::min(ks.nr, n1 - jc), block > 0);
    };
    if (paired) {
      for (const auto& [r1, r2] : row_tiles) {
        if (r2 >= 0) run_tile(ks.micro_taps_window_a_pairs[ow], r1 * ow, r2 * ow, r2 * ow + ow - 1);
        else run_tile(ks.micro_taps_window_a[ow], r1 * ow, r1 * ow, r1 * ow + ow - 1);
      }
      continue;
    }
    if (!streamed) {
      for (int64_t r = 0; r < all_rows; ++r) run_tile(ks.micro_taps_window_a[ow], r * ow, r * ow, r * ow + ow - 1);
      continue;
    }
    // Only a full tile can cross a row: the last one ends with the last row, so crossing
    // into it would take more than ow >= MR - 1 pixels.
    for (int64_t q = 0; q < pixels; q += ks.mr) {
      const int64_t count = std::min(ks.mr, pixels - q), first = std::min(count, ow - q % ow);
      if (first == count) run_tile(ks.micro_taps_window_a[count], q, q, q + count - 1);
      else run_tile(ks.micro_taps_window_a_split[first], q, q + first, q + count - 1);
    }
  }
}

// filters: the weight's, or the shifted-window blocks made for a 1x1 filter.
template <class T>
void conv2d_shifted(const TensorView& input, const PackedConvWeight& weight,
                    const PackedConvWeight::Filters<T>& filters, const TensorView& out, const ConvArgs& args,
                    const ShiftedGeometry<T>& geo) {
  const ConvKernelsFor<T>& kernels = active_kernels().get<T>();
  const Operands<T> o = operands_of<T>(input, out, args);
  const gemm::KernelSet<T>& ks = window_kernels(filters);
  const int64_t batch = input.shape[0], h = input.shape[2], w = input.shape[3];
  const int64_t groups = weight.groups(), cig = weight.weight_shape()[1], cog = weight.weight_shape()[0] / groups;
  const int64_t kh = weight.weight_shape()[2], kw = weight.weight_shape()[3], taps = kh * kw;
  const int64_t oh = out.shape[2], ow = out.shape[3], ohw = oh * ow, cout = out.shape[1];
  const int64_t sh = args.stride[0], sw = args.stride[1], pad_top = args.padding[0];
  const int64_t wp = geo.padded_w, band_rows = geo.band_rows, bands = ceil_div(oh, band_rows);
  const int64_t buffer_rows = geo.buffer_rows, slot_size = buffer_rows * wp;
  const int64_t col_phases = int64_t(geo.cols.phases.size());
  const int64_t slots = int64_t(geo.rows.phases.size()) * col_phases, plane = slots * slot_size;
  // Where tap (ky, kx)'s window starts in the band, relative to the output pixel: in the
  // plane of its (row phase, column phase), `slot` of the band's planes.
  std::vector<int64_t> tap_offsets(static_cast<size_t>(taps));
  int64_t furthest = 0;
  for (int64_t tap = 0; tap < taps; ++tap) {
    const auto ky = size_t(tap / kw), kx = size_t(tap % kw);
    const int64_t slot = geo.rows.phase_of[ky] * col_phases + geo.cols.phase_of[kx];
    tap_offsets[size_t(tap)] = slot * slot_size + geo.rows.shift_of[ky] * wp + geo.cols.shift_of[kx] -
                               geo.cols.before[size_t(geo.cols.phase_of[kx])];
    furthest = std::max(furthest, tap_offsets[size_t(tap)]);
  }
  const EdgeTaps edge_taps(w, kh, kw, sw, args.padding[1], args.dilation[1], ow);
  // The microkernel reads whole NR-column panels: the last one overruns the band's last
  // output row by up to NR columns, plus the furthest tap offset.
  const int64_t slack = ks.nr + furthest + wp;
  const int64_t* xs = input.strides;
  const int64_t parts = geo.channel_parts, unit = geo.channel_unit, m_panels = ceil_div(cog, unit);
  // A task's images (one band each, image_band apart in the buffer).
  const int64_t images = geo.images, image_sets = ceil_div(batch, images), image_band = cig * plane;
  const int64_t block_channels = window_channel_block(taps), channel_blocks = ceil_div(cig, block_channels);
  TENSOROPS_CHECK(int64_t(geo.channels_in_lanes ? filters.window_columns.size() : filters.window_panels.size()) ==
                      groups * channel_blocks,
                  "conv2d: the packed filter lacks the shifted-window panels");
  // A pixel-major tile (channels in the lanes) holds whole channel panels per pixel.
  const int64_t ldt = m_panels * unit;
  // Outputs far larger than the cache bypass it (unless a residual or activation pass reads
  // them back at once).
  const bool stream = batch * cout * ohw * int64_t(sizeof(T)) >= kStreamOutputBytes && !o.residual &&
                      args.activation == gemm::Activation::none;
  // A 1x1 filter at stride 1 without padding, over images whose rows lie as a whole-image
  // band's would (unit column stride, rows w apart), reads the input itself: the band would
  // be a copy of it, which took 5% of 2048 -> 512 at 7x7, batch 1. (Pixels as A rows read
  // only the tile's own pixels, so nothing past the image is touched.)
  const bool reads_input = taps == 1 && geo.channels_in_lanes && slots == 1 && geo.lead == 0 && band_rows == oh &&
                           sh == 1 && sw == 1 && pad_top == 0 && args.padding[1] == 0 && xs[3] == 1 && xs[2] == wp;
  parallel_for(0, image_sets * groups * bands * parts, 1, [&](int64_t t0, int64_t t1) {
    thread_local Workspace band_buffer, tile_buffer, staging_buffer;
    T* band = reads_input ? nullptr : band_buffer.get<T>(size_t(geo.lead + images * image_band + slack)) + geo.lead;
    T* tile =
        tile_buffer.get<T>(size_t(geo.channels_in_lanes ? images * band_rows * ow * ldt : cog * band_rows * wp));
    T* staging = geo.channels_in_lanes && stream ? staging_buffer.get<T>(size_t(kTransposeBlock * band_rows * ow)) : nullptr;
    if (band) {
      std::fill(band - geo.lead, band, T(0));
      std::fill(band + images * image_band, band + images * image_band + slack, T(0));
    }
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n0 = t / (groups * bands * parts) * images, g = (t / (bands * parts)) % groups;
      const int64_t count = std::min(images, batch - n0);
      const int64_t b = (t / parts) % bands, part = t % parts;
      // Output channels [m0, m1) of this part, on panel boundaries.
      const int64_t m0 = std::min(cog, m_panels * part / parts * unit);
      const int64_t m1 = std::min(cog, m_panels * (part + 1) / parts * unit);
      if (m0 >= m1) continue;
      const int64_t oy0 = b * band_rows, rows = std::min(band_rows, oh - oy0), columns = rows * wp;
      // The band: every phase's rows oy0 .. oy0 + rows + reach - 1, and on a short last band
      // the rows after them too: the first row of every plane reads the zeros that end the
      // plane before, which must not be left from another task.
      if (!reads_input)
        for (int64_t i = 0; i < count; ++i)
          for (int64_t slot = 0; slot < slots; ++slot) {
            const auto ri = size_t(slot / col_phases), ci = size_t(slot % col_phases);
            kernels.pad_band(o.input + (n0 + i) * xs[0] + g * cig * xs[1], xs[1], xs[2], xs[3], h, w, cig,
                             geo.rows.phases[ri] + sh * oy0 - pad_top, sh, buffer_rows, geo.cols.first[ci], sw,
                             geo.cols.inside[ci], wp, band + i * image_band + slot * slot_size, plane);
          }
      if (reads_input)
        window_tile_channels_in_lanes(ks, &filters.window_columns[size_t(g * channel_blocks)], cig, block_channels,
                                      tap_offsets, o.input + n0 * xs[0] + g * cig * xs[1], xs[1], wp, count, xs[0],
                                      rows, ow, RowTaps(h, kh, kw, sh, pad_top, args.dilation[0], oy0, rows),
                                      edge_taps, m0, m1, tile, ldt);
      else if (geo.channels_in_lanes)
        window_tile_channels_in_lanes(ks, &filters.window_columns[size_t(g * channel_blocks)], cig, block_channels,
                                      tap_offsets, band, plane, wp, count, image_band, rows, ow,
                                      RowTaps(h, kh, kw, sh, pad_top, args.dilation[0], oy0, rows), edge_taps, m0,
                                      m1, tile, ldt);
      else
        window_tile(ks, &filters.window_panels[size_t(g * channel_blocks)], cig, block_channels, tap_offsets, band,
                    plane, columns, m0, m1, tile);
      // The valid pixels to the output with the bias; a residual or activation follows there.
      // (Only pixel-major tiles hold several images; the other orientation's count is 1.)
      const int64_t c0 = g * cog + m0;
      const T* bias = o.bias ? o.bias + c0 * o.bias_stride : nullptr;
      for (int64_t i = 0; i < count; ++i) {
        const int64_t n = n0 + i;
        T* dst = o.out + (n * cout + c0) * ohw + oy0 * ow;
        if (geo.channels_in_lanes)
          kernels.store_band_transposed(tile + i * rows * ow * ldt + m0, ldt, rows * ow, m1 - m0, dst, ohw, bias,
                                        o.bias_stride, stream, staging);
        else
          kernels.store_band(tile + m0 * columns, columns, wp, m1 - m0, rows, ow, dst, ohw, bias, o.bias_stride,
                             stream);
        const gemm::Epilogue<T> last_pass = epilogue_for(o, n, c0, false, true, args.activation);
        if (!last_pass.is_identity()) ks.epilogue(m1 - m0, rows * ow, dst, ohw, last_pass.shifted(0, oy0 * ow));
      }
    }
    fence_streamed_stores(stream);
  });
}

template <class T>
void conv2d_typed(const TensorView& input, const PackedConvWeight& weight, const TensorView& out, const ConvArgs& args) {
  if (weight.depthwise()) {
    depthwise_conv2d<T>(input, weight, out, args);
    return;
  }
  // (A filter packed for one call holds the shifted-window panels exactly when this path
  // takes them: see pack_for_call. A 1x1 filter kept for many calls makes them on the first
  // plane that wants them.)
  const auto& filters = weight.filters<T>();
  const bool pointwise =
      filters.kept && filters.window_panels.empty() && filters.window_columns.empty() &&
      pointwise_window(weight.weight_shape(), weight.groups(), out, args, gemm::active_kernels().get<T>());
  const auto& window = pointwise ? pointwise_window_filters<T>(weight) : filters;
  const ShiftedGeometry<T> shifted =
      window.window_panels.empty() && window.window_columns.empty()
          ? ShiftedGeometry<T>{}
          : shifted_geometry<T>(input, weight.weight_shape(), weight.groups(), window_kernels(window), out, args);
  if (shifted.usable) {
    conv2d_shifted<T>(input, weight, window, out, args, shifted);
    return;
  }
  const ConvKernelsFor<T>& kernels = active_kernels().get<T>();
  const Operands<T> o = operands_of<T>(input, out, args);
  const int64_t batch = input.shape[0], h = input.shape[2], w = input.shape[3];
  const int64_t groups = weight.groups(), cig = weight.weight_shape()[1], cog = weight.weight_shape()[0] / groups;
  const int64_t kh = weight.weight_shape()[2], kw = weight.weight_shape()[3];
  const int64_t oh = out.shape[2], ow = out.shape[3], ohw = oh * ow, cout = out.shape[1];
  const int64_t* xs = input.strides;
  // 1x1, stride 1, no padding, rows folding into one: the image is B as it lies.
  const bool direct = kh == 1 && kw == 1 && args.stride == Pair{1, 1} && args.padding == Pair{0, 0} && oh == h &&
                      ow == w && xs[3] == 1 && xs[2] == w;
  std::vector<int64_t> row_offset(static_cast<size_t>(kh)), col_offset(static_cast<size_t>(kw));
  for (int64_t k = 0; k < kh; ++k) row_offset[size_t(k)] = k * args.dilation[0] - args.padding[0];
  for (int64_t k = 0; k < kw; ++k) col_offset[size_t(k)] = k * args.dilation[1] - args.padding[1];
  std::vector<Im2colSource<T>> sources;
  if (!direct) {
    sources.reserve(size_t(batch * groups));
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t g = 0; g < groups; ++g) {
        const Im2colView<T> view{o.input + n * xs[0] + g * cig * xs[1], xs[1], xs[2], xs[3], h, w,
                                 args.stride[0], args.stride[1], row_offset.data(), kh, col_offset.data(), kw};
        sources.emplace_back(kernels, view, oh, ow, 0, 0);
      }
  }
  const auto& panels = weight.filters<T>().panels;
  TENSOROPS_CHECK(!panels.empty(), "conv2d: the packed filter lacks the panels of the general path");
  gemm::gemm_batch<T>(batch * groups, [&](int64_t index) {
    const int64_t n = index / groups, g = index % groups;
    gemm::GemmProblem<T> p;
    p.m = cog, p.n = ohw, p.k = cig * kh * kw;
    p.packed_a = panels[size_t(g)].get();
    if (direct) p.b = {o.input + n * xs[0] + g * cig * xs[1], xs[1], 1};
    else p.b_source = &sources[size_t(index)];
    p.c = o.out + (n * cout + g * cog) * ohw;
    p.ldc = ohw;
    p.epilogue = epilogue_for(o, n, g * cog, true, true, args.activation);
    return p;
  });
}

// The residual, then the activation, over finished output planes (conv_transpose2d with a
// residual, whose tiles are not in output coordinates, and the filter-in-place path).
template <class T>
void late_epilogue(const Operands<T>& o, const TensorView& out, const ConvArgs& args) {
  const gemm::KernelSet<T>& gemm_kernels = gemm::active_kernels().get<T>();
  const int64_t batch = out.shape[0], cout = out.shape[1], ohw = out.shape[2] * out.shape[3];
  parallel_for(0, batch * cout, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      const int64_t n = plane / cout, c = plane % cout;
      gemm_kernels.epilogue(1, ohw, o.out + plane * ohw, ohw, epilogue_for(o, n, c, false, true, args.activation));
    }
  });
}

// conv_transpose2d's window path. Every stride phase is a stride-1 correlation of the input
// with the phase's taps, tap t reading input row j + row offset, column i + column offset
// for grid pixel (j, i) (PhaseTaps::offsets). So one zero-padded band of input rows, from the
// smallest offset on, serves every phase: a tap is a slice of it at a fixed offset, read in
// place by micro_taps as conv2d_shifted reads its band. The band is copied once per (image,
// group, band of grid rows), where the general path packs an im2col panel per phase and K
// block (seed shape: that packing was a fifth of the time). Grids narrower than a
// microkernel panel stay on the general path, whose bands run across images.
constexpr int64_t kWindowMinGridWidth = 32;

struct TransposedWindow {
  int64_t wp = 0;                    // band row pitch: the widest grid plus the column offsets' span
  int64_t band_rows = 0;             // grid rows per band
  int64_t buffer_rows = 0;           // band rows held: band_rows plus the row offsets' span
  int64_t min_row = 0, min_col = 0;  // the smallest row and column offsets
  // A band row: `lead` zeros, then `inside` input columns from first_column, then zeros.
  int64_t lead = 0, first_column = 0, inside = 0;
  bool usable = false;
};

template <class T>
TransposedWindow transposed_window(const AxisPhases& rows, const AxisPhases& cols, const TensorView& input,
                                   int64_t groups, int64_t cog, const TensorView& out, Pair stride) {
  TransposedWindow g;
  if (rows.phases.empty() || cols.phases.empty()) return g;
  const int64_t w = input.shape[3], cig = input.shape[1] / groups, oh = out.shape[2], ow = out.shape[3];
  const int64_t grid_h_max = ceil_div(oh, stride[0]), grid_w_max = ceil_div(ow, stride[1]);
  const int64_t phases = std::min(stride[0], oh) * std::min(stride[1], ow);
  if (grid_w_max < kWindowMinGridWidth) return g;
  g.min_row = rows.taps[0].offsets[0], g.min_col = cols.taps[0].offsets[0];
  int64_t max_row = g.min_row, max_col = g.min_col;
  for (const PhaseTaps& t : rows.taps)
    for (int64_t v : t.offsets) g.min_row = std::min(g.min_row, v), max_row = std::max(max_row, v);
  for (const PhaseTaps& t : cols.taps)
    for (int64_t v : t.offsets) g.min_col = std::min(g.min_col, v), max_col = std::max(max_col, v);
  const int64_t too_far = kShiftedMaxBandBytes / int64_t(sizeof(T));
  if (max_row - g.min_row > too_far || max_col - g.min_col > too_far) return g;
  g.wp = grid_w_max + max_col - g.min_col;
  const int64_t budget = kPhaseTilesBytes / int64_t(sizeof(T));
  if (phases * cog * g.wp > budget) return g;
  g.band_rows = std::clamp<int64_t>(budget / (phases * cog * g.wp), 1, grid_h_max);
  g.buffer_rows = g.band_rows + max_row - g.min_row;
  g.first_column = std::clamp<int64_t>(g.min_col, 0, w);
  g.lead = g.first_column - g.min_col;
  g.inside = std::max<int64_t>(0, std::min(w, grid_w_max + max_col) - g.first_column);
  // (A row's lead zeros and inside columns fit its pitch whenever the output is not empty;
  // checked so that no geometry can write outside the band.)
  g.usable = g.lead >= 0 && g.lead + g.inside <= g.wp && cig * g.buffer_rows * g.wp <= too_far;
  return g;
}

template <class T>
void conv_transpose2d_window(const TensorView& input, const PackedConvWeight& weight, const TensorView& out,
                             const ConvArgs& args, const TransposedWindow& geo) {
  const ConvKernelsFor<T>& kernels = active_kernels().get<T>();
  const Operands<T> o = operands_of<T>(input, out, args);
  const PackedConvWeight::Filters<T>& filters = weight.filters<T>();
  const gemm::KernelSet<T>& ks = filters.window_panels[0]->kernels().template get<T>();
  const int64_t batch = input.shape[0], h = input.shape[2], w = input.shape[3];
  const int64_t groups = weight.groups(), cig = input.shape[1] / groups, cog = weight.weight_shape()[1];
  const int64_t cout = cog * groups, oh = out.shape[2], ow = out.shape[3], ohw = oh * ow;
  const int64_t sh = args.stride[0], sw = args.stride[1];
  const int64_t* xs = input.strides;
  const int64_t row_phases = std::min(sh, oh), col_phases = std::min(sw, ow);
  const int64_t grid_h_max = ceil_div(oh, sh);
  std::vector<int64_t> grid_h(static_cast<size_t>(row_phases));
  for (int64_t ry = 0; ry < row_phases; ++ry) grid_h[size_t(ry)] = phase_grid(oh, ry, sh);
  const int64_t wp = geo.wp, band_rows = geo.band_rows, bands = ceil_div(grid_h_max, band_rows);
  const int64_t plane = geo.buffer_rows * wp, tile_size = cog * band_rows * wp;
  const int64_t tap_rows = int64_t(filters.row_phases.phases.size());
  const int64_t tap_cols = int64_t(filters.col_phases.phases.size());
  const int64_t blocks = ceil_div(cig, kShiftedChannelBlock);
  // Where each tap of each phase set starts in the band, relative to the grid pixel.
  std::vector<std::vector<int64_t>> tap_offsets(size_t(tap_rows * tap_cols));
  int64_t furthest = 0;
  for (int64_t i = 0; i < tap_rows; ++i)
    for (int64_t j = 0; j < tap_cols; ++j)
      for (int64_t dy : filters.row_phases.taps[size_t(i)].offsets)
        for (int64_t dx : filters.col_phases.taps[size_t(j)].offsets) {
          tap_offsets[size_t(i * tap_cols + j)].push_back((dy - geo.min_row) * wp + dx - geo.min_col);
          furthest = std::max(furthest, tap_offsets[size_t(i * tap_cols + j)].back());
        }
  // The microkernel reads whole NR-column panels: the last one overruns the band's last
  // channel by up to NR columns, plus the furthest tap offset.
  const int64_t slack = ks.nr + furthest;
  const bool late_residual = o.residual != nullptr;
  const bool bias_in_tiles = !late_residual && args.activation != gemm::Activation::none;
  const gemm::Activation tile_activation = late_residual ? gemm::Activation::none : args.activation;
  const bool stream = batch * cout * ohw * int64_t(sizeof(T)) >= kStreamOutputBytes;
  const T* bias = bias_in_tiles || !o.bias ? nullptr : o.bias;
  parallel_for(0, batch * groups * bands, 1, [&](int64_t t0, int64_t t1) {
    thread_local Workspace band_buffer, tile_buffer, staging_buffer;
    T* band = band_buffer.get<T>(size_t(geo.lead + cig * plane + slack));
    T* tiles = tile_buffer.get<T>(size_t(row_phases * col_phases * tile_size));
    T* staging = stream ? staging_buffer.get<T>(size_t(sh * band_rows * ow)) : nullptr;
    // The zeros before the first channel's first row and after the last channel's last row
    // (each other channel's leading zeros end the channel before it).
    std::fill(band, band + geo.lead, T(0));
    std::fill(band + geo.lead + cig * plane, band + geo.lead + cig * plane + slack, T(0));
    thread_local std::vector<const T*> row_sources;
    thread_local std::vector<int64_t> row_ld;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / (groups * bands), g = t / bands % groups, b = t % bands;
      const int64_t j0 = b * band_rows, j1 = std::min(grid_h_max, j0 + band_rows);
      kernels.pad_band(o.input + n * xs[0] + g * cig * xs[1], xs[1], xs[2], xs[3], h, w, cig, j0 + geo.min_row, 1,
                       geo.buffer_rows, geo.first_column, 1, geo.inside, wp, band + geo.lead, plane);
      const auto tile = [&](int64_t ry, int64_t rx) { return tiles + (ry * col_phases + rx) * tile_size; };
      for (int64_t ry = 0; ry < row_phases; ++ry) {
        const int64_t columns = (std::min(j1, grid_h[size_t(ry)]) - j0) * wp;
        if (columns <= 0) continue;
        const int64_t i = filters.row_phases.find(ry);
        for (int64_t rx = 0; rx < col_phases; ++rx) {
          const int64_t j = filters.col_phases.find(rx);
          T* c = tile(ry, rx);
          if (i >= 0 && j >= 0) {
            window_tile(ks, &filters.window_panels[size_t(((g * tap_rows + i) * tap_cols + j) * blocks)], cig,
                        kShiftedChannelBlock, tap_offsets[size_t(i * tap_cols + j)], band, plane, columns, 0, cog, c);
          } else {
            std::fill(c, c + cog * columns, T(0));  // no tap reaches the phase: the bias alone
          }
          const gemm::Epilogue<T> e = epilogue_for(o, 0, g * cog, bias_in_tiles, false, tile_activation);
          if (!e.is_identity()) ks.epilogue(cog, columns, c, columns, e);
        }
      }
      // The band's output rows, every row phase together, contiguous in each output plane.
      const int64_t oy0 = sh * j0, oy1 = std::min(oh, sh * j1);
      row_sources.resize(size_t((oy1 - oy0) * col_phases));
      row_ld.resize(row_sources.size());
      for (int64_t oy = oy0; oy < oy1; ++oy) {
        const int64_t ry = oy % sh;
        for (int64_t rx = 0; rx < col_phases; ++rx) {
          const size_t at = size_t((oy - oy0) * col_phases + rx);
          row_sources[at] = tile(ry, rx) + (oy / sh - j0) * wp;
          row_ld[at] = (std::min(j1, grid_h[size_t(ry)]) - j0) * wp;
        }
      }
      kernels.store_rows(row_sources.data(), row_ld.data(), sw, cog, oy1 - oy0, ow,
                         o.out + (n * cout + g * cog) * ohw + oy0 * ow, ohw,
                         bias ? bias + g * cog * o.bias_stride : nullptr, o.bias_stride, stream, staging);
    }
    fence_streamed_stores(stream);
  });
  if (late_residual) late_epilogue(o, out, args);
}

// conv_transpose2d of images small next to the filter, with the filter read where it lies
// (a weight given as an array, or the dense copy a module keeps). Every input pixel times
// the whole filter,
//   P[(n, iy, ix), (co, ky, kx)] = sum over ci of x[n, ci, iy, ix] * w[ci, co, ky, kx],
// is one GEMM per group and chunk of images: the chunk's pixels as M rows (a small
// transposed copy of the input) times the filter as the [C_in/g, C_out/g * KH * KW] matrix
// it already is, which the small-M path streams in place. Each output then gathers its
// products (oy = iy*s - p + ky*d, and across): at most ceil(KH/s) x ceil(KW/s) of them,
// read, never scatter-added. The phase path instead packs the filter into stride-phase
// panels first, several passes over it (for a 512 -> 256 channel 4x4 filter, 8 MB, and one
// 4x4 image, three times the product), and multiplies every output pixel by its phase's
// taps, those that read padding included (a 1x1 latent under a 4x4 filter: 15 of 16).
// prefers_filter_in_place weighs the two.
//
// P holds one group's products for a chunk of images: at most this many bytes (it stays in
// L2 from the GEMM that writes it to the gathers that read it). One image's must fit.
constexpr int64_t kFilterInPlaceMaxBytes = int64_t(1) << 20;

// The pairs (kernel tap, input index) that output index o of one axis reads, for every o:
// pairs [start[o], start[o + 1]).
struct AxisGather {
  std::vector<int64_t> start, tap, index;
};

AxisGather axis_gather(int64_t out_size, int64_t in_size, int64_t kernel, int64_t stride, int64_t padding,
                       int64_t dilation) {
  AxisGather a;
  a.start.push_back(0);
  for (int64_t o = 0; o < out_size; ++o) {
    for (int64_t k = 0; k < kernel; ++k) {
      const int64_t at = o + padding - k * dilation;
      if (at >= 0 && at % stride == 0 && at / stride < in_size) a.tap.push_back(k), a.index.push_back(at / stride);
    }
    a.start.push_back(int64_t(a.tap.size()));
  }
  return a;
}

// (Counted in double: a broadcast input's planes can be far larger than memory.)
template <class T>
int64_t images_per_chunk(const TensorView& input, const Shape4& ws) {
  const double image = double(input.shape[2]) * double(input.shape[3]) * double(ws[1]) * double(ws[2]) * double(ws[3]);
  return int64_t(std::floor(double(kFilterInPlaceMaxBytes / int64_t(sizeof(T))) / std::max(image, 1.0)));
}

// Moving an element (packing a filter element, or writing a product and gathering it back)
// costs about this many multiply-adds of the GEMM. Measured, float32, one thread: packing a
// 512 -> 256 channel 4x4 filter (2 M elements) took ~2.5 ms, ~90 multiply-adds each at 150
// GFLOP/s; 256 -> 128 channels at 8x8, 4 images (as many products as filter elements), the
// two paths tied with the phase path packing its filter, and 64 -> 32 at 16x16 (4x as many
// products) the phase path was 1.3x faster.
constexpr double kMacsPerElementMoved = 64;

// The multiply-adds along one axis of the phase path: every output index takes every tap
// of its stride phase, the taps that read padding included.
double phase_taps_along(int64_t out_size, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation) {
  double taps = 0;
  for (int64_t r = 0; r < std::min(stride, out_size); ++r) {
    int64_t reaching = 0;
    for (int64_t k = 0; k < kernel; ++k) reaching += ((r + padding - k * dilation) % stride + stride) % stride == 0;
    taps += double(reaching) * double((out_size - r + stride - 1) / stride);
  }
  return taps;
}

// Whether the products path (conv_transpose2d_filter_in_place) is cheaper than the phase
// path, counted in multiply-adds: it multiplies every input pixel by every tap and moves
// each product twice; the phase path multiplies every output pixel by the taps of its phase
// (padding included: a 1x1 input under a 4x4 filter is 15/16 padding), in GEMM panels of
// NR pixels however few a phase's grid fills (4x4 grids at batch 1: 16 of 32), and, with a
// filter not packed yet, packs it first.
template <class T>
bool prefers_filter_in_place(const TensorView& input, const Shape4& ws, const TensorView& out, const ConvArgs& args,
                             bool filter_packed) {
  if (images_per_chunk<T>(input, ws) == 0) return false;
  const double pixels = double(input.shape[0] * input.shape[2] * input.shape[3]), cin = double(input.shape[1]);
  const double cog = double(ws[1]), taps = double(ws[2] * ws[3]), cout = cog * double(args.groups);
  const double in_place = pixels * cin * cog * taps + kMacsPerElementMoved * pixels * cout * taps;
  const int64_t nr = gemm::active_kernels().get<T>().nr;
  const int64_t grid = input.shape[0] * ceil_div(out.shape[2], args.stride[0]) * ceil_div(out.shape[3], args.stride[1]);
  const double panel_fill = double(grid) / double(std::max<int64_t>(ceil_div(grid, nr) * nr, 1));
  const double phase = double(input.shape[0]) * cout * (cin / double(args.groups)) *
                           phase_taps_along(out.shape[2], ws[2], args.stride[0], args.padding[0], args.dilation[0]) *
                           phase_taps_along(out.shape[3], ws[3], args.stride[1], args.padding[1], args.dilation[1]) /
                           std::max(panel_fill, 1e-9) +
                       (filter_packed ? 0 : kMacsPerElementMoved * cin * cog * taps);
  return in_place < phase;
}

// filter: the dense [C_in, C_out/g, KH, KW] weight of shape ws.
template <class T>
void conv_transpose2d_filter_in_place(const TensorView& input, const T* filter, const Shape4& ws,
                                      const TensorView& out, const ConvArgs& args) {
  const Operands<T> o = operands_of<T>(input, out, args);
  const int64_t batch = input.shape[0], h = input.shape[2], w = input.shape[3], hw = h * w;
  const int64_t groups = args.groups, cig = input.shape[1] / groups, cog = ws[1];
  const int64_t kh = ws[2], kw = ws[3], taps = kh * kw, columns = cog * taps;
  const int64_t cout = cog * groups, oh = out.shape[2], ow = out.shape[3], ohw = oh * ow;
  if (batch == 0 || cout == 0 || ohw == 0) return;
  // Output pixel q of an image sums its products at image + offsets[start[q] .. start[q + 1])
  // (image: the image's products of its output channel), rows of taps in increasing order.
  std::vector<int64_t> start(static_cast<size_t>(ohw + 1)), offsets;
  {
    const AxisGather rows = axis_gather(oh, h, kh, args.stride[0], args.padding[0], args.dilation[0]);
    const AxisGather cols = axis_gather(ow, w, kw, args.stride[1], args.padding[1], args.dilation[1]);
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        for (int64_t r = rows.start[size_t(oy)]; r < rows.start[size_t(oy) + 1]; ++r)
          for (int64_t c = cols.start[size_t(ox)]; c < cols.start[size_t(ox) + 1]; ++c)
            offsets.push_back((rows.index[size_t(r)] * w + cols.index[size_t(c)]) * columns +
                              rows.tap[size_t(r)] * kw + cols.tap[size_t(c)]);
        start[size_t(oy * ow + ox + 1)] = int64_t(offsets.size());
      }
  }
  const int64_t chunk = std::min(batch, images_per_chunk<T>(input, ws));
  // A's column ci: input channel ci of the group over the chunk's pixels.
  thread_local Workspace a_buffer, products_buffer;
  T* pixels_by_channel = a_buffer.get<T>(size_t(cig * chunk * hw));
  T* products = products_buffer.get<T>(size_t(chunk * hw * columns));
  const int64_t* xs = input.strides;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t n0 = 0; n0 < batch; n0 += chunk) {
      const int64_t images = std::min(chunk, batch - n0), pixels = images * hw;
      for (int64_t ci = 0; ci < cig; ++ci) {
        T* to = pixels_by_channel + ci * pixels;
        for (int64_t n = n0; n < n0 + images; ++n)
          for (int64_t iy = 0; iy < h; ++iy)
            for (int64_t ix = 0; ix < w; ++ix)
              *to++ = o.input[n * xs[0] + (g * cig + ci) * xs[1] + iy * xs[2] + ix * xs[3]];
      }
      gemm::gemm<T>(pixels, columns, cig, gemm::MatrixRef<T>{pixels_by_channel, 1, pixels},
                    gemm::MatrixRef<T>{filter + g * cig * columns, columns, 1}, products, columns);
      parallel_for(0, images * cog, 1, [&](int64_t p0, int64_t p1) {
        for (int64_t plane = p0; plane < p1; ++plane) {
          const int64_t n = plane / cog, co = plane % cog;
          const T bias = o.bias ? o.bias[(g * cog + co) * o.bias_stride] : T(0);
          const T* image = products + n * hw * columns + co * taps;
          T* dst = o.out + ((n0 + n) * cout + g * cog + co) * ohw;
          const int64_t* offset = offsets.data();
          for (int64_t q = 0; q < ohw; ++q) {
            T sum = 0;
            for (const int64_t* end = offsets.data() + start[size_t(q) + 1]; offset < end; ++offset)
              sum += image[*offset];
            dst[q] = sum + bias;
          }
        }
      });
    }
  if (o.residual || args.activation != gemm::Activation::none) late_epilogue(o, out, args);
}

// conv_transpose2d of small images under a filter kept for many calls, without the products
// that fall outside the output. Input index i of an axis reaches output i * s - p + k * d
// through tap k, which for the indices at the image's border leaves the output for some k
// (a 4x4/2 filter with padding 1 on 4x4 images: 23% of all products), and the phase path
// multiplies those products' zeros as much as the products path computes and drops them.
// Here the input pixels are grouped by the taps that stay inside (per axis one run of k,
// so at most a few classes: 9 for that layer), and each class multiplies only its own taps:
//   P[tap][pixel][co] = sum over ci of x[n, ci, pixel] * w[ci, co, tap]
// as one GEMM per (class, tap), the class's pixels packed once as A and each tap's
// [C_in/g, C_out/g] slice of the filter packed as B (tap_columns: once for a kept filter, for
// the call for a weight given as an array). Each
// output pixel then gathers its products across the channels, in a pixel-major tile that
// is transposed into the NCHW plane with the bias.
//
// Products of a chunk of images stay within this many bytes (in L2 and L3 between the GEMMs
// and the gathers).
constexpr int64_t kBorderProductsBytes = int64_t(2) << 20;

// Per axis: for every input index its run of taps that land inside the output, and the
// distinct runs (the axis' classes).
struct BorderAxis {
  std::vector<std::pair<int64_t, int64_t>> runs;  // the classes' tap runs [first, end)
  std::vector<int64_t> class_of;                  // per input index
};

BorderAxis border_axis(int64_t in_size, int64_t out_size, int64_t kernel, int64_t stride, int64_t padding,
                       int64_t dilation) {
  BorderAxis a;
  for (int64_t i = 0; i < in_size; ++i) {
    int64_t lo = 0, hi = kernel;
    while (lo < kernel && i * stride - padding + lo * dilation < 0) ++lo;
    while (hi > lo && i * stride - padding + (hi - 1) * dilation >= out_size) --hi;
    const std::pair<int64_t, int64_t> run{lo, hi};
    auto at = std::find(a.runs.begin(), a.runs.end(), run);
    if (at == a.runs.end()) at = a.runs.insert(a.runs.end(), run);
    a.class_of.push_back(int64_t(at - a.runs.begin()));
  }
  return a;
}

// The products inside the output over all the products: what the border classes save.
double border_products_inside(const TensorView& input, const Shape4& ws, const TensorView& out, const ConvArgs& args) {
  const BorderAxis rows = border_axis(input.shape[2], out.shape[2], ws[2], args.stride[0], args.padding[0],
                                      args.dilation[0]);
  const BorderAxis cols = border_axis(input.shape[3], out.shape[3], ws[3], args.stride[1], args.padding[1],
                                      args.dilation[1]);
  double inside_y = 0, inside_x = 0;
  for (int64_t c : rows.class_of) inside_y += double(rows.runs[size_t(c)].second - rows.runs[size_t(c)].first);
  for (int64_t c : cols.class_of) inside_x += double(cols.runs[size_t(c)].second - cols.runs[size_t(c)].first);
  return inside_y * inside_x / std::max(1.0, double(input.shape[2] * ws[2]) * double(input.shape[3] * ws[3]));
}

// The border-class path takes small images (at most this many pixels: the phase grids of
// larger ones fill the window path's panels) whose products are at most this fraction inside.
constexpr int64_t kBorderMaxImagePixels = 64;
constexpr double kBorderMaxInside = 0.9;

bool takes_border_classes(const TensorView& input, const Shape4& ws, const TensorView& out, const ConvArgs& args) {
  return input.shape[2] * input.shape[3] <= kBorderMaxImagePixels &&
         border_products_inside(input, ws, out, args) <= kBorderMaxInside;
}

template <class T>
bool takes_border_classes(const PackedConvWeight::Filters<T>& filters, const TensorView& input, const Shape4& ws,
                          const TensorView& out, const ConvArgs& args) {
  return (!filters.dense.empty() || !filters.tap_columns.empty()) && takes_border_classes(input, ws, out, args);
}

template <class T>
void conv_transpose2d_border_classes(const TensorView& input, const PackedConvWeight& weight,
                                     const TensorView& out, const ConvArgs& args) {
  const ConvKernelsFor<T>& kernels = active_kernels().get<T>();
  const Operands<T> o = operands_of<T>(input, out, args);
  const PackedConvWeight::Filters<T>& filters = weight.filters<T>();
  const Shape4& ws = weight.weight_shape();
  const int64_t batch = input.shape[0], h = input.shape[2], w = input.shape[3], hw = h * w;
  const int64_t groups = args.groups, cig = input.shape[1] / groups, cog = ws[1];
  const int64_t kh = ws[2], kw = ws[3], taps = kh * kw;
  const int64_t cout = cog * groups, oh = out.shape[2], ow = out.shape[3], ohw = oh * ow;
  // (A filter packed for one call holds only these sets, made as it was packed, and no dense
  // copy.)
  std::call_once(filters.tap_columns_once, [&] {
    if (!filters.dense.empty())
      filters.tap_columns = tap_columns_of<T>(filters.dense.data(), groups, cig, cog, taps, nullptr);
  });
  const BorderAxis rows = border_axis(h, oh, kh, args.stride[0], args.padding[0], args.dilation[0]);
  const BorderAxis cols = border_axis(w, ow, kw, args.stride[1], args.padding[1], args.dilation[1]);
  const int64_t classes = int64_t(rows.runs.size() * cols.runs.size());
  // A chunk's rows of A hold the pixels class by class, image by image within a class: an
  // image's class c pixels start at class_start[c] in class order, and pixel q of image n is
  // row first_row[q] + n * class_pixels[q] of a chunk.
  std::vector<int64_t> class_start(static_cast<size_t>(classes + 1), 0);
  std::vector<int64_t> first_row(static_cast<size_t>(hw)), class_pixels(static_cast<size_t>(hw));
  const auto class_of = [&](int64_t q) {
    return rows.class_of[size_t(q / w)] * int64_t(cols.runs.size()) + cols.class_of[size_t(q % w)];
  };
  for (int64_t q = 0; q < hw; ++q) ++class_start[size_t(class_of(q) + 1)];
  for (int64_t c = 0; c < classes; ++c) class_start[size_t(c + 1)] += class_start[size_t(c)];
  {
    std::vector<int64_t> placed(class_start.begin(), class_start.end() - 1);
    for (int64_t q = 0; q < hw; ++q) {
      const auto c = size_t(class_of(q));
      first_row[size_t(q)] = placed[c]++ - class_start[c];  // its place within the class
      class_pixels[size_t(q)] = class_start[c + 1] - class_start[c];
    }
  }
  const auto a_row = [&](int64_t q, int64_t n, int64_t images) {
    const auto c = size_t(class_of(q));
    return class_start[c] * images + first_row[size_t(q)] + n * class_pixels[size_t(q)];
  };
  const AxisGather gather_rows = axis_gather(oh, h, kh, args.stride[0], args.padding[0], args.dilation[0]);
  const AxisGather gather_cols = axis_gather(ow, w, kw, args.stride[1], args.padding[1], args.dilation[1]);
  const int64_t chunk = std::clamp<int64_t>(
      kBorderProductsBytes / int64_t(sizeof(T)) / std::max<int64_t>(1, taps * hw * cog), 1, batch);
  const int64_t* xs = input.strides;
  const bool stream = batch * cout * ohw * int64_t(sizeof(T)) >= kStreamOutputBytes;
  thread_local Workspace a_buffer, products_buffer;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t n0 = 0; n0 < batch; n0 += chunk) {
      const int64_t images = std::min(chunk, batch - n0), pixels = images * hw;
      // A: the chunk's pixels, class by class (image by image within a class), by channel.
      T* a = a_buffer.get<T>(size_t(pixels * cig));
      T* products = products_buffer.get<T>(size_t(taps * pixels * cog));
      parallel_for(0, images * hw, 1, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t n = r / hw, q = r % hw, row = a_row(q, n, images);
          const T* src = o.input + (n0 + n) * xs[0] + g * cig * xs[1] + (q / w) * xs[2] + (q % w) * xs[3];
          for (int64_t ci = 0; ci < cig; ++ci) a[row * cig + ci] = src[ci * xs[1]];
        }
      });
      // One product per (class, tap inside), each on one thread, tap by tap so that a tap's
      // B panels serve its classes from L2.
      std::vector<std::array<int64_t, 2>> work;
      for (int64_t tap = 0; tap < taps; ++tap)
        for (int64_t c = 0; c < classes; ++c) {
          const auto [ky0, ky1] = rows.runs[size_t(c / int64_t(cols.runs.size()))];
          const auto [kx0, kx1] = cols.runs[size_t(c % int64_t(cols.runs.size()))];
          if (class_start[size_t(c + 1)] > class_start[size_t(c)] && tap / kw >= ky0 && tap / kw < ky1 &&
              tap % kw >= kx0 && tap % kw < kx1)
            work.push_back({c, tap});
        }
      parallel_for(0, int64_t(work.size()), 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const auto [c, tap] = work[size_t(t)];
          const int64_t first = class_start[size_t(c)] * images;
          gemm::GemmProblem<T> p;
          p.m = (class_start[size_t(c + 1)] - class_start[size_t(c)]) * images, p.n = cog, p.k = cig;
          p.a = gemm::MatrixRef<T>{a + first * cig, cig, 1};
          p.packed_b = filters.tap_columns[size_t(g * taps + tap)].get();
          p.c = products + (tap * pixels + first) * cog, p.ldc = cog;
          gemm::gemm_on_this_thread(p);
        }
      });
      // Each output pixel gathers its products across the channels, into a pixel-major tile.
      parallel_for(0, images, 1, [&](int64_t i0, int64_t i1) {
        thread_local Workspace tile_buffer, staging_buffer;
        T* tile = tile_buffer.get<T>(size_t(ohw * cog));
        T* staging = stream ? staging_buffer.get<T>(size_t(kTransposeBlock * ohw)) : nullptr;
        for (int64_t n = i0; n < i1; ++n) {
          for (int64_t oy = 0; oy < oh; ++oy)
            for (int64_t ox = 0; ox < ow; ++ox) {
              T* acc = tile + (oy * ow + ox) * cog;
              std::fill(acc, acc + cog, T(0));
              for (int64_t r = gather_rows.start[size_t(oy)]; r < gather_rows.start[size_t(oy) + 1]; ++r)
                for (int64_t q = gather_cols.start[size_t(ox)]; q < gather_cols.start[size_t(ox) + 1]; ++q) {
                  const int64_t tap = gather_rows.tap[size_t(r)] * kw + gather_cols.tap[size_t(q)];
                  const int64_t pixel = gather_rows.index[size_t(r)] * w + gather_cols.index[size_t(q)];
                  const T* src = products + (tap * pixels + a_row(pixel, n, images)) * cog;
                  for (int64_t co = 0; co < cog; ++co) acc[co] += src[co];
                }
            }
          kernels.store_band_transposed(tile, cog, ohw, cog, o.out + ((n0 + n) * cout + g * cog) * ohw, ohw,
                                        o.bias ? o.bias + g * cog * o.bias_stride : nullptr, o.bias_stride, stream,
                                        staging);
        }
        fence_streamed_stores(stream);
      });
    }
  if (o.residual || args.activation != gemm::Activation::none) late_epilogue(o, out, args);
}

template <class T>
void conv_transpose2d_typed(const TensorView& input, const PackedConvWeight& weight, const TensorView& out,
                            const ConvArgs& args) {
  const ConvKernelsFor<T>& kernels = active_kernels().get<T>();
  const Operands<T> o = operands_of<T>(input, out, args);
  const PackedConvWeight::Filters<T>& filters = weight.filters<T>();
  const int64_t batch = input.shape[0], h = input.shape[2], w = input.shape[3];
  const int64_t groups = weight.groups(), cig = input.shape[1] / groups, cog = weight.weight_shape()[1];
  const int64_t cout = cog * groups, oh = out.shape[2], ow = out.shape[3], ohw = oh * ow;
  const int64_t sh = args.stride[0], sw = args.stride[1];
  const int64_t* xs = input.strides;
  if (batch == 0 || cout == 0 || ohw == 0) return;
  if (!filters.dense.empty() && prefers_filter_in_place<T>(input, weight.weight_shape(), out, args, true))
    return conv_transpose2d_filter_in_place<T>(input, filters.dense.data(), weight.weight_shape(), out, args);
  if (takes_border_classes<T>(filters, input, weight.weight_shape(), out, args))
    return conv_transpose2d_border_classes<T>(input, weight, out, args);
  // (A filter packed for one call holds the window panels exactly when this path takes
  // them: see pack_for_call.)
  if (!filters.window_panels.empty()) {
    const TransposedWindow window =
        transposed_window<T>(filters.row_phases, filters.col_phases, input, groups, cog, out, args.stride);
    if (window.usable) {
      conv_transpose2d_window<T>(input, weight, out, args, window);
      return;
    }
  }
  TENSOROPS_CHECK(!filters.panels.empty(), "conv_transpose2d: the packed filter lacks the panels of the general path");
  // Phase (ry, rx) covers output rows ry, ry + sh, ... and columns rx, rx + sw, ...
  const int64_t grid_h_max = ceil_div(oh, sh), grid_w_max = ceil_div(ow, sw);
  // A task is a band of phase-grid rows of one group. Rows count across images (row r is
  // grid row r % grid_h of image r / grid_h), so the small grids of a generator's early
  // layers still fill the GEMM's panels.
  // Column phases past the output width are empty: a huge stride costs nothing.
  const int64_t col_phases = std::min(sw, ow), row_phases = std::min(sh, oh);
  // A band's tiles cover a chunk of row phases: all of them, so that the band's output rows
  // are stored in order, contiguous in each plane; only when one grid row of every row phase
  // exceeds the budget (huge strides), a band is one grid row and the chunk as many
  // consecutive row phases as fit.
  const int64_t budget = kPhaseTilesBytes / int64_t(sizeof(T));
  const int64_t grid_row_elements = std::max<int64_t>(col_phases * cog * grid_w_max, 1);
  const int64_t row_chunk = std::clamp<int64_t>(budget / grid_row_elements, 1, row_phases);
  const int64_t band_rows =
      row_chunk < row_phases
          ? 1
          : std::clamp<int64_t>(budget / (row_phases * grid_row_elements), 1, batch * grid_h_max);
  const int64_t bands = ceil_div(batch * grid_h_max, band_rows), chunks = ceil_div(row_phases, row_chunk);
  const int64_t tile_size = cog * band_rows * grid_w_max;
  // With a residual, the activation must follow the residual, which lies in output
  // coordinates: both are applied in a last pass. Otherwise an activation runs in the GEMM
  // epilogue (after the bias), and without one the bias is added as the tiles are stored.
  const bool late_residual = o.residual != nullptr;
  const bool bias_in_gemm = !late_residual && args.activation != gemm::Activation::none;
  const gemm::Activation tile_activation = late_residual ? gemm::Activation::none : args.activation;
  const bool stream = batch * cout * ohw * int64_t(sizeof(T)) >= kStreamOutputBytes;
  std::vector<int64_t> grid_w(static_cast<size_t>(col_phases)), grid_h(static_cast<size_t>(row_phases));
  for (int64_t rx = 0; rx < col_phases; ++rx) grid_w[size_t(rx)] = phase_grid(ow, rx, sw);
  for (int64_t ry = 0; ry < row_phases; ++ry) grid_h[size_t(ry)] = phase_grid(oh, ry, sh);
  const int64_t tap_rows = int64_t(filters.row_phases.phases.size()), tap_cols = int64_t(filters.col_phases.phases.size());
  const T* bias = bias_in_gemm || !o.bias ? nullptr : o.bias;
  parallel_for(0, groups * bands * chunks, 1, [&](int64_t t0, int64_t t1) {
    thread_local Workspace tile_buffer, staging_buffer;
    T* tile_memory = tile_buffer.get<T>(size_t(row_chunk * col_phases * tile_size));
    T* staging = stream ? staging_buffer.get<T>(size_t(row_chunk * band_rows * ow)) : nullptr;
    // Per task: the first phase-grid row of each row phase's tiles, each tile's row stride
    // (one channel's pixels), and per output row its column phases' tile rows.
    thread_local std::vector<int64_t> first_row, tile_ld, row_ld;
    thread_local std::vector<const T*> row_sources;
    first_row.assign(size_t(row_chunk), 0);
    tile_ld.assign(size_t(row_chunk * col_phases), 0);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / (bands * chunks), band = t / chunks % bands, ra = t % chunks * row_chunk;
      const int64_t rb = std::min(ra + row_chunk, row_phases);
      const int64_t r0 = band * band_rows, r1 = std::min(r0 + band_rows, batch * grid_h_max);
      const auto tile = [&](int64_t ry, int64_t rx) { return tile_memory + ((ry - ra) * col_phases + rx) * tile_size; };
      for (int64_t ry = ra; ry < rb; ++ry) {
        // This phase's rows of the band, in (image, grid row) order. Rows j >= grid_h of an
        // image exist only in phases with the longest grid.
        const int64_t rows_per_image = grid_h[size_t(ry)];
        auto phase_row = [&](int64_t r) {
          return (r / grid_h_max) * rows_per_image + std::min(r % grid_h_max, rows_per_image);
        };
        const int64_t p0 = phase_row(r0), p1 = phase_row(r1);
        first_row[size_t(ry - ra)] = p0;
        if (p0 >= p1) continue;
        const int64_t i = filters.row_phases.find(ry);
        for (int64_t rx = 0; rx < col_phases; ++rx) {
          const int64_t j = filters.col_phases.find(rx);
          gemm::GemmProblem<T> p;
          p.m = cog, p.n = (p1 - p0) * grid_w[size_t(rx)], p.k = 0;
          p.c = tile(ry, rx), p.ldc = p.n;
          std::optional<Im2colSource<T>> source;
          if (i >= 0 && j >= 0) {
            // (With no tap reaching the phase, k = 0 leaves the epilogue: bias only.)
            const PhaseTaps& rows = filters.row_phases.taps[size_t(i)];
            const PhaseTaps& cols = filters.col_phases.taps[size_t(j)];
            const Im2colView<T> view{o.input + g * cig * xs[1], xs[1], xs[2], xs[3], h, w, 1, 1,
                                     rows.offsets.data(), int64_t(rows.taps.size()), cols.offsets.data(),
                                     int64_t(cols.taps.size())};
            source.emplace(kernels, view, rows_per_image, grid_w[size_t(rx)], p0, xs[0]);
            p.k = cig * view.taps_y * view.taps_x;
            p.packed_a = filters.panels[size_t((g * tap_rows + i) * tap_cols + j)].get();
            p.b_source = &*source;
          }
          // The epilogue's bias is per channel, the same in every image (n = 0).
          p.epilogue = epilogue_for(o, 0, g * cog, bias_in_gemm, false, tile_activation);
          gemm::gemm_on_this_thread(p);
          tile_ld[size_t((ry - ra) * col_phases + rx)] = p.ldc;
        }
      }
      // Store image by image: the band's grid rows [j0, j1) of image n hold its output rows
      // [sh * j0 + ra, sh * (j1 - 1) + rb), contiguous in each output plane (a chunk short of
      // every row phase comes with a band of one grid row).
      for (int64_t r = r0; r < r1;) {
        const int64_t n = r / grid_h_max, j0 = r % grid_h_max, j1 = std::min(grid_h_max, j0 + (r1 - r));
        const int64_t oy0 = sh * j0 + ra, oy1 = std::min(oh, sh * (j1 - 1) + rb);
        row_sources.resize(size_t(std::max<int64_t>(oy1 - oy0, 0) * col_phases));
        row_ld.resize(row_sources.size());
        for (int64_t oy = oy0; oy < oy1; ++oy) {
          const int64_t ry = oy % sh, q = n * grid_h[size_t(ry)] + oy / sh - first_row[size_t(ry - ra)];
          for (int64_t rx = 0; rx < col_phases; ++rx) {
            const size_t at = size_t((oy - oy0) * col_phases + rx);
            row_sources[at] = tile(ry, rx) + q * grid_w[size_t(rx)];
            row_ld[at] = tile_ld[size_t((ry - ra) * col_phases + rx)];
          }
        }
        if (oy1 > oy0)
          kernels.store_rows(row_sources.data(), row_ld.data(), sw, cog, oy1 - oy0, ow,
                             o.out + (n * cout + g * cog) * ohw + oy0 * ow, ohw,
                             bias ? bias + g * cog * o.bias_stride : nullptr, o.bias_stride, stream, staging);
        r += j1 - j0;
      }
    }
    fence_streamed_stores(stream);
  });
  if (late_residual) late_epilogue(o, out, args);
}

// What every call relies on, whichever form its filter takes: weight_shape is the
// [C_out, C_in/g, KH, KW] or (transposed) [C_in, C_out/g, KH, KW] filter's.
void check_call(const TensorView& input, const Shape4& ws, DType weight_dtype, const TensorView& out,
                const ConvArgs& args, const char* op, bool transposed) {
  TENSOROPS_CHECK(input.ndim == 4 && out.ndim == 4, std::string(op) + ": input and output must be 4-D");
  TENSOROPS_CHECK(input.dtype == weight_dtype && out.dtype == weight_dtype,
                  std::string(op) + ": input, weight and output must share a dtype");
  TENSOROPS_CHECK(out.is_contiguous(), std::string(op) + ": output must be C-contiguous");
  TENSOROPS_CHECK(args.groups >= 1 && ws[0] % args.groups == 0,
                  std::string(op) + ": groups must be positive and divide the weight's first dimension");
  const int64_t in_channels = transposed ? ws[0] : ws[1] * args.groups;
  const int64_t out_channels = transposed ? ws[1] * args.groups : ws[0];
  TENSOROPS_CHECK(input.shape[1] == in_channels, std::string(op) + ": input channels do not match the weight");
  TENSOROPS_CHECK(out.shape[0] == input.shape[0] && out.shape[1] == out_channels,
                  std::string(op) + ": output shape does not match the input and weight");
  for (int i = 0; i < 2; ++i)
    TENSOROPS_CHECK(args.stride[i] >= 1 && args.dilation[i] >= 1 && args.padding[i] >= 0,
                    std::string(op) + ": stride and dilation must be positive and padding non-negative");
  if (args.bias)
    TENSOROPS_CHECK(args.bias->ndim == 1 && args.bias->shape[0] == out.shape[1] && args.bias->dtype == out.dtype,
                    std::string(op) + ": bias must be a [C_out] array of the output's dtype");
  if (args.residual) {
    const TensorView& r = *args.residual;
    TENSOROPS_CHECK(r.ndim == 4 && r.dtype == out.dtype, std::string(op) + ": residual must be 4-D of the output's dtype");
    for (int d = 0; d < 4; ++d)
      TENSOROPS_CHECK(r.shape[d] == out.shape[d], std::string(op) + ": residual must have the output's shape");
    TENSOROPS_CHECK(r.shape[2] <= 1 || r.shape[3] == 1 || r.strides[2] == r.strides[3] * r.shape[3],
                    std::string(op) + ": residual rows must fold into one (make it contiguous)");
  }
}

void check_call(const TensorView& input, const PackedConvWeight& weight, const TensorView& out, const ConvArgs& args,
                const char* op, bool transposed) {
  TENSOROPS_CHECK(weight.transposed() == transposed,
                  std::string(op) + ": the packed weight was made for " + (transposed ? "conv2d" : "conv_transpose2d"));
  TENSOROPS_CHECK(args.groups == weight.groups(), std::string(op) + ": groups differ from the packed weight's");
  if (transposed)
    TENSOROPS_CHECK(args.stride == weight.stride() && args.padding == weight.padding() && args.dilation == weight.dilation(),
                    std::string(op) + ": stride, padding and dilation differ from the packed weight's");
  check_call(input, weight.weight_shape(), weight.dtype(), out, args, op, transposed);
}

}  // namespace

void conv2d(const TensorView& input, const PackedConvWeight& weight, const TensorView& out, const ConvArgs& args) {
  check_call(input, weight, out, args, "conv2d", false);
  if (weight.dtype() == DType::float32) conv2d_typed<float>(input, weight, out, args);
  else conv2d_typed<double>(input, weight, out, args);
}

void conv_transpose2d(const TensorView& input, const PackedConvWeight& weight, const TensorView& out,
                      const ConvArgs& args) {
  check_call(input, weight, out, args, "conv_transpose2d", true);
  if (weight.dtype() == DType::float32) conv_transpose2d_typed<float>(input, weight, out, args);
  else conv_transpose2d_typed<double>(input, weight, out, args);
}

namespace {

template <class T>
PackedConvWeight::Panels panels_for_call(const TensorView& weight, bool transposed, const TensorView& input,
                                         const TensorView& out, const ConvArgs& args) {
  bool window;
  if (transposed) {
    const Shape4 shape{weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3]};
    if (takes_border_classes(input, shape, out, args)) return PackedConvWeight::Panels::border;
    const AxisPhases rows = axis_phases(weight.shape[2], args.stride[0], args.padding[0], args.dilation[0]);
    const AxisPhases cols = axis_phases(weight.shape[3], args.stride[1], args.padding[1], args.dilation[1]);
    window = transposed_window<T>(rows, cols, input, args.groups, weight.shape[1], out, args.stride).usable;
  } else {
    const Shape4 shape{weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3]};
    window = shifted_geometry<T>(input, shape, args.groups, gemm::active_kernels().get<T>(), out, args).usable;
  }
  return window ? PackedConvWeight::Panels::shifted : PackedConvWeight::Panels::general;
}

// The filter of one call whose weight came as an array (packed per call, as torch's
// functional convolutions reorder theirs): only the panel set that the call's path reads.
std::unique_ptr<PackedConvWeight> pack_for_call(const TensorView& weight, const TensorView& input,
                                                const TensorView& out, const ConvArgs& args, bool transposed) {
  auto panels = PackedConvWeight::Panels::all;
  // (Malformed calls are refused by the constructor or by the call's own checks. A
  // depthwise filter has no panels to choose between.)
  if (weight.ndim == 4 && input.ndim == 4 && out.ndim == 4 && args.groups >= 1 && weight.shape[0] % args.groups == 0 &&
      !PackedConvWeight::is_depthwise(weight, args.groups, transposed)) {
    if (weight.dtype == DType::float32) panels = panels_for_call<float>(weight, transposed, input, out, args);
    else if (weight.dtype == DType::float64) panels = panels_for_call<double>(weight, transposed, input, out, args);
  }
  return std::make_unique<PackedConvWeight>(weight, args.groups, transposed, args.stride, args.padding, args.dilation,
                                            panels);
}

}  // namespace

void conv2d(const TensorView& input, const TensorView& weight, const TensorView& out, const ConvArgs& args) {
  conv2d(input, *pack_for_call(weight, input, out, args, false), out, args);
}

void conv_transpose2d(const TensorView& input, const TensorView& weight, const TensorView& out, const ConvArgs& args) {
  TENSOROPS_CHECK(weight.ndim == 4, "conv_transpose2d: weight must be 4-D");
  const Shape4 ws{weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3]};
  check_call(input, ws, weight.dtype, out, args, "conv_transpose2d", true);
  if (weight.dtype == DType::float32 && prefers_filter_in_place<float>(input, ws, out, args, false))
    return conv_transpose2d_filter_in_place<float>(input, DenseWeight<float>(weight).data(), ws, out, args);
  if (weight.dtype == DType::float64 && prefers_filter_in_place<double>(input, ws, out, args, false))
    return conv_transpose2d_filter_in_place<double>(input, DenseWeight<double>(weight).data(), ws, out, args);
  conv_transpose2d(input, *pack_for_call(weight, input, out, args, true), out, args);
}

}  // namespace tensorops::conv
