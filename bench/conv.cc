// Google Benchmark for the conv family: the peer-comparison shapes (python -m tensorops
// bench's conv cases) through the C++ entry points, with the filter packed once outside the
// timed loop as a module would, once per ISA the CPU supports and per thread count (1, 2).
// Reported: GFLOP/s (2 * multiply-adds of the convolution, per second) and the bytes the
// kernels' per-thread workspaces hold afterwards.
//
//   build/dev/bench_conv --benchmark_filter=r50_3x3 --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "bench_util.h"
#include "conv/conv.h"
#include "core/cpu.h"
#include "core/parallel.h"
#include "core/workspace.h"

namespace {

using namespace tensorops;
using conv::Pair;

struct Case {
  const char* name;
  int64_t n, in_channels, out_channels, h, w;
  Pair kernel, stride, padding, dilation;
  int64_t groups;
  bool transposed;
};

const Case kCases[] = {
    {"conv_seed_16x33_k3s2", 20, 16, 33, 50, 100, {3, 3}, {2, 2}, {0, 0}, {1, 1}, 1, false},
    {"conv_seed_16x33_k3x5_dil", 20, 16, 33, 50, 100, {3, 5}, {2, 1}, {4, 2}, {3, 1}, 1, false},
    {"r50_stem7x7_b1", 1, 3, 64, 224, 224, {7, 7}, {2, 2}, {3, 3}, {1, 1}, 1, false},
    {"r50_3x3_64_56_b1", 1, 64, 64, 56, 56, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1, false},
    {"r50_1x1_256to64_56_b1", 1, 256, 64, 56, 56, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, false},
    {"r50_3x3_256_14_b1", 1, 256, 256, 14, 14, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1, false},
    {"r50_1x1_1024to256_14_b1", 1, 1024, 256, 14, 14, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, false},
    {"r50_stem7x7_b8", 8, 3, 64, 224, 224, {7, 7}, {2, 2}, {3, 3}, {1, 1}, 1, false},
    {"r50_3x3_64_56_b8", 8, 64, 64, 56, 56, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1, false},
    {"r50_1x1_256to64_56_b8", 8, 256, 64, 56, 56, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, false},
    {"r50_3x3_256_14_b8", 8, 256, 256, 14, 14, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1, false},
    {"r50_1x1_1024to256_14_b8", 8, 1024, 256, 14, 14, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, false},
    {"r50_1x1_2048to512_7_b1", 1, 2048, 512, 7, 7, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, false},
    {"r50_1x1_2048to512_7_b8", 8, 2048, 512, 7, 7, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, false},
    {"mbv2_dw3x3_c144_56", 1, 144, 144, 56, 56, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 144, false},
    {"mbv2_dw3x3_c960_7", 1, 960, 960, 7, 7, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 960, false},
    {"mbv2_dw3x3s2_c144_56", 1, 144, 144, 56, 56, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 144, false},
    {"effnet_dw5x5s2_c144_56", 1, 144, 144, 56, 56, {5, 5}, {2, 2}, {2, 2}, {1, 1}, 144, false},
    {"convnext_dw7x7_c96_56", 1, 96, 96, 56, 56, {7, 7}, {1, 1}, {3, 3}, {1, 1}, 96, false},
    {"convT_seed_16x33_k3s2", 20, 16, 33, 50, 100, {3, 3}, {2, 2}, {0, 0}, {1, 1}, 1, true},
    {"convT_dcgan_512to256_k4s2p1", 32, 512, 256, 4, 4, {4, 4}, {2, 2}, {1, 1}, {1, 1}, 1, true},
};

int64_t output_size(const Case& k, int axis) {
  const int64_t in = axis == 0 ? k.h : k.w;
  const int64_t span = k.dilation[size_t(axis)] * (k.kernel[size_t(axis)] - 1);
  if (k.transposed) return (in - 1) * k.stride[size_t(axis)] - 2 * k.padding[size_t(axis)] + span + 1;
  return (in + 2 * k.padding[size_t(axis)] - span - 1) / k.stride[size_t(axis)] + 1;
}

void run_case(benchmark::State& state, const Case& k, Isa isa, int threads) {
  if (!bench::prepare(state, isa, threads)) return;
  std::mt19937 gen(0);
  std::normal_distribution<float> normal;
  auto random = [&](int64_t count) {
    std::vector<float> v(static_cast<size_t>(count));
    for (float& x : v) x = normal(gen);
    return v;
  };
  const int64_t oh = output_size(k, 0), ow = output_size(k, 1);
  const std::vector<int64_t> weight_shape =
      k.transposed ? std::vector<int64_t>{k.in_channels, k.out_channels / k.groups, k.kernel[0], k.kernel[1]}
                   : std::vector<int64_t>{k.out_channels, k.in_channels / k.groups, k.kernel[0], k.kernel[1]};
  std::vector<float> input = random(k.n * k.in_channels * k.h * k.w);
  std::vector<float> weight = random(weight_shape[0] * weight_shape[1] * k.kernel[0] * k.kernel[1]);
  std::vector<float> bias = random(k.out_channels);
  std::vector<float> output(static_cast<size_t>(k.n * k.out_channels * oh * ow));
  const TensorView in = bench::contiguous_view(input.data(), DType::float32, {k.n, k.in_channels, k.h, k.w});
  const TensorView w = bench::contiguous_view(weight.data(), DType::float32, weight_shape);
  const TensorView b = bench::contiguous_view(bias.data(), DType::float32, {k.out_channels});
  const TensorView out = bench::contiguous_view(output.data(), DType::float32, {k.n, k.out_channels, oh, ow});
  const conv::PackedConvWeight packed(w, k.groups, k.transposed, k.stride, k.padding, k.dilation);
  conv::ConvArgs args;
  args.bias = &b;
  args.stride = k.stride, args.padding = k.padding, args.dilation = k.dilation, args.groups = k.groups;
  for (auto _ : state) {
    if (k.transposed) conv::conv_transpose2d(in, packed, out, args);
    else conv::conv2d(in, packed, out, args);
    benchmark::DoNotOptimize(output.data());
    benchmark::ClobberMemory();
  }
  const int64_t pixels = k.transposed ? k.h * k.w : oh * ow;
  const double flops =
      2.0 * double(k.n) * double(pixels) * double(k.out_channels) * double(k.in_channels / k.groups * k.kernel[0] * k.kernel[1]);
  bench::report_gflops(state, flops);
  state.counters["workspace_MB"] = double(workspace_bytes()) / double(1 << 20);
}

const int kRegistered = bench::register_cases(kCases, run_case, benchmark::kMillisecond);

}  // namespace
