// Helpers shared by the Google Benchmark files.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/parallel.h"
#include "core/tensor.h"

namespace tensorops::bench {

// A C-contiguous view of `data` with the given shape.
inline TensorView contiguous_view(void* data, DType dtype, const std::vector<int64_t>& shape) {
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.ndim = static_cast<int>(shape.size());
  int64_t stride = 1;
  for (int d = v.ndim - 1; d >= 0; --d) {
    v.shape[d] = shape[size_t(d)];
    v.strides[d] = stride;
    stride *= shape[size_t(d)];
  }
  return v;
}

// Sets the ISA cap and thread count for one benchmark; false (and the run skipped) when the
// CPU lacks the ISA.
inline bool prepare(benchmark::State& state, Isa isa, int threads) {
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
    state.SkipWithError("ISA not supported by this CPU");
    return false;
  }
  set_isa_cap(isa);
  set_num_threads(threads);
  return true;
}

// flops per iteration, reported as GFLOP/s.
inline void report_gflops(benchmark::State& state, double flops) {
  state.counters["GFLOPS"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Registers run(state, case, isa, threads) as "<case.name>/<isa>/threads:<n>" for every case,
// every ISA and 1 and 2 threads (wall-clock time, in `unit`).
template <class Case, size_t N, class Run>
int register_cases(const Case (&cases)[N], Run run, benchmark::TimeUnit unit) {
  const Isa isas[] = {Isa::generic, Isa::x86_avx2, Isa::x86_avx512};
  for (const Case& k : cases)
    for (Isa isa : isas)
      for (int threads : {1, 2}) {
        const std::string name = std::string(k.name) + "/" + isa_token(isa) + "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), [&k, isa, threads, run](benchmark::State& s) { run(s, k, isa, threads); })
            ->Unit(unit)
            ->UseRealTime();
      }
  return 0;
}

}  // namespace tensorops::bench
