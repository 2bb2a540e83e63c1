#include "norm/norm.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/dispatch.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/streaming.h"
#include "core/workspace.h"

namespace tensorops::norm {

TENSOROPS_KERNEL_TABLES(NormKernels)

namespace {

template <class T>
const NormKernelsOf<T>& kernels_for();
template <>
const NormKernelsOf<float>& kernels_for<float>() { return select_kernels(kernel_tables()).f32; }
template <>
const NormKernelsOf<double>& kernels_for<double>() { return select_kernels(kernel_tables()).f64; }

// Elements per parallel task: enough to amortise waking a thread.
constexpr int64_t kGrainElements = 1 << 15;

int64_t grain_for(int64_t elements_per_item) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, elements_per_item));
}

// Chan et al.'s pairwise update: acc absorbs part. Called in a fixed order only.
void merge(Moments& acc, const Moments& part) {
  if (part.count == 0) return;
  if (acc.count == 0) {
    acc = part;
    return;
  }
  const double n = acc.count + part.count;
  const double delta = part.mean - acc.mean;
  if (std::isfinite(delta)) {
    acc.mean += delta * (part.count / n);
    acc.m2 += part.m2 + delta * delta * (acc.count * part.count / n);
  } else {
    // An infinite mean on either side: the weighted sum keeps inf + inf = inf (and
    // inf - inf = NaN), as a plain sum would; M2 is NaN already in the infinite part.
    acc.mean = acc.mean * (acc.count / n) + part.mean * (part.count / n);
    acc.m2 += part.m2 + delta * delta;
  }
  acc.count = n;
}

// Per-channel coefficients of y = (x - mean) * scale + shift, scale = weight / sqrt(var + eps).
template <class T>
struct Coefficients {
  std::vector<T> mean, scale, shift;
  explicit Coefficients(int64_t channels) : mean(channels), scale(channels), shift(channels) {}
  void set(int64_t c, double m, double var, double eps, double weight, double bias) {
    mean[c] = static_cast<T>(m);
    scale[c] = static_cast<T>(weight / std::sqrt(var + eps));
    shift[c] = static_cast<T>(bias);
  }
};

// Optional per-channel parameter (contiguous) with a default where absent.
template <class T>
double param(const TensorView& v, int64_t i, double absent) {
  return v.data ? static_cast<double>(v.ptr<const T>()[i]) : absent;
}

// running = (1 - momentum) * running + momentum * value, in place at any stride.
template <class T>
void blend(const TensorView& running, int64_t i, double momentum, double value) {
  T* p = running.ptr<T>() + i * running.strides[0];
  *p = static_cast<T>((1.0 - momentum) * static_cast<double>(*p) + momentum * value);
}

template <class T>
double at(const TensorView& running, int64_t i) {
  return static_cast<double>(running.ptr<const T>()[i * running.strides[0]]);
}

struct Layout {
  int64_t n, c, s;  // batch, channels, spatial elements per plane
};

Layout channel_layout(const TensorView& in) {
  Layout l{in.shape[0], in.shape[1], 1};
  for (int d = 2; d < in.ndim; ++d) l.s *= in.shape[d];
  return l;
}

// Normalising of planes of `plane` elements, `channels` of them a period (plane k takes
// channel k % channels), as runs across planes: the coefficients tiled through the period,
// each repeated `plane` times, into arrays `span + period` long, so that a run of up to span
// elements starting anywhere in the period reads its per-element coefficients from one
// offset (normalize_columns). span holds whole periods and whole cache lines where those
// meet within 4096 elements, so after a first run up to a line boundary every run of a
// streamed output leaves in whole lines; and at least 256 elements, the fewest that did not
// lose to the calls' overhead (spans of 1024 and more lost to the coefficient arrays'
// footprint: 2000x64x15 1.45x the time, 100001x31 1.10x). Plane by plane, each plane of
// (N, C) data (one element) or of short planes was a call with a masked tail: Zen 4, 1
// thread, one process alternating the two, eval batch norm on 400000x7 took 0.15x the time,
// 200000x16 0.28x, 100001x31 0.36x, 50000x64 0.61x, 12500x256 0.84x, 3000x100x3 0.06x;
// rows of 768 and more lost 0-6% (coefficient arrays past L1), so (N, C) data keeps
// row-by-row calls past kPeriodicMaxChannels.
constexpr int64_t kPeriodicMaxChannels = 256, kPeriodicMaxPeriod = int64_t(1) << 16;
template <class T>
void normalize_periodic(const NormKernelsOf<T>& k, const T* x, T* y, int64_t total, int64_t plane,
                        int64_t channels, const Coefficients<T>& co, Activation act, bool stream) {
  constexpr int64_t kLine = kCacheLineBytes / int64_t(sizeof(T)), kMinSpan = 256, kMaxWholeLines = 4096;
  const int64_t period = plane * channels;
  const int64_t lines = std::lcm(period, kLine);
  const int64_t whole = lines <= kMaxWholeLines ? lines : period;
  const int64_t span = (kMinSpan + whole - 1) / whole * whole;
  const int64_t tiled = span + period;
  std::vector<T> coefficients(3 * size_t(tiled));
  T* const mean = coefficients.data();
  T* const scale = mean + tiled;
  T* const shift = scale + tiled;
  for (int64_t i = 0; i < tiled; ++i) {
    const auto c = size_t(i / plane % channels);
    mean[i] = co.mean[c], scale[i] = co.scale[c], shift[i] = co.shift[c];
  }
  parallel_for(0, total, kGrainElements, [&](int64_t b, int64_t e) {
    int64_t i = b;
    const auto run = [&](int64_t n) {
      const int64_t phase = i % period;
      k.normalize_columns(x + i, y + i, n, mean + phase, scale + phase, shift + phase, act, stream);
      i += n;
    };
    if (stream) run(elements_to_cache_line(y + i, e - i));
    while (i < e) run(std::min(span, e - i));
    fence_streamed_stores(stream);
  });
}

