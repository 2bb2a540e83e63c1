// Google Benchmark for the GEMM family: every ISA's kernels on square products, the BERT-base
// linear shapes (unpacked W^T and pre-packed), the attention bmm, and the bare microkernel on
// L1-resident panels. GFLOP/s is per CPU second on one thread (robust on a shared machine),
// per wall second for the two-thread rows.
//
//   build/dev/bench_gemm --benchmark_filter='square/x86_avx512' --benchmark_repetitions=5
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/cpu.h"
#include "core/parallel.h"
#include "gemm/gemm.h"

namespace {

using namespace tensorops;
using gemm::MatrixRef;

const Isa kIsas[] = {Isa::generic, Isa::x86_avx2, Isa::x86_avx512};

template <class T>
std::vector<T> random_vector(int64_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist;
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(dist(gen));
  return v;
}


template <class T>
void square(benchmark::State& state, Isa isa, int threads) {
  if (!bench::prepare(state, isa, threads)) return;
  const int64_t n = state.range(0);
  const auto a = random_vector<T>(n * n, 1), b = random_vector<T>(n * n, 2);
  std::vector<T> c(static_cast<size_t>(n * n));
  for (auto _ : state) {
    gemm::gemm<T>(n, n, n, {a.data(), n, 1}, {b.data(), n, 1}, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  bench::report_gflops(state, 2.0 * n * n * n);
}

// x[M, K] @ W[N, K]^T + bias: the weight read through its strides, or packed once.
void linear(benchmark::State& state, Isa isa, int threads, bool packed) {
  if (!bench::prepare(state, isa, threads)) return;
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const auto x = random_vector<float>(m * k, 3), w = random_vector<float>(n * k, 4), bias = random_vector<float>(n, 5);
  std::vector<float> y(static_cast<size_t>(m * n));
  gemm::Epilogue<float> ep;
  ep.addend = {bias.data(), 0, 1};
  const MatrixRef<float> wt{w.data(), 1, k};
  const gemm::PackedB<float> pw(k, n, wt);
  for (auto _ : state) {
    if (packed) gemm::gemm<float>(m, {x.data(), k, 1}, pw, y.data(), n, ep);
    else gemm::gemm<float>(m, n, k, {x.data(), k, 1}, wt, y.data(), n, ep);
    benchmark::DoNotOptimize(y.data());
  }
  bench::report_gflops(state, 2.0 * m * n * k);
}

void attention_bmm(benchmark::State& state, Isa isa, int threads) {
  if (!bench::prepare(state, isa, threads)) return;
  const int64_t batch = 12, m = 128, k = 64, n = 128;
  auto a = random_vector<float>(batch * m * k, 6), b = random_vector<float>(batch * k * n, 7);
  std::vector<float> c(static_cast<size_t>(batch * m * n));
  auto view = [](float* data, int64_t b0, int64_t r, int64_t cl) {
    TensorView v;
    v.data = data;
    v.dtype = DType::float32;
    v.ndim = 3;
    v.shape[0] = b0, v.shape[1] = r, v.shape[2] = cl;
    v.strides[0] = r * cl, v.strides[1] = cl, v.strides[2] = 1;
    return v;
  };
  const TensorView av = view(a.data(), batch, m, k), bv = view(b.data(), batch, k, n), cv = view(c.data(), batch, m, n);
  for (auto _ : state) {
    gemm::matmul(av, bv, cv);
    benchmark::DoNotOptimize(c.data());
  }
  bench::report_gflops(state, 2.0 * batch * m * n * k);
}

// The microkernel alone: a full MR x NR tile over KC from L1-resident panels.
template <class T>
void microkernel(benchmark::State& state, Isa isa) {
  if (!bench::prepare(state, isa, 1)) return;
  const auto& ks = gemm::active_kernels().get<T>();
  const int64_t kc = state.range(0);
  const auto a = random_vector<T>(ks.mr * kc, 8), b = random_vector<T>(ks.nr * kc, 9);
  std::vector<T> c(static_cast<size_t>(ks.mr * ks.nr));
  for (auto _ : state) {
    ks.micro[ks.mr](kc, a.data(), b.data(), ks.nr, c.data(), ks.nr, ks.nr, false, nullptr, 0);
    benchmark::DoNotOptimize(c.data());
  }
  state.SetLabel(std::to_string(ks.mr) + "x" + std::to_string(ks.nr));
  bench::report_gflops(state, 2.0 * ks.mr * ks.nr * kc);
}

// The FMA peak the microkernel is judged against: independent multiply-add chains, enough of
// them to cover the FMA latency on both ports.
#if TENSOROPS_X86
__attribute__((target("avx512f"))) void fma_peak_avx512(benchmark::State& state) {
  if (!bench::prepare(state, Isa::x86_avx512, 1)) return;
  const __m512 x = _mm512_set1_ps(0.5f), y = _mm512_set1_ps(0.25f);
  for (auto _ : state) {
    __m512 acc[16];
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_set1_ps(float(j));  // distinct, so no two chains merge
    for (int i = 0; i < 1024; ++i)
      for (auto& v : acc) v = _mm512_fmadd_ps(x, v, y);
    for (auto& v : acc) benchmark::DoNotOptimize(v);
  }
  bench::report_gflops(state, 2.0 * 16 * 16 * 1024);
}

__attribute__((target("avx2,fma"))) void fma_peak_avx2(benchmark::State& state) {
  if (!bench::prepare(state, Isa::x86_avx2, 1)) return;
  const __m256 x = _mm256_set1_ps(0.5f), y = _mm256_set1_ps(0.25f);
  for (auto _ : state) {
    __m256 acc[12];
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(float(j));
    for (int i = 0; i < 1024; ++i)
      for (auto& v : acc) v = _mm256_fmadd_ps(x, v, y);
    for (auto& v : acc) benchmark::DoNotOptimize(v);
  }
  bench::report_gflops(state, 2.0 * 8 * 12 * 1024);
}
#endif

int register_all() {
#if TENSOROPS_X86
  benchmark::RegisterBenchmark("fma_peak/f32/x86_avx512", fma_peak_avx512);
  benchmark::RegisterBenchmark("fma_peak/f32/x86_avx2", fma_peak_avx2);
#endif
  for (Isa isa : kIsas) {
    const std::string tag = isa_token(isa);
    benchmark::RegisterBenchmark(("microkernel/f32/" + tag).c_str(), microkernel<float>, isa)->Arg(64)->Arg(128)->Arg(256);
    benchmark::RegisterBenchmark(("microkernel/f64/" + tag).c_str(), microkernel<double>, isa)->Arg(64)->Arg(128)->Arg(256);
    for (int threads : {1, 2}) {
      const std::string suffix = tag + "/threads:" + std::to_string(threads);
      auto* sq = benchmark::RegisterBenchmark(("square/f32/" + suffix).c_str(), square<float>, isa, threads);
      sq->RangeMultiplier(2)->Range(256, 2048)->Unit(benchmark::kMillisecond);
      auto* sq64 = benchmark::RegisterBenchmark(("square/f64/" + suffix).c_str(), square<double>, isa, threads);
      sq64->Arg(1024)->Unit(benchmark::kMillisecond);
      for (bool packed : {false, true}) {
        auto* lin = benchmark::RegisterBenchmark(((packed ? "linear_packed/" : "linear/") + suffix).c_str(), linear,
                                                 isa, threads, packed);
        for (int64_t m : {1, 8, 32})
          for (auto kn : {std::pair<int64_t, int64_t>{768, 768}, {768, 3072}, {3072, 768}})
            lin->Args({m, kn.first, kn.second});
        lin->Unit(benchmark::kMicrosecond);
        if (threads > 1) lin->UseRealTime();
      }
      auto* bmm = benchmark::RegisterBenchmark(("bmm_12x128x64x128/" + suffix).c_str(), attention_bmm, isa, threads);
      bmm->Unit(benchmark::kMicrosecond);
      if (threads > 1) {
        sq->UseRealTime();
        sq64->UseRealTime();
        bmm->UseRealTime();
      }
    }
  }
  return 0;
}

const int registered = register_all();

}  // namespace
