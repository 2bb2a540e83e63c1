// Google Benchmark for the pool family: every op on the peer-comparison shapes, once per
// ISA the CPU supports and per thread count (1, 2). Reported rate: bytes moved (input read
// plus outputs written) per second, the figure BASELINE.md quotes for the peers.
//
//   build/dev/bench_pool --benchmark_filter=max --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "core/cpu.h"
#include "core/parallel.h"
#include "core/tensor.h"
#include "bench_util.h"
#include "pool/pool.h"

namespace {

using namespace tensorops;

struct Case {
  const char* name;
  int64_t n, c, h, w;
  enum Op { kMax, kMaxIndices, kAvg, kAdaptiveAvg, kAdaptiveMax } op;
  int64_t kernel, stride, pad, out;  // out: adaptive output size
};

const Case kCases[] = {
    {"maxpool3s2_20x16x50x32", 20, 16, 50, 32, Case::kMax, 3, 2, 0, 0},
    {"avgpool3s2_20x16x50x32", 20, 16, 50, 32, Case::kAvg, 3, 2, 0, 0},
    {"maxpool3s2_8x64x112x112", 8, 64, 112, 112, Case::kMax, 3, 2, 0, 0},
    {"maxpool3s2p1_8x64x112x112", 8, 64, 112, 112, Case::kMax, 3, 2, 1, 0},
    {"maxpool3s2_indices_8x64x112x112", 8, 64, 112, 112, Case::kMaxIndices, 3, 2, 0, 0},
    {"avgpool3s2_8x64x112x112", 8, 64, 112, 112, Case::kAvg, 3, 2, 0, 0},
    {"maxpool2s2_8x64x112x112", 8, 64, 112, 112, Case::kMax, 2, 2, 0, 0},
    {"maxpool3s1p1_8x64x56x56", 8, 64, 56, 56, Case::kMax, 3, 1, 1, 0},
    {"adaptiveavgpool1_8x2048x7x7", 8, 2048, 7, 7, Case::kAdaptiveAvg, 0, 0, 0, 1},
    {"adaptiveavgpool7_8x512x20x20", 8, 512, 20, 20, Case::kAdaptiveAvg, 0, 0, 0, 7},
    {"adaptivemaxpool7_8x512x20x20", 8, 512, 20, 20, Case::kAdaptiveMax, 0, 0, 0, 7},
};

void run_case(benchmark::State& state, const Case& k, Isa isa, int threads) {
  if (!bench::prepare(state, isa, threads)) return;
  std::vector<float> input(static_cast<size_t>(k.n * k.c * k.h * k.w));
  std::mt19937 gen(0);
  std::normal_distribution<float> normal;
  for (float& x : input) x = normal(gen);
  const TensorView in = bench::contiguous_view(input.data(), DType::float32, {k.n, k.c, k.h, k.w});

  pool::Window2d g{};
  g.kernel_h = g.kernel_w = k.kernel;
  g.stride_h = g.stride_w = k.stride;
  g.pad_h = g.pad_w = k.pad;
  g.dilation_h = g.dilation_w = 1;
  const bool adaptive = k.op == Case::kAdaptiveAvg || k.op == Case::kAdaptiveMax;
  const int64_t oh = adaptive ? k.out : (k.h + 2 * k.pad - k.kernel) / k.stride + 1;
  const int64_t ow = adaptive ? k.out : (k.w + 2 * k.pad - k.kernel) / k.stride + 1;
  std::vector<float> output(static_cast<size_t>(k.n * k.c * oh * ow));
  std::vector<int64_t> indices(k.op == Case::kMaxIndices ? output.size() : 0);
  const TensorView out = bench::contiguous_view(output.data(), DType::float32, {k.n, k.c, oh, ow});
  const TensorView idx = bench::contiguous_view(indices.data(), DType::int64, {k.n, k.c, oh, ow});

  for (auto _ : state) {
    switch (k.op) {
      case Case::kMax: pool::max_pool2d(in, out, nullptr, g, false); break;
      case Case::kMaxIndices: pool::max_pool2d(in, out, &idx, g, false); break;
      case Case::kAvg: pool::avg_pool2d(in, out, g, false, pool::AvgDivisor{true, 0}); break;
      case Case::kAdaptiveAvg: pool::adaptive_avg_pool2d(in, out); break;
      case Case::kAdaptiveMax: pool::adaptive_max_pool2d(in, out, nullptr); break;
    }
    benchmark::DoNotOptimize(output.data());
    benchmark::ClobberMemory();
  }
  const int64_t bytes = static_cast<int64_t>(input.size() * 4 + output.size() * 4 + indices.size() * 8);
  state.SetBytesProcessed(state.iterations() * bytes);
}

const int kRegistered = bench::register_cases(kCases, run_case, benchmark::kMicrosecond);

}  // namespace