// y = act((x - mean[c]) * scale[c] + shift[c]) over every (n, c) plane, split by elements
// so that threads stay balanced whatever the plane size. A thread's share goes to the kernel
// as one run across its planes (normalize_plane_run, where the kernel set has it) when a
// vector straddles at most two planes: planes of at least kPlaneRunMin elements, the widest
// vector's lanes. Shorter planes go through normalize_periodic (and (N, C) data up to
// kPeriodicMaxChannels channels, row by row past that).
constexpr int64_t kPlaneRunMin = 16;
template <class T>
void normalize_planes(const NormKernelsOf<T>& k, const T* x, T* y, Layout l, const Coefficients<T>& co,
                      Activation act, bool stream) {
  if (l.n * l.c * l.s == 0) return;
  const bool short_planes = l.s < kPlaneRunMin && l.s * l.c <= kPeriodicMaxPeriod;
  if (l.s == 1 ? l.c <= kPeriodicMaxChannels : short_planes) {
    normalize_periodic(k, x, y, l.n * l.c * l.s, l.s, l.c, co, act, stream);
    return;
  }
  if (l.s == 1) {
    parallel_for(0, l.n, grain_for(l.c), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        k.normalize_columns(x + r * l.c, y + r * l.c, l.c, co.mean.data(), co.scale.data(), co.shift.data(), act,
                            stream);
      fence_streamed_stores(stream);
    });
    return;
  }
  parallel_for(0, l.n * l.c * l.s, kGrainElements, [&](int64_t b, int64_t e) {
    if (k.normalize_plane_run && l.s >= kPlaneRunMin) {
      k.normalize_plane_run(x + b, y + b, e - b, l.s, b % l.s, co.mean.data(), co.scale.data(), co.shift.data(), l.c,
                            b / l.s % l.c, act, stream);
    } else {
      for (int64_t i = b; i < e;) {
        const int64_t plane = i / l.s;
        const int64_t len = std::min(l.s - (i - plane * l.s), e - i);
        const int64_t c = plane % l.c;
        k.normalize(x + i, y + i, len, co.mean[c], co.scale[c], co.shift[c], act, stream);
        i += len;
      }
    }
    fence_streamed_stores(stream);
  });
}

// Per-channel statistics of (N, C) data, a block of columns per task.
template <class T>
void column_statistics(const NormKernelsOf<T>& k, const T* x, int64_t rows, int64_t cols, Moments* stats) {
  const int64_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
  parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t c0 = b * kColumnBlock;
      k.column_moments(x + c0, rows, std::min(kColumnBlock, cols - c0), cols, stats + c0);
    }
  });
}

// Statistics, then normalisation, of units [u0, u1) that each consist of `pieces` pieces, the
// same pieces in every unit. step(stats_unit, normalize_unit, j) gathers the statistics of
// piece j of stats_unit and normalises piece j of normalize_unit, either of them -1 for none
// (never both): unit u's pieces are normalised together with the statistics of unit u + lag,
// in one sweep where the piece allows (normalize_with_moments), so the reads of new data from
// memory overlap earlier units' output writes. Statistics still run unit by unit, piece by
// piece, in order; finish(u) runs once unit u's statistics are complete. A lag of 2 leaves a
// whole sweep between a unit's last statistics and its normalising: the horizontal sums, the
// double-precision moments and the rstd that it waits on no longer stall the next sweep
// (normalize_units below).
//
// `alternating` runs the same steps one unit at a time instead: all of unit u's statistics,
// then all of its normalising, alone (so with streaming stores where the output takes them).
// Where a core's L2 is under 2 MiB (see apart_sweeps_pay) and the output is streamed, that was
// faster than the fused sweep, whose ordinary stores read every output line first. Zen 3, 1 and
// 2 threads, pairs of processes: batch norm train 8x256x56x56 0.75-0.81x the time, group norm
// 32 groups of it 0.86-0.93x, instance norm 20x100x35x45 0.90-1.04x in three runs (0.84-0.91x
// on 2 threads), layer norm on rows of 1536 and 4096 0.93x and 0.91x. Units under 4 KiB lose
// there (layer norm rows of 768: 1.07x), under 2 KiB on Zen 4 (see alternates), so they keep
// the fused sweep, as every unit does on the 2 MiB Xeon.
template <class Step, class Finish>
void pipeline(int64_t u0, int64_t u1, int64_t pieces, bool alternating, int64_t lag, const Step& step,
              const Finish& finish) {
  if (alternating) {
    for (int64_t u = u0; u < u1; ++u) {
      for (int64_t j = 0; j < pieces; ++j) step(u, -1, j);
      finish(u);
      for (int64_t j = 0; j < pieces; ++j) step(-1, u, j);
    }
    return;
  }
  for (int64_t u = u0; u < u1 + lag; ++u) {
    const int64_t stats_u = u < u1 ? u : -1, norm_u = u - lag >= u0 ? u - lag : -1;
    if (stats_u < 0 && norm_u < 0) continue;
    for (int64_t j = 0; j < pieces; ++j) step(stats_u, norm_u, j);
    if (u < u1) finish(u);
  }
}

