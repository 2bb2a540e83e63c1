// Google Benchmark over every row of the pointwise kernel table: each ISA the CPU supports,
// float32 and float64, every unary and binary op, on one contiguous run (the microkernel
// alone, one thread, no driver). Binary ops run twice: both operands contiguous, and the
// second broadcast (stride 0, the per-channel bias pattern). Bytes/s counts every input
// element read and every output element written. Two sizes: 64 Ki elements (cache-resident:
// the op's arithmetic cost) and 4 Mi elements (memory-bound).
//
//   build/dev/bench_pointwise --benchmark_filter='x86_avx512/f32/unary/gelu'
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "pointwise/pointwise.h"

namespace tensorops::pointwise {
namespace generic {
const PointwiseKernels* kernel_table();
}
#if TENSOROPS_X86
namespace x86_avx2 {
const PointwiseKernels* kernel_table();
}
namespace x86_avx512 {
const PointwiseKernels* kernel_table();
}
#endif
}  // namespace tensorops::pointwise

namespace {

using namespace tensorops;
using namespace tensorops::pointwise;

constexpr int64_t kSizes[] = {int64_t(1) << 16, int64_t(1) << 22};

template <class T>
std::vector<T> positive_values(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(0.1, 4.0);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

// Parameters that every op accepts: clamp [1, 20], slope 1, elu coefficients 1, softplus
// beta 1 / threshold 20, round to whole numbers, pow exponent 1.
template <class T>
Scalars<T> bench_scalars() {
  Scalars<T> p;
  p.a = T(1);
  p.b = T(20);
  p.c = T(1);
  return p;
}

template <class T>
void run_unary(benchmark::State& state, UnaryKernel<T> kernel) {
  const int64_t n = state.range(0);
  const auto x = positive_values<T>(n, 1);
  std::vector<T> out(static_cast<size_t>(n));
  const Scalars<T> p = bench_scalars<T>();
  for (auto _ : state) {
    kernel(x.data(), 1, out.data(), n, p, false);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * 2 * static_cast<int64_t>(sizeof(T)));
}

template <class T>
void run_binary(benchmark::State& state, BinaryKernel<T> kernel, int64_t stride_b) {
  const int64_t n = state.range(0);
  const auto a = positive_values<T>(n, 1);
  const auto b = positive_values<T>(n, 2);
  std::vector<T> out(static_cast<size_t>(n));
  const Scalars<T> p = bench_scalars<T>();
  for (auto _ : state) {
    kernel(a.data(), 1, b.data(), stride_b, out.data(), n, p, false);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const int64_t elements_read = stride_b == 0 ? n + 1 : 2 * n;
  state.SetBytesProcessed(state.iterations() * (elements_read + n) * static_cast<int64_t>(sizeof(T)));
}

template <class T>
void register_typed(const std::string& prefix, const TypedKernels<T>& k) {
  for (int op = 0; op < kUnaryOpCount; ++op) {
    const std::string name = prefix + "/unary/" + unary_op_name(static_cast<UnaryOp>(op));
    auto* b = benchmark::RegisterBenchmark(name.c_str(), run_unary<T>, k.unary[op]);
    for (int64_t size : kSizes) b->Arg(size);
  }
  for (int op = 0; op < kBinaryOpCount; ++op) {
    const char* op_name = binary_op_name(static_cast<BinaryOp>(op));
    for (int64_t stride_b : {int64_t(1), int64_t(0)}) {
      const std::string name = prefix + (stride_b ? "/binary/" : "/binary_broadcast/") + op_name;
      auto* b = benchmark::RegisterBenchmark(name.c_str(), run_binary<T>, k.binary[op], stride_b);
      for (int64_t size : kSizes) b->Arg(size);
    }
  }
}

void register_table(Isa isa, const PointwiseKernels* table) {
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) return;  // the CPU cannot run it
  register_typed<float>(std::string(isa_token(isa)) + "/f32", table->f32);
  register_typed<double>(std::string(isa_token(isa)) + "/f64", table->f64);
}

const bool registered = [] {
  register_table(Isa::generic, generic::kernel_table());
#if TENSOROPS_X86
  register_table(Isa::x86_avx2, x86_avx2::kernel_table());
  register_table(Isa::x86_avx512, x86_avx512::kernel_table());
#endif
  return true;
}();

}  // namespace
