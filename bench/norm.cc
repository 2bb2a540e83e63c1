// Google Benchmark for the norm family: each microkernel on each ISA (L1-resident data, so
// the numbers show the arithmetic rate), then each driver on the baseline shapes per ISA and
// thread count (bytes counted as input read + output written, as bench/BASELINE counts).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "core/cpu.h"
#include "core/dispatch.h"
#include "core/parallel.h"
#include "bench_util.h"
#include "norm/norm.h"

namespace tensorops::norm {
TENSOROPS_KERNEL_TABLES(NormKernels)
}  // namespace tensorops::norm

namespace {

using namespace tensorops;
using namespace tensorops::norm;

std::vector<float> random_floats(int64_t n, float mean = 0.0f) {
  std::mt19937 gen(42);
  std::normal_distribution<float> dist(mean, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// The machine is shared: with --benchmark_repetitions, the minimum is the least disturbed run.
double min_of(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

bool isa_available(int isa) {
  return isa <= static_cast<int>(detected_isa()) && kernel_tables()[isa] != nullptr;
}

TensorView view(float* data, const std::vector<int64_t>& shape) {
  return bench::contiguous_view(data, DType::float32, shape);
}

// ---- microkernels, one ISA each (args: isa) ------------------------------------------------

void BM_chunk_moments(benchmark::State& state) {
  const int isa = static_cast<int>(state.range(0));
  if (!isa_available(isa)) return state.SkipWithError("ISA not available");
  const auto& k = kernel_tables()[isa]->f32;
  const auto x = random_floats(kChunk<float>, 1000.0f);
  Moments m;
  for (auto _ : state) {
    k.chunk_moments(x.data(), kChunk<float>, &m);
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(state.iterations() * kChunk<float> * 4);
  state.SetLabel(isa_token(static_cast<Isa>(isa)));
}
BENCHMARK(BM_chunk_moments)->DenseRange(0, 2)->ComputeStatistics("min", min_of);

void BM_column_moments(benchmark::State& state) {
  const int isa = static_cast<int>(state.range(0));
  if (!isa_available(isa)) return state.SkipWithError("ISA not available");
  const auto& k = kernel_tables()[isa]->f32;
  const int64_t rows = 4 * kRowTile, cols = kColumnBlock;
  const auto x = random_floats(rows * cols);
  std::vector<Moments> out(cols);
  for (auto _ : state) {
    k.column_moments(x.data(), rows, cols, cols, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * cols * 4);
  state.SetLabel(isa_token(static_cast<Isa>(isa)));
}
BENCHMARK(BM_column_moments)->DenseRange(0, 2)->ComputeStatistics("min", min_of);

// args: isa, activation
void BM_normalize(benchmark::State& state) {
  const int isa = static_cast<int>(state.range(0));
  if (!isa_available(isa)) return state.SkipWithError("ISA not available");
  const auto& k = kernel_tables()[isa]->f32;
  const int64_t n = 4096;
  const auto x = random_floats(n);
  std::vector<float> y(n);
  const auto act = static_cast<Activation>(state.range(1));
  for (auto _ : state) {
    k.normalize(x.data(), y.data(), n, 0.5f, 1.5f, -0.25f, act, false);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 8);
  state.SetLabel(isa_token(static_cast<Isa>(isa)));
}
BENCHMARK(BM_normalize)->ArgsProduct({{0, 1, 2}, {0, 1, 2}})->ComputeStatistics("min", min_of);

void BM_normalize_affine(benchmark::State& state) {
  const int isa = static_cast<int>(state.range(0));
  if (!isa_available(isa)) return state.SkipWithError("ISA not available");
  const auto& k = kernel_tables()[isa]->f32;
  const int64_t n = 768;
  const auto x = random_floats(n), w = random_floats(n), b = random_floats(n);
  std::vector<float> y(n);
  for (auto _ : state) {
    k.normalize_affine(x.data(), y.data(), n, 0.5f, 1.5f, w.data(), b.data(), Activation::none, false);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 8);
  state.SetLabel(isa_token(static_cast<Isa>(isa)));
}
BENCHMARK(BM_normalize_affine)->DenseRange(0, 2)->ComputeStatistics("min", min_of);

// ---- drivers on the baseline shapes (args: isa, threads) -----------------------------------

enum class Case { bn_eval, bn_train, instance, group, layer };

template <Case kind>
void BM_driver(benchmark::State& state, std::vector<int64_t> shape) {
  const int isa = static_cast<int>(state.range(0));
  if (!isa_available(isa)) return state.SkipWithError("ISA not available");
  const Isa saved_cap = isa_cap();
  const int saved_threads = get_num_threads();
  set_isa_cap(static_cast<Isa>(isa));
  set_num_threads(static_cast<int>(state.range(1)));
  int64_t numel = 1;
  for (auto s : shape) numel *= s;
  const int64_t c = shape[1];
  auto x = random_floats(numel);
  std::vector<float> y(numel), w(c, 1.0f), b(c, 0.0f), rm(c, 0.0f), rv(c, 1.0f);
  const TensorView in = view(x.data(), shape), out = view(y.data(), shape);
  const TensorView none{};
  for (auto _ : state) {
    if constexpr (kind == Case::bn_eval || kind == Case::bn_train)
      batch_norm(in, out, view(w.data(), {c}), view(b.data(), {c}), view(rm.data(), {c}), view(rv.data(), {c}),
                 kind == Case::bn_train, 0.1, 1e-5, Activation::none);
    else if constexpr (kind == Case::instance)
      instance_norm(in, out, view(w.data(), {c}), view(b.data(), {c}), none, none, true, 0.1, 1e-5, Activation::none);
    else if constexpr (kind == Case::group)
      group_norm(in, out, 32, view(w.data(), {c}), view(b.data(), {c}), 1e-5, Activation::none);
    else
      layer_norm(in, out, shape.back(), none, none, 1e-5, Activation::none);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * numel * 8);
  state.SetLabel(isa_token(static_cast<Isa>(isa)));
  set_isa_cap(saved_cap);
  set_num_threads(saved_threads);
}

const std::vector<std::vector<int64_t>> kDriverArgs = {{0, 1}, {1, 1}, {2, 1}, {2, 2}};

void register_drivers() {
  const auto add = [](const char* name, auto fn, std::vector<int64_t> shape) {
    auto* b = benchmark::RegisterBenchmark(name, [=](benchmark::State& s) { fn(s, shape); });
    for (const auto& a : kDriverArgs) b->Args(a);
    b->ArgNames({"isa", "threads"})->UseRealTime()->Unit(benchmark::kMillisecond)->ComputeStatistics("min", min_of);
  };
  add("batchnorm_eval_20x100x35x45", BM_driver<Case::bn_eval>, {20, 100, 35, 45});
  add("batchnorm_train_20x100x35x45", BM_driver<Case::bn_train>, {20, 100, 35, 45});
  add("batchnorm_eval_8x256x56x56", BM_driver<Case::bn_eval>, {8, 256, 56, 56});
  add("batchnorm_train_8x256x56x56", BM_driver<Case::bn_train>, {8, 256, 56, 56});
  add("batchnorm_train_256x1024", BM_driver<Case::bn_train>, {256, 1024});
  add("layernorm_8x128x768", BM_driver<Case::layer>, {8, 128, 768});
  add("instancenorm_20x100x35x45", BM_driver<Case::instance>, {20, 100, 35, 45});
  add("groupnorm_g32_8x256x56x56", BM_driver<Case::group>, {8, 256, 56, 56});
}

const bool registered = (register_drivers(), true);

}  // namespace