// Whether a statistics sweep apart from the normalising one pays: on the AMD cores measured
// (Zen 3, 512 KiB of L2 a core; Zen 4, 1 MiB) it did, on the 2 MiB Xeon the fused sweep won.
// Its own bound, not has_small_l2(): Zen 4 keeps the large-L2 GEMM and 1x1 convolution paths
// (taking the small-L2 ones there made 1x1 2048 -> 512 at 7x7 and mm 16 x 768 x 3072
// 1.15-1.2x slower). Zen 4, 1 thread, pairs of processes, medians of 6: batch norm train
// 8x256x56x56 0.86x the time (2 threads 0.85x), 20x100x35x45 0.53x (0.74x), group norm 32
// groups of 8x256x56x56 0.80x (0.62x), instance norm 20x100x35x45 even.
bool apart_sweeps_pay() { return l2_below(int64_t(2) << 20); }

// Whether pipeline() runs a unit's statistics and normalising apart (see there). Zen 4 takes
// smaller units apart than Zen 3 did: streamed layer norm rows of 768 floats (3 KiB), 1
// thread, one process alternating the two, 8x512x768 0.73x the time apart, 16x512x768
// 0.78x; rows of 256 floats 1.10x and instance norm's 7x7 planes 1.37x slower apart.
bool alternates(bool stream, int64_t unit_bytes) {
  constexpr int64_t kSmallL2MinUnitBytes = 4096, kMinUnitBytes = 2048;
  return stream && apart_sweeps_pay() && unit_bytes >= (has_small_l2() ? kSmallL2MinUnitBytes : kMinUnitBytes);
}

// Normalises a piece of n elements at x (into y) with one set of coefficients and, when next
// is not null, gathers the moments of the n elements at next into part: in one sweep when
// there is both, otherwise with the call that has work.
template <class T>
void normalize_and_gather(const NormKernelsOf<T>& k, const T* x, T* y, int64_t n, T mean, T scale, T shift,
                          Activation act, bool stream, const T* next, Moments* part) {
  if (x && next) k.normalize_with_moments(x, y, n, mean, scale, shift, act, next, part);
  else if (x) k.normalize(x, y, n, mean, scale, shift, act, stream);
  else if (next) k.chunk_moments(next, n, part);
}

// The same with per-element weight and bias (layer norm), always normalising.
template <class T>
void normalize_affine_and_gather(const NormKernelsOf<T>& k, const T* x, T* y, int64_t n, T mean, T rstd,
                                 const T* weight, const T* bias, Activation act, bool stream, const T* next,
                                 Moments* part) {
  if (next) k.normalize_affine_with_moments(x, y, n, mean, rstd, weight, bias, act, next, part);
  else k.normalize_affine(x, y, n, mean, rstd, weight, bias, act, stream);
}

template <class T>
void batch_norm_impl(const TensorView& in, const TensorView& out, const TensorView& weight, const TensorView& bias,
                     const TensorView& running_mean, const TensorView& running_var, bool training,
                     double momentum, double eps, Activation act) {
  const auto& k = kernels_for<T>();
  const Layout l = channel_layout(in);
  if (l.c == 0) return;
  const T* x = in.ptr<const T>();
  T* y = out.ptr<T>();
  const bool stream = use_streaming<T>(out);
  Coefficients<T> co(l.c);

  if (!training) {
    for (int64_t c = 0; c < l.c; ++c)
      co.set(c, at<T>(running_mean, c), at<T>(running_var, c), eps, param<T>(weight, c, 1.0), param<T>(bias, c, 0.0));
    normalize_planes(k, x, y, l, co, act, stream);
    return;
  }
  // No values: nothing to normalise and, as in PyTorch, the running statistics stay.
  if (l.n * l.s == 0) return;

  const bool track = running_mean.data != nullptr;
  const auto finish_channel = [&](int64_t c, const Moments& m) {
    co.set(c, m.mean, m.m2 / m.count, eps, param<T>(weight, c, 1.0), param<T>(bias, c, 0.0));
    if (track) {
      blend<T>(running_mean, c, momentum, m.mean);
      blend<T>(running_var, c, momentum, m.m2 / (m.count - 1));  // unbiased, as PyTorch
    }
  };

  // (N, C) data and short planes: the statistics of the columns of (N, C * S), each channel's
  // S columns merged in order. Plane by plane, every plane was a chunk of its own, with a
  // kernel call and a merge: Zen 4, 1 thread, one process alternating the two, 3000x100x3
  // took 0.019x the time, 4000x64x7 0.052x, 2000x64x15 0.11x, 1000x64x17 0.25x, 500x64x31
  // 0.39x, 200x64x64 0.95x, 100x64x128 1.65x (so up to planes of kColumnPlaneMax).
  constexpr int64_t kColumnPlaneMax = 63;
  if (l.s <= kColumnPlaneMax) {
    std::vector<Moments> stats(l.c * l.s);
    column_statistics(k, x, l.n, l.c * l.s, stats.data());
    for (int64_t c = 0; c < l.c; ++c) {
      Moments m;
      for (int64_t j = 0; j < l.s; ++j) merge(m, stats[c * l.s + j]);
      finish_channel(c, m);
    }
    normalize_planes(k, x, y, l, co, act, stream);
    return;
  }

  // One channel per task: its planes are still in L2 when the normalising pass rereads them,
  // and that pass is interleaved with the next channel's statistics (see pipeline()). Where
  // apart_sweeps_pay (Zen 3, Zen 4), reading a channel's scattered pieces (one per plane) ran at
  // half the rate of a sweep in memory order, so there an input that L3 holds, or whose planes
  // are small, has its statistics gathered in memory order and a second sweep normalises it
  // (below). Zen 3, medians of 7: 20 x 100 x 35 x 45 (12.6 MB) 3.7 -> 3.2 ms on 1 thread,
  // 1.9 -> 0.9 ms on 2; 32 x 64 x 28 x 28 1.6 -> 1.25 and even. Past L3 the reread comes from
  // DRAM, yet planes of 12.5 KB (N x 256 x 56 x 56) still lost more to the scattered reads
  // than the second read costs: Zen 4, 1 thread, N = 8 (26 MB), 16 and 32: 0.78x, 0.83x,
  // 0.78x the time (2 threads 0.61x, 0.87x, even). Planes of 49 KB (8 x 64 x 112 x 112) keep
  // the pipeline, 1.10x and 1.05x slower rereading.
  constexpr int64_t kRereadMaxBytes = int64_t(16) << 20, kScatteredPlaneMaxBytes = int64_t(32) << 10;
  const bool reread = apart_sweeps_pay() && (l.n * l.c * l.s * int64_t(sizeof(T)) <= kRereadMaxBytes ||
                                             l.s * int64_t(sizeof(T)) < kScatteredPlaneMaxBytes);
  const int threads = get_num_threads();
  if (!reread && (threads == 1 || l.c % threads == 0 || l.c >= 4 * threads)) {
    const int64_t chunks_per_plane = (l.s + kChunk<T> - 1) / kChunk<T>;
    // Piece j of channel c lies at x + c * l.s + offset: chunk j % chunks_per_plane of plane
    // j / chunks_per_plane.
    const auto piece = [&](int64_t j, int64_t* offset) {
      const int64_t n = j / chunks_per_plane;
      const int64_t start = (j - n * chunks_per_plane) * kChunk<T>;
      *offset = n * l.c * l.s + start;
      return std::min(kChunk<T>, l.s - start);
    };
    const bool alternating = alternates(stream, l.n * l.s * int64_t(sizeof(T)));
    parallel_for(0, l.c, 1, [&](int64_t c0, int64_t c1) {
      Moments m;
      pipeline(
          c0, c1, l.n * chunks_per_plane, alternating, 1,
          [&](int64_t stats_c, int64_t norm_c, int64_t j) {
            int64_t offset;
            const int64_t len = piece(j, &offset);
            const int64_t c = std::max<int64_t>(norm_c, 0);
            Moments part;
            normalize_and_gather(k, norm_c >= 0 ? x + offset + norm_c * l.s : nullptr, y + offset + c * l.s, len,
                                 co.mean[c], co.scale[c], co.shift[c], act, stream,
                                 stats_c >= 0 ? x + offset + stats_c * l.s : nullptr, &part);
            if (stats_c >= 0) merge(m, part);
          },
          [&](int64_t c) {
            finish_channel(c, m);
            m = Moments{};
          });
      fence_streamed_stores(stream);
    });
    return;
  }

  // Few channels for the threads, or a reread from L3: chunk statistics in parallel, merged in
  // the same (n, chunk) order as above, so both paths give identical bits; then a separate
  // normalising pass.
  const int64_t chunks_per_plane = (l.s + kChunk<T> - 1) / kChunk<T>;
  const int64_t units = l.n * l.c * chunks_per_plane;
  std::vector<Moments> parts(units);
  parallel_for(0, units, grain_for(std::min(l.s, kChunk<T>)), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t plane = u / chunks_per_plane;
      const int64_t start = (u - plane * chunks_per_plane) * kChunk<T>;
      k.chunk_moments(x + plane * l.s + start, std::min(kChunk<T>, l.s - start), &parts[u]);
    }
  });
  for (int64_t c = 0; c < l.c; ++c) {
    Moments m;
    for (int64_t n = 0; n < l.n; ++n)
      for (int64_t j = 0; j < chunks_per_plane; ++j) merge(m, parts[(n * l.c + c) * chunks_per_plane + j]);
    finish_channel(c, m);
  }
  normalize_planes(k, x, y, l, co, act, stream);
}

// Units of `width` contiguous elements, unit u at x + u * width, made of segments of `segment`
// elements (a divisor of width) and cut into statistics chunks that never cross a segment: the
// common shape of instance, group and layer norm. A group norm whose channels are long makes
// each channel a segment, so every piece is normalised with one set of coefficients.
// on_stats(u, m) sees unit u's moments once they are complete. normalize(u, m, begin, end,
// next, part) writes unit u's elements [begin, end) and, when next is not null, gathers the
// moments of the end - begin elements at next (the same piece of the following unit) into part.
// Units in flight between their statistics and their normalising (pipeline's lag). Zen 4, 1
// thread, one process alternating lags 1 and 2: layer norm rows of 96 / 256 / 768 floats 0.87x /
// 0.94x / 0.95x the time (2 threads 0.86x at 96, 0.95x at 768; AVX2 0.89x at 96), instance
// norm on 7x7 planes 0.82x (2 threads 0.83x); rows of 3072, instance planes of 35x45 and group
// norm's 32 groups of 8x256x56x56 even. A lag of 3 gained nothing more.
constexpr int64_t kUnitLag = 2;

template <class T, class OnStats, class Normalize>
void normalize_units(const NormKernelsOf<T>& k, const T* x, int64_t units, int64_t width, int64_t segment,
                     bool stream, const OnStats& on_stats, const Normalize& normalize) {
  const int64_t chunks_per_segment = (segment + kChunk<T> - 1) / kChunk<T>;
  const bool alternating = alternates(stream, width * int64_t(sizeof(T)));
  parallel_for(0, units, grain_for(width), [&](int64_t u0, int64_t u1) {
    // Unit u's moments wait in finished[u % kUnitLag] until it is normalised, kUnitLag units on.
    Moments current, finished[kUnitLag];
    pipeline(
        u0, u1, (width / segment) * chunks_per_segment, alternating, kUnitLag,
        [&](int64_t stats_u, int64_t norm_u, int64_t j) {
          const int64_t s = j / chunks_per_segment;
          const int64_t begin = s * segment + (j - s * chunks_per_segment) * kChunk<T>;
          const int64_t end = std::min(begin + kChunk<T>, (s + 1) * segment);
          const T* next = stats_u >= 0 ? x + stats_u * width + begin : nullptr;
          Moments part;
          if (norm_u >= 0) normalize(norm_u, finished[norm_u % kUnitLag], begin, end, next, &part);
          else k.chunk_moments(next, end - begin, &part);
          if (next) merge(current, part);
        },
        [&](int64_t u) {
          on_stats(u, current);
          finished[u % kUnitLag] = current;
          current = Moments{};
        });
    fence_streamed_stores(stream);
  });
}

double rstd_of(const Moments& m, double eps) { return 1.0 / std::sqrt(m.m2 / m.count + eps); }

// Moments of one unit of normalize_units' layout, chunk by chunk in its order (the same bits).
template <class T>
Moments unit_moments(const NormKernelsOf<T>& k, const T* x, int64_t width, int64_t segment) {
  Moments m;
  for (int64_t begin = 0; begin < width; begin += segment)
    for (int64_t start = begin; start < begin + segment; start += kChunk<T>) {
      Moments part;
      k.chunk_moments(x + start, std::min(kChunk<T>, begin + segment - start), &part);
      merge(m, part);
    }
  return m;
}

// Whether units made of whole planes (instance and group norm) go through
// normalize_plane_units: the alternating schedule (see pipeline()) where the kernel set runs
// across planes.
template <class T>
bool runs_plane_units(const NormKernelsOf<T>& k, const Layout& l, int64_t width, bool stream) {
  return k.normalize_plane_run && l.s >= kPlaneRunMin && alternates(stream, width * int64_t(sizeof(T)));
}

// pipeline()'s alternating schedule for units of `width` elements made of planes of `plane`
// elements, with per-plane coefficients in co (plane p of the input at index p): a unit's
// statistics (set_coefficients(u, moments) then fills its planes' coefficients), then its
// normalising as one run across planes (normalize_plane_run) from where the previous unit's
// stopped, the first element of the line the two units share, to the last line boundary in
// the unit (the end of a thread's last unit). So a streamed output leaves in whole lines
// wherever planes start inside a line: normalising each unit by itself left a partial line
// at both ends that went out as an ordinary store, which reads the line first, and instance
// norm on 20x100x35x45 (planes of 1575 floats) ran at 0.56x relu's rate over the same bytes
// (now at relu's). Zen 4, one process alternating the two, 1 thread: instance norm 0.58x the
// time there, 0.64x with planes of 33x47, 0.84x on 3x64x120x111; group norm, 4 groups of
// 20x100x35x45, 0.66x, 32 of 3x64x120x111 0.84x; 2 threads (streamed from 16 MiB) instance
// norm on 30x100x35x45 0.93x, group norm on 8x256x55x55 0.95x; planes of whole lines (56x56,
// 28x28, 112x112) even. (Gathering every unit's statistics in a sweep of their own and
// rereading the input from L3 for a second, as batch norm does, took 0.84x on 20x100x35x45
// but 1.3x on planes of whole lines.)
template <class T, class SetCoefficients>
void normalize_plane_units(const NormKernelsOf<T>& k, const T* x, T* y, int64_t units, int64_t width,
                           int64_t segment, int64_t plane, const Coefficients<T>& co, Activation act, bool stream,
                           const SetCoefficients& set_coefficients) {
  const auto planes = static_cast<int64_t>(co.mean.size());
  parallel_for(0, units, grain_for(width), [&](int64_t u0, int64_t u1) {
    int64_t written = u0 * width;
    for (int64_t u = u0; u < u1; ++u) {
      set_coefficients(u, unit_moments(k, x + u * width, width, segment));
      int64_t end = (u + 1) * width;
      if (u + 1 < u1) end -= static_cast<int64_t>(reinterpret_cast<uintptr_t>(y + end) % kCacheLineBytes / sizeof(T));
      k.normalize_plane_run(x + written, y + written, end - written, plane, written % plane, co.mean.data(),
                            co.scale.data(), co.shift.data(), planes, written / plane, act, stream);
      written = end;
    }
    fence_streamed_stores(stream);
  });
}

template <class T>
void instance_norm_impl(const TensorView& in, const TensorView& out, const TensorView& weight,
                        const TensorView& bias, const TensorView& running_mean, const TensorView& running_var,
                        double momentum, double eps, Activation act) {
  const auto& k = kernels_for<T>();
  const Layout l = channel_layout(in);
  const int64_t planes = l.n * l.c;
  if (planes == 0 || l.s == 0) return;  // running statistics stay, as in PyTorch
  const T* x = in.ptr<const T>();
  T* y = out.ptr<T>();
  const bool track = running_mean.data != nullptr;
  std::vector<Moments> stats(track ? planes : 0);
  const bool stream = use_streaming<T>(out);
  const auto on_stats = [&](int64_t p, const Moments& m) {
    if (track) stats[p] = m;
  };
  if (l.s <= kShortRowMax) {
    const T* w = weight.data ? weight.ptr<const T>() : nullptr;
    const T* b = bias.data ? bias.ptr<const T>() : nullptr;
    parallel_for(0, planes, grain_for(l.s), [&](int64_t p0, int64_t p1) {
      k.normalize_short_rows(x + p0 * l.s, y + p0 * l.s, p1 - p0, l.s, eps, nullptr, nullptr, w, b, l.c, p0 % l.c, act,
                             track ? stats.data() + p0 : nullptr);
    });
  } else if (runs_plane_units(k, l, l.s, stream)) {
    Coefficients<T> co(planes);
    normalize_plane_units(k, x, y, planes, l.s, l.s, l.s, co, act, stream, [&](int64_t p, const Moments& m) {
      const int64_t c = p % l.c;
      co.mean[p] = static_cast<T>(m.mean);
      co.scale[p] = static_cast<T>(param<T>(weight, c, 1.0) * rstd_of(m, eps));
      co.shift[p] = static_cast<T>(param<T>(bias, c, 0.0));
      on_stats(p, m);
    });
  } else {
    normalize_units(
        k, x, planes, l.s, l.s, stream, on_stats,
        [&](int64_t p, const Moments& m, int64_t begin, int64_t end, const T* next, Moments* part) {
          const int64_t c = p % l.c;
          const double scale = param<T>(weight, c, 1.0) * rstd_of(m, eps);
          const int64_t offset = p * l.s + begin;
          normalize_and_gather(k, x + offset, y + offset, end - begin, static_cast<T>(m.mean),
                               static_cast<T>(scale), static_cast<T>(param<T>(bias, c, 0.0)), act, stream, next,
                               part);
        });
  }
  if (!track) return;
  // PyTorch updates each instance's copy of the running statistics, then averages the copies
  // over the batch: the same as blending in the batch average of the instance statistics.
  for (int64_t c = 0; c < l.c; ++c) {
    double mean = 0, var = 0;
    for (int64_t n = 0; n < l.n; ++n) {
      const Moments& m = stats[n * l.c + c];
      mean += m.mean;
      var += m.m2 / (m.count - 1);
    }
    blend<T>(running_mean, c, momentum, mean / l.n);
    blend<T>(running_var, c, momentum, var / l.n);
  }
}

template <class T>
void group_norm_impl(const TensorView& in, const TensorView& out, int64_t groups, const TensorView& weight,
                     const TensorView& bias, double eps, Activation act) {
  const auto& k = kernels_for<T>();
  const Layout l = channel_layout(in);
  const int64_t per_group = l.c / groups;
  const int64_t width = per_group * l.s;
  if (l.n * groups == 0 || width == 0) return;
  const T* x = in.ptr<const T>();
  T* y = out.ptr<T>();
  const T* w = weight.data ? weight.ptr<const T>() : nullptr;
  const T* b = bias.data ? bias.ptr<const T>() : nullptr;
  // Channels of at least half a chunk are segments of their own (one call per piece); shorter
  // ones share chunks, normalised channel by channel.
  const int64_t segment = l.s >= kChunk<T> / 2 ? l.s : width;
  const bool stream = use_streaming<T>(out);
  if (runs_plane_units(k, l, width, stream)) {
    Coefficients<T> co(l.n * l.c);
    const auto set_coefficients = [&](int64_t u, const Moments& m) {
      const double rstd = rstd_of(m, eps);
      const int64_t c0 = (u % groups) * per_group;
      for (int64_t j = 0; j < per_group; ++j) {
        const int64_t p = u * per_group + j;  // the plane of channel c0 + j
        co.mean[p] = static_cast<T>(m.mean);
        co.scale[p] = static_cast<T>(w ? w[c0 + j] * rstd : rstd);
        co.shift[p] = b ? b[c0 + j] : T(0);
      }
    };
    normalize_plane_units(k, x, y, l.n * groups, width, segment, l.s, co, act, stream, set_coefficients);
    return;
  }
  // Groups of up to kShortRowMax elements: rows of the short-row kernel, each group's weight
  // and bias per element (below, expanded over the planes when those are longer than one).
  const bool short_groups = width <= kShortRowMax;
  // Channels of up to kPerElementPlaneMax elements: weight and bias per element (each
  // channel's repeated over its plane), so that a piece is one call, as with one element per
  // channel. Channel by channel, each took a call of its own: Zen 4, 1 thread, one process
  // alternating the two, 4 groups of 3000x100x3 0.16x the time, 4000x64x7 0.24x, 2000x64x15
  // 0.36x, 1000x64x31 0.80x, 500x64x63 1.14x.
  constexpr int64_t kPerElementPlaneMax = 31;
  std::vector<T> expanded;
  const bool per_element = l.s <= kPerElementPlaneMax;
  if (per_element && l.s > 1 && (w || b)) {
    expanded.resize(2 * size_t(l.c * l.s));
    T* const we = expanded.data();
    T* const be = we + l.c * l.s;
    for (int64_t c = 0; c < l.c; ++c) {
      std::fill(we + c * l.s, we + (c + 1) * l.s, w ? w[c] : T(1));
      std::fill(be + c * l.s, be + (c + 1) * l.s, b ? b[c] : T(0));
    }
    w = w ? we : nullptr;
    b = b ? be : nullptr;
  }
  if (short_groups && per_element) {
    parallel_for(0, l.n * groups, grain_for(width), [&](int64_t u0, int64_t u1) {
      k.normalize_short_rows(x + u0 * width, y + u0 * width, u1 - u0, width, eps, w, b, nullptr, nullptr, groups,
                             u0 % groups, act, nullptr);
    });
    return;
  }
  normalize_units(
      k, x, l.n * groups, width, segment, stream, [](int64_t, const Moments&) {},
      [&](int64_t u, const Moments& m, int64_t begin, int64_t end, const T* next, Moments* part) {
        const double rstd = rstd_of(m, eps);
        const T mean = static_cast<T>(m.mean);
        const int64_t c0 = (u % groups) * per_group;
        const int64_t base = u * width;
        if (per_element) {
          // Per-element weight and bias, as a layer norm row.
          const int64_t at = c0 * l.s + begin;
          normalize_affine_and_gather(k, x + base + begin, y + base + begin, end - begin, mean, static_cast<T>(rstd),
                                      w ? w + at : nullptr, b ? b + at : nullptr, act, stream, next, part);
          return;
        }
        const int64_t first = begin / l.s, last = (end - 1) / l.s;  // channels within the group
        for (int64_t j = first; j <= last; ++j) {
          const int64_t from = std::max(begin, j * l.s), to = std::min(end, (j + 1) * l.s);
          const T scale = static_cast<T>(w ? w[c0 + j] * rstd : rstd);
          normalize_and_gather(k, x + base + from, y + base + from, to - from, mean, scale, b ? b[c0 + j] : T(0), act,
                               stream, first == last ? next : nullptr, part);
        }
        if (next && first != last) k.chunk_moments(next, end - begin, part);
      });
}

// Whether layer norm's weight and bias go to the kernel as 64-byte aligned copies. Every
// vector of a row loads both, and NumPy's arrays start 16 bytes into a line, so each of
// those loads straddled two lines: 8x128x768 with input, output, weight and bias 16 bytes
// off, Zen 4, 1 thread, took 1.31x the time of all four aligned, 1.18x with only the
// parameters aligned. Copies for rows enough to repay them, of a bounded size (the
// workspace rule: cache-sized requests only).
template <class T>
bool aligned_params_pay(const T* w, const T* b, int64_t rows, int64_t width) {
  constexpr int64_t kMinRows = 16, kMaxBytes = int64_t(64) << 10;
  const auto misaligned = [](const T* p) { return p && reinterpret_cast<uintptr_t>(p) % kCacheLineBytes != 0; };
  return rows >= kMinRows && width * int64_t(sizeof(T)) <= kMaxBytes && (misaligned(w) || misaligned(b));
}

template <class T>
int64_t padded_to_line(int64_t n) {
  constexpr int64_t kLine = kCacheLineBytes / sizeof(T);
  return (n + kLine - 1) / kLine * kLine;
}

template <class T>
void layer_norm_impl(const TensorView& in, const TensorView& out, int64_t width, const TensorView& weight,
                     const TensorView& bias, double eps, Activation act) {
  const auto& k = kernels_for<T>();
  const int64_t total = in.numel();
  if (total == 0 || width == 0) return;
  const T* x = in.ptr<const T>();
  T* y = out.ptr<T>();
  const T* w = weight.data ? weight.ptr<const T>() : nullptr;
  const T* b = bias.data ? bias.ptr<const T>() : nullptr;
  const int64_t rows = total / width;
  if (width <= kShortRowMax) {
    parallel_for(0, rows, grain_for(width), [&](int64_t r0, int64_t r1) {
      k.normalize_short_rows(x + r0 * width, y + r0 * width, r1 - r0, width, eps, w, b, nullptr, nullptr, 0, 0, act,
                             nullptr);
    });
    return;
  }
  thread_local Workspace params_buffer;
  if (aligned_params_pay(w, b, rows, width)) {
    T* const weight_copy = params_buffer.get<T>(2 * padded_to_line<T>(width));
    T* const bias_copy = weight_copy + padded_to_line<T>(width);
    if (w) std::copy(w, w + width, weight_copy), w = weight_copy;
    if (b) std::copy(b, b + width, bias_copy), b = bias_copy;
  }
  const bool stream = use_streaming<T>(out);
  normalize_units(
      k, x, rows, width, width, stream, [](int64_t, const Moments&) {},
      [&](int64_t r, const Moments& m, int64_t begin, int64_t end, const T* next, Moments* part) {
        const int64_t offset = r * width + begin;
        normalize_affine_and_gather(k, x + offset, y + offset, end - begin, static_cast<T>(m.mean),
                                    static_cast<T>(rstd_of(m, eps)), w ? w + begin : nullptr, b ? b + begin : nullptr,
                                    act, stream, next, part);
      });
}

// ---- invariants the kernels rely on (Python has validated with PyTorch's wording) --------

void check_io(const TensorView& in, const TensorView& out, const char* op) {
  TENSOROPS_CHECK(in.dtype == DType::float32 || in.dtype == DType::float64,
                  std::string(op) + ": expected a float32 or float64 input");
  TENSOROPS_CHECK(out.dtype == in.dtype, std::string(op) + ": out must have the input's dtype");
  TENSOROPS_CHECK(in.is_contiguous() && out.is_contiguous(), std::string(op) + ": expected contiguous arrays");
  bool same = in.ndim == out.ndim;
  for (int d = 0; same && d < in.ndim; ++d) same = in.shape[d] == out.shape[d];
  TENSOROPS_CHECK(same, std::string(op) + ": out shape does not match the input shape");
}

// An optional vector of `size` elements of the input's dtype; contiguous unless it is a
// running statistic (those are updated through their stride).
void check_vector(const TensorView& v, int64_t size, DType dtype, bool contiguous, const char* op, const char* arg) {
  if (!v.data) return;
  TENSOROPS_CHECK(v.dtype == dtype, std::string(op) + ": '" + arg + "' must have the input's dtype");
  TENSOROPS_CHECK(v.numel() == size, std::string(op) + ": '" + arg + "' should contain " + std::to_string(size) +
                                         " elements not " + std::to_string(v.numel()));
  TENSOROPS_CHECK(contiguous ? v.is_contiguous() : v.ndim == 1,
                  std::string(op) + ": unexpected layout for '" + arg + "'");
}

void check_channels(const TensorView& in, const char* op) {
  TENSOROPS_CHECK(in.ndim >= 2, std::string(op) + ": expected an input with at least 2 dimensions");
}

}  // namespace

void batch_norm(const TensorView& in, const TensorView& out, const TensorView& weight, const TensorView& bias,
                const TensorView& running_mean, const TensorView& running_var, bool training, double momentum,
                double eps, Activation act) {
  check_io(in, out, "batch_norm");
  check_channels(in, "batch_norm");
  const int64_t c = in.shape[1];
  check_vector(weight, c, in.dtype, true, "batch_norm", "weight");
  check_vector(bias, c, in.dtype, true, "batch_norm", "bias");
  check_vector(running_mean, c, in.dtype, false, "batch_norm", "running_mean");
  check_vector(running_var, c, in.dtype, false, "batch_norm", "running_var");
  TENSOROPS_CHECK(training || (running_mean.data && running_var.data),
                  "batch_norm: running statistics must be defined in evaluation mode");
  TENSOROPS_CHECK(!running_mean.data == !running_var.data,
                  "batch_norm: running_mean and running_var must either both be None or neither be None");
  if (in.dtype == DType::float32)
    batch_norm_impl<float>(in, out, weight, bias, running_mean, running_var, training, momentum, eps, act);
  else
    batch_norm_impl<double>(in, out, weight, bias, running_mean, running_var, training, momentum, eps, act);
}

void instance_norm(const TensorView& in, const TensorView& out, const TensorView& weight, const TensorView& bias,
                   const TensorView& running_mean, const TensorView& running_var, bool use_input_stats,
                   double momentum, double eps, Activation act) {
  if (!use_input_stats) {
    batch_norm(in, out, weight, bias, running_mean, running_var, false, momentum, eps, act);
    return;
  }
  check_io(in, out, "instance_norm");
  check_channels(in, "instance_norm");
  const int64_t c = in.shape[1];
  check_vector(weight, c, in.dtype, true, "instance_norm", "weight");
  check_vector(bias, c, in.dtype, true, "instance_norm", "bias");
  check_vector(running_mean, c, in.dtype, false, "instance_norm", "running_mean");
  check_vector(running_var, c, in.dtype, false, "instance_norm", "running_var");
  TENSOROPS_CHECK(!running_mean.data == !running_var.data,
                  "instance_norm: running_mean and running_var must either both be None or neither be None");
  if (in.dtype == DType::float32)
    instance_norm_impl<float>(in, out, weight, bias, running_mean, running_var, momentum, eps, act);
  else
    instance_norm_impl<double>(in, out, weight, bias, running_mean, running_var, momentum, eps, act);
}

void group_norm(const TensorView& in, const TensorView& out, int64_t num_groups, const TensorView& weight,
                const TensorView& bias, double eps, Activation act) {
  check_io(in, out, "group_norm");
  check_channels(in, "group_norm");
  const int64_t c = in.shape[1];
  TENSOROPS_CHECK(num_groups > 0 && c % num_groups == 0,
                  "group_norm: expected number of channels in input to be divisible by num_groups");
  check_vector(weight, c, in.dtype, true, "group_norm", "weight");
  check_vector(bias, c, in.dtype, true, "group_norm", "bias");
  if (in.dtype == DType::float32)
    group_norm_impl<float>(in, out, num_groups, weight, bias, eps, act);
  else
    group_norm_impl<double>(in, out, num_groups, weight, bias, eps, act);
}

void layer_norm(const TensorView& in, const TensorView& out, int64_t normalized_numel, const TensorView& weight,
                const TensorView& bias, double eps, Activation act) {
  check_io(in, out, "layer_norm");
  TENSOROPS_CHECK(normalized_numel >= 0 && (normalized_numel == 0 ? in.numel() == 0 : in.numel() % normalized_numel == 0),
                  "layer_norm: normalized_shape does not match the input's trailing dimensions");
  check_vector(weight, normalized_numel, in.dtype, true, "layer_norm", "weight");
  check_vector(bias, normalized_numel, in.dtype, true, "layer_norm", "bias");
  if (in.dtype == DType::float32)
    layer_norm_impl<float>(in, out, normalized_numel, weight, bias, eps, act);
  else
    layer_norm_impl<double>(in, out, normalized_numel, weight, bias, eps, act);
}

}  // namespace tensorops::norm
